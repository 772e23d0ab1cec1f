"""Timestamps on the wire are UTC instants; in the SDK, aware datetimes."""

from __future__ import annotations

from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp


def timestamp_to_proto(value: datetime) -> Timestamp:
    if value.tzinfo is None:
        raise ValueError(f"Refusing to send naive datetime {value!r}: it has no time zone.")
    message = Timestamp()
    message.FromDatetime(value.astimezone(UTC))
    return message


def timestamp_from_proto(message: Timestamp) -> datetime:
    return message.ToDatetime(tzinfo=UTC)
