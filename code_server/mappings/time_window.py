"""Time-window partitions read the upstream partitions whose windows overlap theirs, optionally shifted."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from code_server.errors import DefinitionError
from code_server.mappings.base import (
    PartitionMapping,
    UpstreamPartitionsResult,
    reject_single_string,
    require_downstream_keys,
)
from code_server.mappings.window_indices import (
    clip_runs,
    index_runs,
    indices_overlapping,
    keys_of_runs,
    merge_runs,
)
from code_server.partitions.base import DynamicPartitionsStore, PartitionsDefinition
from code_server.partitions.time_window import TimeWindowPartitionsDefinition


@dataclass(frozen=True)
class TimeWindowPartitionMapping(PartitionMapping):
    """Maps a downstream time window to the upstream partitions that overlap it, as in Dagster.

    Between equal definitions this is the identity; from hourly to daily each hour reads its day;
    from daily to hourly each day reads its 23, 24 or 25 hours.

    Args:
        start_offset: Moves the start of the window by this many partitions; ``-1`` with
            ``end_offset=-1`` reads the previous partition ("yesterday"). As in Dagster, offsets count
            partitions of the *downstream* definition.
        end_offset: Moves the end of the window by this many downstream partitions.
        allow_nonexistent_upstream_partitions: If true, upstream partitions that the window reaches
            but that do not exist (before the first one, or not yet ended) are dropped instead of
            being reported as required but nonexistent.
    """

    start_offset: int = 0
    end_offset: int = 0
    allow_nonexistent_upstream_partitions: bool = False

    def __post_init__(self) -> None:
        for name in ("start_offset", "end_offset"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise DefinitionError(f"TimeWindowPartitionMapping {name} must be an int, got {value!r}.")
        if not isinstance(self.allow_nonexistent_upstream_partitions, bool):
            raise DefinitionError(
                "TimeWindowPartitionMapping allow_nonexistent_upstream_partitions must be a bool, got "
                f"{self.allow_nonexistent_upstream_partitions!r}."
            )
        if self.start_offset > self.end_offset:
            raise DefinitionError(
                f"{self!r} starts after it ends, so it would map every partition to nothing; "
                "start_offset must not exceed end_offset."
            )

    @property
    def is_identity_like(self) -> bool:
        return self.start_offset == 0 and self.end_offset == 0

    def validate_partition_mapping(
        self,
        upstream_partitions_def: PartitionsDefinition | None,
        downstream_partitions_def: PartitionsDefinition | None,
    ) -> None:
        self._time_window_defs(downstream_partitions_def, upstream_partitions_def)

    def get_upstream_mapped_partitions_result_for_partitions(
        self,
        downstream_partition_keys: Sequence[str] | None,
        downstream_partitions_def: PartitionsDefinition | None,
        upstream_partitions_def: PartitionsDefinition,
        current_time: datetime | None = None,
        dynamic_partitions_store: DynamicPartitionsStore | None = None,
    ) -> UpstreamPartitionsResult:
        keys, _ = require_downstream_keys(self, downstream_partition_keys, downstream_partitions_def)
        downstream, upstream = self._time_window_defs(downstream_partitions_def, upstream_partitions_def)
        upstream_runs = []
        for first, last in index_runs(downstream, keys, f"{self!r} cannot map downstream partition key"):
            start = downstream.time_window_at_index(first + self.start_offset).start
            end = downstream.time_window_at_index(last + self.end_offset).end
            upstream_runs.append(indices_overlapping(upstream, start, end))
        runs = merge_runs(upstream_runs)

        last_existing = upstream.num_partitions(current_time) - 1
        existing = keys_of_runs(upstream, clip_runs(runs, 0, last_existing))
        missing: tuple[str, ...] = ()
        if not self.allow_nonexistent_upstream_partitions:
            outside = clip_runs(runs, _MIN_INDEX, -1) + clip_runs(runs, last_existing + 1, _MAX_INDEX)
            missing = keys_of_runs(upstream, outside)
        return UpstreamPartitionsResult(existing, missing)

    def get_downstream_partitions_for_partitions(
        self,
        upstream_partition_keys: Sequence[str],
        upstream_partitions_def: PartitionsDefinition,
        downstream_partitions_def: PartitionsDefinition | None,
        current_time: datetime | None = None,
        dynamic_partitions_store: DynamicPartitionsStore | None = None,
    ) -> Sequence[str]:
        reject_single_string(self, upstream_partition_keys, "upstream")
        downstream, upstream = self._time_window_defs(downstream_partitions_def, upstream_partitions_def)
        readers = []
        for first, last in index_runs(
            upstream, upstream_partition_keys, f"{self!r} cannot map upstream partition key"
        ):
            start = upstream.time_window_at_index(first).start
            end = upstream.time_window_at_index(last).end
            low, high = indices_overlapping(downstream, start, end)
            # Downstream partition i reads downstream windows i + start_offset .. i + end_offset
            # (re-expressed upstream), which overlap [low, high] exactly when i is in this run:
            readers.append((low - self.end_offset, high - self.start_offset))
        last_existing = downstream.num_partitions(current_time) - 1
        return keys_of_runs(downstream, clip_runs(merge_runs(readers), 0, last_existing))

    def _time_window_defs(
        self,
        downstream_partitions_def: PartitionsDefinition | None,
        upstream_partitions_def: PartitionsDefinition | None,
    ) -> tuple[TimeWindowPartitionsDefinition, TimeWindowPartitionsDefinition]:
        for role, partitions_def in (
            ("downstream", downstream_partitions_def),
            ("upstream", upstream_partitions_def),
        ):
            if not isinstance(partitions_def, TimeWindowPartitionsDefinition):
                raise DefinitionError(
                    f"{self!r} maps between time-window partitions definitions, but the {role} partitions "
                    f"definition is {partitions_def!r}; use a mapping made for it (e.g. "
                    "StaticPartitionMapping or IdentityPartitionMapping)."
                )
        assert isinstance(downstream_partitions_def, TimeWindowPartitionsDefinition)
        assert isinstance(upstream_partitions_def, TimeWindowPartitionsDefinition)
        if downstream_partitions_def.timezone != upstream_partitions_def.timezone:
            raise DefinitionError(
                f"{self!r} maps between time zones {downstream_partitions_def.timezone!r} (downstream "
                f"{downstream_partitions_def!r}) and {upstream_partitions_def.timezone!r} (upstream "
                f"{upstream_partitions_def!r}); give both definitions the same timezone."
            )
        return downstream_partitions_def, upstream_partitions_def


# Bounds for clipping runs of indices; far beyond any calendar a definition can format.
_MIN_INDEX = -(2**62)
_MAX_INDEX = 2**62
