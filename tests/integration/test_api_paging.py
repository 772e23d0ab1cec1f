"""Paging through the runs of one launch over gRPC: they share a creation time, and no page loses one."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from code_server.asset_key import AssetKey
from code_server.partitions.keys import PartitionKeyRange
from code_server.server.spawn import SpawnedCodeServer
from code_server.wire.automation import BackfillRequestSpec
from control_plane.app import ControlPlane
from control_plane.client import ControlPlaneClient
from control_plane.views import LaunchOptions
from tests.fixtures.holding_launcher import HoldingLauncher

pytestmark = pytest.mark.integration


def test_every_run_of_one_launch_is_listed_once_across_pages(
    control_plane_factory: Callable[..., ControlPlane], backfill_code_server: SpawnedCodeServer
) -> None:
    plane = control_plane_factory({"tests": backfill_code_server.address}, launcher=HoldingLauncher())
    spec = BackfillRequestSpec(
        asset_keys=(AssetKey("a"), AssetKey("b"), AssetKey("c")),
        partition_ranges=(PartitionKeyRange("2024-01-01", "2024-04-30"),),
    )
    with ControlPlaneClient(plane.address) as client:
        backfill = client.launch_backfill(spec, LaunchOptions(location="tests"))
        backfill_id = backfill.backfill_id  # type: ignore[union-attr]
        run_ids: list[str] = []
        token, pages = "", 0
        while True:
            page = client.list_runs(backfill_id=backfill_id, page_size=50, page_token=token)
            run_ids += [run.run_id for run in page.runs]
            pages += 1
            token = page.next_page_token
            if not token:
                break
    assert len(run_ids) == 121 and len(set(run_ids)) == 121
    assert pages == 3
