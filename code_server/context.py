"""The context an asset function receives: which partitions it computes, in which run."""

from __future__ import annotations

import logging

from code_server.asset_key import AssetKey
from code_server.errors import ContextError
from code_server.partitions.base import DynamicPartitionsStore, PartitionsDefinition
from code_server.partitions.keys import PartitionKeyRange, TimeWindow


class AssetExecutionContext:
    """What one asset computes in one run: a single partition key, a range of them, or no partition.

    In a run over a range (a backfill policy at work), ``partition_key`` raises and points to
    ``partition_key_range``, ``partition_keys`` and ``partition_time_window``, which work for both.
    """

    def __init__(
        self,
        *,
        asset_key: AssetKey,
        run_id: str,
        partitions_def: PartitionsDefinition | None = None,
        partition_key_range: PartitionKeyRange | None = None,
        log: logging.Logger | None = None,
        dynamic_partitions_store: DynamicPartitionsStore | None = None,
    ) -> None:
        if partition_key_range is not None and partitions_def is None:
            raise ContextError(
                f"Asset {asset_key.to_user_string()!r} is not partitioned, but the run targets "
                f"partitions {partition_key_range}."
            )
        self._asset_key = asset_key
        self._run_id = run_id
        self._partitions_def = partitions_def
        self._partition_key_range = partition_key_range
        self._dynamic_partitions_store = dynamic_partitions_store
        self._log = log or logging.getLogger(f"partita.asset.{asset_key.to_user_string()}")
        self._partition_keys: list[str] | None = None

    @property
    def asset_key(self) -> AssetKey:
        return self._asset_key

    @property
    def run_id(self) -> str:
        return self._run_id

    @property
    def log(self) -> logging.Logger:
        return self._log

    @property
    def partitions_def(self) -> PartitionsDefinition | None:
        return self._partitions_def

    @property
    def has_partition_key(self) -> bool:
        """True when the run computes exactly one partition."""
        key_range = self._partition_key_range
        return key_range is not None and key_range.start == key_range.end

    @property
    def has_partition_key_range(self) -> bool:
        return self._partition_key_range is not None

    @property
    def partition_key(self) -> str:
        """The one partition this run computes."""
        key_range = self._require_partitions("partition_key")
        if key_range.start != key_range.end:
            raise ContextError(
                f"context.partition_key is undefined for asset {self._asset_key.to_user_string()!r}: this run "
                f"covers the partition range {key_range}. Use context.partition_key_range, "
                "context.partition_keys or context.partition_time_window instead."
            )
        return key_range.start

    @property
    def partition_key_range(self) -> PartitionKeyRange:
        """First and last partition of the run, inclusive (start == end for a single partition)."""
        return self._require_partitions("partition_key_range")

    @property
    def partition_keys(self) -> list[str]:
        """Every partition key of the run, in order."""
        key_range = self._require_partitions("partition_keys")
        if self._partition_keys is None:
            assert self._partitions_def is not None
            self._partition_keys = list(
                self._partitions_def.get_partition_keys_in_range(
                    key_range, dynamic_partitions_store=self._dynamic_partitions_store
                )
            )
        return self._partition_keys

    @property
    def partition_time_window(self) -> TimeWindow:
        """Start (inclusive) and end (exclusive) of the time the run's partitions cover."""
        key_range = self._require_partitions("partition_time_window")
        window_for_range = getattr(self._partitions_def, "time_window_for_partition_key_range", None)
        if window_for_range is None:
            raise ContextError(
                f"context.partition_time_window needs time-window partitions, but asset "
                f"{self._asset_key.to_user_string()!r} is partitioned by {self._partitions_def!r}."
            )
        window: TimeWindow = window_for_range(key_range)
        return window

    def _require_partitions(self, attribute: str) -> PartitionKeyRange:
        if self._partition_key_range is None:
            raise ContextError(
                f"context.{attribute} is undefined: asset {self._asset_key.to_user_string()!r} runs "
                "without partitions in this run."
            )
        return self._partition_key_range

    def __repr__(self) -> str:
        target = f" {self._partition_key_range}" if self._partition_key_range else ""
        return f"<AssetExecutionContext {self._asset_key.to_user_string()}{target} run={self._run_id}>"


#: Dagster's older name for the same context.
OpExecutionContext = AssetExecutionContext
