# The guide's sensor that launches a single-run backfill, with only the import changed.
from code_server import (
    AssetKey,
    BackfillPolicy,
    DailyPartitionsDefinition,
    DefaultSensorStatus,
    RunRequest,
    asset,
    sensor,
)

daily_partitions_def = DailyPartitionsDefinition("2023-01-01")


@asset(
    partitions_def=daily_partitions_def,
    backfill_policy=BackfillPolicy.single_run(),
)
def asset_with_single_run_backfill_policy():
    pass


partitions = ["2023-01-01", "2023-01-02", "2023-01-03", "2023-01-04", "2023-01-05"]


@sensor(
    target=AssetKey("asset_with_single_run_backfill_policy"),
    minimum_interval_seconds=5,
    default_status=DefaultSensorStatus.RUNNING,
)
def launch_backfill_with_single_run_backfill_policy(context):
    yield RunRequest.from_partitions_by_assets(
        partitions_by_assets={asset_with_single_run_backfill_policy.key: set(partitions)},
        tags={},  # optional
        title=None,  # optional
        description=None,  # optional
    )
