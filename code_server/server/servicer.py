"""The ``partita.codeserver.v1.CodeServer`` service.

Infrastructure problems are gRPC status codes (NOT_FOUND for an unknown sensor, INVALID_ARGUMENT for
a key that is not a partition or any malformed field, which ``code_server.server.validation`` checks
first); problems in the user's code are typed ``UserCodeError`` results.
"""

from __future__ import annotations

import concurrent.futures
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import NoReturn

import grpc
import pendulum

from code_server.errors import PartitaError, PartitionKeyError, UnknownDefinitionError
from code_server.evaluation import TickEvaluation, evaluate_schedule, evaluate_sensor
from code_server.schedules import ScheduleEvaluationContext
from code_server.sensors import SensorEvaluationContext
from code_server.server.location import LoadedLocation
from code_server.server.validation import check_request
from code_server.wire.assets import asset_key_from_proto
from code_server.wire.automation import (
    schedule_result_to_proto,
    sensor_result_to_proto,
    user_code_error_to_proto,
)
from code_server.wire.partitions import key_range_from_proto
from code_server.wire.timestamps import timestamp_from_proto
from partita.codeserver.v1 import code_server_pb2 as pb
from partita.codeserver.v1 import code_server_pb2_grpc
from partita.common.v1 import errors_pb2

#: Assets per ListDefinitions message: ~100 KB for daily-partitioned assets, far below gRPC's 4 MB.
ASSETS_PER_CHUNK = 500
#: Keys per GetPartitionKeys message.
KEYS_PER_CHUNK = 10_000
#: How long user code may run when the caller sets neither a timeout nor a deadline.
DEFAULT_EVALUATION_TIMEOUT = timedelta(seconds=60)

_Evaluate = Callable[[], TickEvaluation]


class CodeServerServicer(code_server_pb2_grpc.CodeServerServicer):
    def __init__(self, location: LoadedLocation) -> None:
        self._location = location
        self._user_code = UserCodeRunner()

    def GetServerInfo(
        self, request: pb.GetServerInfoRequest, context: grpc.ServicerContext
    ) -> pb.GetServerInfoResponse:
        check_request(request, context)
        return pb.GetServerInfoResponse(server_info=self._location.server_info())

    def Reload(self, request: pb.ReloadRequest, context: grpc.ServicerContext) -> pb.ReloadResponse:
        check_request(request, context)
        self._location.reload()
        return pb.ReloadResponse(server_info=self._location.server_info())

    def ListDefinitions(
        self, request: pb.ListDefinitionsRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.ListDefinitionsResponse]:
        check_request(request, context)
        snapshot = self._location.snapshot
        if snapshot is None:
            yield pb.ListDefinitionsResponse(load_error=self._location.load_error)
            return
        assets = snapshot.assets
        yield pb.ListDefinitionsResponse(
            definitions_fingerprint=snapshot.fingerprint,
            assets=assets[:ASSETS_PER_CHUNK],
            sensors=snapshot.sensors,
            schedules=snapshot.schedules,
        )
        for start in range(ASSETS_PER_CHUNK, len(assets), ASSETS_PER_CHUNK):
            yield pb.ListDefinitionsResponse(
                definitions_fingerprint=snapshot.fingerprint, assets=assets[start : start + ASSETS_PER_CHUNK]
            )

    def GetPartitionKeys(
        self, request: pb.GetPartitionKeysRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.GetPartitionKeysResponse]:
        check_request(request, context)
        snapshot = self._location.snapshot
        if snapshot is None:
            yield pb.GetPartitionKeysResponse(load_error=self._location.load_error)
            return
        key = asset_key_from_proto(request.asset_key)
        try:
            partitions_def = snapshot.definitions.asset_graph.node(key).partitions_def
        except UnknownDefinitionError as error:
            _abort(context, grpc.StatusCode.NOT_FOUND, str(error))
        if partitions_def is None:
            _abort(
                context,
                grpc.StatusCode.INVALID_ARGUMENT,
                f"Asset {key.to_user_string()!r} is not partitioned.",
            )
        try:
            if request.HasField("range"):
                keys = partitions_def.get_partition_keys_in_range(key_range_from_proto(request.range))
            else:
                as_of = timestamp_from_proto(request.as_of) if request.HasField("as_of") else None
                keys = partitions_def.get_partition_keys(current_time=as_of)
        except PartitionKeyError as error:
            _abort(context, grpc.StatusCode.INVALID_ARGUMENT, f"Asset {key.to_user_string()!r}: {error}")
        except PartitaError as error:
            _abort(context, grpc.StatusCode.FAILED_PRECONDITION, f"Asset {key.to_user_string()!r}: {error}")
        for start in range(0, max(len(keys), 1), KEYS_PER_CHUNK):
            yield pb.GetPartitionKeysResponse(partition_keys=keys[start : start + KEYS_PER_CHUNK])

    def EvaluateSensor(
        self, request: pb.EvaluateSensorRequest, context: grpc.ServicerContext
    ) -> pb.EvaluateSensorResponse:
        check_request(request, context)
        snapshot = self._location.snapshot
        if snapshot is None:
            return pb.EvaluateSensorResponse(error=self._location.load_error)
        try:
            sensor = snapshot.definitions.get_sensor(request.sensor_name)
        except UnknownDefinitionError as error:
            _abort(context, grpc.StatusCode.NOT_FOUND, str(error))
        evaluation_context = SensorEvaluationContext(
            cursor=request.cursor if request.HasField("cursor") else None,
            last_tick_completion_time=(
                timestamp_from_proto(request.last_tick_completion_time)
                if request.HasField("last_tick_completion_time")
                else None
            ),
            sensor_name=sensor.name,
        )
        outcome = self._user_code.run(
            lambda: evaluate_sensor(sensor, evaluation_context, snapshot.definitions.asset_graph),
            _timeout(request.timeout.ToTimedelta() if request.HasField("timeout") else None, context),
            what=f"Sensor {sensor.name!r}",
        )
        if isinstance(outcome, errors_pb2.UserCodeError):
            return pb.EvaluateSensorResponse(error=outcome)
        return pb.EvaluateSensorResponse(ok=sensor_result_to_proto(outcome))

    def EvaluateSchedule(
        self, request: pb.EvaluateScheduleRequest, context: grpc.ServicerContext
    ) -> pb.EvaluateScheduleResponse:
        check_request(request, context)
        snapshot = self._location.snapshot
        if snapshot is None:
            return pb.EvaluateScheduleResponse(error=self._location.load_error)
        try:
            schedule = snapshot.definitions.get_schedule(request.schedule_name)
        except UnknownDefinitionError as error:
            _abort(context, grpc.StatusCode.NOT_FOUND, str(error))
        if not request.HasField("scheduled_execution_time"):
            _abort(
                context, grpc.StatusCode.INVALID_ARGUMENT, "EvaluateSchedule needs scheduled_execution_time."
            )
        tick = timestamp_from_proto(request.scheduled_execution_time).astimezone(
            pendulum.timezone(schedule.execution_timezone)
        )
        evaluation_context = ScheduleEvaluationContext(
            scheduled_execution_time=tick, schedule_name=schedule.name
        )
        outcome = self._user_code.run(
            lambda: evaluate_schedule(schedule, evaluation_context, snapshot.definitions.asset_graph),
            _timeout(request.timeout.ToTimedelta() if request.HasField("timeout") else None, context),
            what=f"Schedule {schedule.name!r}",
        )
        if isinstance(outcome, errors_pb2.UserCodeError):
            return pb.EvaluateScheduleResponse(error=outcome)
        return pb.EvaluateScheduleResponse(ok=schedule_result_to_proto(outcome))


def _timeout(requested: timedelta | None, context: grpc.ServicerContext) -> float:
    """The shortest of the requested timeout, the call's deadline and the default."""
    candidates = [DEFAULT_EVALUATION_TIMEOUT.total_seconds()]
    if requested is not None and requested > timedelta(0):
        candidates.append(requested.total_seconds())
    remaining = context.time_remaining()
    if remaining is not None:
        candidates.append(max(remaining - 0.05, 0.001))  # leave time to send the answer
    return min(candidates)


class UserCodeRunner:
    """Runs user code on pooled threads and stops waiting at a deadline.

    Python cannot kill a thread: a sensor cut off at its deadline is reported as timed out and
    its thread abandoned (its result discarded). The pool it occupies is then replaced, so stuck
    sensors never starve the next evaluations. Reusing threads keeps an evaluation well under a
    millisecond, where starting a thread per call would not.
    """

    def __init__(self, workers: int = 4) -> None:
        self._workers = workers
        self._lock = threading.Lock()
        self._executor = self._new_executor()

    def run(
        self, evaluate: _Evaluate, timeout: float, *, what: str
    ) -> TickEvaluation | errors_pb2.UserCodeError:
        with self._lock:
            executor = self._executor
        future = executor.submit(_capture, evaluate)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            with self._lock:
                if self._executor is executor:
                    self._executor = self._new_executor()
            executor.shutdown(wait=False)
            return errors_pb2.UserCodeError(
                kind=errors_pb2.USER_CODE_ERROR_KIND_TIMED_OUT,
                message=f"{what} did not finish within its deadline of {timeout:.1f}s and was cut off.",
                class_name="TimeoutError",
            )

    def _new_executor(self) -> concurrent.futures.ThreadPoolExecutor:
        return concurrent.futures.ThreadPoolExecutor(self._workers, thread_name_prefix="user-code")


def _capture(evaluate: _Evaluate) -> TickEvaluation | errors_pb2.UserCodeError:
    try:
        return evaluate()
    except Exception as error:
        return user_code_error_to_proto(error)


def _abort(context: grpc.ServicerContext, code: grpc.StatusCode, message: str) -> NoReturn:
    context.abort(code, message)
    raise AssertionError("unreachable: context.abort raises")
