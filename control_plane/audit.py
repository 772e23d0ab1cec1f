"""The audit log's record: who changed what, when, from where, and how it ended.

Every mutating call of the control plane's API leaves one (``control_plane.auth.audit_interceptor``
writes them, ``control_plane.storage.audit`` keeps them); an operator reads them with
``partita audit list`` to answer "who cancelled this backfill?" after the fact.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

#: Who a call is attributed to when no authentication ran (no interceptor set an identity).
UNKNOWN_IDENTITY = "unknown"
#: Longest request summary kept: enough for an asset selection and a range, never a whole request.
MAX_SUMMARY = 500
#: Longest error message kept; the status code says the rest.
MAX_ERROR = 300


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One mutating call as the control plane answered it."""

    id: str
    at: datetime
    #: The caller's name (token name, certificate subject), or ``UNKNOWN_IDENTITY``.
    identity_name: str
    #: "token", "certificate", "anonymous", "local", or ``UNKNOWN_IDENTITY``.
    identity_kind: str
    #: The caller's role ("viewer", "operator", "admin"); "" when unknown.
    role: str
    #: Where the call came from ("ipv4:10.0.0.5:51234").
    peer: str
    #: The RPC's method name ("CancelBackfill").
    rpc: str
    #: What it acted on: "backfill", "run", "sensor", "schedule", "location" or "token"; None if nothing.
    target_kind: str | None
    target_id: str | None
    #: The code location of a sensor or schedule (or of a launched backfill).
    location: str | None
    #: A short, bounded description of the request (an asset selection and range, new limits); never secrets.
    summary: str
    #: The gRPC status code's name: "OK", "NOT_FOUND", ...
    status: str
    #: The status message of a refused or failed call, shortened to ``MAX_ERROR`` characters.
    error: str | None = None


@dataclass(frozen=True, slots=True)
class AuditFilter:
    """Which events a listing keeps: each field set must match exactly."""

    identity_name: str | None = None
    rpc: str | None = None
    target_kind: str | None = None
    target_id: str | None = None


#: The filter that keeps every event.
EVERY_EVENT = AuditFilter()
