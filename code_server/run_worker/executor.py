"""Execute a run: the selected assets, parents first, each over the run's partition key or range."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from code_server.asset_key import AssetKey
from code_server.context import AssetExecutionContext
from code_server.definitions import Definitions
from code_server.errors import PartitaError
from code_server.partitions.base import DynamicPartitionsStore
from code_server.partitions.keys import PartitionKeyRange
from code_server.run_worker.events import (
    ErrorInfo,
    EventSink,
    PartitionFailed,
    PartitionMaterialized,
    RunFinished,
    RunStarted,
)

logger = logging.getLogger("partita.run_worker")


class RunOutcome(Enum):
    SUCCESS = 0
    #: At least one asset failed (or did not run because its parent failed).
    ASSET_FAILED = 1
    #: Nothing ran: the plan does not fit the code (unknown asset, key outside the definition, ...).
    INVALID = 2


@dataclass(frozen=True, slots=True)
class RunPlan:
    """What one run executes, as passed on the command line or in the environment."""

    run_id: str
    asset_keys: tuple[AssetKey, ...]
    partition_range: PartitionKeyRange | None


def execute_run(
    definitions: Definitions,
    plan: RunPlan,
    sink: EventSink,
    dynamic_partitions_store: DynamicPartitionsStore | None = None,
) -> RunOutcome:
    """Run every asset of ``plan``; SUCCESS only when all of them materialized.

    A failing asset fails its descendants in the run (reported as upstream-failed) and the other
    assets go on. An asset's arguments receive its parents' return values when the parent ran
    earlier in this run, and None otherwise (Partita leaves storage to the asset's own code).
    """
    sink.emit(RunStarted(plan.run_id))
    try:
        order = _validated_order(definitions, plan, dynamic_partitions_store)
    except PartitaError as error:
        sink.emit(RunFinished(plan.run_id, success=False, error=ErrorInfo.from_exception(error)))
        return RunOutcome.INVALID

    outputs: dict[AssetKey, Any] = {}
    failed: dict[AssetKey, AssetKey] = {}  # asset -> the asset whose failure it inherits
    for key in order:
        assets_def = definitions.get_asset(key)
        key_range = plan.partition_range if assets_def.partitions_def is not None else None
        failed_parent = next((parent for parent in assets_def.node.parent_keys if parent in failed), None)
        if failed_parent is not None:
            origin = failed[failed_parent]
            failed[key] = origin
            message = f"Not run: upstream asset {origin.to_user_string()!r} failed in this run."
            sink.emit(
                PartitionFailed(
                    plan.run_id,
                    key,
                    key_range,
                    ErrorInfo(message, "UpstreamFailed", ""),
                    upstream_failed=True,
                )
            )
            continue
        context = AssetExecutionContext(
            asset_key=key,
            run_id=plan.run_id,
            partitions_def=assets_def.partitions_def,
            partition_key_range=key_range,
            dynamic_partitions_store=dynamic_partitions_store,
        )
        arguments = {dep.input_name: outputs.get(dep.asset_key) for dep in assets_def.deps if dep.input_name}
        try:
            if assets_def.takes_context:
                outputs[key] = assets_def.compute_fn(context, **arguments)
            else:
                outputs[key] = assets_def.compute_fn(**arguments)
        except Exception as error:
            logger.exception("Asset %s failed in run %s", key.to_user_string(), plan.run_id)
            failed[key] = key
            sink.emit(PartitionFailed(plan.run_id, key, key_range, ErrorInfo.from_exception(error)))
            continue
        # A line per asset on stderr: what `kubectl logs` or a run's log file shows an operator.
        logger.info("Materialized %s %s", key.to_user_string(), _range_text(key_range))
        sink.emit(PartitionMaterialized(plan.run_id, key, key_range))
    sink.emit(RunFinished(plan.run_id, success=not failed))
    return RunOutcome.ASSET_FAILED if failed else RunOutcome.SUCCESS


def _range_text(key_range: PartitionKeyRange | None) -> str:
    if key_range is None:
        return "(unpartitioned)"
    return key_range.start if key_range.start == key_range.end else str(key_range)


def _validated_order(
    definitions: Definitions, plan: RunPlan, dynamic_partitions_store: DynamicPartitionsStore | None
) -> Sequence[AssetKey]:
    """Check the plan against the code before running anything, so a bad run fails whole and early."""
    order = definitions.asset_graph.toposort(plan.asset_keys)
    for key in order:
        partitions_def = definitions.get_asset(key).partitions_def
        if partitions_def is not None and plan.partition_range is None:
            raise PartitaError(
                f"Asset {key.to_user_string()!r} is partitioned: pass --partition-key or --partition-range."
            )
        if partitions_def is not None and plan.partition_range is not None:
            partitions_def.get_partition_keys_in_range(plan.partition_range, dynamic_partitions_store)
    return order
