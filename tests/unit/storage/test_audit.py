"""AuditStore: one row per recorded call, newest-first pages with filters, and bulk pruning by age."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from control_plane.audit import AuditEvent, AuditFilter
from control_plane.records import PageCursor
from control_plane.storage import AuditStore, Database

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def _event(event_id: str, minutes: int = 0, **fields: object) -> AuditEvent:
    values: dict[str, object] = {
        "identity_name": "alice",
        "identity_kind": "token",
        "role": "operator",
        "peer": "ipv4:127.0.0.1:5000",
        "rpc": "CancelBackfill",
        "target_kind": "backfill",
        "target_id": "bf1",
        "location": None,
        "summary": "",
        "status": "OK",
        "error": None,
    }
    values.update(fields)
    return AuditEvent(id=event_id, at=T0 + timedelta(minutes=minutes), **values)  # type: ignore[arg-type]


def test_a_recorded_event_comes_back_whole(database: Database) -> None:
    store = AuditStore(database)
    event = _event(
        "e1",
        rpc="StartSensor",
        target_kind="sensor",
        target_id="my_sensor",
        location="loc",
        summary="x" * 500,
        status="NOT_FOUND",
        error="No sensor named 'my_sensor'",
    )
    store.record(event)
    assert store.list() == [event]


def test_events_list_newest_first_and_page_with_a_cursor(database: Database) -> None:
    store = AuditStore(database)
    # Two events share a time: the cursor's id keeps them apart.
    for event_id, minutes in (("a", 0), ("b", 1), ("c", 1), ("d", 2)):
        store.record(_event(event_id, minutes))
    assert [e.id for e in store.list()] == ["d", "c", "b", "a"]
    first = store.list(limit=2)
    assert [e.id for e in first] == ["d", "c"]
    rest = store.list(limit=2, before=PageCursor(first[-1].at, first[-1].id))
    assert [e.id for e in rest] == ["b", "a"]


def test_filters_match_identity_rpc_and_target(database: Database) -> None:
    store = AuditStore(database)
    store.record(_event("1", 0))
    store.record(_event("2", 1, identity_name="bob"))
    store.record(_event("3", 2, rpc="TerminateRun", target_kind="run", target_id="r1"))
    store.record(_event("4", 3, target_id="bf2"))

    def ids(where: AuditFilter) -> list[str]:
        return [e.id for e in store.list(where=where)]

    assert ids(AuditFilter(identity_name="bob")) == ["2"]
    assert ids(AuditFilter(rpc="TerminateRun")) == ["3"]
    assert ids(AuditFilter(target_kind="backfill", target_id="bf1")) == ["2", "1"]
    assert ids(AuditFilter(target_kind="backfill")) == ["4", "2", "1"]
    assert ids(AuditFilter(identity_name="alice", rpc="CancelBackfill")) == ["4", "1"]
    assert ids(AuditFilter(identity_name="nobody")) == []


def test_prune_deletes_only_events_older_than_the_cutoff(database: Database) -> None:
    store = AuditStore(database)
    for index in range(5):
        store.record(_event(str(index), minutes=index * 60))
    assert store.prune(T0 + timedelta(hours=2)) == 2
    assert [e.id for e in store.list()] == ["4", "3", "2"]
    assert store.prune(T0) == 0
    assert len(store.list()) == 3
