"""The caller of the RPC being served: set by the authentication interceptor, read by whatever
needs it (authorization, the audit log, run-setting overrides) without being passed through every
signature.

The interceptor sets it for the duration of each call, in the thread (unary) or task (stream) that
serves it; outside a call it is None.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import IntEnum


class Role(IntEnum):
    """What a caller may do; each role may do all that the roles below it may."""

    VIEWER = 1
    OPERATOR = 2
    ADMIN = 3

    @property
    def label(self) -> str:
        return self.name.lower()


@dataclass(frozen=True, slots=True)
class Identity:
    """A caller as the control plane knows it."""

    #: The token's name, the certificate's subject, or "anonymous" (authentication off).
    name: str
    role: Role
    #: "token", "certificate", "anonymous" (``--insecure-no-auth``) or "local" (in-process).
    kind: str
    #: The code locations it may act on; None for all.
    locations: frozenset[str] | None = None
    #: The peer address of the call ("ipv4:127.0.0.1:5555"), for the audit log.
    peer: str = ""

    def may_act_on(self, location: str) -> bool:
        return self.locations is None or location in self.locations


_current: contextvars.ContextVar[Identity | None] = contextvars.ContextVar("partita_identity", default=None)


def current_identity() -> Identity | None:
    """The caller of the RPC this thread or task is serving; None outside a call."""
    return _current.get()


@contextmanager
def acting_as(identity: Identity | None) -> Iterator[None]:
    """Make ``identity`` the current caller for the block (the interceptor wraps each handler in it)."""
    token = _current.set(identity)
    try:
        yield
    finally:
        _current.reset(token)
