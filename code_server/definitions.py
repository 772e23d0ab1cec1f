"""``Definitions``: the assets, schedules and sensors of one code location."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TypeVar

from code_server.asset_graph import AssetGraph
from code_server.asset_key import AssetKey
from code_server.assets import AssetNode, AssetsDefinition
from code_server.errors import DefinitionError, UnknownAssetError, UnknownDefinitionError
from code_server.schedules import ScheduleDefinition
from code_server.sensors import SensorDefinition

_Named = TypeVar("_Named", SensorDefinition, ScheduleDefinition)


class Definitions:
    """A code location's definitions, validated as a whole (unique names, no cycles).

    A dependency on an asset defined nowhere becomes an *external* asset, as in Dagster: it can be
    read and mapped, never materialized. ``external_asset_keys`` lists them, so a typo is visible.
    """

    def __init__(
        self,
        assets: Iterable[AssetsDefinition] | None = None,
        schedules: Iterable[ScheduleDefinition] | None = None,
        sensors: Iterable[SensorDefinition] | None = None,
    ) -> None:
        self._assets: dict[AssetKey, AssetsDefinition] = {}
        for definition in assets or ():
            if not isinstance(definition, AssetsDefinition):
                raise DefinitionError(f"Definitions(assets=...) got {definition!r}, which is not an @asset.")
            if definition.key in self._assets and self._assets[definition.key] is not definition:
                raise DefinitionError(f"Asset {definition.key.to_user_string()!r} is defined twice.")
            self._assets[definition.key] = definition
        self._schedules = _by_name(schedules or (), "schedule")
        self._sensors = _by_name(sensors or (), "sensor")
        declared = {key: definition.node for key, definition in self._assets.items()}
        external = sorted(
            {dep.asset_key for node in declared.values() for dep in node.deps} - declared.keys()
        )
        self._external_keys = tuple(external)
        self._graph = AssetGraph(
            [*declared.values(), *(AssetNode(key, is_external=True) for key in external)]
        )
        # Resolve every target now, so a sensor naming an unknown asset fails at load, not at its tick.
        targets = [s.target for s in self._schedules.values()] + [s.target for s in self._sensors.values()]
        for target in targets:
            if target is not None:
                target.resolve(self._graph)

    @property
    def asset_graph(self) -> AssetGraph:
        return self._graph

    @property
    def assets(self) -> Mapping[AssetKey, AssetsDefinition]:
        return self._assets

    @property
    def schedules(self) -> Mapping[str, ScheduleDefinition]:
        return self._schedules

    @property
    def sensors(self) -> Mapping[str, SensorDefinition]:
        return self._sensors

    @property
    def external_asset_keys(self) -> Sequence[AssetKey]:
        return self._external_keys

    def get_asset(self, key: AssetKey) -> AssetsDefinition:
        if key not in self._assets:
            if key in self._external_keys:
                raise UnknownAssetError(
                    f"Asset {key.to_user_string()!r} is external: it is a dependency of this code location "
                    "but defined nowhere in it, so it cannot be materialized here."
                )
            self._graph.node(key)  # raises UnknownAssetError listing the known assets
        return self._assets[key]

    def get_sensor(self, name: str) -> SensorDefinition:
        return _lookup(self._sensors, name, "sensor")

    def get_schedule(self, name: str) -> ScheduleDefinition:
        return _lookup(self._schedules, name, "schedule")


def _by_name(items: Iterable[_Named], kind: str) -> dict[str, _Named]:
    named: dict[str, _Named] = {}
    for item in items:
        if item.name in named and named[item.name] is not item:
            raise DefinitionError(f"Two {kind}s are named {item.name!r}; give one a different name=.")
        named[item.name] = item
    return named


def _lookup(items: Mapping[str, _Named], name: str, kind: str) -> _Named:
    try:
        return items[name]
    except KeyError:
        known = ", ".join(sorted(items)) or "none"
        raise UnknownDefinitionError(f"Unknown {kind} {name!r}; known {kind}s: {known}.") from None
