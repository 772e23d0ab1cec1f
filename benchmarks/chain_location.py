"""Benchmark code location: daily chains a -> b -> c under each backfill policy, ten years long."""

from code_server import AssetsDefinition, BackfillPolicy, DailyPartitionsDefinition, Definitions, asset

daily = DailyPartitionsDefinition(start_date="2015-01-01", end_date="2025-01-01")


def chain(prefix: str, policy: BackfillPolicy | None) -> list[AssetsDefinition]:
    @asset(name=f"{prefix}a", partitions_def=daily, backfill_policy=policy)
    def first() -> None:
        pass

    @asset(name=f"{prefix}b", partitions_def=daily, backfill_policy=policy, deps=[first])
    def second() -> None:
        pass

    @asset(name=f"{prefix}c", partitions_def=daily, backfill_policy=policy, deps=[second])
    def third() -> None:
        pass

    return [first, second, third]


defs = Definitions(
    assets=[
        *chain("", None),
        *chain("s", BackfillPolicy.single_run()),
        *chain("m", BackfillPolicy.multi_run(100)),
    ]
)
