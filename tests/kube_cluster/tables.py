"""Server-side printing: the Table ``kubectl get`` asks for, with the columns a real server sends."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from tests.kube_cluster.resources import Resource

Columns = tuple[tuple[str, str], ...]


def table_for(resource: Resource, items: list[dict[str, Any]], params: dict[str, str]) -> dict[str, Any]:
    printers: dict[str, tuple[Columns, Callable[[dict[str, Any]], list[Any]]]] = {
        "jobs": (_JOB_COLUMNS, _job_cells),
        "pods": (_POD_COLUMNS, _pod_cells),
    }
    columns, cells = printers.get(resource.plural, (_NAME_COLUMNS, _name_cells))
    whole = params.get("includeObject") == "Object"
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "columnDefinitions": [
            {
                "name": name,
                "type": kind,
                "format": "name" if name == "Name" else "",
                "description": name,
                "priority": 0,
            }
            for name, kind in columns
        ],
        "rows": [
            {
                "cells": cells(obj),
                "object": obj
                if whole
                else {
                    "kind": "PartialObjectMetadata",
                    "apiVersion": "meta.k8s.io/v1",
                    "metadata": obj["metadata"],
                },
            }
            for obj in items
        ],
    }


def _name_cells(obj: dict[str, Any]) -> list[Any]:
    return [obj["metadata"]["name"], age(obj["metadata"].get("creationTimestamp"))]


_NAME_COLUMNS: Columns = (("Name", "string"), ("Age", "string"))
_JOB_COLUMNS: Columns = (
    ("Name", "string"),
    ("Status", "string"),
    ("Completions", "string"),
    ("Duration", "string"),
    ("Age", "string"),
)
_POD_COLUMNS: Columns = (
    ("Name", "string"),
    ("Ready", "string"),
    ("Status", "string"),
    ("Restarts", "integer"),
    ("Age", "string"),
)


def _job_cells(job: dict[str, Any]) -> list[Any]:
    status = job.get("status") or {}
    conditions = {c["type"]: c for c in status.get("conditions") or () if c.get("status") == "True"}
    state = "Complete" if "Complete" in conditions else "Failed" if "Failed" in conditions else "Running"
    completions = f"{status.get('succeeded', 0)}/{(job.get('spec') or {}).get('completions', 1)}"
    duration = ""
    if status.get("startTime"):
        end = status.get("completionTime") or (conditions.get("Failed") or {}).get("lastTransitionTime")
        duration = _span(status["startTime"], end)
    return [
        job["metadata"]["name"],
        state,
        completions,
        duration,
        age(job["metadata"].get("creationTimestamp")),
    ]


def _pod_cells(pod: dict[str, Any]) -> list[Any]:
    status = pod.get("status") or {}
    containers = status.get("containerStatuses") or []
    ready = sum(1 for c in containers if c.get("ready"))
    shown = status.get("reason") or status.get("phase", "Pending")
    for container in containers:
        state = container.get("state") or {}
        reason = (state.get("waiting") or {}).get("reason") or (state.get("terminated") or {}).get("reason")
        if reason:
            shown = reason
    return [
        pod["metadata"]["name"],
        f"{ready}/{max(len(containers), 1)}",
        shown,
        0,
        age(pod["metadata"].get("creationTimestamp")),
    ]


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _span(start: str, end: str | None) -> str:
    seconds = int(((_parse(end) if end else datetime.now(UTC)) - _parse(start)).total_seconds())
    return _short(seconds)


def age(timestamp: str | None) -> str:
    """kubectl's short age: 5s, 3m, 2h, 4d."""
    if not timestamp:
        return "<unknown>"
    return _short(int((datetime.now(UTC) - _parse(timestamp)).total_seconds()))


def _short(seconds: int) -> str:
    seconds = max(seconds, 0)
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
