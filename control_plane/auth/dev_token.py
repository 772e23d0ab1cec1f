"""``partita dev``'s admin token: made at start, written where the CLI on this machine finds it.

As Jupyter does: a fresh token per session in a file only the user can read (mode 0600, in a 0700
directory), keyed by the address served, so ``partita backfill ...`` next to it needs no flag. The
previous sessions' dev tokens of the same database are revoked, so they do not pile up usable.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

from control_plane.auth.identity import Role
from control_plane.client_auth import dev_token_file
from control_plane.storage.api_tokens import ApiTokenStore

DEV_TOKEN_PREFIX = "partita-dev-"


def issue_dev_token(store: ApiTokenStore, address: str, *, revoke_earlier: bool = True) -> Path:
    """Revoke earlier dev tokens, create an admin one, write it for ``address``; returns the file."""
    for record in store.list() if revoke_earlier else ():
        if record.name.startswith(DEV_TOKEN_PREFIX) and record.revoked_at is None:
            store.revoke(record.name)
    created = store.create(f"{DEV_TOKEN_PREFIX}{secrets.token_hex(4)}", Role.ADMIN)
    path = dev_token_file(address)
    write_private_file(path, created.token + "\n")
    return path


def write_private_file(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` readable by this user only (never briefly by others)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with contextlib.suppress(PermissionError):
        os.chmod(path.parent, 0o700)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    descriptor = os.open(temporary, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(text)
    os.replace(temporary, path)


def remove_dev_token(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
