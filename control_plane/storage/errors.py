"""Storage errors, translated from the database driver's.

Hierarchy::

    StorageError
    ├── BackfillAlreadyExists    a backfill id (or launch request id) is taken
    ├── RunAlreadyExists         a run id is taken
    ├── RunKeyAlreadyUsed        a run key is taken in its code location (a sensor's dedupe key)
    └── NotFound                 an update names a backfill that does not exist

Constraint violations are raised ``from`` the driver's ``IntegrityError``, which stays in the traceback.
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
