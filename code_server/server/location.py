"""The code a server serves: loaded definitions and their snapshot, or the error that stopped loading."""

from __future__ import annotations

import hashlib
import logging
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from code_server.definitions import Definitions
from code_server.errors import UserCodeLoadError
from code_server.loading import load_definitions
from code_server.version import __version__
from code_server.wire.assets import asset_node_to_proto
from code_server.wire.automation import schedule_to_proto, sensor_to_proto, user_code_error_to_proto
from code_server.wire.timestamps import timestamp_to_proto
from partita.codeserver.v1 import code_server_pb2 as pb
from partita.common.v1 import assets_pb2, automation_pb2, errors_pb2

logger = logging.getLogger("partita.code_server")


@dataclass(frozen=True, slots=True)
class LoadTarget:
    """Where the user's code comes from: ``-m module`` or ``-f file``, in a working directory."""

    module_name: str | None = None
    python_file: str | None = None
    working_directory: str | None = None


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The definitions as messages, built once per load so every call serves them without work."""

    definitions: Definitions
    assets: tuple[assets_pb2.AssetNode, ...]
    sensors: tuple[automation_pb2.SensorDefinition, ...]
    schedules: tuple[automation_pb2.ScheduleDefinition, ...]
    fingerprint: str


class LoadedLocation:
    """Holds the current load of a code location; ``reload`` swaps it atomically."""

    def __init__(self, target: LoadTarget, *, location_name: str, image: str = "") -> None:
        self.target = target
        self.location_name = location_name
        self.image = image
        #: New for each server process: the control plane sees a restart as a new id.
        self.server_id = uuid.uuid4().hex
        self._lock = threading.Lock()
        self._snapshot: Snapshot | None = None
        self._load_error: errors_pb2.UserCodeError | None = None
        self._loaded_at = datetime.now(UTC)
        self._load(fresh=False)

    @property
    def snapshot(self) -> Snapshot | None:
        return self._snapshot

    @property
    def load_error(self) -> errors_pb2.UserCodeError | None:
        return self._load_error

    def reload(self) -> None:
        self._load(fresh=True)

    def server_info(self) -> pb.ServerInfo:
        snapshot, load_error = self._snapshot, self._load_error
        info = pb.ServerInfo(
            server_id=self.server_id,
            location_name=self.location_name,
            image=self.image,
            sdk_version=__version__,
            definitions_fingerprint=snapshot.fingerprint if snapshot else "",
            loaded_at=timestamp_to_proto(self._loaded_at),
            load_target=pb.LoadTarget(
                module_name=self.target.module_name or "",
                python_file=self.target.python_file or "",
                working_directory=self.target.working_directory or "",
            ),
        )
        if load_error is not None:
            info.load_error.CopyFrom(load_error)
        return info

    def _load(self, *, fresh: bool) -> None:
        with self._lock:
            try:
                definitions = load_definitions(
                    module_name=self.target.module_name,
                    python_file=self.target.python_file,
                    working_directory=self.target.working_directory,
                    fresh=fresh,
                )
                snapshot = build_snapshot(definitions)
            except Exception as error:
                logger.exception("Could not load code location %s", self.location_name)
                if not isinstance(error, UserCodeLoadError):
                    error = _as_load_error(error)
                self._snapshot, self._load_error = (
                    None,
                    user_code_error_to_proto(error, errors_pb2.USER_CODE_ERROR_KIND_LOAD_FAILED),
                )
            else:
                self._snapshot, self._load_error = snapshot, None
            self._loaded_at = datetime.now(UTC)


def build_snapshot(definitions: Definitions) -> Snapshot:
    graph = definitions.asset_graph
    assets = tuple(asset_node_to_proto(graph.node(key)) for key in graph.keys)
    sensors = tuple(sensor_to_proto(definitions.sensors[name], graph) for name in sorted(definitions.sensors))
    schedules = tuple(
        schedule_to_proto(definitions.schedules[name], graph) for name in sorted(definitions.schedules)
    )
    digest = hashlib.sha256()
    for message in (*assets, *sensors, *schedules):
        payload = message.SerializeToString(deterministic=True)
        digest.update(len(payload).to_bytes(8, "big"))
        digest.update(payload)
    return Snapshot(definitions, assets, sensors, schedules, digest.hexdigest()[:16])


def _as_load_error(error: Exception) -> UserCodeLoadError:
    wrapped = UserCodeLoadError(f"Definitions are invalid: {error}")
    wrapped.__cause__ = error
    wrapped.__traceback__ = error.__traceback__
    return wrapped
