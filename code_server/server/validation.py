"""The code server's requests are checked before user code or a partitions definition sees them.

The generic walk (``code_server.wire.validation``) refuses control characters, unknown enums and
out-of-range timestamps; this module adds the code server's own rules (a required asset key, a bounded
evaluation timeout) and turns any problem into INVALID_ARGUMENT naming the field.
"""

from __future__ import annotations

from datetime import timedelta
from typing import NoReturn

import grpc
from google.protobuf.message import Message

from code_server.wire.validation import InvalidField, check_local_instant, check_message
from partita.codeserver.v1 import code_server_pb2 as pb

#: The longest evaluation a caller may ask for; a sensor that needs more should keep a cursor instead.
MAX_EVALUATION_TIMEOUT = timedelta(hours=1)


def check_request(request: Message, context: grpc.ServicerContext) -> None:
    """End the RPC with INVALID_ARGUMENT if ``request`` is malformed; return if it is fine."""
    try:
        check_message(request)
        _check_specifics(request)
    except InvalidField as error:
        _invalid(context, str(error))


#: Instants that user code or a partitions definition sees in a time zone, by request type.
_LOCAL_INSTANTS = {
    pb.GetPartitionKeysRequest: "as_of",
    pb.EvaluateSensorRequest: "last_tick_completion_time",
    pb.EvaluateScheduleRequest: "scheduled_execution_time",
}


def _check_specifics(request: Message) -> None:
    instant = _LOCAL_INSTANTS.get(type(request))
    if instant is not None and request.HasField(instant):
        check_local_instant(getattr(request, instant), instant)
    if isinstance(request, pb.GetPartitionKeysRequest) and not request.HasField("asset_key"):
        raise InvalidField("asset_key", "is required: name the asset whose partition keys to list.")
    if isinstance(request, pb.EvaluateSensorRequest | pb.EvaluateScheduleRequest) and request.HasField(
        "timeout"
    ):
        timeout = request.timeout.ToTimedelta()
        if not timedelta(0) <= timeout <= MAX_EVALUATION_TIMEOUT:
            raise InvalidField(
                "timeout",
                f"{timeout.total_seconds():g}s is outside 0..{MAX_EVALUATION_TIMEOUT.total_seconds():g}s "
                "(0 or unset: the default); ask for at most an hour.",
            )


def _invalid(context: grpc.ServicerContext, message: str) -> NoReturn:
    context.abort(grpc.StatusCode.INVALID_ARGUMENT, message)
    raise AssertionError("unreachable: context.abort raises")
