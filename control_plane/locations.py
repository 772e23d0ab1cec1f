"""Code locations the control plane knows: their servers, and the definitions last loaded from each.

Definitions are fetched once per (server id, fingerprint): a redeploy (new server id) or a reload
(new fingerprint) is noticed by ``refresh`` and the definitions are fetched again; running
backfills are not disturbed, they simply plan with the new graph from then on.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from code_server.asset_graph import AssetGraph
from code_server.client import (
    CodeServerClient,
    CodeServerError,
    CodeServerUnavailable,
    DefinitionsSnapshot,
    ServerInfo,
)
from code_server.client.errors import UserCodeLoadFailed
from control_plane.errors import LocationUnavailable, UnknownLocation
from control_plane.views import CodeLocationView
from launcher.base import CodeLocationTarget

logger = logging.getLogger("partita.control_plane.locations")


@dataclass
class _LocationState:
    name: str
    client: CodeServerClient
    info: ServerInfo | None = None
    snapshot: DefinitionsSnapshot | None = None
    error: str | None = None
    status: str = "unavailable"
    last_seen_at: datetime | None = None


class CodeLocations:
    """Thread-safe registry of code locations by name."""

    def __init__(
        self,
        addresses: Mapping[str, str],
        *,
        client_factory: Callable[[str, str], CodeServerClient] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        make_client = client_factory or (
            lambda name, address: CodeServerClient(address, location_name=name, timeout=10)
        )
        self._states = {
            name: _LocationState(name, make_client(name, address)) for name, address in addresses.items()
        }
        self._lock = threading.Lock()
        self._clock = clock

    @property
    def names(self) -> list[str]:
        return sorted(self._states)

    def refresh(self) -> dict[str, bool]:
        """Ask every server who it is; reload definitions where they changed. Returns name -> changed."""
        return {name: self.refresh_one(name) for name in self.names}

    def refresh_one(self, name: str) -> bool:
        state = self._state(name)
        try:
            info = state.client.server_info(timeout=5)
        except CodeServerError as error:
            with self._lock:
                was_available = state.status != "unavailable"
                state.status, state.error = "unavailable", str(error)
            if was_available:
                logger.warning("Code location %s became unavailable: %s", name, error)
            return was_available
        changed = (
            state.info is None
            or state.snapshot is None
            or info.server_id != state.info.server_id
            or info.definitions_fingerprint != state.info.definitions_fingerprint
        )
        snapshot = state.snapshot
        status, problem = "loaded", None
        if info.load_error is not None:
            status, problem, snapshot = "load_error", f"{info.load_error}\n{info.load_error.traceback}", None
        elif changed:
            try:
                snapshot = state.client.list_definitions()
            except UserCodeLoadFailed as load_error:
                status, problem, snapshot = "load_error", str(load_error), None
            except CodeServerUnavailable as unavailable:
                status, problem, snapshot = "unavailable", str(unavailable), state.snapshot
            else:
                logger.info(
                    "Loaded %d assets from code location %s (%s)",
                    len(snapshot.assets),
                    name,
                    info.definitions_fingerprint,
                )
        with self._lock:
            state.info, state.snapshot, state.status, state.error = info, snapshot, status, problem
            state.last_seen_at = self._clock()
        return changed

    def graph(self, name: str) -> AssetGraph:
        """The location's asset graph; raises :class:`LocationUnavailable` saying why there is none."""
        return self.snapshot(name).asset_graph

    def snapshot(self, name: str) -> DefinitionsSnapshot:
        state = self._state(name)
        if state.snapshot is None:
            self.refresh_one(name)
        if state.snapshot is None:
            raise LocationUnavailable(
                f"Code location {name!r} has no loaded definitions ({state.status}): {state.error or 'not reached yet'}"
            )
        return state.snapshot

    def client(self, name: str) -> CodeServerClient:
        """The location's code-server client (for evaluating its sensors and schedules)."""
        return self._state(name).client

    def is_available(self, name: str) -> bool:
        return self._state(name).status == "loaded"

    def launch_target(self, name: str) -> CodeLocationTarget:
        """How runs of this location load its code (module/file from the server, image for Kubernetes)."""
        state = self._state(name)
        if state.info is None:
            self.refresh_one(name)
        info = state.info
        if info is None:
            raise LocationUnavailable(f"Code location {name!r} is unavailable: {state.error}")
        return CodeLocationTarget(
            name=name,
            module_name=info.module_name,
            python_file=info.python_file,
            working_directory=info.working_directory,
            image=info.image or None,
        )

    def views(self) -> list[CodeLocationView]:
        views = []
        for name in self.names:
            state = self._states[name]
            info, snapshot = state.info, state.snapshot
            views.append(
                CodeLocationView(
                    name=name,
                    address=state.client.address,
                    status=state.status,
                    server_id=info.server_id if info else "",
                    fingerprint=info.definitions_fingerprint if info else "",
                    image=info.image if info else "",
                    sdk_version=info.sdk_version if info else "",
                    error=state.error,
                    asset_count=len(snapshot.assets) if snapshot else 0,
                    sensor_count=len(snapshot.sensors) if snapshot else 0,
                    schedule_count=len(snapshot.schedules) if snapshot else 0,
                    last_seen_at=state.last_seen_at,
                )
            )
        return views

    def close(self) -> None:
        for state in self._states.values():
            state.client.close()

    def _state(self, name: str) -> _LocationState:
        try:
            return self._states[name]
        except KeyError:
            known = ", ".join(self.names) or "none"
            raise UnknownLocation(f"Unknown code location {name!r}; known locations: {known}.") from None
