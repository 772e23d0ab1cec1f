"""Benchmark code location: daily chains a -> b -> c under each backfill policy, ten years long.

Chain "u" has no policy on a and c and multi_run(1) on b: the same runs as no policy, but three
execution units, so the planner works on every outcome. Chain "h" has single_run() on b below a
with no policy: b holds its partitions until every one of them can run, then runs once."""

from code_server import AssetsDefinition, BackfillPolicy, DailyPartitionsDefinition, Definitions, asset

daily = DailyPartitionsDefinition(start_date="2015-01-01", end_date="2025-01-01")


def chain(
    prefix: str, policy: BackfillPolicy | None, downstream_policy: BackfillPolicy | None = None
) -> list[AssetsDefinition]:
    """``downstream_policy`` (default: ``policy``) for b and c; a different one puts each asset in
    its own execution unit, so every outcome of a plans a run of b."""
    below = policy if downstream_policy is None else downstream_policy

    @asset(name=f"{prefix}a", partitions_def=daily, backfill_policy=policy)
    def first() -> None:
        pass

    @asset(name=f"{prefix}b", partitions_def=daily, backfill_policy=below, deps=[first])
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
        *chain("u", None, BackfillPolicy.multi_run(1)),
        *chain("h", None, BackfillPolicy.single_run()),
    ]
)
