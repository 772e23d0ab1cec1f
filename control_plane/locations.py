"""Code locations the control plane knows: their servers, and the definitions last loaded from each.

Definitions are fetched once per (server id, fingerprint): a redeploy (new server id) or a reload
(new fingerprint) is noticed by a refresh and the definitions are fetched again; running
backfills are not disturbed, they simply plan with the new graph from then on.

Refreshes run on a pool of their own, one at a time per location and concurrently across
locations, and every call has a deadline (:class:`CodeServerDeadlines`): a server that hangs
delays only its own location, and never the planning loop, which reads what was last loaded and
never waits for a server.

While a location is not loaded (its server is unreachable, stuck, answers garbage, serves
invalid definitions or fails to import the user's module), the definitions last loaded from it
stay in use: its running backfills keep planning against them and their runs keep launching
(runs load the user's code themselves; they do not need the code server), so nothing is failed
because a server is briefly bad. New backfills of it are refused with UNAVAILABLE and the reason,
because a new request must be checked against the definitions the server serves now.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime

from code_server.asset_graph import AssetGraph
from code_server.client import (
    CodeServerClient,
    CodeServerDeadlines,
    CodeServerError,
    DefinitionsSnapshot,
    ServerInfo,
)
from control_plane.errors import LocationUnavailable, UnknownLocation, shown
from control_plane.location_health import (
    LocationProblem,
    LocationStatus,
    not_reached_yet,
    problem_from_error,
)
from control_plane.views import CodeLocationView
from launcher.base import CodeLocationTarget

logger = logging.getLogger("partita.control_plane.locations")

#: Seconds between refreshes when the caller does not say (shown in reasons: "retrying every 5 s").
DEFAULT_REFRESH_SECONDS = 5.0
_MAX_REFRESH_THREADS = 32


@dataclass
class _LocationState:
    name: str
    client: CodeServerClient
    #: The server info the loaded snapshot came from: the last good one.
    info: ServerInfo | None = None
    snapshot: DefinitionsSnapshot | None = None
    loaded_at: datetime | None = None
    #: None exactly when the location is loaded.
    problem: LocationProblem | None = None
    last_seen_at: datetime | None = None
    in_flight: Future[bool] | None = field(default=None, repr=False)

    @property
    def status(self) -> LocationStatus:
        return LocationStatus.LOADED if self.problem is None else self.problem.status


class CodeLocations:
    """Thread-safe registry of code locations by name, refreshed concurrently and off the caller."""

    def __init__(
        self,
        addresses: Mapping[str, str],
        *,
        client_factory: Callable[[str, str], CodeServerClient] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        deadlines: CodeServerDeadlines | None = None,
        refresh_seconds: float = DEFAULT_REFRESH_SECONDS,
        on_change: Callable[[str], object] | None = None,
    ) -> None:
        deadlines = deadlines or CodeServerDeadlines()
        make_client = client_factory or (
            lambda name, address: CodeServerClient(address, location_name=name, deadlines=deadlines)
        )
        now = clock()
        self._states = {
            name: _LocationState(name, make_client(name, address), problem=not_reached_yet(address, now))
            for name, address in addresses.items()
        }
        self._lock = threading.Lock()
        self._clock = clock
        self._refresh_seconds = refresh_seconds
        self._on_change = on_change
        self._closed = False
        # One thread per location: a refresh stuck until its deadline never holds up another location's.
        self._pool = ThreadPoolExecutor(
            max_workers=max(1, min(len(self._states), _MAX_REFRESH_THREADS)),
            thread_name_prefix="partita-location",
        )

    @property
    def names(self) -> list[str]:
        return sorted(self._states)

    def on_change(self, callback: Callable[[str], object]) -> None:
        """Call ``callback(name)`` (on a refresh thread) when a location's definitions change or it is
        loaded again after a problem: what was waiting on it can be planned again."""
        self._on_change = callback

    # --- refreshing ---------------------------------------------------------------------------

    def refresh(self, *, wait: bool = True) -> dict[str, bool]:
        """Refresh every location at once; with ``wait``, return name -> changed once each is done
        (at most the deadlines of its calls), else return {} at once and let them finish alone."""
        futures = {name: self.refresh_soon(name) for name in self.names}
        if not wait:
            return {}
        return {name: future.result() for name, future in futures.items()}

    def refresh_one(self, name: str) -> bool:
        """Refresh one location and wait for it; True when its definitions changed or it recovered."""
        return self.refresh_soon(name).result()

    def refresh_soon(self, name: str) -> Future[bool]:
        """Start refreshing ``name`` unless a refresh of it is already in flight; either way, its future."""
        state = self._state(name)
        with self._lock:
            if state.in_flight is not None and not state.in_flight.done():
                return state.in_flight
            if self._closed:  # an API call racing shutdown: nothing more is refreshed
                done: Future[bool] = Future()
                done.set_result(False)
                return done
            future = self._pool.submit(self._refresh_guarded, state)
            state.in_flight = future
            return future

    def _refresh_guarded(self, state: _LocationState) -> bool:
        try:
            changed = self._refresh(state)
        except Exception:  # a bug here must leave the location as it was, not kill the refresh thread
            logger.exception("Refreshing code location %s failed unexpectedly", state.name)
            return False
        if changed and self._on_change is not None:
            try:
                self._on_change(state.name)
            except Exception:
                logger.exception("Reacting to a change of code location %s failed", state.name)
        return changed

    def _refresh(self, state: _LocationState) -> bool:
        """Ask the server who it is, and fetch its definitions if they changed or were never loaded."""
        rpc = "GetServerInfo"
        try:
            info = state.client.server_info()
            with self._lock:
                state.last_seen_at = self._clock()
            if info.load_error is not None:
                raise info.load_error
            stale = (
                state.info is None
                or state.snapshot is None
                or info.server_id != state.info.server_id
                or info.definitions_fingerprint != state.info.definitions_fingerprint
            )
            rpc = "ListDefinitions"
            snapshot = state.client.list_definitions() if stale else state.snapshot
        except CodeServerError as error:
            if error.rpc is None:
                error.rpc = rpc
            self._record_problem(state, error)
            return False
        assert snapshot is not None
        with self._lock:
            recovered = state.problem is not None and state.snapshot is not None
            if recovered:
                logger.info("Code location %s is loaded again", state.name)
            if stale:
                state.info, state.snapshot, state.loaded_at = info, snapshot, self._clock()
            state.problem = None
        if stale:
            logger.info(
                "Loaded %d assets from code location %s (%s)",
                len(snapshot.assets),
                state.name,
                info.definitions_fingerprint,
            )
        return stale or recovered

    def _record_problem(self, state: _LocationState, error: CodeServerError) -> None:
        with self._lock:
            previous = state.problem
            problem = problem_from_error(
                error, address=state.client.address, now=self._clock(), previous=previous
            )
            state.problem = problem
        if previous is None or previous.kind is not problem.kind or not previous.consecutive_failures:
            logger.warning("Code location %s: %s", state.name, self._reason(state))

    # --- reading (never waits for a server) -----------------------------------------------------

    def graph(self, name: str) -> AssetGraph:
        """The graph last loaded from the location, for planning what is already running; raises
        :class:`LocationUnavailable` saying why there is none."""
        return self.snapshot(name).asset_graph

    def snapshot(self, name: str) -> DefinitionsSnapshot:
        """The definitions last loaded from the location, even while its server is bad."""
        state = self._state(name)
        with self._lock:
            snapshot = state.snapshot
        if snapshot is None:
            self.refresh_soon(name)  # so that a location that is back is noticed without a full interval
            raise LocationUnavailable(
                f"Code location {shown(name)} has no loaded definitions: {self._reason(state)}"
            )
        return snapshot

    def loaded_graph(self, name: str) -> AssetGraph:
        """The location's graph, only if it is loaded now: for checking new work (a new backfill)."""
        state = self._state(name)
        graph = self.graph(name)
        if state.problem is not None:
            self.refresh_soon(name)
            raise LocationUnavailable(
                f"Code location {shown(name)} is {self._reason(state)}. New backfills of it are refused "
                "until it is loaded again; its running backfills go on with the definitions last loaded."
            )
        return graph

    def client(self, name: str) -> CodeServerClient:
        """The location's code-server client (for evaluating its sensors and schedules)."""
        return self._state(name).client

    def is_available(self, name: str) -> bool:
        return self._state(name).status is LocationStatus.LOADED

    def launch_target(self, name: str) -> CodeLocationTarget:
        """How runs of this location load its code (module/file from the server, image for Kubernetes),
        as last loaded: runs do not need the code server, so they launch while it is bad."""
        state = self._state(name)
        with self._lock:
            info = state.info
        if info is None:
            self.refresh_soon(name)
            raise LocationUnavailable(f"Code location {shown(name)} is unavailable: {self._reason(state)}")
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
            with self._lock:
                info, snapshot, problem = state.info, state.snapshot, state.problem
                loaded_at, last_seen_at = state.loaded_at, state.last_seen_at
            views.append(
                CodeLocationView(
                    name=name,
                    address=state.client.address,
                    status=state.status,
                    server_id=info.server_id if info else "",
                    fingerprint=info.definitions_fingerprint if info else "",
                    image=info.image if info else "",
                    sdk_version=info.sdk_version if info else "",
                    error=self._reason(state) if problem is not None else None,
                    asset_count=len(snapshot.assets) if snapshot else 0,
                    sensor_count=len(snapshot.sensors) if snapshot else 0,
                    schedule_count=len(snapshot.schedules) if snapshot else 0,
                    last_seen_at=last_seen_at,
                    problem=problem,
                    definitions_loaded_at=loaded_at,
                    refresh_seconds=self._refresh_seconds,
                    using_last_good_definitions=problem is not None and snapshot is not None,
                )
            )
        return views

    def close(self) -> None:
        with self._lock:
            self._closed = True
        self._pool.shutdown(wait=False, cancel_futures=True)
        for state in self._states.values():
            state.client.close()

    def _reason(self, state: _LocationState) -> str:
        """The location's problem in one line an operator can act on (the traceback after it for a
        load error): ``UNAVAILABLE — no answer within 10 s from h:4000 (ListDefinitions); retrying every 5 s``."""
        with self._lock:
            problem, loaded_at = state.problem, state.loaded_at
        if problem is None:
            return "loaded"
        text = f"{problem.status.name} — {problem.message}"
        first_line, _, rest = text.partition("\n")
        first_line += f"; retrying every {self._refresh_seconds:g} s"
        if loaded_at is not None:
            first_line += (
                f"; planning uses the definitions loaded at {loaded_at:%Y-%m-%d %H:%M:%S %Z}".rstrip()
            )
        return f"{first_line}\n{rest}" if rest else first_line

    def _state(self, name: str) -> _LocationState:
        try:
            return self._states[name]
        except KeyError:
            known = ", ".join(self.names) or "none"
            raise UnknownLocation(f"Unknown code location {shown(name)}; known locations: {known}.") from None
