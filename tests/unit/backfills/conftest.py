"""The backfill engine on a real database (SQLite and PostgreSQL), driven tick by tick.

Definitions are served in process (the real SDK graph and wire conversion, no gRPC); run outcomes
go through the real report handler, as a run worker's reports do, and planning is one ``tick``.
"""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from code_server.asset_key import AssetKey
from code_server.client import DefinitionsSnapshot, ServerInfo
from code_server.definitions import Definitions
from code_server.partitions.keys import PartitionKeyRange
from code_server.wire.automation import BackfillRequestSpec
from control_plane.backfills.engine import BackfillEngine
from control_plane.locations import CodeLocations
from control_plane.records import RunRecord, RunStatus
from control_plane.runs.reports import (
    AppliedReports,
    PartitionOutcomeReport,
    RunFinishedReport,
    RunReportHandler,
    RunStartedReport,
)
from control_plane.storage import Database, RunStore
from control_plane.views import BackfillPlanView, LaunchOptions
from launcher.base import WorkerIdentity

POSTGRES_URL_VARIABLE = "PARTITA_TEST_POSTGRES_URL"
NOW = datetime(2025, 1, 1, tzinfo=UTC)
LOCATION = "loc"


class InProcessLocation:
    """Answers ``server_info`` and ``list_definitions`` like a code server, from ``Definitions`` here."""

    def __init__(self, definitions: Definitions) -> None:
        self.definitions = definitions

    def server_info(self, timeout: float | None = None) -> ServerInfo:
        return ServerInfo("server-1", LOCATION, "", "test", "f1", NOW, None, None, None, None)

    def list_definitions(self, timeout: float | None = None) -> DefinitionsSnapshot:
        graph = self.definitions.asset_graph
        return DefinitionsSnapshot(
            fingerprint="f1", assets=tuple(graph.nodes.values()), sensors=(), schedules=()
        )

    def close(self) -> None:
        pass


@dataclass
class Plane:
    """One control plane's planning: an engine over the database, fed by the report handler."""

    database: Database
    definitions: Definitions
    engine: BackfillEngine = field(init=False)
    reports: RunReportHandler = field(init=False)

    def __post_init__(self) -> None:
        location = InProcessLocation(self.definitions)
        locations = CodeLocations(
            {LOCATION: "in-process"},
            client_factory=lambda _name, _address: location,  # type: ignore[arg-type,return-value]
            clock=lambda: NOW,
        )
        locations.refresh()
        self.engine = BackfillEngine(self.database, locations, clock=lambda: NOW, wake=lambda: None)
        self.reports = RunReportHandler(self.database, on_applied=self._noted)

    def _noted(self, applied: AppliedReports) -> None:
        for backfill_id, changes in applied.changes.items():
            self.engine.note_changes(backfill_id, changes)

    def spec(self, assets: str, start: str, end: str) -> BackfillRequestSpec:
        return BackfillRequestSpec(
            asset_keys=tuple(AssetKey.from_user_string(name) for name in assets.split(",")),
            partition_ranges=(PartitionKeyRange(start, end),),
        )

    def launch(self, spec: BackfillRequestSpec) -> str:
        launched = self.engine.launch(spec, LaunchOptions(location=LOCATION))
        assert isinstance(launched, str)
        self.engine.tick()
        return launched

    def dry_run(self, spec: BackfillRequestSpec) -> BackfillPlanView:
        plan = self.engine.launch(spec, LaunchOptions(location=LOCATION, dry_run=True))
        assert isinstance(plan, BackfillPlanView)
        return plan

    def runs(self, backfill_id: str, *statuses: RunStatus) -> list[RunRecord]:
        found = RunStore(self.database).list(
            backfill_id=backfill_id, statuses=list(statuses) or None, limit=100_000
        )
        return sorted(found, key=lambda run: (run.created_at, run.asset_keys, str(run.partition_range)))

    def finish(self, run: RunRecord, *, fail: bool = False, tick: bool = True) -> None:
        """The run is launched and its worker claims it, then reports: started, each asset
        materialized (or failed), finished."""
        worker = WorkerIdentity(f"worker-{run.id}", "test-host", 1, None)
        RunStore(self.database).update_status(run.id, RunStatus.STARTING, only_from=(RunStatus.QUEUED,))
        assert self.reports.claim(run.id, run.attempt, worker, handle=None, now=NOW).granted
        sequence = itertools.count(1)
        reports: list[PartitionOutcomeReport | RunStartedReport | RunFinishedReport] = [
            RunStartedReport(run.id, worker.worker_id, next(sequence), NOW)
        ]
        reports += [
            PartitionOutcomeReport(
                run.id, worker.worker_id, next(sequence), NOW, asset_key,
                materialized=not fail, error="boom" if fail else None,
            )
            for asset_key in run.asset_keys
        ]  # fmt: skip
        reports.append(RunFinishedReport(run.id, worker.worker_id, next(sequence), NOW, success=not fail))
        applied = self.reports.apply(reports)
        assert not applied.rejected, applied.rejected
        if tick:
            self.engine.tick()

    def drain(self, backfill_id: str, *, failing: Collection[tuple[str, str]] = ()) -> None:
        """Finish queued runs one at a time, planning after each, until none is left; a run fails
        when it covers a failing (asset, key)."""
        while queued := self.runs(backfill_id, RunStatus.QUEUED):
            run = queued[0]
            keys = {run.partition_range.start, run.partition_range.end} if run.partition_range else {""}
            fail = any((key.to_user_string(), k) in failing for key in run.asset_keys for k in keys)
            self.finish(run, fail=fail)


PlaneFactory = Callable[[Definitions], Plane]


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
    ]
)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A new database per test: a SQLite file, or a fresh PostgreSQL schema dropped afterwards."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'partita.db'}"
        return
    url = os.environ.get(POSTGRES_URL_VARIABLE)
    if not url:
        if os.environ.get("PARTITA_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"PARTITA_REQUIRE_POSTGRES=1 but {POSTGRES_URL_VARIABLE} is not set.")
        pytest.skip(f"{POSTGRES_URL_VARIABLE} is not set")
    server = sa.create_engine(url, poolclass=sa.NullPool)
    schema = f"test_{uuid.uuid4().hex[:12]}"
    with server.begin() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield server.url.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
            hide_password=False
        )
    finally:
        with server.begin() as connection:
            connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        server.dispose()


@pytest.fixture
def plane(database_url: str) -> Iterator[PlaneFactory]:
    """Make planes over one migrated database; a second plane is a restarted control plane."""
    databases: list[Database] = []

    def make(definitions: Definitions) -> Plane:
        database = Database.open(database_url)
        databases.append(database)
        return Plane(database, definitions)

    yield make
    for database in databases:
        database.dispose()
