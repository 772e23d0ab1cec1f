"""Run credentials: what lets a run worker report on its own run attempt, and on nothing else.

A credential is an HMAC-SHA256 of (run id, attempt) under a control-plane secret, minted when the
attempt is launched and handed to its worker with its other settings (``PARTITA_RUN_CREDENTIAL``).
``RunReporter`` recomputes it for the run's *current* attempt and compares in constant time, so a
caller without it, with another run's, or with an earlier attempt's is refused and changes nothing.
Nothing is stored per run: the secret alone verifies every credential.

The secret comes from a file (``--run-secret-file``, ``PARTITA_RUN_SECRET_FILE``), which every
control plane of one database must share, or by default is generated once and kept in the database
(``control_plane_secrets``). Neither the secret nor a credential is ever logged.

A credential starts with ``partita-run.``: it is not an API token and the ControlPlane service never
accepts it (``is_run_credential`` lets the token check refuse it with a clear message).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from pathlib import Path

from code_server.run_worker.grpc_sink import RUN_CREDENTIAL_METADATA_KEY
from control_plane.storage.database import Database
from control_plane.storage.secrets import SecretStore
from launcher.base import RUN_CREDENTIAL_VARIABLE

#: The gRPC metadata key a worker sends its credential under (the worker's side defines it).
METADATA_KEY = RUN_CREDENTIAL_METADATA_KEY
#: The environment variable a launcher hands the credential to the worker in.
ENVIRONMENT_VARIABLE = RUN_CREDENTIAL_VARIABLE
#: Name of the generated secret in ``control_plane_secrets``.
SECRET_NAME = "run_credentials"
#: Shortest secret accepted from a file: 128 bits.
MIN_SECRET_BYTES = 16
_PREFIX = "partita-run."
_CONTEXT = b"partita run credential v1"

REFUSAL = (
    "the run credential is missing or is not this run attempt's; "
    f"workers get it from the launcher as {ENVIRONMENT_VARIABLE}"
)


class RunCredentialRefused(Exception):
    """A claim or report whose credential does not cover its run attempt (PERMISSION_DENIED)."""

    def __init__(self, run_id: str) -> None:
        super().__init__(f"Run {run_id}: {REFUSAL}.")


class RunSecretUnusable(Exception):
    """The run secret file cannot be read or is too short; the message names the file."""


class RunCredentials:
    """Mints and verifies run credentials under one secret."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) < MIN_SECRET_BYTES:
            raise RunSecretUnusable(f"The run secret must be at least {MIN_SECRET_BYTES} bytes.")
        self._secret = secret

    def __repr__(self) -> str:
        return "RunCredentials(<secret>)"

    @classmethod
    def load(cls, database: Database, *, secret_file: str | Path | None = None) -> RunCredentials:
        """Credentials under the secret in ``secret_file``, else under the database's (made once)."""
        if secret_file is not None:
            return cls(_read_secret_file(Path(secret_file)))
        generated = SecretStore(database).get_or_create(SECRET_NAME, lambda: secrets.token_hex(32))
        return cls(bytes.fromhex(generated))

    def mint(self, run_id: str, attempt: int) -> str:
        """The credential of ``run_id``'s ``attempt``."""
        mac = hmac.new(self._secret, _message(run_id, attempt), hashlib.sha256).digest()
        return _PREFIX + base64.urlsafe_b64encode(mac).rstrip(b"=").decode("ascii")

    def covers(self, credential: str | None, run_id: str, attempt: int) -> bool:
        """Whether ``credential`` is the one minted for ``run_id``'s ``attempt`` (constant time)."""
        if not credential:
            return False
        return hmac.compare_digest(credential.encode("utf-8", "replace"), self.mint(run_id, attempt).encode())

    def check(self, credential: str | None, run_id: str, attempt: int) -> None:
        """Raise ``RunCredentialRefused`` unless ``credential`` covers the run attempt."""
        if not self.covers(credential, run_id, attempt):
            raise RunCredentialRefused(run_id)


def is_run_credential(text: str) -> bool:
    """Whether ``text`` looks like a run credential (which only ``RunReporter`` accepts)."""
    return text.startswith(_PREFIX)


def _message(run_id: str, attempt: int) -> bytes:
    # Separated by NUL, which a run id cannot contain: no two (run, attempt) pairs share a message.
    return b"\x00".join((_CONTEXT, run_id.encode("utf-8"), str(attempt).encode("ascii")))


def _read_secret_file(path: Path) -> bytes:
    try:
        secret = path.read_bytes().strip()
    except OSError as error:
        raise RunSecretUnusable(
            f"Cannot read the run secret file {path}: {error.strerror or error}. "
            "Give a readable file (--run-secret-file, PARTITA_RUN_SECRET_FILE) or neither, to keep "
            "a generated secret in the database."
        ) from error
    if len(secret) < MIN_SECRET_BYTES:
        raise RunSecretUnusable(
            f"The run secret file {path} holds {len(secret)} bytes; it needs at least {MIN_SECRET_BYTES} "
            "(e.g. `openssl rand -hex 32 > FILE`)."
        )
    return secret
