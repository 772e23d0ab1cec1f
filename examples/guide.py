"""The three guide examples as one code location, for ``partita dev -m examples.guide`` and the demo."""

from code_server import Definitions
from examples.backfill_asset_from_asset_partitions import (
    asset_a,
    asset_b,
    launch_backfill_with_multiple_assets_selected,
)
from examples.backfill_asset_from_partitions_by_assets import (
    asset_with_single_run_backfill_policy,
    launch_backfill_with_single_run_backfill_policy,
)
from examples.single_run_backfill_asset import events

defs = Definitions(
    assets=[events, asset_a, asset_b, asset_with_single_run_backfill_policy],
    schedules=[launch_backfill_with_multiple_assets_selected],
    sensors=[launch_backfill_with_single_run_backfill_policy],
)
