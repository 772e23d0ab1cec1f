"""Backfills end to end on PostgreSQL, the production database: a chain, and a failure then a retry.

Each test gets a fresh schema on the server named by PARTITA_TEST_POSTGRES_URL (the storage suite's
helpers), dropped afterwards. Without that variable the tests are skipped (before any process
starts); with PARTITA_REQUIRE_POSTGRES=1 an unreachable server fails them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from code_server.asset_key import AssetKey
from code_server.partitions.keys import PartitionKeyRange
from code_server.server.spawn import SpawnedCodeServer
from code_server.wire.automation import BackfillRequestSpec
from control_plane.app import ControlPlane
from control_plane.records import BackfillStatus, PartitionStatus, RunStatus
from control_plane.views import BackfillView, LaunchOptions
from tests.integration.conftest import read_jsonl, wait_for_end
from tests.unit.storage.conftest import _fresh_schema, postgres_server  # noqa: F401  (a fixture)

pytestmark = [pytest.mark.integration, pytest.mark.postgres]
Factory = Callable[..., ControlPlane]


@pytest.fixture
def postgres_url(postgres_server: sa.Engine) -> Iterator[str]:  # noqa: F811
    """A URL whose connections use a new, empty schema of the test server (migrated on start)."""
    with _fresh_schema(postgres_server) as url:
        yield url


def rows_in_schema(server: sa.Engine, url: str, table: str) -> int:
    """Rows of ``table`` in the schema ``url`` selects, counted through the server, not through Partita."""
    options = sa.make_url(url).query["options"]
    assert isinstance(options, str)
    schema = options.removeprefix("-csearch_path=")
    with server.connect() as connection:
        return int(connection.execute(sa.text(f'SELECT count(*) FROM "{schema}".{table}')).scalar_one())


def launch(control_plane: ControlPlane, assets: list[str], start: str, end: str) -> str:
    spec = BackfillRequestSpec(
        asset_keys=tuple(AssetKey(a) for a in assets), partition_ranges=(PartitionKeyRange(start, end),)
    )
    view = control_plane.launch_backfill(spec, LaunchOptions(location="tests"))
    assert isinstance(view, BackfillView)
    return view.record.id


def materialized(output_file: Path) -> Counter[tuple[str, str]]:
    return Counter((entry["asset"], key) for entry in read_jsonl(output_file) for key in entry["keys"])


def test_chain_backfill_on_postgres(
    postgres_server: sa.Engine,  # noqa: F811
    postgres_url: str,
    control_plane_factory: Factory,
    backfill_code_server: SpawnedCodeServer,
    output_file: Path,
) -> None:
    control_plane = control_plane_factory({"tests": backfill_code_server.address}, database_url=postgres_url)
    assert control_plane.database.dialect == "postgresql"
    backfill_id = launch(control_plane, ["a", "b", "c"], "2024-03-01", "2024-03-03")
    final = wait_for_end(control_plane, backfill_id)

    assert final.record.status is BackfillStatus.COMPLETED_SUCCESS
    assert final.counts == {AssetKey(name): {PartitionStatus.MATERIALIZED: 3} for name in ("a", "b", "c")}
    runs = control_plane.list_runs(backfill_id=backfill_id)
    assert sorted((run.partition_range.start, run.status) for run in runs if run.partition_range) == [
        ("2024-03-01", RunStatus.SUCCESS),
        ("2024-03-02", RunStatus.SUCCESS),
        ("2024-03-03", RunStatus.SUCCESS),
    ]
    assert all(run.asset_keys == (AssetKey("a"), AssetKey("b"), AssetKey("c")) for run in runs)
    days = ("2024-03-01", "2024-03-02", "2024-03-03")
    assert materialized(output_file) == Counter({(asset, day): 1 for asset in "abc" for day in days})
    # The state lives in this test's schema on the server.
    assert rows_in_schema(postgres_server, postgres_url, "runs") == 3
    assert rows_in_schema(postgres_server, postgres_url, "backfills") == 1


def test_failure_then_retry_on_postgres(
    postgres_url: str,
    control_plane_factory: Factory,
    backfill_code_server: SpawnedCodeServer,
    output_file: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    failing = tmp_path / "failing.txt"
    failing.write_text("2024-03-02")
    monkeypatch.setenv("PARTITA_TEST_FAILING", str(failing))
    control_plane = control_plane_factory({"tests": backfill_code_server.address}, database_url=postgres_url)
    backfill_id = launch(control_plane, ["flaky", "flaky_child"], "2024-03-01", "2024-03-03")
    final = wait_for_end(control_plane, backfill_id)

    assert final.record.status is BackfillStatus.COMPLETED_FAILED
    assert final.counts == {
        AssetKey("flaky"): {PartitionStatus.MATERIALIZED: 2, PartitionStatus.FAILED: 1},
        AssetKey("flaky_child"): {PartitionStatus.MATERIALIZED: 2, PartitionStatus.UPSTREAM_FAILED: 1},
    }
    (failed_run,) = control_plane.list_runs(backfill_id=backfill_id, statuses=[RunStatus.FAILURE])
    assert failed_run.partition_range == PartitionKeyRange("2024-03-02", "2024-03-02")
    assert "flaky: RuntimeError: source data for 2024-03-02 is corrupt" in (failed_run.error or "")
    before = materialized(output_file)
    assert before == Counter(
        {(asset, day): 1 for asset in ("flaky", "flaky_child") for day in ("2024-03-01", "2024-03-03")}
    )

    failing.write_text("")  # the data is fixed
    _, requeued = control_plane.retry_backfill(backfill_id)
    assert requeued == 2
    again = wait_for_end(control_plane, backfill_id)
    assert again.record.status is BackfillStatus.COMPLETED_SUCCESS
    assert again.counts == {
        AssetKey("flaky"): {PartitionStatus.MATERIALIZED: 3},
        AssetKey("flaky_child"): {PartitionStatus.MATERIALIZED: 3},
    }
    # Only what failed ran again, once.
    assert materialized(output_file) - before == Counter(
        {("flaky", "2024-03-02"): 1, ("flaky_child", "2024-03-02"): 1}
    )
