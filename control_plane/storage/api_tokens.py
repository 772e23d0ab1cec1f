"""API tokens: created with a secret shown once, stored only as the secret's SHA-256, looked up by id.

A token reads ``pt_<id>_<secret>``. The id is public and indexes the row; the secret is 32 random
bytes, so a plain SHA-256 of it is enough (there is nothing to brute-force as with a password) and is
compared in constant time with ``hmac.compare_digest``.
"""

from __future__ import annotations

import builtins
import hashlib
import hmac
import json
import secrets
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from control_plane.auth.identity import Role
from control_plane.storage.database import Database, utc_now
from control_plane.storage.errors import NotFound, StorageError
from control_plane.storage.schema import api_tokens

_T = api_tokens
TOKEN_PREFIX = "pt_"
_ID_BYTES = 8
_SECRET_BYTES = 32


class ApiTokenExists(StorageError):
    """A token of that name exists already (revoked or not): names identify tokens for good."""


class ApiTokenNotFound(NotFound):
    """No token of that name."""


@dataclass(frozen=True, slots=True)
class ApiTokenRecord:
    """A token as stored: everything but its secret."""

    id: str
    name: str
    role: Role
    #: The code locations it may act on; None for all.
    locations: frozenset[str] | None
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None
    secret_sha256: str

    def usable_at(self, now: datetime) -> bool:
        return self.revoked_at is None and (self.expires_at is None or now < self.expires_at)


@dataclass(frozen=True, slots=True)
class CreatedApiToken:
    """A new token and its secret: the only time the secret exists outside the caller's hands."""

    record: ApiTokenRecord
    token: str


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def split_token(token: str) -> tuple[str, str] | None:
    """``pt_<id>_<secret>`` -> (id, secret); None for anything not shaped so."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    token_id, sep, secret = token[len(TOKEN_PREFIX) :].partition("_")
    if not sep or not token_id or not secret or len(token_id) > 32:
        return None
    return token_id, secret


def secret_matches(record: ApiTokenRecord, secret: str) -> bool:
    return hmac.compare_digest(record.secret_sha256, hash_secret(secret))


class ApiTokenStore:
    """Creates, lists, revokes and finds API tokens."""

    def __init__(self, database: Database) -> None:
        self._db = database

    def create(
        self,
        name: str,
        role: Role,
        *,
        locations: Collection[str] | None = None,
        expires_at: datetime | None = None,
        now: datetime | None = None,
    ) -> CreatedApiToken:
        token_id = secrets.token_hex(_ID_BYTES)
        secret = secrets.token_urlsafe(_SECRET_BYTES)
        created_at = now or utc_now()
        scoped = frozenset(locations) if locations else None
        secret_sha256 = hash_secret(secret)
        values: dict[str, object] = {
            "id": token_id,
            "name": name,
            "role": role.label,
            "locations": json.dumps(sorted(scoped)) if scoped is not None else None,
            "secret_sha256": secret_sha256,
            "created_at": created_at,
            "expires_at": expires_at,
        }
        try:
            with self._db.transaction() as connection:
                connection.execute(insert(_T).values(**values))
        except IntegrityError as error:
            raise ApiTokenExists(
                f"An API token named {name!r} exists already; pick another name "
                "(names are never reused, even after `partita tokens revoke`)."
            ) from error
        record = ApiTokenRecord(
            id=token_id,
            name=name,
            role=role,
            locations=scoped,
            created_at=created_at,
            expires_at=expires_at,
            revoked_at=None,
            last_used_at=None,
            secret_sha256=secret_sha256,
        )
        return CreatedApiToken(record=record, token=f"{TOKEN_PREFIX}{token_id}_{secret}")

    def get(self, token_id: str) -> ApiTokenRecord | None:
        with self._db.read() as connection:
            row = connection.execute(select(_T).where(_T.c.id == token_id)).mappings().first()
        return _record(row) if row is not None else None

    def list(self) -> builtins.list[ApiTokenRecord]:
        with self._db.read() as connection:
            rows = connection.execute(select(_T).order_by(_T.c.created_at, _T.c.name)).mappings().all()
        return [_record(row) for row in rows]

    def any_exists(self) -> bool:
        with self._db.read() as connection:
            return connection.execute(select(_T.c.id).limit(1)).first() is not None

    def revoke(self, name: str, *, now: datetime | None = None) -> ApiTokenRecord:
        """Revoke the token named ``name`` (revoking twice keeps the first time)."""
        with self._db.transaction() as connection:
            connection.execute(
                update(_T)
                .where(_T.c.name == name, _T.c.revoked_at.is_(None))
                .values(revoked_at=now or utc_now())
            )
            row = connection.execute(select(_T).where(_T.c.name == name)).mappings().first()
        if row is None:
            raise ApiTokenNotFound(f"No API token named {name!r}; list them with `partita tokens list`.")
        return _record(row)

    def mark_used(self, token_id: str, now: datetime) -> None:
        with self._db.transaction() as connection:
            connection.execute(update(_T).where(_T.c.id == token_id).values(last_used_at=now))


def _record(row: object) -> ApiTokenRecord:
    values = dict(row)  # type: ignore[call-overload]
    locations = values["locations"]
    return ApiTokenRecord(
        id=values["id"],
        name=values["name"],
        role=Role[values["role"].upper()],
        locations=frozenset(json.loads(locations)) if locations is not None else None,
        created_at=values["created_at"],
        expires_at=values["expires_at"],
        revoked_at=values["revoked_at"],
        last_used_at=values["last_used_at"],
        secret_sha256=values["secret_sha256"],
    )
