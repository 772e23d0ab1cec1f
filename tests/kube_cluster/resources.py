"""The resources this API server serves, with the discovery facts kubectl and clients rely on."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Resource:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True
    short_names: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")

RESOURCES = (
    Resource("", "v1", "pods", "Pod", short_names=("po",), subresources=("log", "status")),
    Resource("", "v1", "events", "Event", short_names=("ev",)),
    Resource("", "v1", "namespaces", "Namespace", namespaced=False, short_names=("ns",)),
    Resource("", "v1", "configmaps", "ConfigMap", short_names=("cm",)),
    Resource("", "v1", "secrets", "Secret"),
    Resource("", "v1", "serviceaccounts", "ServiceAccount", short_names=("sa",)),
    Resource("batch", "v1", "jobs", "Job", subresources=("status",)),
)
BY_PLURAL = {resource.plural: resource for resource in RESOURCES}
