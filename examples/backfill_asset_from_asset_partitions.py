# The guide's schedule that launches a backfill over two assets, with only the import changed.
from code_server import (
    AssetIn,
    AssetKey,
    RunRequest,
    StaticPartitionMapping,
    StaticPartitionsDefinition,
    asset,
    schedule,
)

partitions_a = StaticPartitionsDefinition(["foo_a"])

partitions_b = StaticPartitionsDefinition(["foo_b"])


@asset(partitions_def=partitions_a)
def asset_a():
    pass


@asset(
    partitions_def=partitions_b,
    ins={"asset_a": AssetIn(partition_mapping=StaticPartitionMapping({"foo_a": "foo_b"}))},
)
def asset_b(asset_a):
    pass


asset_selection = [
    AssetKey("asset_a"),
    AssetKey("asset_b"),
]

partition_keys = partitions_a.get_partition_keys()


@schedule(target=asset_selection, cron_schedule="* * * * *")
def launch_backfill_with_multiple_assets_selected(context):
    return RunRequest.from_asset_partitions(
        # asset_selection=asset_selection,  # implied by the target argument
        partition_names=partition_keys,
        tags={"custom_tag_key": "custom_tag_value"},
        all_partitions=False,
    )
