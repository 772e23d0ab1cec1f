"""Shared followers behind the API's long streams: many watchers, one query per change.

``WatchBackfill`` and ``GetRunLogs(follow)`` stay open for as long as a backfill or a run goes on, and a
busy installation has hundreds of them open (every ``backfill status --watch`` and ``runs logs --follow``,
every browser tab). Each open stream is a coroutine on the server's event loop, holding no thread; the
database work is shared and bounded: after a change (or every poll interval), one query tells which of
all watched backfills, or followed runs, changed, and a changed backfill's view is read once however
many streams watch it. The cost of a change grows with what changed, not with the streams open.

Reads run on an executor of their own, so streams never take the threads of unary calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Callable, Hashable, Iterator, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from control_plane.errors import TooManyStreams
from control_plane.records import PartitionSpan, RunEventRecord
from control_plane.views import BackfillView

logger = logging.getLogger("partita.control_plane.streams")

_T = TypeVar("_T")

#: The longest a change waits to be sent to its watchers, however many there are.
_MAX_GATHERING_SECONDS = 1.0
#: Open streams a control plane serves at once by default; each costs a coroutine and a little memory.
DEFAULT_MAX_OPEN_STREAMS = 10_000


class OpenStreams:
    """Counts open streams against a limit: beyond it a new stream is refused at once, clearly,
    instead of holding memory without bound (the loop thread only touches it, so no lock)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.open = 0

    @contextlib.contextmanager
    def held(self) -> Iterator[bool]:
        """Holds a place for one stream while the block runs; yields whether one was free."""
        if self.open >= self.limit:
            yield False
            return
        self.open += 1
        try:
            yield True
        finally:
            self.open -= 1

    def exhausted(self) -> TooManyStreams:
        return TooManyStreams(
            f"The control plane already serves {self.open} open streams (its limit, set by "
            "--max-open-streams); close some watches or log follows, or raise the limit. "
            "Unary calls (GetBackfill, ListRuns...) are still served."
        )


class StreamSource(Protocol):
    """What the hubs read: the service's views, and cheap marks that say what changed."""

    def get_backfill(self, backfill_id: str) -> BackfillView: ...

    def partition_changes(
        self, backfill_id: str, *, after: int | None
    ) -> tuple[int, Sequence[PartitionSpan]]: ...

    def backfill_change_marks(self, backfill_ids: Sequence[str]) -> Mapping[str, Hashable]: ...

    def run_log_heads(self, run_ids: Sequence[str]) -> Mapping[str, tuple[int, bool]]: ...

    def run_logs(
        self, run_id: str, *, after_sequence: int = 0, limit: int = 1000
    ) -> list[RunEventRecord]: ...


class ChangeSignal:
    """Wakes the hubs' coroutines from any thread: the control plane calls ``notify`` on every change."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._events: list[asyncio.Event] = []

    def notify(self) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # the loop is shutting down
            loop.call_soon_threadsafe(self._set_all)

    def event(self) -> asyncio.Event:
        """An event set on every ``notify`` (call on the loop that waits on it)."""
        self._loop = asyncio.get_running_loop()
        event = asyncio.Event()
        self._events.append(event)
        return event

    def _set_all(self) -> None:
        for event in self._events:
            event.set()


@dataclass
class WatchUpdate:
    """One message of a backfill watch: the backfill now, and the partitions changed since the last."""

    view: BackfillView
    changes: list[PartitionSpan] = field(default_factory=list)


class _Watcher:
    """One open watch: updates wait here until its stream sends them (merged if several pile up)."""

    def __init__(self, with_changes: bool) -> None:
        self.with_changes = with_changes
        self.pending: WatchUpdate | None = None
        self.error: Exception | None = None
        self.ready = asyncio.Event()

    def push(self, view: BackfillView, changes: Sequence[PartitionSpan]) -> None:
        if self.pending is None:
            self.pending = WatchUpdate(view)
        self.pending.view = view
        if self.with_changes:
            self.pending.changes.extend(changes)
        self.ready.set()

    def fail(self, error: Exception) -> None:
        self.error = error
        self.ready.set()


@dataclass
class _Watched:
    """A backfill with open watches: what was last sent, and who waits for the next change."""

    view: BackfillView
    sequence: int
    mark: Hashable
    watchers: set[_Watcher] = field(default_factory=set)


class BackfillWatchHub:
    """Serves every open ``WatchBackfill`` stream from one follower per control plane."""

    def __init__(
        self,
        source: StreamSource,
        executor: Executor,
        signal: ChangeSignal,
        *,
        poll_seconds: float = 5.0,
        coalesce_seconds: float = 0.05,
        seconds_per_watcher: float = 0.001,
    ) -> None:
        self._source = source
        self._executor = executor
        self._signal = signal
        self._poll_seconds = poll_seconds
        self._coalesce_seconds = coalesce_seconds
        self._seconds_per_watcher = seconds_per_watcher
        self._watched: dict[str, _Watched] = {}
        self._joining: dict[str, asyncio.Future[_Watched]] = {}
        self._pump: asyncio.Task[None] | None = None

    async def watch(self, backfill_id: str, *, with_changes: bool) -> AsyncIterator[WatchUpdate]:
        """The backfill now, then again after every change, until a final (terminal) view."""
        watched = await self._join(backfill_id)
        if watched.view.record.status.is_terminal:
            yield WatchUpdate(watched.view)
            return
        # Listening before the first message is sent, so that no change is missed meanwhile.
        watcher = _Watcher(with_changes)
        watched.watchers.add(watcher)
        self._ensure_pump()
        try:
            yield WatchUpdate(watched.view)
            while True:
                await watcher.ready.wait()
                watcher.ready.clear()
                if watcher.error is not None:
                    raise watcher.error
                update, watcher.pending = watcher.pending, None
                if update is None:
                    continue
                yield update
                if update.view.record.status.is_terminal:
                    return
        finally:
            watched.watchers.discard(watcher)
            if not watched.watchers and self._watched.get(backfill_id) is watched:
                del self._watched[backfill_id]

    async def _join(self, backfill_id: str) -> _Watched:
        """The backfill's shared state: read once, whoever asks first (the others wait for that read)."""
        if (watched := self._watched.get(backfill_id)) is not None:
            return watched
        if (joining := self._joining.get(backfill_id)) is not None:
            return await asyncio.shield(joining)
        future: asyncio.Future[_Watched] = asyncio.get_running_loop().create_future()
        self._joining[backfill_id] = future
        try:
            watched = await self._read(lambda: self._first_look(backfill_id))
        except Exception as error:
            future.set_exception(error)
            future.exception()  # retrieved: no "never retrieved" warning when nobody else waits
            raise
        finally:
            del self._joining[backfill_id]
        if not watched.view.record.status.is_terminal:
            self._watched[backfill_id] = watched
        future.set_result(watched)
        return watched

    def _first_look(self, backfill_id: str) -> _Watched:
        # The mark and the change sequence before the view, so that no change falls between them.
        mark = self._source.backfill_change_marks([backfill_id]).get(backfill_id)
        sequence = self._source.partition_changes(backfill_id, after=None)[0]
        return _Watched(self._source.get_backfill(backfill_id), sequence, mark)

    def _gathering_seconds(self) -> float:
        """How long changes gather before one look: longer with more watchers, so that a thousand
        streams get an update about once a second rather than sharing the server's time with it."""
        watchers = sum(len(entry.watchers) for entry in self._watched.values())
        return min(_MAX_GATHERING_SECONDS, self._coalesce_seconds + self._seconds_per_watcher * watchers)

    def _ensure_pump(self) -> None:
        if self._pump is None or self._pump.done():
            self._pump = asyncio.get_running_loop().create_task(self._follow(), name="backfill-watch-hub")

    async def _follow(self) -> None:
        wake = self._signal.event()
        while self._watched:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), self._poll_seconds)
            wake.clear()
            await asyncio.sleep(self._gathering_seconds())
            try:
                await self._look()
            except Exception:
                logger.exception("Watching backfills failed; looking again at the next change")

    async def _look(self) -> None:
        watched = dict(self._watched)
        if not watched:
            return
        marks = await self._read(lambda: self._source.backfill_change_marks(list(watched)))
        for backfill_id, entry in watched.items():
            mark = marks.get(backfill_id)
            if mark == entry.mark and mark is not None:
                continue
            try:
                sequence, changes, view = await self._read(
                    functools.partial(self._changed, backfill_id, entry)
                )
            except Exception as error:
                for watcher in list(entry.watchers):
                    watcher.fail(error)
                self._watched.pop(backfill_id, None)
                continue
            entry.mark, entry.sequence = mark, sequence
            if view == entry.view and not changes:
                continue
            entry.view = view
            for watcher in list(entry.watchers):
                watcher.push(view, changes)
            if view.record.status.is_terminal:
                self._watched.pop(backfill_id, None)

    def _changed(self, backfill_id: str, entry: _Watched) -> tuple[int, list[PartitionSpan], BackfillView]:
        wanted = any(watcher.with_changes for watcher in entry.watchers)
        sequence, changes = self._source.partition_changes(
            backfill_id, after=entry.sequence if wanted else None
        )
        return sequence, list(changes), self._source.get_backfill(backfill_id)

    async def _read(self, read: Callable[[], _T]) -> _T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, read)


class _Follower:
    """One ``GetRunLogs(follow)`` stream, woken when its run has new entries or ends."""

    def __init__(self, run_id: str, after: int) -> None:
        self.run_id = run_id
        self.after = after
        self.ready = asyncio.Event()


class RunLogHub:
    """Serves every following ``GetRunLogs`` stream: one query per poll tells which runs have news."""

    def __init__(
        self,
        source: StreamSource,
        executor: Executor,
        signal: ChangeSignal,
        *,
        poll_seconds: float = 0.5,
        page_size: int = 1000,
    ) -> None:
        self._source = source
        self._executor = executor
        self._signal = signal
        self._poll_seconds = poll_seconds
        self._page_size = page_size
        self._followers: set[_Follower] = set()
        self._pump: asyncio.Task[None] | None = None

    async def pages(self, run_id: str, *, after: int, follow: bool) -> AsyncIterator[list[RunEventRecord]]:
        """Pages of the run's log after ``after``; with ``follow``, new entries until the run ends."""
        if not follow:
            while True:
                entries = await self._page(run_id, after)
                if entries:
                    yield entries
                    after = entries[-1].sequence
                if len(entries) < self._page_size:
                    return
        follower = _Follower(run_id, after)
        self._followers.add(follower)
        self._ensure_pump()
        # Output a worker flushes as it exits may land just after its run ends: look once more for it.
        grace_looks = 1
        try:
            while True:
                # The status before the page: if the run had ended by then, the page holds its last lines.
                ended = (await self._read(lambda: self._source.run_log_heads([run_id]))).get(
                    run_id, (0, True)
                )[1]
                entries = await self._page(run_id, follower.after)
                if entries:
                    yield entries
                    follower.after = entries[-1].sequence
                if len(entries) >= self._page_size:
                    continue
                if ended and grace_looks == 0:
                    return
                if ended:
                    grace_looks -= 1
                await follower.ready.wait()
                follower.ready.clear()
        finally:
            self._followers.discard(follower)

    async def _page(self, run_id: str, after: int) -> list[RunEventRecord]:
        return await self._read(
            lambda: self._source.run_logs(run_id, after_sequence=after, limit=self._page_size)
        )

    def _ensure_pump(self) -> None:
        if self._pump is None or self._pump.done():
            self._pump = asyncio.get_running_loop().create_task(self._follow(), name="run-log-hub")

    async def _follow(self) -> None:
        wake = self._signal.event()
        while self._followers:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), self._poll_seconds)
            wake.clear()
            followers = list(self._followers)
            if not followers:
                return
            run_ids = sorted({follower.run_id for follower in followers})
            try:
                heads = await self._read(functools.partial(self._source.run_log_heads, run_ids))
            except Exception:
                logger.exception("Following run logs failed; looking again at the next poll")
                continue
            for follower in followers:
                last, ended = heads.get(follower.run_id, (0, True))
                if last > follower.after or ended:
                    follower.ready.set()

    async def _read(self, read: Callable[[], _T]) -> _T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, read)
