"""Storage errors, translated from the database driver's.

Hierarchy::

    StorageError
    ├── BackfillAlreadyExists    a backfill id (or launch request id) is taken
    ├── RunAlreadyExists         a run id is taken
    ├── RunKeyAlreadyUsed        a run key is taken in its code location (a sensor's dedupe key)
    ├── NotFound                 an update names a backfill that does not exist
    └── StorageFault             the database could not do the work; the request was fine
        ├── StorageUnavailable   connection lost or refused, server shutting down, SQLite locked or busy
        ├── StorageConflict      serialization failure, deadlock, lock not available: retry the call
        ├── StorageFull          the disk (or SQLite file's page limit) is full
        └── StorageReadOnly      the database (file or server) accepts no writes

Constraint violations are raised ``from`` the driver's ``IntegrityError``, which stays in the traceback.
Faults are raised by ``control_plane.storage.faults``, the one place that reads driver error codes,
``from`` the driver's error; each fault's transaction was rolled back, so it wrote nothing.
"""

from __future__ import annotations


class StorageError(Exception):
    """Root of the storage layer's errors."""


class BackfillAlreadyExists(StorageError):
    pass


class RunAlreadyExists(StorageError):
    pass


class RunKeyAlreadyUsed(StorageError):
    pass


class NotFound(StorageError):
    pass


class StorageFault(StorageError):
    """The database failed the call for a reason of its own, not of the request's.

    Callers that loop (the daemons, output copying) wait these out instead of failing what they work
    on; the API answers them with a status that tells the client whether retrying can help.
    """


class StorageUnavailable(StorageFault):
    """The database cannot be reached or is too busy now; the same call can succeed on retry."""


class StorageConflict(StorageFault):
    """The transaction lost a race with another (serialization failure, deadlock); retry the call."""


class StorageFull(StorageFault):
    """The database has no room to write; reads still work, writes do once space is freed."""


class StorageReadOnly(StorageFault):
    """The database accepts no writes (a read-only file, mount or server); reads still work."""
