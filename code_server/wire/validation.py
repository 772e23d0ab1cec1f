"""Checks every field of a request message before any of it is used: the one edge both servers share.

A storage layer or a ``datetime`` is not the place to find out that a tag holds a NUL character
(PostgreSQL refuses it, SQLite stores it), that a timestamp lies before year 1 or that an enum number
is unknown: each becomes a different exception deep inside, so a caller's typo answered INTERNAL.
``check_message`` walks a message through its protobuf descriptor instead, every string, enum,
``Timestamp`` and ``Duration``, recursively, and raises ``InvalidField`` naming the first bad field by
its path (``target.ranges.ranges[0].start``, ``tags['team']``) and what to do about it. It knows no
RPC: the control plane and the code server add their per-RPC rules on top.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from code_server.asset_key import AssetKey
from code_server.errors import DefinitionError

#: ``google.protobuf.Timestamp``'s documented range: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999999Z.
MIN_TIMESTAMP_SECONDS = -62_135_596_800
MAX_TIMESTAMP_SECONDS = 253_402_300_799
#: ``google.protobuf.Duration``'s documented range: about +-10,000 years.
MAX_DURATION_SECONDS = 315_576_000_000
MAX_NANOS = 999_999_999
#: A day inside that range: an instant that user code sees in a time zone must exist in every zone.
_DAY = 86_400


@dataclass(frozen=True)
class TextRule:
    """How long a string field may be, and which control characters it may hold."""

    max_length: int
    allowed_controls: frozenset[str] = frozenset()


#: Names, ids, keys, tokens, titles: one line, no control character.
NAME = TextRule(1024)
#: A tag's value (an owner, a ticket, a short JSON document).
TAG_VALUE = TextRule(4096)
#: Free text written by people: line breaks and tabs are fine.
FREE_TEXT = TextRule(65_536, frozenset("\t\n\r"))
#: A sensor's cursor is user data (often JSON) the control plane hands back to the sensor.
CURSOR = TextRule(1_048_576, frozenset("\t\n\r"))

#: Items of one repeated field or map: far more than any request needs, far fewer than would stall a server.
MAX_ITEMS = 100_000

#: C0, DEL and C1 (Unicode category Cc).
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
#: What user code raised, as it raised it: tracebacks are long and may quote anything (colour codes,
#: bytes); only NUL, which PostgreSQL cannot store in text, is refused.
USER_TEXT = TextRule(1_048_576, frozenset(chr(c) for c in (*range(0x01, 0x20), *range(0x7F, 0xA0))))

_RULE_BY_FIELD_NAME = {"description": FREE_TEXT, "cursor": CURSOR}
_RULE_BY_FIELD = {
    "partita.common.v1.UserCodeError.message": USER_TEXT,
    "partita.common.v1.UserCodeError.traceback": USER_TEXT,
    "partita.common.v1.StackFrame.line": USER_TEXT,
    "partita.common.v1.StackFrame.filename": TAG_VALUE,
}
_SHOWN_KEY_LENGTH = 40


class InvalidField(ValueError):
    """A field of a request is malformed; the message names it by path and says what to do."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


def check_message(message: Message, path: str = "") -> None:
    """Raise ``InvalidField`` for the first malformed field of ``message`` (fields under ``path``).

    Unset fields are not checked: which fields are required is up to each RPC.
    """
    for field, value in message.ListFields():
        field_path = f"{path}.{field.name}" if path else field.name
        if field.is_repeated and len(value) > MAX_ITEMS:
            raise InvalidField(
                field_path, f"{len(value):,} items, more than the {MAX_ITEMS:,} allowed; split the request."
            )
        if _is_map(field):
            _check_map(field, value, field_path)
        elif field.is_repeated:
            for index, item in enumerate(value):
                _check_value(field, item, f"{field_path}[{index}]")
        else:
            _check_value(field, value, field_path)


def check_text(value: str, path: str, rule: TextRule = NAME) -> None:
    """Raise ``InvalidField`` if ``value`` is longer than ``rule`` allows or holds a control character."""
    if len(value) > rule.max_length:
        raise InvalidField(
            path, f"{len(value):,} characters, more than the {rule.max_length:,} allowed; shorten it."
        )
    for match in _CONTROL.finditer(value):
        character = match.group()
        if character not in rule.allowed_controls:
            raise InvalidField(path, f"contains a control character (U+{ord(character):04X}); remove it.")


def check_asset_key(path_parts: list[str], path: str) -> None:
    """Raise ``InvalidField`` unless ``path_parts`` make an ``AssetKey`` (non-empty, letters, digits, _-.)."""
    if not path_parts:
        raise InvalidField(path, "an asset key needs at least one name part.")
    for index, part in enumerate(path_parts):
        check_text(part, f"{path}.path[{index}]")
    try:
        AssetKey(path_parts)
    except DefinitionError as error:
        raise InvalidField(path, str(error)) from error


def check_local_instant(message: Message, path: str) -> None:
    """Raise ``InvalidField`` unless a ``Timestamp`` is at least a day inside protobuf's range.

    0001-01-01T00:00Z is valid on the wire but is year 0 in Chicago, which ``datetime`` cannot hold:
    instants that are converted to a time zone (a schedule's tick, a sensor's last tick, ``as_of``)
    need the margin.
    """
    _check_timestamp(message, path)
    seconds = message.seconds  # type: ignore[attr-defined]
    if not MIN_TIMESTAMP_SECONDS + _DAY <= seconds <= MAX_TIMESTAMP_SECONDS - _DAY:
        raise InvalidField(
            path,
            f"seconds={seconds} is within a day of the ends of 0001-01-01..9999-12-31, where a time zone "
            "can push it out of the calendar; send an instant between 0001-01-02 and 9999-12-30.",
        )


def shown(key: str) -> str:
    """A map key as it appears in a field path, cut short so that a huge key cannot flood a message."""
    if len(key) > _SHOWN_KEY_LENGTH:
        return repr(key[:_SHOWN_KEY_LENGTH]) + "..."
    return repr(key)


def _is_map(field: FieldDescriptor) -> bool:
    entry = field.message_type
    return field.is_repeated and entry is not None and entry.GetOptions().map_entry


def _check_map(field: FieldDescriptor, entries: object, path: str) -> None:
    entry_type = field.message_type
    assert entry_type is not None
    key_field = entry_type.fields_by_name["key"]
    value_field = entry_type.fields_by_name["value"]
    for key, value in entries.items():  # type: ignore[attr-defined]
        if key_field.type == FieldDescriptor.TYPE_STRING:
            if not key:
                raise InvalidField(path, "has an empty key; every key needs a name.")
            check_text(key, f"{path} key {shown(key)}")
        entry_path = f"{path}[{shown(key) if isinstance(key, str) else key}]"
        rule = TAG_VALUE if value_field.type == FieldDescriptor.TYPE_STRING else NAME
        _check_value(value_field, value, entry_path, rule)


def _check_value(field: FieldDescriptor, value: object, path: str, rule: TextRule | None = None) -> None:
    if field.type == FieldDescriptor.TYPE_STRING:
        assert isinstance(value, str)
        check_text(value, path, rule or _rule(field))
    elif field.type == FieldDescriptor.TYPE_ENUM:
        enum = field.enum_type
        assert enum is not None
        if value not in enum.values_by_number:
            known = ", ".join(v.name for v in enum.values if v.number != 0)
            raise InvalidField(path, f"unknown {enum.name} value {value}; use one of {known}.")
    elif field.type == FieldDescriptor.TYPE_MESSAGE:
        assert isinstance(value, Message)
        _check_submessage(value, path)


def _rule(field: FieldDescriptor) -> TextRule:
    return _RULE_BY_FIELD.get(field.full_name) or _RULE_BY_FIELD_NAME.get(field.name, NAME)


def _check_submessage(message: Message, path: str) -> None:
    name = message.DESCRIPTOR.full_name
    if name == "google.protobuf.Timestamp":
        _check_timestamp(message, path)
    elif name == "google.protobuf.Duration":
        _check_duration(message, path)
    else:
        check_message(message, path)
        if name == "partita.common.v1.AssetKey":
            check_asset_key(list(message.path), path)  # type: ignore[attr-defined]


def _check_timestamp(message: Message, path: str) -> None:
    seconds, nanos = message.seconds, message.nanos  # type: ignore[attr-defined]
    if not MIN_TIMESTAMP_SECONDS <= seconds <= MAX_TIMESTAMP_SECONDS:
        raise InvalidField(
            path,
            f"seconds={seconds} is outside 0001-01-01T00:00:00Z..9999-12-31T23:59:59Z "
            f"({MIN_TIMESTAMP_SECONDS}..{MAX_TIMESTAMP_SECONDS}); send a real instant.",
        )
    if not 0 <= nanos <= MAX_NANOS:
        raise InvalidField(path, f"nanos={nanos} is outside 0..{MAX_NANOS}; carry whole seconds in seconds.")


def _check_duration(message: Message, path: str) -> None:
    seconds, nanos = message.seconds, message.nanos  # type: ignore[attr-defined]
    if not -MAX_DURATION_SECONDS <= seconds <= MAX_DURATION_SECONDS:
        raise InvalidField(path, f"seconds={seconds} is outside +-{MAX_DURATION_SECONDS} (10,000 years).")
    if not -MAX_NANOS <= nanos <= MAX_NANOS or (seconds > 0 > nanos) or (seconds < 0 < nanos):
        raise InvalidField(
            path, f"nanos={nanos} must lie in +-{MAX_NANOS} and have the sign of seconds={seconds}."
        )
