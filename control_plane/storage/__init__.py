"""The control plane's storage: SQLAlchemy Core on SQLite (embedded) or PostgreSQL (production)."""

from control_plane.storage.asset_status import AssetStatusStore
from control_plane.storage.audit import AuditStore
from control_plane.storage.backfill_progress import BackfillProgressStore
from control_plane.storage.backfills import BackfillStore
from control_plane.storage.cursors import DaemonCursorStore
from control_plane.storage.database import Database
from control_plane.storage.errors import (
    BackfillAlreadyExists,
    NotFound,
    RunAlreadyExists,
    RunKeyAlreadyUsed,
    StorageConflict,
    StorageError,
    StorageFault,
    StorageFull,
    StorageReadOnly,
    StorageUnavailable,
)
from control_plane.storage.instigators import InstigatorStore
from control_plane.storage.run_events import RunEventStore
from control_plane.storage.runs import RunStore

__all__ = [
    "AssetStatusStore",
    "AuditStore",
    "BackfillAlreadyExists",
    "BackfillProgressStore",
    "BackfillStore",
    "DaemonCursorStore",
    "Database",
    "InstigatorStore",
    "NotFound",
    "RunAlreadyExists",
    "RunEventStore",
    "RunKeyAlreadyUsed",
    "RunStore",
    "StorageConflict",
    "StorageError",
    "StorageFault",
    "StorageFull",
    "StorageReadOnly",
    "StorageUnavailable",
]
