"""Which Kubernetes settings a run's ``partita/k8s-config`` tag may set: the operator decides, per location.

Whoever may launch a backfill may set run tags, so a tag that could choose the service account, the
image, the namespace or the environment (``env_from`` naming any Secret of the namespace) would hand
every Secret the launcher can mount to every caller. The launcher configuration therefore lists the
keys a tag may set: ``allowed_run_overrides`` at the top of the file for every location, or under
``locations.<name>`` for one location (the location's list replaces the global one). Without either,
only the keys that shape where and how big a pod is are allowed (``DEFAULT_ALLOWED_RUN_OVERRIDES``).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

#: The run tag that overrides a run's Kubernetes settings (a JSON object of setting keys).
K8S_CONFIG_TAG = "partita/k8s-config"
#: The launcher configuration key (global, or per location) listing the keys a run tag may set.
ALLOWED_RUN_OVERRIDES_KEY = "allowed_run_overrides"
#: What a tag may set unless the operator says otherwise: nothing that changes who the pod runs as,
#: what it runs, where its namespace is, or what it can read.
DEFAULT_ALLOWED_RUN_OVERRIDES = frozenset(
    {"resources", "node_selector", "tolerations", "labels", "annotations", "active_deadline_seconds"}
)


class K8sConfigError(ValueError):
    """A launcher config file or a run's ``partita/k8s-config`` tag is not valid; the message says where."""


class RunOverrideNotAllowed(K8sConfigError):
    """A run's tag sets a key the operator did not allow for its location: a refusal, not a typo."""


@dataclass(frozen=True)
class RunOverridePolicy:
    """The keys a run tag may set: ``per_location`` where the operator listed them, else ``default``."""

    default: frozenset[str] = DEFAULT_ALLOWED_RUN_OVERRIDES
    per_location: Mapping[str, frozenset[str]] = field(default_factory=dict)

    def allowed(self, location: str) -> frozenset[str]:
        return self.per_location.get(location, self.default)

    def check(self, location: str, override: Mapping[str, Any]) -> None:
        """Raise RunOverrideNotAllowed naming the first refused key (sorted, so the message is stable)."""
        allowed = self.allowed(location)
        refused = sorted(set(override) - allowed)
        if not refused:
            return
        where = "locations." + location if location in self.per_location else None
        listed = ", ".join(sorted(allowed)) or "none"
        how = (
            f"add it to {where}.{ALLOWED_RUN_OVERRIDES_KEY}"
            if where
            else f"add it to {ALLOWED_RUN_OVERRIDES_KEY} (for every location) or to "
            f"locations.{location}.{ALLOWED_RUN_OVERRIDES_KEY}"
        )
        raise RunOverrideNotAllowed(
            f"run tag {K8S_CONFIG_TAG}: key {refused[0]!r} is not allowed for location {location!r}"
            + (f" (nor {', '.join(map(repr, refused[1:]))})" if len(refused) > 1 else "")
            + f"; allowed: {listed}; an operator can allow it: {how} in the Kubernetes launcher config"
        )


def parse_allowed_keys(value: Any, source: str, known: Collection[str]) -> frozenset[str]:
    """An ``allowed_run_overrides`` list from the config file: known setting names only."""
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise K8sConfigError(f"{source}: {ALLOWED_RUN_OVERRIDES_KEY} must be a list of setting names")
    unknown = sorted(set(value) - set(known))
    if unknown:
        raise K8sConfigError(
            f"{source}: {ALLOWED_RUN_OVERRIDES_KEY} names unknown setting(s) {', '.join(unknown)}; "
            f"known settings are {', '.join(sorted(known))}"
        )
    return frozenset(value)
