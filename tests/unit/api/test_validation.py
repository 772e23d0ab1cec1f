"""Edge validation of requests: every field of every RPC, named by its path, and the issue's exact inputs."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from google.protobuf import message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.duration_pb2 import Duration
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from code_server.wire.validation import InvalidField
from code_server.wire.validation import check_message as check_wire_message
from control_plane.api.paging import (
    decode_offset_token,
    decode_page_token,
    encode_offset_token,
    encode_page_token,
)
from control_plane.api.status import BadRequest
from control_plane.api.validation import check_message, check_request
from partita.codeserver.v1 import code_server_pb2
from partita.common.v1 import assets_pb2, partitions_pb2, requests_pb2
from partita.controlplane.v1 import backfills_pb2, control_plane_pb2, runs_pb2, sensors_schedules_pb2

CONTROL_PLANE = control_plane_pb2.DESCRIPTOR.services_by_name["ControlPlane"]
CODE_SERVER = code_server_pb2.DESCRIPTOR.services_by_name["CodeServer"]


def string_fields(
    descriptor: Descriptor, prefix: str = "", depth: int = 0
) -> Iterator[tuple[str, list[str]]]:
    """(path as the error names it, steps to set it) for every string reachable in ``descriptor``."""
    for field in descriptor.fields:
        path = f"{prefix}.{field.name}" if prefix else field.name
        entry = field.message_type
        if field.is_repeated and entry is not None and entry.GetOptions().map_entry:
            yield f"{path}['k']", [field.name, "map"]
        elif entry is not None and entry.full_name.startswith("partita.") and depth < 4:
            index = "[0]" if field.is_repeated else ""
            for inner, steps in string_fields(entry, path + index, depth + 1):
                yield inner, [field.name + ("[]" if field.is_repeated else ""), *steps]
        elif field.type == FieldDescriptor.TYPE_STRING:
            yield (
                path + ("[0]" if field.is_repeated else ""),
                [field.name + ("[]" if field.is_repeated else "")],
            )


def with_value(message: Message, steps: list[str], value: str) -> None:
    step, rest = steps[0], steps[1:]
    repeated, name = step.endswith("[]"), step.removesuffix("[]")
    if rest == ["map"]:
        getattr(message, name)["k"] = value
    elif rest:
        inner = getattr(message, name).add() if repeated else getattr(message, name)
        with_value(inner, rest, value)
    elif repeated:
        getattr(message, name).append(value)
    else:
        setattr(message, name, value)


def every_string_of_every_request() -> Iterator[tuple[str, str, list[str]]]:
    for service in (CONTROL_PLANE, CODE_SERVER):
        for method in service.methods:
            for path, steps in string_fields(method.input_type):
                yield method.name, path, steps


CASES = list(every_string_of_every_request())


@pytest.mark.parametrize(("rpc", "path", "steps"), CASES, ids=[f"{rpc}:{path}" for rpc, path, _ in CASES])
def test_a_nul_in_any_string_of_any_request_is_refused_naming_its_path(
    rpc: str, path: str, steps: list[str]
) -> None:
    service = CONTROL_PLANE if rpc in CONTROL_PLANE.methods_by_name else CODE_SERVER
    request = message_factory.GetMessageClass(service.methods_by_name[rpc].input_type)()
    with_value(request, steps, "ok\x00")
    with pytest.raises(InvalidField) as raised:
        check_wire_message(request)
    assert raised.value.path == path
    assert str(raised.value) == f"{path}: contains a control character (U+0000); remove it."


def test_the_walk_covers_every_rpc_with_string_fields() -> None:
    covered = {rpc for rpc, _, _ in CASES}
    without_strings = {
        "ListCodeLocations",
        "GetServerInfo",
        "ListDefinitions",
        "Reload",
        "WhoAmI",
        "ListApiTokens",
    }
    every = {m.name for service in (CONTROL_PLANE, CODE_SERVER) for m in service.methods}
    assert covered == every - without_strings
    assert len(CASES) >= 59


def test_tags_name_the_key_and_a_bad_key_is_named_too() -> None:
    with pytest.raises(
        BadRequest, match=r"^tags\['x'\]: contains a control character \(U\+0000\); remove it\.$"
    ):
        check_request(backfills_pb2.LaunchBackfillRequest(tags={"x": "a\x00b"}))
    with pytest.raises(BadRequest, match=r"^tags key 'x\\x1b': contains a control character \(U\+001B\)"):
        check_request(backfills_pb2.LaunchBackfillRequest(tags={"x\x1b": "v"}))
    with pytest.raises(BadRequest, match="tags: has an empty key"):
        check_request(runs_pb2.ListRunsRequest(tags={"": "v"}))


def test_free_text_may_hold_line_breaks_but_names_and_titles_may_not() -> None:
    check_request(backfills_pb2.LaunchBackfillRequest(description="line one\n\tline two\r\n"))
    with pytest.raises(BadRequest, match=r"^description: contains a control character \(U\+0000\)"):
        check_request(backfills_pb2.LaunchBackfillRequest(description="a\x00"))
    with pytest.raises(BadRequest, match=r"^title: contains a control character \(U\+000A\)"):
        check_request(backfills_pb2.LaunchBackfillRequest(title="two\nlines"))


def test_lengths_are_bounded_with_the_limit_in_the_message() -> None:
    with pytest.raises(BadRequest, match=r"^backfill_id: 1,025 characters, more than the 1,024 allowed"):
        check_request(backfills_pb2.GetBackfillRequest(backfill_id="a" * 1025))
    check_request(backfills_pb2.LaunchBackfillRequest(tags={"k": "v" * 4096}))
    with pytest.raises(BadRequest, match=r"^tags\['k'\]: 4,097 characters, more than the 4,096 allowed"):
        check_request(backfills_pb2.LaunchBackfillRequest(tags={"k": "v" * 4097}))


def test_nested_and_repeated_fields_are_named_by_their_whole_path() -> None:
    target = requests_pb2.BackfillTarget(
        asset_selection=[assets_pb2.AssetKey(path=["a"]), assets_pb2.AssetKey(path=["b", "c\x00"])],
        ranges=partitions_pb2.PartitionKeyRanges(
            ranges=[partitions_pb2.PartitionKeyRange(start="x", end="y\x00")]
        ),
    )
    with pytest.raises(BadRequest, match=r"^target\.asset_selection\[1\]\.path\[1\]: contains"):
        check_request(backfills_pb2.LaunchBackfillRequest(target=target))
    del target.asset_selection[1]
    with pytest.raises(BadRequest, match=r"^target\.ranges\.ranges\[0\]\.end: contains"):
        check_request(backfills_pb2.LaunchBackfillRequest(target=target))


def test_an_asset_key_must_be_a_valid_key() -> None:
    with pytest.raises(BadRequest, match=r"^asset_key: an asset key needs at least one name part"):
        check_message(code_server_pb2.GetPartitionKeysRequest(asset_key=assets_pb2.AssetKey()))
    with pytest.raises(BadRequest, match=r"^asset_key: Invalid asset key part 'a b'"):
        check_message(code_server_pb2.GetPartitionKeysRequest(asset_key=assets_pb2.AssetKey(path=["a b"])))


@pytest.mark.parametrize(
    ("seconds", "nanos", "problem"),
    [
        (-62_135_596_801, 0, "seconds=-62135596801 is outside 0001-01-01T00:00:00Z..9999-12-31T23:59:59Z"),
        (253_402_300_800, 0, "seconds=253402300800 is outside"),
        (0, -1, "nanos=-1 is outside 0..999999999"),
        (0, 1_000_000_000, "nanos=1000000000 is outside"),
    ],
)
def test_timestamps_outside_protobufs_range_are_refused(seconds: int, nanos: int, problem: str) -> None:
    request = sensors_schedules_pb2.PreviewScheduleRequest(
        scheduled_execution_time=Timestamp(seconds=seconds, nanos=nanos)
    )
    with pytest.raises(BadRequest) as raised:
        check_request(request)
    assert str(raised.value).startswith(f"scheduled_execution_time: {problem}")


def test_the_ends_of_the_timestamp_range_are_accepted() -> None:
    for seconds, nanos in ((-62_135_596_800, 0), (253_402_300_799, 999_999_999)):
        check_wire_message(
            code_server_pb2.EvaluateScheduleRequest(
                scheduled_execution_time=Timestamp(seconds=seconds, nanos=nanos)
            )
        )


def test_durations_need_a_range_and_one_sign() -> None:
    with pytest.raises(InvalidField, match=r"^timeout: seconds=4611686018427387904 is outside"):
        check_wire_message(code_server_pb2.EvaluateSensorRequest(timeout=Duration(seconds=2**62)))
    with pytest.raises(InvalidField, match=r"^timeout: nanos=-5 must lie in"):
        check_wire_message(code_server_pb2.EvaluateSensorRequest(timeout=Duration(seconds=1, nanos=-5)))


def test_unknown_enum_numbers_are_refused_with_the_known_names() -> None:
    with pytest.raises(
        BadRequest, match=r"^statuses\[1\]: unknown BackfillStatus value 99; use one of BACKFILL_STATUS_"
    ):
        check_request(
            backfills_pb2.ListBackfillsRequest(statuses=[backfills_pb2.BACKFILL_STATUS_RUNNING, 99])
        )


@pytest.mark.parametrize(
    "request_message",
    [
        backfills_pb2.ListBackfillsRequest(location_name=""),
        runs_pb2.ListRunsRequest(location_name=""),
        runs_pb2.ListRunsRequest(backfill_id=""),
        sensors_schedules_pb2.ListSensorsRequest(location_name=""),
        sensors_schedules_pb2.ListSchedulesRequest(location_name=""),
    ],
    ids=lambda m: type(m).__name__,
)
def test_an_explicitly_empty_filter_is_refused_not_a_match_for_everything(request_message: Message) -> None:
    with pytest.raises(BadRequest, match=r"_(name|id): set but empty, which names nothing"):
        check_request(request_message)


def test_an_unset_filter_still_lists_everything() -> None:
    check_request(runs_pb2.ListRunsRequest())
    check_request(sensors_schedules_pb2.ListSensorsRequest())


def _token(payload: str) -> str:
    return base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "token",
    [
        "b2Zmc2V0OsKy",  # "offset:²": passes str.isdigit()
        _token("offset:12"),  # the unversioned format of before
        _token("p1|offset:" + "9" * 5000),
        _token("p1|offset|" + "9" * 5000),
        _token("p1|offset|²"),
        _token("p1|offset|-1"),
        _token("p1|after|2024-01-01T00:00:00+00:00|x"),  # a list token where an offset token belongs
        "cDF8b2Zmc2V0fDE=",  # padding is not part of our tokens
        "a" * 2000,
        "+/+/",
    ],
)
def test_offset_tokens_are_checked_strictly(token: str) -> None:
    with pytest.raises(BadRequest, match="is not one this server issued"):
        decode_offset_token(token)


@pytest.mark.parametrize(
    "token",
    [
        _token("p1|after|2024-01-01T00:00:00|x"),  # naive time
        _token("p1|after|2024-01-01T00:00:00+00:00|"),  # no id
        _token("p1|after|2024-01-01T00:00:00+00:00|x\x00y"),  # NUL in the id
        _token("p1|after|²０２４-01-01|x"),
        _token("p1|offset|3"),
        _token("p2|after|2024-01-01T00:00:00+00:00|x"),
    ],
)
def test_list_tokens_are_checked_strictly(token: str) -> None:
    with pytest.raises(BadRequest, match="is not one this server issued"):
        decode_page_token(token)


def test_tokens_round_trip() -> None:
    assert decode_offset_token(encode_offset_token(1234)) == 1234
    at = datetime(2024, 3, 10, 8, 0, 0, 123456, tzinfo=UTC)
    cursor = decode_page_token(encode_page_token(at, "run-1|x"))
    assert cursor is not None and (cursor.at, cursor.id) == (at, "run-1|x")


def test_repeated_fields_are_bounded() -> None:
    keys = partitions_pb2.PartitionKeys(keys=["k"] * 100_001)
    with pytest.raises(
        BadRequest, match=r"^target\.keys\.keys: 100,001 items, more than the 100,000 allowed"
    ):
        check_request(backfills_pb2.LaunchBackfillRequest(target=requests_pb2.BackfillTarget(keys=keys)))


def test_instants_seen_in_a_time_zone_need_a_day_inside_the_range() -> None:
    year_one = Timestamp(seconds=-62_135_596_800)
    check_request(sensors_schedules_pb2.ListSchedulesRequest())
    with pytest.raises(BadRequest, match=r"^scheduled_execution_time: seconds=-62135596800 is within a day"):
        check_request(sensors_schedules_pb2.PreviewScheduleRequest(scheduled_execution_time=year_one))
    check_request(
        sensors_schedules_pb2.PreviewScheduleRequest(
            scheduled_execution_time=Timestamp(seconds=-62_135_596_800 + 86_400)
        )
    )


def test_what_user_code_raised_may_quote_anything_but_nul() -> None:
    """For the run reporter's per-event checks: a traceback is long and may hold colour codes."""
    from partita.common.v1 import errors_pb2
    from partita.controlplane.v1 import run_events_pb2

    error = errors_pb2.UserCodeError(message="\x1b[31mboom\x1b[0m\n", traceback="Traceback\n  line\n" * 5000)
    event = run_events_pb2.RunEvent(run_id="r", run_finished=run_events_pb2.RunFinished(error=error))
    check_message(event, "events[2]")
    event.run_finished.error.traceback += "\x00"
    with pytest.raises(
        BadRequest,
        match=r"^events\[2\]\.run_finished\.error\.traceback: contains a control character \(U\+0000\)",
    ):
        check_message(event, "events[2]")
