"""What a mutating RPC acted on, read from its request (and, for a launch, its response), for the audit log.

Each recorded RPC maps to the kind of thing it changes and the request field naming it; the summary is
a short, bounded description of the change (a launch's assets and partitions, new limits). Nothing
from a token's response is ever read, and no tag value is kept: both can hold secrets.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from google.protobuf.message import Message

from control_plane.audit import MAX_SUMMARY
from control_plane.errors import shortened
from partita.common.v1 import requests_pb2
from partita.controlplane.v1 import backfills_pb2

#: The RPCs of the ControlPlane service that change something, and the kind of thing each changes.
#: Matched by name, so the token RPCs are recorded as soon as the service has them.
MUTATING_RPCS: dict[str, str] = {
    "LaunchBackfill": "backfill",
    "CancelBackfill": "backfill",
    "RetryBackfill": "backfill",
    "PauseBackfill": "backfill",
    "ResumeBackfill": "backfill",
    "UpdateBackfillLimits": "backfill",
    "TerminateRun": "run",
    "StartSensor": "sensor",
    "StopSensor": "sensor",
    "StartSchedule": "schedule",
    "StopSchedule": "schedule",
    "CreateApiToken": "token",
    "RevokeApiToken": "token",
}

#: Request fields that name the target, by kind, first match wins.
_ID_FIELDS: dict[str, tuple[str, ...]] = {
    "backfill": ("backfill_id",),
    "run": ("run_id",),
    "sensor": ("sensor_name",),
    "schedule": ("schedule_name",),
    "token": ("token_id", "token_name", "name"),
}
#: Longest target id kept (ids are checked by the API; this bounds what a refused call can store).
_MAX_ID = 255
_SHOWN_KEYS = 5


@dataclass(frozen=True, slots=True)
class AuditTarget:
    """What one call acted on, as the audit log shows it."""

    kind: str
    id: str | None
    location: str | None
    summary: str


def is_dry_run(rpc: str, request: Message) -> bool:
    """A dry-run launch writes nothing, so it is a read and is not recorded."""
    return (
        rpc == "LaunchBackfill"
        and isinstance(request, backfills_pb2.LaunchBackfillRequest)
        and request.dry_run
    )


def audit_target(rpc: str, request: Message, response: Message | None) -> AuditTarget:
    """The target of ``rpc`` called with ``request`` (``response`` is None when it was refused)."""
    kind = MUTATING_RPCS[rpc]
    target_id = _field(request, _ID_FIELDS[kind])
    if isinstance(response, backfills_pb2.LaunchBackfillResponse) and response.HasField("backfill"):
        target_id = response.backfill.backfill_id
    location = _field(request, ("location_name",))
    return AuditTarget(
        kind=kind,
        id=shortened(target_id, _MAX_ID) if target_id else None,
        location=shortened(location, _MAX_ID) if location else None,
        summary=shortened(_summary(request), MAX_SUMMARY),
    )


def _field(message: Message, names: tuple[str, ...]) -> str | None:
    fields = message.DESCRIPTOR.fields_by_name
    for name in names:
        if name in fields and fields[name].type == fields[name].TYPE_STRING:
            value = getattr(message, name)
            if value:
                return str(value)
    return None


def _summary(request: Message) -> str:
    if isinstance(request, backfills_pb2.LaunchBackfillRequest):
        return _launch_summary(request)
    if isinstance(request, backfills_pb2.UpdateBackfillLimitsRequest):
        parts = []
        if request.HasField("max_concurrent_runs"):
            parts.append(f"max_concurrent_runs={request.max_concurrent_runs}")
        if request.HasField("priority"):
            parts.append(f"priority={request.priority}")
        return " ".join(parts)
    if "role" in request.DESCRIPTOR.fields_by_name:
        # A token request: its role says what it grants; nothing else of it is kept.
        field = request.DESCRIPTOR.fields_by_name["role"]
        value: Any = getattr(request, field.name)
        if field.enum_type is not None and value in field.enum_type.values_by_number:
            value = field.enum_type.values_by_number[value].name
        return f"role={value}"
    return ""


def _launch_summary(request: backfills_pb2.LaunchBackfillRequest) -> str:
    target = request.target
    assets = [("/".join(key.path)) for key in target.asset_selection]
    parts = [f"assets {_listed(assets)}", _partitions(target)]
    if request.tags:
        # Keys only: a tag's value (a run-settings override) may carry credentials.
        parts.append(f"tags {_listed(sorted(request.tags))}")
    if request.request_id:
        parts.append(f"request_id {request.request_id}")
    return "; ".join(part for part in parts if part)


def _partitions(target: requests_pb2.BackfillTarget) -> str:
    kind = target.WhichOneof("partitions")
    if kind == "keys":
        return f"keys {_listed(list(target.keys.keys))}"
    if kind == "ranges":
        return f"ranges {_listed([f'{r.start}..{r.end}' for r in target.ranges.ranges])}"
    if kind == "all_partitions":
        return "all partitions"
    if kind == "partitions_by_asset":
        return f"partitions of {len(target.partitions_by_asset.assets)} assets"
    return ""


def _listed(items: list[str]) -> str:
    shown = ", ".join(items[:_SHOWN_KEYS])
    return shown if len(items) <= _SHOWN_KEYS else f"{shown} (+{len(items) - _SHOWN_KEYS} more)"
