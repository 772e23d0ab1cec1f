"""What a run worker reports, and the sink interface it reports through.

Events carry the partition *range* an asset ran over: an asset function over a range succeeds or
fails as a whole, so one event stands for every partition in it, whatever the range's length.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass
from typing import Protocol

from code_server.asset_key import AssetKey
from code_server.partitions.keys import PartitionKeyRange


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    """A user-code error: its message, class and formatted traceback."""

    message: str
    class_name: str
    traceback: str

    @classmethod
    def from_exception(cls, error: BaseException) -> ErrorInfo:
        return cls(
            message=str(error) or type(error).__name__,
            class_name=type(error).__name__,
            traceback="".join(traceback.format_exception(error)),
        )


@dataclass(frozen=True, slots=True)
class RunStarted:
    run_id: str


@dataclass(frozen=True, slots=True)
class PartitionMaterialized:
    run_id: str
    asset_key: AssetKey
    #: None for an unpartitioned asset.
    partition_range: PartitionKeyRange | None


@dataclass(frozen=True, slots=True)
class PartitionFailed:
    run_id: str
    asset_key: AssetKey
    partition_range: PartitionKeyRange | None
    error: ErrorInfo
    #: True when the asset did not run because a parent in the same run failed.
    upstream_failed: bool = False


@dataclass(frozen=True, slots=True)
class RunFinished:
    run_id: str
    success: bool
    #: Set when the run failed before any asset ran (bad arguments, user code that does not load).
    error: ErrorInfo | None = None


RunEvent = RunStarted | PartitionMaterialized | PartitionFailed | RunFinished


class EventSink(Protocol):
    """Where a run worker sends its events (JSON lines here; gRPC to the control plane in production)."""

    def emit(self, event: RunEvent) -> None: ...

    def close(self) -> None: ...
