"""Turn a tick's requests into backfills and runs, idempotently by tick.

Every request gets an id derived from the tick and its position: a backfill's launch ``request_id``
is ``tick:{tick_id}:{index}`` and a plain run's id is ``{tick_id}r{index}``. Submitting a resumed tick
again therefore finds what the first attempt created instead of creating it twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime

from code_server.asset_key import AssetKey
from code_server.partitions.keys import PartitionKeyRange
from code_server.wire.automation import BackfillRequestSpec, EvaluationResult, RunRequestSpec
from control_plane.backfills.engine import BackfillEngine
from control_plane.errors import InvalidBackfillRequest
from control_plane.locations import CodeLocations
from control_plane.records import RunRecord, RunStatus
from control_plane.storage import Database, RunAlreadyExists, RunKeyAlreadyUsed, RunStore
from control_plane.storage.instigators import InstigatorRef, TickRecord
from control_plane.views import BackfillPlanView, LaunchOptions

logger = logging.getLogger("partita.control_plane.automation")

#: Tags on what a tick creates, naming the sensor or schedule and the tick.
INSTIGATOR_TAG = "partita/instigator"
TICK_ID_TAG = "partita/tick_id"


@dataclass(frozen=True, slots=True)
class Submitted:
    backfill_ids: tuple[str, ...]
    run_ids: tuple[str, ...]


def backfill_request_id(tick_id: str, index: int) -> str:
    return f"tick:{tick_id}:{index}"


def run_id_for(tick_id: str, index: int) -> str:
    return f"{tick_id}r{index}"


class RequestSubmitter:
    def __init__(
        self,
        database: Database,
        engine: BackfillEngine,
        locations: CodeLocations,
        *,
        clock: Callable[[], datetime],
        wake: Callable[[], None],
    ) -> None:
        self._runs = RunStore(database)
        self._engine = engine
        self._locations = locations
        self._clock = clock
        self._wake = wake

    def submit(self, tick: TickRecord, targets: tuple[AssetKey, ...], result: EvaluationResult) -> Submitted:
        """Launch each backfill request and queue each run request; raises on the first that is invalid.

        ``targets`` is the instigator's asset selection, used by requests that name no assets.
        """
        ref = tick.ref
        tags = {INSTIGATOR_TAG: f"{ref.instigator_type.value}:{ref.name}", TICK_ID_TAG: tick.id}
        backfill_ids = [
            self._launch_backfill(ref, tick.id, index, request, targets, tags)
            for index, request in enumerate(result.backfill_requests)
        ]
        run_ids = [
            run_id
            for index, request in enumerate(result.run_requests)
            if (run_id := self._queue_run(ref, tick.id, index, request, targets, tags)) is not None
        ]
        if run_ids:
            self._wake()
        return Submitted(tuple(backfill_ids), tuple(run_ids))

    def _launch_backfill(
        self,
        ref: InstigatorRef,
        tick_id: str,
        index: int,
        request: BackfillRequestSpec,
        targets: tuple[AssetKey, ...],
        tags: dict[str, str],
    ) -> str:
        spec = request if request.asset_keys else replace(request, asset_keys=targets)
        options = LaunchOptions(
            location=ref.location,
            title=request.title,
            description=request.description,
            tags={**request.tags, **tags},
            origin=f"{ref.instigator_type.value}:{ref.name}",
            request_id=backfill_request_id(tick_id, index),
        )
        launched = self._engine.launch(spec, options)
        assert not isinstance(launched, BackfillPlanView)  # not a dry run
        return launched

    def _queue_run(
        self,
        ref: InstigatorRef,
        tick_id: str,
        index: int,
        request: RunRequestSpec,
        targets: tuple[AssetKey, ...],
        tags: dict[str, str],
    ) -> str | None:
        """The queued run's id; None when its run key was used before (the request is deduplicated)."""
        run_id = run_id_for(tick_id, index)
        if request.run_key is not None:
            existing = self._runs.find_by_run_key(ref.location, request.run_key)
            if existing is not None:
                return run_id if existing.id == run_id else None
        asset_keys = request.asset_keys or targets
        if not asset_keys:
            raise InvalidBackfillRequest(
                f"A run request of {ref} names no assets and the {ref.instigator_type.value} targets none."
            )
        graph = self._locations.graph(ref.location)
        graph.validate_keys(asset_keys)
        key = request.partition_key
        if key is not None:
            for asset_key in asset_keys:
                definition = graph.node(asset_key).partitions_def
                if definition is None or not definition.has_partition_key(key):
                    raise InvalidBackfillRequest(
                        f"Run request of {ref}: partition key {key!r} is not a partition of {asset_key}."
                    )
        now = self._clock()
        record = RunRecord(
            id=run_id,
            location=ref.location,
            asset_keys=tuple(asset_keys),
            status=RunStatus.QUEUED,
            created_at=now,
            updated_at=now,
            partition_range=PartitionKeyRange(key, key) if key is not None else None,
            partition_count=1,
            tags={**request.tags, **tags},
            run_key=request.run_key,
        )
        try:
            self._runs.create_many([record])
        except RunAlreadyExists:
            return run_id  # created by this tick before a crash
        except RunKeyAlreadyUsed:
            logger.info("Run key %r of %s was used already; no new run", request.run_key, ref)
            return None
        return run_id
