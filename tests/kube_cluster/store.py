"""The API server's object store: what etcd and the apiserver's bookkeeping do, in memory.

Objects are kept per resource (plural), namespace and name, as the JSON dicts clients send, with the
metadata a real server fills in (uid, resourceVersion from one global counter, creationTimestamp,
generation). Every change is an event kept in a bounded history, so a watch from a resourceVersion
replays what it missed, and is pushed to live watchers. Thread-safe: the HTTP handlers and the
simulated node change objects from different threads.
"""

from __future__ import annotations

import copy
import threading
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tests.kube_cluster.selectors import Matcher

Event = dict[str, Any]
Key = tuple[str, str | None, str]  # plural, namespace, name
_HISTORY = 10_000


class ApiError(Exception):
    """An API error as a Status: the HTTP code, the reason (NotFound, AlreadyExists...) and a message."""

    def __init__(
        self, code: int, reason: str, message: str, details: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message
        self.details = dict(details or {})

    def status(self) -> dict[str, Any]:
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "details": self.details,
            "code": self.code,
        }


def now_text() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Watcher:
    plural: str
    namespace: str | None
    matches: Matcher
    deliver: Callable[[Event], None]


class ObjectStore:
    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._objects: dict[Key, dict[str, Any]] = {}
        self._version = 0
        self._history: deque[tuple[int, str, Event]] = deque(maxlen=_HISTORY)
        self._watchers: list[Watcher] = []
        #: Called with (plural, event type, object) after each change (the simulated node listens).
        self.listeners: list[Callable[[str, str, dict[str, Any]], None]] = []

    @property
    def resource_version(self) -> str:
        with self._lock:
            return str(self._version)

    # --- reads ----------------------------------------------------------------------------------

    def get(self, plural: str, namespace: str | None, name: str) -> dict[str, Any]:
        with self._lock:
            obj = self._objects.get((plural, namespace, name))
            if obj is None:
                raise not_found(plural, name)
            return copy.deepcopy(obj)

    def find(self, plural: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        try:
            return self.get(plural, namespace, name)
        except ApiError:
            return None

    def list(
        self, plural: str, namespace: str | None, matches: Matcher = lambda obj: True
    ) -> list[dict[str, Any]]:
        with self._lock:
            return [
                copy.deepcopy(obj)
                for (kind, ns, _), obj in sorted(
                    self._objects.items(), key=lambda item: (item[0][1] or "", item[0][2])
                )
                if kind == plural and (namespace is None or ns == namespace) and matches(obj)
            ]

    # --- writes ---------------------------------------------------------------------------------

    def create(self, plural: str, namespace: str | None, obj: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            obj = copy.deepcopy(obj)
            metadata = obj.setdefault("metadata", {})
            if not metadata.get("name") and metadata.get("generateName"):
                metadata["name"] = metadata["generateName"] + uuid.uuid4().hex[:5]
            name = metadata.get("name")
            if not name:
                raise ApiError(422, "Invalid", f"{plural} must have metadata.name or metadata.generateName")
            if namespace is not None:
                metadata["namespace"] = namespace
            key = (plural, namespace, name)
            if key in self._objects:
                raise ApiError(
                    409, "AlreadyExists", f'{_qualified(plural)} "{name}" already exists',
                    {"name": name, "kind": plural},
                )  # fmt: skip
            metadata.setdefault("uid", str(uuid.uuid4()))
            metadata["creationTimestamp"] = now_text()
            metadata["generation"] = 1
            self._objects[key] = obj
            self._changed(plural, "ADDED", obj)
            return copy.deepcopy(obj)

    def replace(
        self, plural: str, namespace: str | None, name: str, change: Callable[[dict[str, Any]], None]
    ) -> dict[str, Any]:
        """Apply ``change`` to the stored object in place, as one new version."""
        with self._lock:
            obj = self._objects.get((plural, namespace, name))
            if obj is None:
                raise not_found(plural, name)
            spec_before = copy.deepcopy(obj.get("spec"))
            change(obj)
            if obj.get("spec") != spec_before:
                obj["metadata"]["generation"] = obj["metadata"].get("generation", 1) + 1
            self._changed(plural, "MODIFIED", obj)
            return copy.deepcopy(obj)

    def delete(self, plural: str, namespace: str | None, name: str) -> dict[str, Any]:
        with self._lock:
            obj = self._objects.pop((plural, namespace, name), None)
            if obj is None:
                raise not_found(plural, name)
            obj["metadata"]["deletionTimestamp"] = now_text()
            self._changed(plural, "DELETED", obj)
            return copy.deepcopy(obj)

    # --- watching -------------------------------------------------------------------------------

    def watch(self, watcher: Watcher, since: str | None) -> Callable[[], None]:
        """Deliver events after ``since`` (or every current object as ADDED), then live ones."""
        with self._lock:
            if since and since != "0":
                version = int(since)
                for event_version, plural, event in self._history:
                    if (
                        event_version > version
                        and plural == watcher.plural
                        and _visible(watcher, event["object"])
                    ):
                        watcher.deliver(copy.deepcopy(event))
            else:
                for obj in self.list(watcher.plural, watcher.namespace, watcher.matches):
                    watcher.deliver({"type": "ADDED", "object": obj})
            self._watchers.append(watcher)

        def stop() -> None:
            with self._lock:
                if watcher in self._watchers:
                    self._watchers.remove(watcher)

        return stop

    def _changed(self, plural: str, kind: str, obj: dict[str, Any]) -> None:
        self._version += 1
        obj["metadata"]["resourceVersion"] = str(self._version)
        event = {"type": kind, "object": copy.deepcopy(obj)}
        self._history.append((self._version, plural, event))
        for watcher in list(self._watchers):
            if watcher.plural == plural and _visible(watcher, obj):
                watcher.deliver(copy.deepcopy(event))
        for listener in list(self.listeners):
            listener(plural, kind, copy.deepcopy(obj))


def _visible(watcher: Watcher, obj: Mapping[str, Any]) -> bool:
    namespace = (obj.get("metadata") or {}).get("namespace")
    return (watcher.namespace is None or namespace == watcher.namespace) and watcher.matches(obj)


_GROUPS = {"jobs": "batch"}


def _qualified(plural: str) -> str:
    group = _GROUPS.get(plural)
    return f"{plural}.{group}" if group else plural


def not_found(plural: str, name: str) -> ApiError:
    return ApiError(
        404, "NotFound", f'{_qualified(plural)} "{name}" not found',
        {"name": name, "group": _GROUPS.get(plural, ""), "kind": plural},
    )  # fmt: skip
