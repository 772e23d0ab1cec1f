"""Every request of the public API is checked here before it reaches the service: bad input is INVALID_ARGUMENT.

Two layers: ``check_message`` walks any message through its descriptor (``code_server.wire.validation``:
control characters, lengths, timestamps, durations, enums, asset keys, by field path), and
``check_request`` adds what one RPC's fields mean: an explicitly set but empty filter is refused rather
than silently matching everything. Both raise ``BadRequest``, so the answer and its message are the same
on SQLite and PostgreSQL, and nothing is written. The run reporter calls ``check_message`` per event.
"""

from __future__ import annotations

from google.protobuf.message import Message

from code_server.wire import validation as wire
from control_plane.api.status import BadRequest
from partita.controlplane.v1 import audit_pb2, backfills_pb2, runs_pb2, sensors_schedules_pb2

#: Request types whose optional fields are filters: set to "" they would match nothing or everything.
_FILTER_FIELDS: dict[str, tuple[str, ...]] = {
    backfills_pb2.ListBackfillsRequest.DESCRIPTOR.full_name: ("location_name",),
    runs_pb2.ListRunsRequest.DESCRIPTOR.full_name: ("backfill_id", "location_name"),
    sensors_schedules_pb2.ListSensorsRequest.DESCRIPTOR.full_name: ("location_name",),
    sensors_schedules_pb2.ListSchedulesRequest.DESCRIPTOR.full_name: ("location_name",),
    audit_pb2.ListAuditEventsRequest.DESCRIPTOR.full_name: (
        "identity_name",
        "rpc",
        "target_kind",
        "target_id",
    ),
}


#: Instants the code server will see in a time zone: they need a day's margin inside protobuf's range.
_LOCAL_INSTANTS = {
    sensors_schedules_pb2.PreviewScheduleRequest.DESCRIPTOR.full_name: "scheduled_execution_time"
}


def check_message(message: Message, path: str = "") -> None:
    """Raise ``BadRequest`` naming the first malformed field of ``message`` (under ``path``, e.g. ``events[3]``)."""
    try:
        wire.check_message(message, path)
    except wire.InvalidField as error:
        raise BadRequest(str(error)) from error


def check_request(request: Message) -> None:
    """Raise ``BadRequest`` for a malformed request of the ``ControlPlane`` service, before any work."""
    check_message(request)
    instant = _LOCAL_INSTANTS.get(request.DESCRIPTOR.full_name)
    if instant is not None and request.HasField(instant):
        try:
            wire.check_local_instant(getattr(request, instant), instant)
        except wire.InvalidField as error:
            raise BadRequest(str(error)) from error
    for name in _FILTER_FIELDS.get(request.DESCRIPTOR.full_name, ()):
        if request.HasField(name) and not getattr(request, name):
            raise BadRequest(
                f"{name}: set but empty, which names nothing; name one, or leave the field unset "
                "to list without this filter."
            )
