"""The wire contracts: the committed generated code matches protos/, the protos keep the style rules
(versioned packages, prefixed enums, documented declarations, no serialized blobs), and messages keep
their shape and presence through serialization and a real gRPC channel."""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
from collections.abc import Iterator
from concurrent import futures
from importlib import resources
from pathlib import Path

import grpc
import pytest
from google.protobuf import descriptor_pb2
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from grpc_tools import protoc  # type: ignore[import-untyped]

from partita.codeserver.v1 import code_server_pb2 as cs
from partita.codeserver.v1 import code_server_pb2_grpc as cs_grpc
from partita.common.v1 import assets_pb2, automation_pb2, errors_pb2, partitions_pb2, requests_pb2
from partita.controlplane.v1 import (
    backfills_pb2,
    control_plane_pb2,
    run_events_pb2,
    run_reporter_pb2,
    runs_pb2,
)

ROOT = Path(__file__).resolve().parents[2]
PROTO_ROOT = ROOT / "protos"
GENERATED_MODULES = sorted(
    ".".join(path.relative_to(ROOT).with_suffix("").parts) for path in ROOT.glob("partita/*/v1/*_pb2*.py")
)


def test_generated_code_matches_the_protos() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_protos.py"), "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("module", GENERATED_MODULES)
def test_every_generated_module_imports_and_defines_its_file(module: str) -> None:
    imported = importlib.import_module(module)
    if module.endswith("_pb2"):
        assert imported.DESCRIPTOR.name == module.replace(".", "/").removesuffix("_pb2") + ".proto"
        return
    messages = importlib.import_module(module.removesuffix("_grpc"))
    services = list(messages.DESCRIPTOR.services_by_name)
    assert services
    for service in services:
        assert hasattr(imported, f"{service}Stub")
        assert hasattr(imported, f"add_{service}Servicer_to_server")


# --- style rules, checked on descriptors compiled with their comments -------------------------------

# Field numbers inside descriptor.proto, used to address comments in SourceCodeInfo.
_FILE_MESSAGE, _FILE_ENUM, _FILE_SERVICE = 4, 5, 6
_MESSAGE_FIELD, _MESSAGE_NESTED, _MESSAGE_ENUM, _MESSAGE_ONEOF = 2, 3, 4, 8
_ENUM_VALUE, _SERVICE_METHOD = 2, 2

_PASCAL_CASE = re.compile(r"^[A-Z][A-Za-z0-9]*$")
_LOWER_SNAKE = re.compile(r"^[a-z][a-z0-9_]*$")
_BLOB_NAME = re.compile(r"(^serialized_|_serialized$|_json$|^json_|pickle)")


@pytest.fixture(scope="module")
def proto_files(tmp_path_factory: pytest.TempPathFactory) -> list[descriptor_pb2.FileDescriptorProto]:
    out = tmp_path_factory.mktemp("descriptors") / "all.binpb"
    protos = sorted(str(path.relative_to(PROTO_ROOT)) for path in PROTO_ROOT.rglob("*.proto"))
    well_known = str(resources.files("grpc_tools") / "_proto")
    command = ["protoc", f"-I{PROTO_ROOT}", f"-I{well_known}", "--include_source_info"]
    assert protoc.main([*command, f"--descriptor_set_out={out}", *protos]) == 0
    return list(descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes()).file)


def _upper_snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).upper()


def _declarations(
    file: descriptor_pb2.FileDescriptorProto,
) -> Iterator[tuple[tuple[int, ...], str, str]]:
    """Every (source path, kind, full name) of the file that must carry a doc comment."""

    def message(
        proto: descriptor_pb2.DescriptorProto, path: tuple[int, ...], scope: str
    ) -> Iterator[tuple[tuple[int, ...], str, str]]:
        name = f"{scope}.{proto.name}"
        yield path, "message", name
        for index, field in enumerate(proto.field):
            yield (*path, _MESSAGE_FIELD, index), "field", f"{name}.{field.name}"
        for index, oneof in enumerate(proto.oneof_decl):
            if not oneof.name.startswith("_"):  # synthetic oneofs of proto3 `optional` fields
                yield (*path, _MESSAGE_ONEOF, index), "oneof", f"{name}.{oneof.name}"
        for index, nested in enumerate(proto.nested_type):
            if not nested.options.map_entry:
                yield from message(nested, (*path, _MESSAGE_NESTED, index), name)
        for index, enum in enumerate(proto.enum_type):
            yield (*path, _MESSAGE_ENUM, index), "enum", f"{name}.{enum.name}"

    for index, proto in enumerate(file.message_type):
        yield from message(proto, (_FILE_MESSAGE, index), file.package)
    for index, enum in enumerate(file.enum_type):
        yield (_FILE_ENUM, index), "enum", f"{file.package}.{enum.name}"
    for index, service in enumerate(file.service):
        yield (_FILE_SERVICE, index), "service", f"{file.package}.{service.name}"
        for method_index, method in enumerate(service.method):
            yield (
                (_FILE_SERVICE, index, _SERVICE_METHOD, method_index),
                "rpc",
                f"{service.name}.{method.name}",
            )


def test_every_declaration_has_a_doc_comment(proto_files: list[descriptor_pb2.FileDescriptorProto]) -> None:
    undocumented = []
    for file in proto_files:
        if not file.name.startswith("partita/"):
            continue
        comments = {
            tuple(location.path): (location.leading_comments + location.trailing_comments).strip()
            for location in file.source_code_info.location
        }
        undocumented += [
            f"{file.name}: {kind} {name}"
            for path, kind, name in _declarations(file)
            if not comments.get(path)
        ]
    assert undocumented == []


def test_packages_are_versioned_and_match_their_directory(
    proto_files: list[descriptor_pb2.FileDescriptorProto],
) -> None:
    for file in proto_files:
        if file.name.startswith("partita/"):
            assert file.package == str(Path(file.name).parent).replace("/", "."), file.name
            assert re.fullmatch(r"partita\.[a-z]+\.v[0-9]+", file.package), file.name


def test_names_follow_proto_style(proto_files: list[descriptor_pb2.FileDescriptorProto]) -> None:
    problems = []

    def check_enum(enum: descriptor_pb2.EnumDescriptorProto) -> None:
        prefix = _upper_snake(enum.name) + "_"
        if enum.value[0].number != 0 or enum.value[0].name != prefix + "UNSPECIFIED":
            problems.append(f"enum {enum.name}: first value must be {prefix}UNSPECIFIED = 0")
        problems.extend(
            f"enum value {v.name} lacks prefix {prefix}" for v in enum.value if not v.name.startswith(prefix)
        )

    def check_message(message: descriptor_pb2.DescriptorProto) -> None:
        if not _PASCAL_CASE.match(message.name):
            problems.append(f"message {message.name} is not PascalCase")
        for field in message.field:
            if not _LOWER_SNAKE.match(field.name):
                problems.append(f"field {message.name}.{field.name} is not lower_snake_case")
            if field.type == field.TYPE_STRING and _BLOB_NAME.search(field.name):
                problems.append(f"field {message.name}.{field.name} looks like a serialized blob")
        for nested in message.nested_type:
            check_message(nested)
        for enum in message.enum_type:
            check_enum(enum)

    for file in proto_files:
        if file.name.startswith("partita/"):
            for message in file.message_type:
                check_message(message)
            for enum in file.enum_type:
                check_enum(enum)
    assert problems == []


# --- the services have the RPCs the code server, control plane and run worker rely on ---------------


def _methods(service: str, module: object) -> dict[str, tuple[bool, bool]]:
    descriptor = module.DESCRIPTOR.services_by_name[service]  # type: ignore[attr-defined]
    return {m.name: (m.client_streaming, m.server_streaming) for m in descriptor.methods}


def test_code_server_streams_what_can_be_large() -> None:
    assert _methods("CodeServer", cs) == {
        "GetServerInfo": (False, False),
        "ListDefinitions": (False, True),
        "GetPartitionKeys": (False, True),
        "EvaluateSensor": (False, False),
        "EvaluateSchedule": (False, False),
        "Reload": (False, False),
    }


def test_control_plane_defines_the_whole_public_api() -> None:
    methods = _methods("ControlPlane", control_plane_pb2)
    backfills = {
        f"{verb}Backfill" for verb in ("Launch", "Get", "Cancel", "Retry", "Pause", "Resume", "Watch")
    }
    instigators = {
        f"{verb}{kind}{suffix}"
        for kind in ("Sensor", "Schedule")
        for verb, suffix in (("List", "s"), ("Start", ""), ("Stop", ""), ("Preview", ""), ("List", "Ticks"))
    }
    expected = (
        backfills
        | instigators
        | {
            "ListBackfills",
            "UpdateBackfillLimits",
            "ListRuns",
            "GetRun",
            "TerminateRun",
            "GetRunLogs",
            "GetAssetPartitionStatus",
            "ListCodeLocations",
            "ListAuditEvents",
            "CreateApiToken",
            "ListApiTokens",
            "RevokeApiToken",
            "WhoAmI",
        }
    )
    assert set(methods) == expected
    assert {name for name, (_, server_streaming) in methods.items() if server_streaming} == {
        "WatchBackfill",
        "GetRunLogs",
    }
    assert _methods("RunReporter", run_reporter_pb2) == {
        "ClaimRun": (False, False),
        "ReportRunEvents": (False, False),
    }


# --- messages round-trip with their oneofs and presence ---------------------------------------------


def _round_trip(message: Message) -> Message:
    parsed = type(message).FromString(message.SerializeToString())
    assert parsed == message
    return parsed


def _key(*path: str) -> assets_pb2.AssetKey:
    return assets_pb2.AssetKey(path=list(path))


def test_asset_node_keeps_its_partitions_definition_mapping_and_policy() -> None:
    start = Timestamp()
    start.FromJsonString("2024-01-01T06:00:00Z")
    daily = partitions_pb2.TimeWindowPartitions(
        cron_schedule="0 0 * * *", start=start, fmt="%Y-%m-%d", timezone="America/Chicago", end_offset=1
    )
    multi = partitions_pb2.PartitionsDefinition(
        multi=partitions_pb2.MultiPartitions(
            dimensions=[
                partitions_pb2.PartitionDimension(
                    name="color",
                    partitions_def=partitions_pb2.DimensionPartitions(
                        static=partitions_pb2.StaticPartitions(partition_keys=["red", "blue"])
                    ),
                ),
                partitions_pb2.PartitionDimension(
                    name="date", partitions_def=partitions_pb2.DimensionPartitions(time_window=daily)
                ),
            ]
        )
    )
    mapping = partitions_pb2.PartitionMapping(
        static=partitions_pb2.StaticPartitionMapping(
            entries=[
                partitions_pb2.StaticPartitionMappingEntry(
                    upstream_partition_key="foo_a", downstream_partition_keys=["foo_b", "foo_c"]
                )
            ]
        )
    )
    node = assets_pb2.AssetNode(
        key=_key("warehouse", "events"),
        deps=[assets_pb2.AssetDependency(key=_key("raw"), partition_mapping=mapping, input_name="raw")],
        partitions_def=multi,
        backfill_policy=assets_pb2.BackfillPolicy(
            kind=assets_pb2.BACKFILL_POLICY_KIND_MULTI_RUN, max_partitions_per_run=10
        ),
        group_name="default",
        tags={"team": "data"},
    )

    parsed = _round_trip(node)

    assert isinstance(parsed, assets_pb2.AssetNode)
    assert parsed.partitions_def.WhichOneof("kind") == "multi"
    date = parsed.partitions_def.multi.dimensions[1].partitions_def
    assert date.WhichOneof("kind") == "time_window"
    assert not date.time_window.HasField("end")
    assert date.time_window.start.ToJsonString() == "2024-01-01T06:00:00Z"
    assert parsed.deps[0].partition_mapping.WhichOneof("kind") == "static"
    assert parsed.deps[0].HasField("input_name")
    assert parsed.backfill_policy.max_partitions_per_run == 10
    assert not parsed.HasField("description")


def test_absent_and_empty_optionals_stay_distinct() -> None:
    unset = _round_trip(partitions_pb2.MultiToSingleDimensionPartitionMapping())
    empty = _round_trip(partitions_pb2.MultiToSingleDimensionPartitionMapping(partition_dimension_name=""))
    assert isinstance(unset, partitions_pb2.MultiToSingleDimensionPartitionMapping)
    assert isinstance(empty, partitions_pb2.MultiToSingleDimensionPartitionMapping)
    assert not unset.HasField("partition_dimension_name")
    assert empty.HasField("partition_dimension_name")

    no_policy = _round_trip(assets_pb2.AssetNode(key=_key("a")))
    assert isinstance(no_policy, assets_pb2.AssetNode)
    assert not no_policy.HasField("backfill_policy")
    assert not no_policy.HasField("partitions_def")
    assert not no_policy.deps


def test_sensor_result_carries_run_and_backfill_requests() -> None:
    result = automation_pb2.SensorResult(
        run_requests=[
            requests_pb2.RunRequest(run_key="k1", asset_selection=[_key("a")], partition_key="2024-01-01")
        ],
        backfill_requests=[
            requests_pb2.BackfillRequest(
                target=requests_pb2.BackfillTarget(
                    asset_selection=[_key("a"), _key("b")],
                    partitions_by_asset=requests_pb2.PartitionsByAsset(
                        assets=[
                            assets_pb2.AssetPartitions(
                                asset_key=_key("a"),
                                partitions=partitions_pb2.PartitionSubset(
                                    ranges=partitions_pb2.PartitionKeyRanges(
                                        ranges=[
                                            partitions_pb2.PartitionKeyRange(
                                                start="2023-01-01", end="2023-01-05"
                                            )
                                        ]
                                    )
                                ),
                            )
                        ]
                    ),
                ),
                title="January",
            ),
            requests_pb2.BackfillRequest(
                target=requests_pb2.BackfillTarget(
                    asset_selection=[_key("a")], all_partitions=partitions_pb2.AllPartitions()
                )
            ),
        ],
        cursor="",
    )
    response = _round_trip(cs.EvaluateSensorResponse(ok=result))

    assert isinstance(response, cs.EvaluateSensorResponse)
    assert response.WhichOneof("result") == "ok"
    first, second = response.ok.backfill_requests
    assert first.target.WhichOneof("partitions") == "partitions_by_asset"
    assert first.target.partitions_by_asset.assets[0].partitions.WhichOneof("kind") == "ranges"
    assert second.target.WhichOneof("partitions") == "all_partitions"
    assert not second.HasField("title")
    assert response.ok.HasField("cursor")
    assert not response.ok.HasField("skip_reason")


def test_timed_out_sensor_is_a_typed_error_with_its_cause() -> None:
    error = errors_pb2.UserCodeError(
        kind=errors_pb2.USER_CODE_ERROR_KIND_TIMED_OUT,
        message="Sensor 'events' ran past its 5s deadline and was cut off.",
        frames=[
            errors_pb2.StackFrame(filename="defs.py", lineno=12, function="events", line="time.sleep(60)")
        ],
        cause=errors_pb2.UserCodeError(
            kind=errors_pb2.USER_CODE_ERROR_KIND_RAISED, class_name="builtins.KeyError"
        ),
    )
    response = _round_trip(cs.EvaluateSensorResponse(error=error))

    assert isinstance(response, cs.EvaluateSensorResponse)
    assert response.WhichOneof("result") == "error"
    assert response.error.kind == errors_pb2.USER_CODE_ERROR_KIND_TIMED_OUT
    assert response.error.cause.class_name == "builtins.KeyError"
    assert not response.error.cause.HasField("cause")


def test_run_events_and_reporter_answer_round_trip() -> None:
    failed = run_events_pb2.RunEvent(
        run_id="r1",
        worker_id="w1",
        sequence=3,
        partition_failed=run_events_pb2.PartitionFailed(
            asset_key=_key("b"),
            partition_range=partitions_pb2.PartitionKeyRange(start="2024-01-01", end="2024-01-31"),
            upstream_failed=True,
            upstream_asset_key=_key("a"),
        ),
    )
    request = _round_trip(run_reporter_pb2.ReportRunEventsRequest(events=[failed]))
    answer = _round_trip(
        run_reporter_pb2.ReportRunEventsResponse(
            accepted_count=1, run_statuses={"r1": runs_pb2.RUN_STATUS_CANCELING}
        )
    )

    assert isinstance(request, run_reporter_pb2.ReportRunEventsRequest)
    event = request.events[0]
    assert event.WhichOneof("event") == "partition_failed"
    assert event.partition_failed.WhichOneof("partition") == "partition_range"
    assert not event.partition_failed.HasField("error")
    assert isinstance(answer, run_reporter_pb2.ReportRunEventsResponse)
    assert answer.run_statuses["r1"] == runs_pb2.RUN_STATUS_CANCELING


def test_launch_backfill_answers_with_a_backfill_or_a_plan() -> None:
    plan = backfills_pb2.LaunchBackfillResponse(
        plan=backfills_pb2.BackfillPlan(
            runs=[
                backfills_pb2.PlannedRun(
                    asset_selection=[_key("events")],
                    partition_range=partitions_pb2.PartitionKeyRange(start="2024-01-01", end="2024-01-31"),
                )
            ],
            partition_count=31,
        )
    )
    parsed = _round_trip(plan)
    assert isinstance(parsed, backfills_pb2.LaunchBackfillResponse)
    assert parsed.WhichOneof("result") == "plan"
    assert parsed.plan.runs[0].WhichOneof("partition") == "partition_range"


# --- the generated gRPC code works over a real channel ------------------------------------------------


class _ChunkingCodeServer(cs_grpc.CodeServerServicer):
    """Streams three assets one per chunk, the fingerprint on the first chunk only."""

    def ListDefinitions(
        self, request: cs.ListDefinitionsRequest, context: grpc.ServicerContext
    ) -> Iterator[cs.ListDefinitionsResponse]:
        for index, name in enumerate(("a", "b", "c")):
            yield cs.ListDefinitionsResponse(
                definitions_fingerprint="fp1" if index == 0 else "",
                assets=[assets_pb2.AssetNode(key=_key(name))],
            )


def test_definitions_stream_over_a_real_channel() -> None:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    # The other RPCs keep the generated UNIMPLEMENTED default, which the stub declares abstract.
    cs_grpc.add_CodeServerServicer_to_server(_ChunkingCodeServer(), server)  # type: ignore[abstract]
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = cs_grpc.CodeServerStub(channel)
            chunks = list(stub.ListDefinitions(cs.ListDefinitionsRequest(), timeout=10))
            with pytest.raises(grpc.RpcError) as unimplemented:
                stub.GetServerInfo(cs.GetServerInfoRequest(), timeout=10)
    finally:
        server.stop(grace=None)

    assert [chunk.definitions_fingerprint for chunk in chunks] == ["fp1", "", ""]
    assert [asset.key.path[0] for chunk in chunks for asset in chunk.assets] == ["a", "b", "c"]
    assert unimplemented.value.code() == grpc.StatusCode.UNIMPLEMENTED
