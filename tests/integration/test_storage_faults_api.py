"""The control plane's API over real gRPC on a database's bad days.

A full SQLite disk answers writes RESOURCE_EXHAUSTED and a read-only file FAILED_PRECONDITION, each
naming the file and what to do; reads go on, nothing committed is lost, and writes work again once
space returns or the file is writable, without a restart. On PostgreSQL, connections terminated
between calls are replaced: calls are served (or UNAVAILABLE), never UNKNOWN or INTERNAL.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest
import sqlalchemy as sa

from code_server.asset_key import AssetKey
from code_server.partitions.keys import PartitionKeyRange
from code_server.server.spawn import SpawnedCodeServer
from code_server.wire.automation import BackfillRequestSpec
from control_plane.api.enums import run_status_to_proto
from control_plane.app import ControlPlane
from control_plane.client import ControlPlaneClient, ControlPlaneClientError
from control_plane.records import RunStatus
from control_plane.views import LaunchOptions
from tests.fixtures.holding_launcher import HoldingLauncher
from tests.integration.conftest import wait_until
from tests.unit.storage.conftest import _fresh_schema, postgres_server  # noqa: F401  (a fixture)
from tests.unit.storage.disk_faults import FullDisk, make_read_only, make_writable

pytestmark = pytest.mark.integration

SPEC = BackfillRequestSpec(
    asset_keys=(AssetKey("a"),), partition_ranges=(PartitionKeyRange("2024-01-01", "2024-01-03"),)
)


def _launch(client: ControlPlaneClient) -> str:
    backfill = client.launch_backfill(SPEC, LaunchOptions(location="tests", tags={"note": "x" * 2000}))
    return backfill.backfill_id  # type: ignore[union-attr]


def _listed(client: ControlPlaneClient) -> set[str]:
    return {backfill.backfill_id for backfill in client.list_backfills(page_size=1000).backfills}


def _launched(client: ControlPlaneClient, backfill_id: str) -> bool:
    """Whether the daemon launched every run of the backfill (it keeps ticking through the episode)."""
    runs = client.list_runs(backfill_id=backfill_id).runs
    return bool(runs) and all(run.status != run_status_to_proto(RunStatus.QUEUED) for run in runs)


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[FullDisk]:
    disk = FullDisk(tmp_path / "disk")
    yield disk
    disk.close()


def test_a_full_disk_refuses_launches_clearly_serves_reads_and_recovers(
    control_plane_factory: Callable[..., ControlPlane],
    backfill_code_server: SpawnedCodeServer,
    full_disk: FullDisk,
) -> None:
    plane = control_plane_factory(
        {"tests": backfill_code_server.address},
        launcher=HoldingLauncher(),
        database_url=full_disk.database_url,
    )
    with ControlPlaneClient(plane.address) as client:
        first = _launch(client)
        wait_until(lambda: _launched(client, first), "the first backfill's runs are launched")
        full_disk.fill(plane.database)
        launched = [first]
        refused: ControlPlaneClientError | None = None
        for _ in range(2000):
            try:
                launched.append(_launch(client))
            except ControlPlaneClientError as error:
                refused = error
                break
        assert refused is not None, f"{len(launched)} backfills were launched on a full disk"
        assert refused.status == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert refused.error_type == "StorageFull"
        assert "database is full" in str(refused) and str(full_disk.database_path) in str(refused)
        assert "free disk space" in str(refused)

        # Reads are served, and every launch that was answered OK is there.
        assert client.get_backfill(first).backfill_id == first
        assert _listed(client) == set(launched)

        full_disk.free(plane.database)
        after = _launch(client)
        assert _listed(client) == {*launched, after}
        wait_until(lambda: _launched(client, after), "the daemon launches runs again")


def test_a_read_only_database_file_refuses_writes_clearly_serves_reads_and_recovers(
    control_plane_factory: Callable[..., ControlPlane],
    backfill_code_server: SpawnedCodeServer,
    tmp_path: Path,
) -> None:
    path = tmp_path / "partita.db"
    first_plane = control_plane_factory({"tests": backfill_code_server.address}, launcher=HoldingLauncher())
    with ControlPlaneClient(first_plane.address) as client:
        first = _launch(client)
        wait_until(lambda: _launched(client, first), "the first backfill's runs are launched")
    first_plane.stop()

    make_read_only(path)
    try:
        plane = control_plane_factory({"tests": backfill_code_server.address}, launcher=HoldingLauncher())
        with ControlPlaneClient(plane.address) as client:
            assert client.get_backfill(first).backfill_id == first
            assert _listed(client) == {first}
            with pytest.raises(ControlPlaneClientError) as refused:
                _launch(client)
            assert refused.value.status == grpc.StatusCode.FAILED_PRECONDITION
            assert refused.value.error_type == "StorageReadOnly"
            assert "read-only" in str(refused.value) and str(path) in str(refused.value)
            assert _listed(client) == {first}
    finally:
        make_writable(path)
    with ControlPlaneClient(plane.address) as client:
        after = _launch(client)  # the same control plane, no restart
        assert _listed(client) == {first, after}
        wait_until(lambda: _launched(client, after), "the daemon launches runs again")


@pytest.fixture
def postgres_url(postgres_server: sa.Engine) -> Iterator[tuple[str, str]]:  # noqa: F811
    """A fresh schema, and an application name that only this test's control plane uses."""
    name = f"partita-faults-{uuid.uuid4().hex[:8]}"
    with _fresh_schema(postgres_server) as url:
        yield sa.make_url(url).update_query_dict({"application_name": name}).render_as_string(False), name


@pytest.mark.postgres
def test_postgres_connections_terminated_between_calls_never_answer_unknown_or_internal(
    control_plane_factory: Callable[..., ControlPlane],
    backfill_code_server: SpawnedCodeServer,
    postgres_url: tuple[str, str],
    postgres_server: sa.Engine,  # noqa: F811
) -> None:
    url, name = postgres_url
    plane = control_plane_factory(
        {"tests": backfill_code_server.address}, launcher=HoldingLauncher(), database_url=url
    )
    terminate = sa.text(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = :name"
    )
    answers: dict[str, int] = {}
    launched: list[str] = []
    with ControlPlaneClient(plane.address) as client:
        launched.append(_launch(client))
        calls: list[tuple[str, Callable[[], object]]] = [
            ("launch", lambda: launched.append(_launch(client))),
            ("get", lambda: client.get_backfill(launched[0])),
            ("list", lambda: _listed(client)),
            ("runs", lambda: client.list_runs(backfill_id=launched[0])),
        ]
        for round_ in range(5):
            for what, call in calls:
                with postgres_server.connect() as connection:
                    connection.execute(terminate, {"name": name})
                time.sleep(0.02 * round_)
                try:
                    call()
                    answers["OK"] = answers.get("OK", 0) + 1
                except ControlPlaneClientError as error:
                    assert error.status == grpc.StatusCode.UNAVAILABLE, f"{what}: {error.status}: {error}"
                    answers["UNAVAILABLE"] = answers.get("UNAVAILABLE", 0) + 1
        assert answers.get("OK", 0) > 0, answers
        # Nothing answered OK was lost.
        assert set(launched) <= _listed(client)
