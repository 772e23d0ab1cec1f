"""``CodeServerClient``: call a code server with deadlines, retrying only what can succeed on retry.

Every call has a deadline for all its attempts together (a server that hangs costs its caller that
long, once, not once per retry), and every answer is checked before it is returned: bytes that do
not decode are :class:`UndecodableAnswer`, definitions that do not form a valid graph are
:class:`InvalidDefinitions`. Nothing a broken server sends escapes as anything else.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property
from typing import TypeVar

import grpc
from google.protobuf.duration_pb2 import Duration

from code_server.asset_graph import AssetGraph
from code_server.asset_key import AssetKey
from code_server.assets import AssetNode
from code_server.auth_token import TokenClientInterceptor, TokenFile
from code_server.client.errors import (
    CodeServerError,
    CodeServerUnavailable,
    DefinitionNotFound,
    InvalidDefinitions,
    InvalidRequest,
    UndecodableAnswer,
    UserCodeLoadFailed,
    user_code_error,
)
from code_server.client.retrying import RETRYABLE, call_with_retries
from code_server.partitions.keys import PartitionKeyRange
from code_server.tls import ClientTls, handshake_hint, open_channel
from code_server.wire.assets import asset_key_to_proto, asset_node_from_proto
from code_server.wire.automation import (
    EvaluationResult,
    ScheduleInfo,
    SensorInfo,
    evaluation_from_proto,
    schedule_from_proto,
    sensor_from_proto,
)
from code_server.wire.partitions import key_range_to_proto
from code_server.wire.timestamps import timestamp_from_proto, timestamp_to_proto
from partita.codeserver.v1 import code_server_pb2 as pb
from partita.codeserver.v1 import code_server_pb2_grpc

_T = TypeVar("_T")
_MAX_MESSAGE_BYTES = 64 * 1024 * 1024
#: What grpc's client says (as INTERNAL) when the response bytes do not parse as the response message.
_UNDECODABLE_DETAILS = "Exception deserializing response!"


@dataclass(frozen=True, slots=True)
class CodeServerDeadlines:
    """Seconds each kind of code-server call may take in all, retries included.

    Exists so that a server that hangs costs every caller a known, bounded wait, and so that the
    wait is configurable per RPC: fetching definitions may be slower than asking who a server is.
    """

    server_info: float = 5.0
    definitions: float = 10.0
    partition_keys: float = 30.0
    reload: float = 60.0
    #: Added to an evaluation's own timeout, so that the server can report the timeout itself.
    evaluation_grace: float = 5.0

    @classmethod
    def uniform(cls, seconds: float) -> CodeServerDeadlines:
        """The same deadline for every call (what a bare ``timeout=`` asks for)."""
        return cls(server_info=seconds, definitions=seconds, partition_keys=seconds, reload=seconds)


@dataclass(frozen=True, slots=True)
class ServerInfo:
    server_id: str
    location_name: str
    image: str
    sdk_version: str
    definitions_fingerprint: str
    loaded_at: datetime
    module_name: str | None
    python_file: str | None
    working_directory: str | None
    #: Set when the module failed to load.
    load_error: UserCodeLoadFailed | None


@dataclass(frozen=True)
class DefinitionsSnapshot:
    """A location's definitions as SDK objects, ready for planning (no user code involved)."""

    fingerprint: str
    assets: tuple[AssetNode, ...]
    sensors: tuple[SensorInfo, ...]
    schedules: tuple[ScheduleInfo, ...]

    @cached_property
    def asset_graph(self) -> AssetGraph:
        return AssetGraph(self.assets)


class CodeServerClient:
    """One code server, by address. Thread-safe; close it (or use ``with``) to free the channel.

    ``tls`` verifies the server (and presents a client certificate for mutual TLS); ``token_file``
    holds the code server's shared token, sent with every call.
    """

    def __init__(
        self,
        address: str,
        *,
        location_name: str | None = None,
        timeout: float = 30.0,
        deadlines: CodeServerDeadlines | None = None,
        retries: int = 2,
        retry_backoff: float = 0.1,
        tls: ClientTls | None = None,
        token_file: TokenFile | None = None,
    ) -> None:
        self.address = address
        self.location_name = location_name or address
        self._tls = tls
        self._timeout = timeout
        self.deadlines = deadlines or CodeServerDeadlines.uniform(timeout)
        self._retries = retries
        self._retry_backoff = retry_backoff
        self._channel = open_channel(
            address,
            tls,
            options=[
                ("grpc.max_receive_message_length", _MAX_MESSAGE_BYTES),
                # Reconnect quickly after a code server restarts instead of backing off for seconds.
                ("grpc.initial_reconnect_backoff_ms", 100),
                ("grpc.max_reconnect_backoff_ms", 1000),
            ],
        )
        calls = (
            grpc.intercept_channel(self._channel, TokenClientInterceptor(token_file))
            if token_file is not None
            else self._channel
        )
        self._stub = code_server_pb2_grpc.CodeServerStub(calls)

    def __enter__(self) -> CodeServerClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._channel.close()

    def server_info(self, timeout: float | None = None) -> ServerInfo:
        response = self._call(
            "GetServerInfo",
            lambda t: self._stub.GetServerInfo(pb.GetServerInfoRequest(), timeout=t),
            timeout or self.deadlines.server_info,
        )
        return self._server_info("GetServerInfo", response.server_info)

    def reload(self, timeout: float | None = None) -> ServerInfo:
        response = self._call(
            "Reload",
            lambda t: self._stub.Reload(pb.ReloadRequest(), timeout=t),
            timeout or self.deadlines.reload,
        )
        return self._server_info("Reload", response.server_info)

    def list_definitions(self, timeout: float | None = None) -> DefinitionsSnapshot:
        """Every asset, sensor and schedule, gathered from the server's stream of chunks, validated:
        raises :class:`InvalidDefinitions` unless they form a valid asset graph."""
        chunks = self._call(
            "ListDefinitions",
            lambda t: list(self._stub.ListDefinitions(pb.ListDefinitionsRequest(), timeout=t)),
            timeout or self.deadlines.definitions,
        )
        if chunks and chunks[0].HasField("load_error"):
            raise UserCodeLoadFailed(chunks[0].load_error, location=self.location_name)
        return self._decoded(
            "ListDefinitions",
            lambda: _validated(
                DefinitionsSnapshot(
                    fingerprint=chunks[0].definitions_fingerprint if chunks else "",
                    assets=tuple(asset_node_from_proto(node) for chunk in chunks for node in chunk.assets),
                    sensors=tuple(sensor_from_proto(s) for chunk in chunks for s in chunk.sensors),
                    schedules=tuple(schedule_from_proto(s) for chunk in chunks for s in chunk.schedules),
                )
            ),
        )

    def partition_keys(
        self,
        asset_key: AssetKey,
        *,
        partition_range: PartitionKeyRange | None = None,
        as_of: datetime | None = None,
        timeout: float | None = None,
    ) -> list[str]:
        request = pb.GetPartitionKeysRequest(asset_key=asset_key_to_proto(asset_key))
        if partition_range is not None:
            request.range.CopyFrom(key_range_to_proto(partition_range))
        if as_of is not None:
            request.as_of.CopyFrom(timestamp_to_proto(as_of))
        chunks = self._call(
            "GetPartitionKeys",
            lambda t: list(self._stub.GetPartitionKeys(request, timeout=t)),
            timeout or self.deadlines.partition_keys,
        )
        if chunks and chunks[0].HasField("load_error"):
            raise UserCodeLoadFailed(chunks[0].load_error, location=self.location_name)
        return [key for chunk in chunks for key in chunk.partition_keys]

    def evaluate_sensor(
        self,
        name: str,
        *,
        cursor: str | None = None,
        last_tick_completion_time: datetime | None = None,
        timeout: float | None = None,
    ) -> EvaluationResult:
        """The sensor's requests; raises :class:`UserCodeError` if it raised or ran past ``timeout``."""
        request = pb.EvaluateSensorRequest(sensor_name=name)
        if cursor is not None:
            request.cursor = cursor
        if last_tick_completion_time is not None:
            request.last_tick_completion_time.CopyFrom(timestamp_to_proto(last_tick_completion_time))
        user_timeout = timeout or self._timeout
        request.timeout.CopyFrom(_duration(user_timeout))
        # The transport deadline leaves room for the server to report the timeout itself.
        response = self._call(
            "EvaluateSensor",
            lambda t: self._stub.EvaluateSensor(request, timeout=t),
            user_timeout + self.deadlines.evaluation_grace,
            retry=False,
        )
        if response.WhichOneof("result") == "error":
            raise user_code_error(response.error, self.location_name)
        return self._decoded("EvaluateSensor", lambda: evaluation_from_proto(response.ok))

    def evaluate_schedule(
        self, name: str, scheduled_execution_time: datetime, *, timeout: float | None = None
    ) -> EvaluationResult:
        request = pb.EvaluateScheduleRequest(
            schedule_name=name, scheduled_execution_time=timestamp_to_proto(scheduled_execution_time)
        )
        user_timeout = timeout or self._timeout
        request.timeout.CopyFrom(_duration(user_timeout))
        response = self._call(
            "EvaluateSchedule",
            lambda t: self._stub.EvaluateSchedule(request, timeout=t),
            user_timeout + self.deadlines.evaluation_grace,
            retry=False,
        )
        if response.WhichOneof("result") == "error":
            raise user_code_error(response.error, self.location_name)
        return self._decoded("EvaluateSchedule", lambda: evaluation_from_proto(response.ok))

    def _server_info(self, rpc: str, info: pb.ServerInfo) -> ServerInfo:
        if not info.server_id:
            raise UndecodableAnswer(
                f"{self._where()} answered {rpc} without a server id; is this a Partita code server?",
                location=self.location_name,
                rpc=rpc,
            )
        return self._decoded(rpc, lambda: self._server_info_from_proto(info))

    def _server_info_from_proto(self, info: pb.ServerInfo) -> ServerInfo:
        target = info.load_target
        return ServerInfo(
            server_id=info.server_id,
            location_name=info.location_name,
            image=info.image,
            sdk_version=info.sdk_version,
            definitions_fingerprint=info.definitions_fingerprint,
            loaded_at=timestamp_from_proto(info.loaded_at),
            module_name=target.module_name or None,
            python_file=target.python_file or None,
            working_directory=target.working_directory or None,
            load_error=(
                UserCodeLoadFailed(info.load_error, location=self.location_name)
                if info.HasField("load_error")
                else None
            ),
        )

    def _call(self, rpc: str, invoke: Callable[[float], _T], deadline: float, *, retry: bool = True) -> _T:
        """Invoke within ``deadline`` seconds for every attempt together; retry UNAVAILABLE and
        DEADLINE_EXCEEDED with backoff while time is left; translate every failure."""
        ends = time.monotonic() + deadline

        def attempt() -> _T:
            return invoke(max(ends - time.monotonic(), 0.001))

        def retryable(error: grpc.RpcError, _: Exception) -> bool:
            return error.code() in RETRYABLE and ends - time.monotonic() > self._retry_backoff

        return call_with_retries(
            attempt,
            retries=self._retries if retry else 0,
            backoff=self._retry_backoff,
            translate=lambda error: self._translate(error, rpc, deadline),
            retryable=retryable,
        )

    def _decoded(self, rpc: str, decode: Callable[[], _T]) -> _T:
        """``decode()``, with any failure of a well-formed message that means nothing valid (an
        invalid key, an unknown partitions kind, a timestamp out of range) made :class:`InvalidDefinitions`."""
        try:
            return decode()
        except InvalidDefinitions:
            raise
        except Exception as error:  # whatever the converters raise, the server's answer is at fault
            raise InvalidDefinitions(
                f"{self._where()} answered {rpc} with definitions that are not valid: {error}",
                location=self.location_name,
                rpc=rpc,
            ) from error

    def _where(self) -> str:
        return f"The code server for code location {self.location_name!r} at {self.address}"

    def _translate(self, error: grpc.RpcError, rpc: str, deadline: float) -> CodeServerError:
        code: grpc.StatusCode = error.code()
        details: str = error.details() or code.name
        where = f"code location {self.location_name!r} at {self.address}"

        def made(kind: type[CodeServerError], message: str) -> CodeServerError:
            return kind(message, status=code, location=self.location_name, rpc=rpc, deadline=deadline)

        if code == grpc.StatusCode.DEADLINE_EXCEEDED:
            return made(
                CodeServerUnavailable,
                f"Code server for {where} gave no answer to {rpc} within {deadline:g} s; "
                "check that it is running and not stuck.",
            )
        if code in RETRYABLE:
            return made(
                CodeServerUnavailable,
                f"Code server for {where} is unavailable ({code.name}: {details}); check that it is running."
                + handshake_hint(details, self._tls),
            )
        if code == grpc.StatusCode.INTERNAL and details == _UNDECODABLE_DETAILS:
            return made(
                UndecodableAnswer,
                f"Code server for {where} answered {rpc} with bytes that are not a {rpc} response; "
                "is this a Partita code server of a compatible version?",
            )
        if code == grpc.StatusCode.NOT_FOUND:
            return made(DefinitionNotFound, f"{where}: {details}")
        if code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION):
            return made(InvalidRequest, f"{where}: {details}")
        return made(CodeServerError, f"{where}: {code.name}: {details}")


def _validated(snapshot: DefinitionsSnapshot) -> DefinitionsSnapshot:
    """The snapshot, once its asset graph builds (no asset twice, no unknown dependency, no cycle)."""
    snapshot.asset_graph  # noqa: B018  (building it is the check; it is cached for planning)
    return snapshot


def _duration(seconds: float) -> Duration:
    duration = Duration()
    duration.FromTimedelta(timedelta(seconds=seconds))
    return duration
