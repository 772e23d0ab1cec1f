"""An event sink that writes one JSON object per line, to stdout or a file."""

from __future__ import annotations

import json
import sys
from typing import Any, TextIO

from code_server.run_worker.events import (
    ErrorInfo,
    PartitionFailed,
    PartitionMaterialized,
    RunEvent,
    RunFinished,
    RunStarted,
)


class JsonLinesEventSink:
    """Writes each event as soon as it happens, flushed, so a crash loses nothing already reported."""

    def __init__(self, stream: TextIO | None = None, *, path: str | None = None) -> None:
        self._owned = path is not None
        self._stream: TextIO = open(path, "a", encoding="utf-8") if path else (stream or sys.stdout)  # noqa: SIM115

    def emit(self, event: RunEvent) -> None:
        self._stream.write(json.dumps(event_to_json(event), sort_keys=True) + "\n")
        self._stream.flush()

    def close(self) -> None:
        if self._owned:
            self._stream.close()


def event_to_json(event: RunEvent) -> dict[str, Any]:
    body: dict[str, Any] = {"run_id": event.run_id}
    if isinstance(event, RunStarted):
        body["event"] = "run_started"
    elif isinstance(event, PartitionMaterialized | PartitionFailed):
        body["event"] = (
            "partition_materialized" if isinstance(event, PartitionMaterialized) else "partition_failed"
        )
        body["asset"] = event.asset_key.to_user_string()
        key_range = event.partition_range
        body["partition_range"] = None if key_range is None else [key_range.start, key_range.end]
        if isinstance(event, PartitionFailed):
            body["error"] = _error_json(event.error)
            body["upstream_failed"] = event.upstream_failed
    elif isinstance(event, RunFinished):
        body["event"] = "run_finished"
        body["success"] = event.success
        if event.error is not None:
            body["error"] = _error_json(event.error)
    return body


def _error_json(error: ErrorInfo) -> dict[str, str]:
    return {"message": error.message, "class_name": error.class_name, "traceback": error.traceback}
