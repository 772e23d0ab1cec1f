"""Hypothesis strategies for any protobuf request message, built from its descriptor, biased to hostile values.

Every string field draws either a value that means something to the fuzzed servers (a real backfill
id, asset name, partition key, page token) so that calls get past the first lookup, or a hostile one:
control characters, NUL spliced into a real value, huge text, the empty string. Integers reach their
type's limits, enums take unknown numbers, ``Timestamp``/``Duration`` step just outside their ranges.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence

from google.protobuf import message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from hypothesis import strategies as st

_MIN_TS = -62_135_596_800
_MAX_TS = 253_402_300_799
_INT32 = (-(2**31), 2**31 - 1)
_INT64 = (-(2**63), 2**63 - 1)
_CONTROL = st.sampled_from(["\x00", "\x01", "\x07", "\x1b", "\x7f", "\x85", "\x9f", "\n", "\t", "\r"])
_CONTROL_TEXT = st.text(st.characters(min_codepoint=0, max_codepoint=0x9F), min_size=1, max_size=8)
_ANY_TEXT = st.text(st.characters(codec="utf-8"), max_size=16)
_HUGE_TEXT = st.sampled_from([1025, 4097, 70_000, 1_100_000]).map(lambda n: "a" * n)
_TOKENS = st.one_of(
    st.sampled_from(["b2Zmc2V0OsKy", "garbage!", "=", "cDF8b2Zmc2V0fDE", "cDF8b2Zmc2V0fA"]),
    st.binary(max_size=40).map(lambda raw: base64.urlsafe_b64encode(raw).decode().rstrip("=")),
    st.integers(0, 10**30).map(lambda n: base64.urlsafe_b64encode(f"p1|offset|{n}".encode()).decode()),
    st.just(base64.urlsafe_b64encode(("p1|offset|" + "9" * 5000).encode()).decode()),
)


def hostile_text(realistic: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """Strings that must be refused or handled: control characters, NUL in a real value, huge, empty."""
    spliced = st.tuples(realistic, _CONTROL, st.integers(0, 12)).map(
        lambda t: t[0][: t[2]] + t[1] + t[0][t[2] :]
    )
    return st.one_of(st.just(""), _CONTROL_TEXT, spliced, _ANY_TEXT, _HUGE_TEXT)


def text_for(name: str, pools: Mapping[str, Sequence[str]]) -> st.SearchStrategy[str]:
    """A string for a field called ``name``: mostly a real value from ``pools`` (so that a request gets past
    its first lookup and the hostile field reaches deep), else hostile."""
    pool = pools.get(name) or pools["*"]
    realistic = st.sampled_from(list(pool))
    hostile = hostile_text(realistic)
    if name == "page_token":
        hostile = st.one_of(hostile, _TOKENS)
    return st.one_of(realistic, realistic, realistic, hostile)


def _integers(field: FieldDescriptor) -> st.SearchStrategy[int]:
    low, high = _INT64 if field.type in (FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_SINT64) else _INT32
    return st.one_of(st.integers(-3, 12), st.sampled_from([low, high, -1, 0, 1]), st.integers(low, high))


def _timestamp() -> st.SearchStrategy[tuple[int, int]]:
    seconds = st.one_of(
        st.integers(1_700_000_000, 1_720_000_000),
        st.sampled_from([_MIN_TS - 1, _MIN_TS, _MAX_TS, _MAX_TS + 1, _INT64[0], _INT64[1], 0, -1]),
        st.integers(*_INT64),
    )
    nanos = st.one_of(st.just(0), st.integers(0, 999_999_999), st.sampled_from([-1, 10**9, *_INT32]))
    return st.tuples(seconds, nanos)


def _duration() -> st.SearchStrategy[tuple[int, int]]:
    seconds = st.one_of(
        st.integers(0, 3),
        st.sampled_from([2**62, -1, 3601, 315_576_000_001, *_INT64]),
        st.integers(*_INT64),
    )
    nanos = st.one_of(st.just(0), st.integers(0, 999_999_999), st.sampled_from([-1, 10**9, *_INT32]))
    return st.tuples(seconds, nanos)


def _scalar(field: FieldDescriptor, pools: Mapping[str, Sequence[str]]) -> st.SearchStrategy[object]:
    kind = field.type
    if kind == FieldDescriptor.TYPE_STRING:
        return text_for(field.name, pools)
    if kind == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if kind == FieldDescriptor.TYPE_ENUM:
        assert field.enum_type is not None
        known = [value.number for value in field.enum_type.values]
        return st.one_of(st.sampled_from(known), st.integers(*_INT32))
    if kind == FieldDescriptor.TYPE_BYTES:
        return st.binary(max_size=32)
    return _integers(field)


def message_strategy(
    descriptor: Descriptor, pools: Mapping[str, Sequence[str]], depth: int = 0
) -> st.SearchStrategy[Message]:
    """Messages of ``descriptor``'s type with a random subset of fields set, recursively (depth-limited)."""
    message_class = message_factory.GetMessageClass(descriptor)
    if descriptor.full_name in ("google.protobuf.Timestamp", "google.protobuf.Duration"):
        pairs = _timestamp() if descriptor.full_name.endswith("Timestamp") else _duration()
        return pairs.map(lambda pair: message_class(seconds=pair[0], nanos=pair[1]))
    fields: dict[str, st.SearchStrategy[object]] = {}
    if depth < 5:
        for field in descriptor.fields:
            fields[field.name] = _field_strategy(field, pools, depth)

    def build(values: dict[str, object]) -> Message:
        message = message_class()
        for name, value in values.items():
            _assign(message, descriptor.fields_by_name[name], value)
        return message

    return st.fixed_dictionaries({}, optional=fields).map(build)


def _field_strategy(
    field: FieldDescriptor, pools: Mapping[str, Sequence[str]], depth: int
) -> st.SearchStrategy[object]:
    entry = field.message_type
    if field.is_repeated and entry is not None and entry.GetOptions().map_entry:
        key = _scalar(entry.fields_by_name["key"], pools)
        value_field = entry.fields_by_name["value"]
        value = (
            message_strategy(value_field.message_type, pools, depth + 1)
            if value_field.message_type is not None
            else _scalar(value_field, pools)
        )
        return st.dictionaries(key, value, max_size=3)
    single = message_strategy(entry, pools, depth + 1) if entry is not None else _scalar(field, pools)
    return st.lists(single, max_size=3) if field.is_repeated else single


def _assign(message: Message, field: FieldDescriptor, value: object) -> None:
    target = getattr(message, field.name)
    entry = field.message_type
    if field.is_repeated and entry is not None and entry.GetOptions().map_entry:
        assert isinstance(value, dict)
        for key, item in value.items():
            if isinstance(item, Message):
                target[key].CopyFrom(item)
            else:
                target[key] = item
    elif field.is_repeated:
        assert isinstance(value, list)
        for item in value:
            if isinstance(item, Message):
                target.add().CopyFrom(item)
            else:
                target.append(item)
    elif isinstance(value, Message):
        target.CopyFrom(value)
    else:
        setattr(message, field.name, value)


def point_mutations(seed: Message, pools: Mapping[str, Sequence[str]]) -> st.SearchStrategy[Message]:
    """``seed`` (a valid request) with one field, at any depth, replaced by a drawn (often hostile) value.

    Random requests rarely get past their first check; a valid request with one bad field reaches the
    code that the bad field could break.
    """
    descriptor = seed.DESCRIPTOR

    def replaced(field: FieldDescriptor, value: object) -> Message:
        copy = type(seed)()
        copy.CopyFrom(seed)
        copy.ClearField(field.name)
        _assign(copy, field, value)
        return copy

    def nested(field: FieldDescriptor, inner: Message) -> Message:
        copy = type(seed)()
        copy.CopyFrom(seed)
        getattr(copy, field.name).CopyFrom(inner)
        return copy

    def mutate(field: FieldDescriptor) -> st.SearchStrategy[Message]:
        whole = _field_strategy(field, pools, 0).map(lambda value: replaced(field, value))
        is_single_message = field.message_type is not None and not field.is_repeated
        if is_single_message and seed.HasField(field.name) and getattr(seed, field.name).ListFields():
            inner = point_mutations(getattr(seed, field.name), pools).map(lambda m: nested(field, m))
            return st.one_of(whole, inner)
        return whole

    return st.sampled_from(list(descriptor.fields)).flatmap(mutate)


def request_strategy(
    descriptor: Descriptor, seeds: Sequence[Message], pools: Mapping[str, Sequence[str]]
) -> st.SearchStrategy[Message]:
    """Valid seeds as they are, seeds with one field mutated, and wholly random messages."""
    if not descriptor.fields:
        return st.just(message_factory.GetMessageClass(descriptor)())
    chosen = st.sampled_from(list(seeds) or [message_factory.GetMessageClass(descriptor)()])
    return st.one_of(
        chosen,
        chosen.flatmap(lambda seed: point_mutations(seed, pools)),
        chosen.flatmap(lambda seed: point_mutations(seed, pools)),
        message_strategy(descriptor, pools),
    )
