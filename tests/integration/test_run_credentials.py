"""Runs that cannot be forged: over real gRPC against a real control plane, on SQLite and PostgreSQL.

A claim or report without the run attempt's credential, with another run's or an earlier attempt's,
or naming an asset or partition outside the run, is refused and leaves every table exactly as it was
(every row of every table is compared before and after). Workers the local launcher starts carry
their credential in their environment, never on their command line, and a backfill still succeeds.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import grpc
import pytest
import sqlalchemy as sa

from code_server.asset_key import AssetKey
from code_server.partitions.keys import PartitionKeyRange
from code_server.process_identity import process_arguments
from code_server.server.spawn import SpawnedCodeServer
from code_server.wire.assets import asset_key_to_proto
from code_server.wire.automation import BackfillRequestSpec
from code_server.wire.partitions import key_range_to_proto
from code_server.wire.timestamps import timestamp_to_proto
from control_plane.app import ControlPlane
from control_plane.records import BackfillPartition, PartitionStatus, RunRecord, RunStatus
from control_plane.runs.credentials import METADATA_KEY, RunCredentials
from control_plane.storage import BackfillProgressStore
from control_plane.storage.schema import metadata as schema
from control_plane.storage.schema import runs as runs_table
from control_plane.views import LaunchOptions
from partita.controlplane.v1 import run_events_pb2, run_reporter_pb2, run_reporter_pb2_grpc
from tests.fixtures.holding_launcher import HoldingLauncher
from tests.integration.conftest import wait_for_end, wait_until
from tests.unit.storage.conftest import _fresh_schema, postgres_server  # noqa: F401  (a fixture)

pytestmark = pytest.mark.integration

DAYS = PartitionKeyRange("2024-01-01", "2024-01-04")
Snapshot = dict[str, list[str]]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'runcred.db'}"
        return
    with _fresh_schema(request.getfixturevalue("postgres_server")) as url:
        yield url


def snapshot(plane: ControlPlane) -> Snapshot:
    """Every row of every table (runs, partition statuses, asset status, run events, ...)."""
    with plane.database.engine.connect() as connection:
        return {
            table.name: sorted(repr(tuple(row)) for row in connection.execute(sa.select(table)))
            for table in schema.sorted_tables
        }


class Worker:
    """Plays a run worker (or someone pretending to be one) over a real channel."""

    def __init__(self, plane: ControlPlane, channel: grpc.Channel) -> None:
        self._plane = plane
        self._stub = run_reporter_pb2_grpc.RunReporterStub(channel)

    def claim(
        self, run_id: str, credential: str | None, *, attempt: int = 1, worker_id: str = "w"
    ) -> run_reporter_pb2.ClaimRunResponse:
        request = run_reporter_pb2.ClaimRunRequest(
            run_id=run_id, attempt=attempt, worker=run_reporter_pb2.WorkerIdentity(worker_id=worker_id)
        )
        return self._stub.ClaimRun(request, timeout=10, metadata=_metadata(credential))

    def report(
        self, events: list[run_events_pb2.RunEvent], credential: str | None
    ) -> run_reporter_pb2.ReportRunEventsResponse:
        return self._stub.ReportRunEvents(
            run_reporter_pb2.ReportRunEventsRequest(events=events), timeout=10, metadata=_metadata(credential)
        )

    def refused(self, call: Callable[[], object], code: grpc.StatusCode, *named: str) -> str:
        """``call()`` must be refused with ``code`` (its message naming each of ``named``) and
        change nothing at all."""
        before = snapshot(self._plane)
        with pytest.raises(grpc.RpcError) as raised:
            call()
        details = raised.value.details() or ""
        assert raised.value.code() is code, details
        for text in named:
            assert text in details, details
        assert snapshot(self._plane) == before
        return details


def _metadata(credential: str | None) -> tuple[tuple[str, str], ...]:
    return ((METADATA_KEY, credential),) if credential is not None else ()


def _event(
    run_id: str, worker_id: str, sequence: int, kind: str, **fields: object
) -> run_events_pb2.RunEvent:
    event = run_events_pb2.RunEvent(run_id=run_id, worker_id=worker_id, sequence=sequence)
    event.timestamp.CopyFrom(timestamp_to_proto(NOW))
    if kind == "started":
        event.run_started.hostname = "h"
    elif kind == "materialized":
        event.partition_materialized.asset_key.CopyFrom(
            asset_key_to_proto(AssetKey(str(fields.get("asset", "ma"))))
        )
        if "key" in fields:
            event.partition_materialized.partition_key = str(fields["key"])
        if "range" in fields:
            key_range = fields["range"]
            assert isinstance(key_range, PartitionKeyRange)
            event.partition_materialized.partition_range.CopyFrom(key_range_to_proto(key_range))
    elif kind == "failed":
        event.partition_failed.asset_key.CopyFrom(
            asset_key_to_proto(AssetKey(str(fields.get("asset", "ma"))))
        )
        event.partition_failed.error.message = "forged"
    else:
        event.run_finished.success = True
    return event


NOW = datetime(2025, 1, 1, tzinfo=UTC)
FORGED_RUN = ("started", "materialized", "finished")


def _launch_two_runs(plane: ControlPlane) -> tuple[RunRecord, RunRecord]:
    """A backfill of ``ma`` (runs of two days): one run launched (held), the other still queued."""
    spec = BackfillRequestSpec(asset_keys=(AssetKey("ma"),), partition_ranges=(DAYS,))
    view = plane.launch_backfill(spec, LaunchOptions(location="tests"))
    backfill_id = view.record.id  # type: ignore[union-attr]

    def launched() -> bool:
        statuses = sorted(run.status.value for run in plane.list_runs(backfill_id=backfill_id))
        return statuses == ["queued", "starting"]

    wait_until(launched, "one run launched and one queued")
    # Nothing but the calls under test writes from now on.
    plane.automation_loop.stop()
    plane.daemon.stop()
    runs = {run.status: run for run in plane.list_runs(backfill_id=backfill_id)}
    return runs[RunStatus.STARTING], runs[RunStatus.QUEUED]


def test_forged_claims_and_reports_change_nothing(
    database_url: str,
    control_plane_factory: Callable[..., ControlPlane],
    backfill_code_server: SpawnedCodeServer,
) -> None:
    plane = control_plane_factory(
        {"tests": backfill_code_server.address},
        launcher=HoldingLauncher(),
        database_url=database_url,
        max_concurrent_runs=1,
    )
    launched, queued = _launch_two_runs(plane)
    own = plane.run_credentials.mint(launched.id, launched.attempt)
    queued_own = plane.run_credentials.mint(queued.id, queued.attempt)
    other_secret = RunCredentials(b"another control plane's secret").mint(launched.id, launched.attempt)
    denied = grpc.StatusCode.PERMISSION_DENIED
    with grpc.insecure_channel(plane.address) as channel:
        worker = Worker(plane, channel)

        # Claims: none without this attempt's credential, whoever asks first.
        for credential in (None, "", queued_own, other_secret, own + "x", "Bearer " + own):
            worker.refused(
                lambda c=credential: worker.claim(launched.id, c), denied, "PARTITA_RUN_CREDENTIAL"
            )
        worker.refused(lambda: worker.claim(launched.id, own, attempt=2), denied, launched.id)
        # A queued run never launched: no credential of it was ever handed out; even its own is no
        # claim (it is not being launched) and writes nothing.
        worker.refused(lambda: worker.claim(queued.id, None), denied)
        before = snapshot(plane)
        answer = worker.claim(queued.id, queued_own)
        assert not answer.granted and "queued" in answer.refusal
        assert snapshot(plane) == before

        # Reports, before any claim and after: the forged SUCCESS of a queued and a running run.
        for run in (queued, launched):
            forged = [_event(run.id, "evil", n, kind) for n, kind in enumerate(FORGED_RUN, 1)]
            worker.refused(lambda f=forged: worker.report(f, None), denied, "3 event(s) refused, 0 recorded")
            worker.refused(lambda f=forged: worker.report(f, other_secret), denied)
        forged = [_event(queued.id, "evil", n, kind) for n, kind in enumerate(FORGED_RUN, 1)]
        worker.refused(lambda: worker.report(forged, own), denied, queued.id)

        # The real worker claims its run.
        assert worker.claim(launched.id, own, worker_id="real").granted
        worker.report([_event(launched.id, "real", 1, "started")], own)

        # Its worker id is in the run's logs for anyone to read: not enough without the credential.
        for credential in (None, queued_own, other_secret):
            worker.refused(
                lambda c=credential: worker.report([_event(launched.id, "real", 2, "materialized")], c),
                denied,
            )
        # Assets and partitions outside the run, with the run's own credential.
        invalid = grpc.StatusCode.INVALID_ARGUMENT
        worker.refused(
            lambda: worker.report([_event(launched.id, "real", 2, "materialized", asset="mb")], own),
            invalid,
            "'mb'",
        )
        worker.refused(
            lambda: worker.report([_event(launched.id, "real", 2, "failed", asset="a")], own), invalid, "'a'"
        )
        assert launched.partition_range is not None
        outside = "2024-01-03" if launched.partition_range.start == "2024-01-01" else "2024-01-01"
        worker.refused(
            lambda: worker.report([_event(launched.id, "real", 2, "materialized", key=outside)], own),
            invalid,
            outside,
        )
        widened = DAYS
        worker.refused(
            lambda: worker.report([_event(launched.id, "real", 2, "materialized", range=widened)], own),
            invalid,
            str(widened),
        )
        part = launched.partition_range.start
        worker.refused(
            lambda: worker.report([_event(launched.id, "real", 2, "materialized", key=part)], own),
            invalid,
            "whole range",
        )

        # A batch: the events of the run the credential covers apply, the others are refused one by one.
        with pytest.raises(grpc.RpcError) as mixed:
            worker.report(
                [
                    _event(queued.id, "evil", 1, "materialized"),
                    _event(launched.id, "real", 2, "materialized", range=launched.partition_range),
                ],
                own,
            )
        assert mixed.value.code() is denied
        assert "1 event(s) refused, 1 recorded" in (mixed.value.details() or "")
        partitions = {p.partition_key: (p.run_id, p.status) for p in _partitions(plane)}
        assert {status for run_id, status in partitions.values() if run_id == launched.id} == {
            PartitionStatus.MATERIALIZED
        }
        assert plane.get_run(queued.id).status is RunStatus.QUEUED
        assert all(
            status is not PartitionStatus.MATERIALIZED
            for run_id, status in partitions.values()
            if run_id != launched.id
        )

        # An earlier attempt's credential: the run moved on to attempt 2.
        with plane.database.engine.begin() as connection:
            connection.execute(sa.update(runs_table).where(runs_table.c.id == launched.id).values(attempt=2))
        worker.refused(lambda: worker.report([_event(launched.id, "real", 3, "finished")], own), denied)
        worker.refused(lambda: worker.claim(launched.id, own, attempt=1, worker_id="real"), denied)
        worker.refused(lambda: worker.claim(launched.id, own, attempt=2, worker_id="real"), denied)
        # The new attempt's credential is accepted.
        second = plane.run_credentials.mint(launched.id, 2)
        assert worker.report([_event(launched.id, "real", 3, "finished")], second).accepted_count == 1
        assert plane.get_run(launched.id).status is RunStatus.SUCCESS


def _partitions(plane: ControlPlane) -> list[BackfillPartition]:
    (backfill,) = plane.list_backfills()
    return list(BackfillProgressStore(plane.database).partitions(backfill.record.id))


def test_local_workers_carry_their_credential_in_the_environment_only(
    control_plane_factory: Callable[..., ControlPlane],
    backfill_code_server: SpawnedCodeServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PARTITA_TEST_SLEEP", "3")
    plane = control_plane_factory({"tests": backfill_code_server.address})
    spec = BackfillRequestSpec(
        asset_keys=(AssetKey("slow"),), partition_ranges=(PartitionKeyRange("2024-01-01", "2024-01-01"),)
    )
    view = plane.launch_backfill(spec, LaunchOptions(location="tests"))
    backfill_id = view.record.id  # type: ignore[union-attr]

    def started() -> bool:
        return any(run.status is RunStatus.STARTED for run in plane.list_runs(backfill_id=backfill_id))

    wait_until(started, "the worker claimed its run")
    (run,) = plane.list_runs(backfill_id=backfill_id)
    assert run.launcher_handle is not None
    pid = int(run.launcher_handle.split(":")[0])
    credential = plane.run_credentials.mint(run.id, run.attempt)
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    arguments = process_arguments(pid) or []
    assert "execute-run" in arguments and run.id in arguments
    assert credential.encode() not in cmdline
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    assert f"PARTITA_RUN_CREDENTIAL={credential}".encode() in environ
    final = wait_for_end(plane, backfill_id)
    assert final.record.status.value == "completed_success"
    assert os.environ.get("PARTITA_RUN_CREDENTIAL") is None  # the control plane's own environment has none
