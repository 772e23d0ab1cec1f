"""DaemonCursorStore: a daemon's named cursor survives restarts and is overwritten in place."""

from __future__ import annotations

from control_plane.storage import DaemonCursorStore, Database


def test_a_cursor_is_set_overwritten_and_read_back(database: Database) -> None:
    store = DaemonCursorStore(database)
    assert store.get("sensor:new_files") is None
    store.set("sensor:new_files", "file-1.csv")
    store.set("sensor:new_files", "file-2.csv")
    store.set("schedule:daily", "2024-01-01")
    assert store.get("sensor:new_files") == "file-2.csv"
    assert DaemonCursorStore(database).get("schedule:daily") == "2024-01-01"
