"""Credentials of a call -> the ``Identity`` it acts as: an API token, a client certificate, or nobody.

Tokens are read through a short cache (``cache_seconds``) so a call costs a hash and a dictionary
look-up, not a database read; a revocation made by this control plane takes effect at once, one
made by another replica within ``cache_seconds``. ``last_used_at`` is written at most once a minute.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from control_plane.auth.identity import Identity, Role
from control_plane.storage.api_tokens import ApiTokenRecord, ApiTokenStore, secret_matches, split_token
from control_plane.storage.errors import StorageError

#: The metadata key of ``authorization: Bearer <token>`` (gRPC keys are lower case).
AUTHORIZATION_METADATA_KEY = "authorization"
#: The auth_context property a verified client certificate's common name is under.
CERTIFICATE_NAME_PROPERTY = "x509_common_name"
HOW_TO_GET_A_TOKEN = (
    "create one with `partita tokens create NAME --role viewer|operator|admin` as an admin "
    "(the first with `partita tokens create-admin NAME --db URL`), then pass --token or set PARTITA_TOKEN"
)
_LAST_USED_EVERY = timedelta(minutes=1)

logger = logging.getLogger("partita.control_plane.auth")


class AuthenticationFailed(Exception):
    """No usable credential: the call is UNAUTHENTICATED; the message says why and how to get one."""


class CertificateWithoutRole(Exception):
    """A verified certificate no ``--tls-client-role`` maps to a role: the call is PERMISSION_DENIED."""


class Authenticator:
    """Finds who a call is from. Thread-safe."""

    def __init__(
        self,
        tokens: ApiTokenStore | None,
        *,
        insecure_no_auth: bool = False,
        certificate_roles: Mapping[str, Role] | None = None,
        cache_seconds: float = 2.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._tokens = tokens
        self.insecure_no_auth = insecure_no_auth
        self._certificate_roles = dict(certificate_roles or {})
        self._cache_seconds = cache_seconds
        self._clock = clock
        self._cache: dict[str, tuple[float, ApiTokenRecord | None]] = {}
        self._lock = threading.Lock()

    def identify(
        self,
        metadata: Sequence[tuple[str, str | bytes]] | None,
        auth_context: Mapping[str, Sequence[bytes]] | None = None,
        peer: str = "",
    ) -> Identity:
        """The caller; raises AuthenticationFailed or CertificateWithoutRole."""
        if self.insecure_no_auth:
            return Identity("anonymous", Role.ADMIN, "anonymous", peer=peer)
        bearer = _bearer_token(metadata)
        if bearer is not None:
            return self._token_identity(bearer, peer)
        names = (auth_context or {}).get(CERTIFICATE_NAME_PROPERTY)
        if names:
            return self._certificate_identity(names[0].decode(errors="replace"), peer)
        raise AuthenticationFailed(f"No credential was sent: {HOW_TO_GET_A_TOKEN}.")

    def forget(self, token_id: str) -> None:
        """Drop a token from the cache (after this control plane revoked it)."""
        with self._lock:
            self._cache.pop(token_id, None)

    def _token_identity(self, token: str, peer: str) -> Identity:
        parts = split_token(token)
        record = self._cached(parts[0]) if parts is not None else None
        if parts is None or record is None or not secret_matches(record, parts[1]):
            raise AuthenticationFailed(
                f"The API token is not valid (unknown or mistyped): {HOW_TO_GET_A_TOKEN}."
            )
        now = self._clock()
        if record.revoked_at is not None:
            raise AuthenticationFailed(
                f"The API token {record.name!r} was revoked at {record.revoked_at:%Y-%m-%d %H:%M:%S} UTC: "
                f"{HOW_TO_GET_A_TOKEN}."
            )
        if record.expires_at is not None and now >= record.expires_at:
            raise AuthenticationFailed(
                f"The API token {record.name!r} expired at {record.expires_at:%Y-%m-%d %H:%M:%S} UTC: "
                f"{HOW_TO_GET_A_TOKEN}."
            )
        self._note_use(record, now)
        return Identity(record.name, record.role, "token", record.locations, peer)

    def _certificate_identity(self, common_name: str, peer: str) -> Identity:
        role = self._certificate_roles.get(common_name)
        if role is None:
            raise CertificateWithoutRole(
                f"The client certificate CN={common_name[:200]!r} has no role: start the control plane "
                f"with --tls-client-role {common_name[:200]}=viewer|operator|admin, or use an API token."
            )
        return Identity(common_name, role, "certificate", None, peer)

    def _cached(self, token_id: str) -> ApiTokenRecord | None:
        if self._tokens is None:
            return None
        now = time.monotonic()
        hit = self._cache.get(token_id)
        if hit is not None and now - hit[0] < self._cache_seconds:
            return hit[1]
        record = self._tokens.get(token_id)
        with self._lock:
            if len(self._cache) > 10_000:  # unknown ids must not grow it without bound
                self._cache.clear()
            self._cache[token_id] = (now, record)
        return record

    def _note_use(self, record: ApiTokenRecord, now: datetime) -> None:
        if self._tokens is None or (record.last_used_at and now - record.last_used_at < _LAST_USED_EVERY):
            return
        with self._lock:
            hit = self._cache.get(record.id)
            if hit is None or hit[1] is not record:
                return  # another thread is noting it, or the cache moved on
            updated = replace(record, last_used_at=now)
            self._cache[record.id] = (hit[0], updated)
        try:
            self._tokens.mark_used(record.id, now)
        except StorageError as error:  # bookkeeping: a read-only or busy database fails no call
            logger.debug("Could not note the use of API token %r: %s", record.name, error)


def _bearer_token(metadata: Sequence[tuple[str, str | bytes]] | None) -> str | None:
    for key, value in metadata or ():
        if key == AUTHORIZATION_METADATA_KEY:
            text = value.decode(errors="replace") if isinstance(value, bytes) else value
            scheme, _, token = text.strip().partition(" ")
            if scheme.lower() == "bearer":
                return token.strip()
            return text.strip()
    return None
