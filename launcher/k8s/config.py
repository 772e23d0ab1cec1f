"""The Kubernetes launcher's settings: defaults, per code location, and per run through a tag.

Settings are read from a YAML file (a ConfigMap in a cluster) shaped as::

    namespace: partita
    defaults: {service_account_name: ..., resources: {...}, ...}
    locations:
      analytics: {image: ..., resources: {limits: {memory: 8Gi}}}

and a run may override some settings with the tag ``partita/k8s-config`` holding JSON of the same keys:
only the keys the operator allows for its location (``allowed_run_overrides``, see
``launcher.k8s.run_overrides``; by default resources, node selector, tolerations, labels, annotations
and active deadline). Layers are deep-merged (defaults, then the location, then the run): dicts key by key, lists of named
items (env vars) by name, other lists end to end without repeats. Values under
the keys are Kubernetes JSON (``configMapRef``, ``valueFrom``) and go into the Job as they are.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from launcher.k8s.run_overrides import (
    ALLOWED_RUN_OVERRIDES_KEY,
    DEFAULT_ALLOWED_RUN_OVERRIDES,
    K8S_CONFIG_TAG,
    K8sConfigError,
    RunOverridePolicy,
    parse_allowed_keys,
)

DEFAULT_NAMESPACE = "default"
DEFAULT_TTL_SECONDS_AFTER_FINISHED = 86_400

_LIST_KEYS = ("image_pull_secrets", "env", "env_from", "tolerations", "volumes", "volume_mounts")
#: Settings only the launcher's file may give: a run's tag could otherwise mount any Secret or host path.
_FILE_ONLY_KEYS = ("volumes", "volume_mounts")
_MAPPING_KEYS = ("resources", "node_selector", "labels", "annotations")
_STRING_KEYS = ("namespace", "image", "service_account_name", "image_pull_policy")
_INTEGER_KEYS = ("ttl_seconds_after_finished", "active_deadline_seconds")
SETTING_KEYS = frozenset((*_LIST_KEYS, *_MAPPING_KEYS, *_STRING_KEYS, *_INTEGER_KEYS))
_PULL_POLICIES = ("Always", "IfNotPresent", "Never")


@dataclass(frozen=True)
class JobSettings:
    """The merged settings for one run's Job."""

    namespace: str = DEFAULT_NAMESPACE
    image: str | None = None
    service_account_name: str | None = None
    image_pull_policy: str | None = None
    image_pull_secrets: tuple[str, ...] = ()
    env: tuple[Mapping[str, Any], ...] = ()
    env_from: tuple[Mapping[str, Any], ...] = ()
    resources: Mapping[str, Any] = field(default_factory=dict)
    node_selector: Mapping[str, str] = field(default_factory=dict)
    tolerations: tuple[Mapping[str, Any], ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    ttl_seconds_after_finished: int | None = DEFAULT_TTL_SECONDS_AFTER_FINISHED
    active_deadline_seconds: int | None = None
    #: Pod volumes and the run-worker container's mounts (e.g. the CA to verify the control plane).
    volumes: tuple[Mapping[str, Any], ...] = ()
    volume_mounts: tuple[Mapping[str, Any], ...] = ()


@dataclass(frozen=True)
class K8sLauncherConfig:
    """Where run Jobs go and how they look, before a run's own tag is applied.

    No namespace means the control plane's own namespace in a cluster, else ``default``.
    """

    namespace: str | None = None
    defaults: Mapping[str, Any] = field(default_factory=dict)
    locations: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    #: Which keys a run's tag may set, per location (the operator's decision, never the caller's).
    allowed_run_overrides: RunOverridePolicy = field(default_factory=RunOverridePolicy)

    @classmethod
    def from_file(cls, path: str | Path) -> K8sLauncherConfig:
        try:
            document = yaml.safe_load(Path(path).read_text()) or {}
        except (OSError, yaml.YAMLError) as error:
            raise K8sConfigError(f"Kubernetes launcher config {path}: {error}") from error
        return cls.from_mapping(document, source=str(path))

    @classmethod
    def from_mapping(cls, document: Any, *, source: str = "Kubernetes launcher config") -> K8sLauncherConfig:
        if not isinstance(document, Mapping):
            raise K8sConfigError(f"{source}: expected a mapping with namespace, defaults and locations")
        unknown = set(document) - {"namespace", "defaults", "locations", ALLOWED_RUN_OVERRIDES_KEY}
        if unknown:
            raise K8sConfigError(
                f"{source}: unknown key(s) {', '.join(sorted(map(str, unknown)))}; "
                f"expected namespace, defaults, locations and {ALLOWED_RUN_OVERRIDES_KEY}"
            )
        namespace = document.get("namespace")
        if namespace is not None and (not isinstance(namespace, str) or not namespace):
            raise K8sConfigError(f"{source}: namespace must be a non-empty string")
        defaults = validate_settings(document.get("defaults") or {}, f"{source}: defaults")
        locations_document = document.get("locations") or {}
        if not isinstance(locations_document, Mapping):
            raise K8sConfigError(f"{source}: locations must map location names to settings")
        locations: dict[str, Mapping[str, Any]] = {}
        allowed: dict[str, frozenset[str]] = {}
        for name, settings in locations_document.items():
            where = f"{source}: locations.{name}"
            layer = dict(settings or {}) if isinstance(settings, Mapping) else settings
            if isinstance(layer, dict) and ALLOWED_RUN_OVERRIDES_KEY in layer:
                allowed[str(name)] = parse_allowed_keys(
                    layer.pop(ALLOWED_RUN_OVERRIDES_KEY), where, SETTING_KEYS
                )
            locations[str(name)] = validate_settings(layer, where)
        default_allowed = (
            parse_allowed_keys(document[ALLOWED_RUN_OVERRIDES_KEY], source, SETTING_KEYS)
            if ALLOWED_RUN_OVERRIDES_KEY in document
            else DEFAULT_ALLOWED_RUN_OVERRIDES
        )
        return cls(
            namespace=namespace,
            defaults=defaults,
            locations=locations,
            allowed_run_overrides=RunOverridePolicy(default=default_allowed, per_location=allowed),
        )

    def check_run_override(self, location: str, tags: Mapping[str, str]) -> dict[str, Any]:
        """The run's ``partita/k8s-config`` override, checked: well formed (else K8sConfigError) and
        only keys allowed for ``location`` (else RunOverrideNotAllowed). Empty without the tag."""
        if (override := tags.get(K8S_CONFIG_TAG)) is None:
            return {}
        settings = parse_run_override(override)
        self.allowed_run_overrides.check(location, settings)
        return settings

    def settings_for(self, location: str, tags: Mapping[str, str]) -> JobSettings:
        """The settings of a run of ``location`` with these tags (raises K8sConfigError on a bad tag)."""
        merged: dict[str, Any] = {"namespace": self.namespace or DEFAULT_NAMESPACE}
        merged = deep_merge(merged, self.defaults)
        merged = deep_merge(merged, self.locations.get(location, {}))
        merged = deep_merge(merged, self.check_run_override(location, tags))
        return JobSettings(
            namespace=merged["namespace"],
            image=merged.get("image"),
            service_account_name=merged.get("service_account_name"),
            image_pull_policy=merged.get("image_pull_policy"),
            image_pull_secrets=tuple(merged.get("image_pull_secrets") or ()),
            env=tuple(merged.get("env") or ()),
            env_from=tuple(merged.get("env_from") or ()),
            resources=merged.get("resources") or {},
            node_selector=merged.get("node_selector") or {},
            tolerations=tuple(merged.get("tolerations") or ()),
            labels=merged.get("labels") or {},
            annotations=merged.get("annotations") or {},
            ttl_seconds_after_finished=merged.get(
                "ttl_seconds_after_finished", DEFAULT_TTL_SECONDS_AFTER_FINISHED
            ),
            active_deadline_seconds=merged.get("active_deadline_seconds"),
            volumes=tuple(merged.get("volumes") or ()),
            volume_mounts=tuple(merged.get("volume_mounts") or ()),
        )


def parse_run_override(text: str) -> dict[str, Any]:
    source = f"run tag {K8S_CONFIG_TAG}"
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise K8sConfigError(f"{source} is not valid JSON ({error}): {text!r}") from error
    settings = validate_settings(document, source)
    if refused := sorted(set(settings) & set(_FILE_ONLY_KEYS)):
        raise K8sConfigError(
            f"{source}: {', '.join(refused)} can only be set in the launcher's config file, not per run"
        )
    return settings


def validate_settings(document: Any, source: str) -> dict[str, Any]:
    """Check the keys and value types of one settings layer; image_pull_secrets become plain names."""
    if not isinstance(document, Mapping):
        raise K8sConfigError(f"{source}: expected a mapping of settings, got {type(document).__name__}")
    unknown = set(document) - SETTING_KEYS
    if unknown:
        raise K8sConfigError(
            f"{source}: unknown setting(s) {', '.join(sorted(map(str, unknown)))}; "
            f"known settings are {', '.join(sorted(SETTING_KEYS))}"
        )
    settings: dict[str, Any] = {}
    for key, value in document.items():
        if value is None:
            settings[key] = None
        elif key in _STRING_KEYS:
            settings[key] = _expect(value, str, source, key)
        elif key in _INTEGER_KEYS:
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise K8sConfigError(f"{source}: {key} must be a whole number of seconds >= 0, got {value!r}")
            settings[key] = value
        elif key in _MAPPING_KEYS:
            settings[key] = dict(_expect(value, Mapping, source, key))
        else:
            settings[key] = list(_expect(value, list, source, key))
    if (policy := settings.get("image_pull_policy")) is not None and policy not in _PULL_POLICIES:
        raise K8sConfigError(f"{source}: image_pull_policy must be one of {', '.join(_PULL_POLICIES)}")
    if settings.get("image_pull_secrets"):
        settings["image_pull_secrets"] = [
            _secret_name(item, source) for item in settings["image_pull_secrets"]
        ]
    for key in ("env", "env_from", "tolerations", "volumes", "volume_mounts"):
        for item in settings.get(key) or ():
            if not isinstance(item, Mapping):
                raise K8sConfigError(f"{source}: every item of {key} must be a mapping, got {item!r}")
    for key in ("env", "volumes", "volume_mounts"):
        for item in settings.get(key) or ():
            if not isinstance(item.get("name"), str):
                raise K8sConfigError(f"{source}: every {key} item needs a name, got {item!r}")
    for key in ("node_selector", "labels", "annotations"):
        for name, value in (settings.get(key) or {}).items():
            if not isinstance(value, str):
                raise K8sConfigError(f"{source}: {key}.{name} must be a string, got {value!r}")
    return settings


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """``override`` over ``base``: dicts key by key, named list items by name, other lists unioned."""
    merged = dict(base)
    for key, value in override.items():
        current = merged.get(key)
        if isinstance(current, Mapping) and isinstance(value, Mapping):
            merged[key] = deep_merge(current, value)
        elif isinstance(current, list) and isinstance(value, list):
            merged[key] = _merge_lists(current, value)
        else:
            merged[key] = value
    return merged


def _merge_lists(base: list[Any], override: list[Any]) -> list[Any]:
    merged = list(base)
    for item in override:
        name = _item_name(item)
        position = next(
            (i for i, existing in enumerate(merged) if name is not None and _item_name(existing) == name),
            None,
        )
        if position is not None:
            existing = merged[position]
            merged[position] = (
                deep_merge(existing, item)
                if isinstance(existing, Mapping) and isinstance(item, Mapping) and "value" not in item
                else item
            )
        elif item not in merged:
            merged.append(item)
    return merged


def _item_name(item: Any) -> str | None:
    """The identity of a list item: an env var's or volume's ``name``, or a plain string."""
    if isinstance(item, str):
        return item
    if isinstance(item, Mapping) and isinstance(item.get("name"), str):
        return str(item["name"])
    return None


def _secret_name(item: Any, source: str) -> str:
    if isinstance(item, str):
        return item
    if isinstance(item, Mapping) and isinstance(item.get("name"), str):
        return str(item["name"])
    raise K8sConfigError(f"{source}: image_pull_secrets items are secret names, got {item!r}")


def _expect(value: Any, kind: type, source: str, key: str) -> Any:
    if not isinstance(value, kind):
        expected = "a string" if kind is str else "a list" if kind is list else "a mapping"
        raise K8sConfigError(f"{source}: {key} must be {expected}, got {value!r}")
    return value
