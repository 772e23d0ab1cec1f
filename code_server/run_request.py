"""What sensors and schedules return: run requests, backfill requests, skip reasons, results."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from code_server.asset_key import AssetKey, CoercibleToAssetKey
from code_server.assets import AssetsDefinition
from code_server.errors import DefinitionError
from code_server.partitions.keys import validate_partition_key


@dataclass(frozen=True, slots=True)
class AssetPartitionsTarget:
    """``RunRequest.from_asset_partitions``: keys of the selection's roots, mapped downstream."""

    partition_names: tuple[str, ...] | None
    all_partitions: bool


@dataclass(frozen=True, slots=True)
class PartitionsByAssetsTarget:
    """``RunRequest.from_partitions_by_assets``: each asset with its own partition keys."""

    partitions_by_assets: Mapping[AssetKey, tuple[str, ...]]


BackfillTarget = AssetPartitionsTarget | PartitionsByAssetsTarget


@dataclass(frozen=True, slots=True)
class RunRequest:
    """A request for one run, or (from the two ``from_*`` constructors) for a backfill.

    ``asset_selection=None`` means the sensor's or schedule's target; it is filled in when the
    request is evaluated, so the control plane always receives explicit keys.
    """

    run_key: str | None = None
    asset_selection: tuple[AssetKey, ...] | None = None
    partition_key: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    title: str | None = None
    description: str | None = None
    backfill: BackfillTarget | None = None

    def __init__(
        self,
        run_key: str | None = None,
        asset_selection: Sequence[CoercibleToAssetKey | AssetsDefinition] | None = None,
        partition_key: str | None = None,
        tags: Mapping[str, str] | None = None,
        *,
        title: str | None = None,
        description: str | None = None,
        backfill: BackfillTarget | None = None,
    ) -> None:
        if partition_key is not None:
            validate_partition_key(partition_key)
        keys = None if asset_selection is None else tuple(_to_key(value) for value in asset_selection)
        object.__setattr__(self, "run_key", run_key)
        object.__setattr__(self, "asset_selection", keys)
        object.__setattr__(self, "partition_key", partition_key)
        object.__setattr__(self, "tags", _string_tags(tags))
        object.__setattr__(self, "title", title)
        object.__setattr__(self, "description", description)
        object.__setattr__(self, "backfill", backfill)

    @property
    def requires_backfill(self) -> bool:
        """True for the backfill-shaped requests: the control plane makes a backfill, not a run."""
        return self.backfill is not None

    @classmethod
    def from_asset_partitions(
        cls,
        partition_names: Iterable[str] | None = None,
        asset_selection: Sequence[CoercibleToAssetKey | AssetsDefinition] | None = None,
        tags: Mapping[str, str] | None = None,
        all_partitions: bool = False,
    ) -> RunRequest:
        """A backfill of ``partition_names`` (or all partitions) of the selection's most upstream assets.

        The roots must share one partitions definition; their keys are mapped to downstream assets
        through the partition mappings. ``asset_selection`` defaults to the sensor/schedule target.
        """
        if all_partitions and partition_names is not None:
            raise DefinitionError(
                "RunRequest.from_asset_partitions: pass partition_names or all_partitions=True, not both."
            )
        if not all_partitions and partition_names is None:
            raise DefinitionError(
                "RunRequest.from_asset_partitions needs partition_names or all_partitions=True."
            )
        names = None if partition_names is None else tuple(validate_partition_key(k) for k in partition_names)
        return cls(
            asset_selection=asset_selection,
            tags=tags,
            backfill=AssetPartitionsTarget(partition_names=names, all_partitions=all_partitions),
        )

    @classmethod
    def from_partitions_by_assets(
        cls,
        partitions_by_assets: Mapping[CoercibleToAssetKey | AssetsDefinition, Iterable[str]],
        tags: Mapping[str, str] | None = None,
        title: str | None = None,
        description: str | None = None,
    ) -> RunRequest:
        """A backfill of the given partitions of each asset; assets may have different partitions."""
        if not partitions_by_assets:
            raise DefinitionError("RunRequest.from_partitions_by_assets needs at least one asset.")
        by_asset = {
            _to_key(asset): tuple(sorted(validate_partition_key(key) for key in keys))
            for asset, keys in partitions_by_assets.items()
        }
        return cls(
            asset_selection=list(by_asset),
            tags=tags,
            title=title,
            description=description,
            backfill=PartitionsByAssetsTarget(partitions_by_assets=by_asset),
        )

    def with_asset_selection(self, asset_selection: Sequence[AssetKey]) -> RunRequest:
        return replace(self, asset_selection=tuple(asset_selection))


@dataclass(frozen=True, slots=True)
class SkipReason:
    """Returned by a sensor or schedule that has nothing to do this tick, with why."""

    skip_message: str | None = None


@dataclass(frozen=True, slots=True)
class SensorResult:
    """A sensor's full answer: run requests, or a skip reason, and the next cursor."""

    run_requests: Sequence[RunRequest] | None = None
    skip_reason: SkipReason | str | None = None
    cursor: str | None = None


def _to_key(value: CoercibleToAssetKey | AssetsDefinition) -> AssetKey:
    return value.key if isinstance(value, AssetsDefinition) else AssetKey.from_coercible(value)


def _string_tags(tags: Mapping[str, str] | None) -> Mapping[str, str]:
    result = dict(tags or {})
    for key, value in result.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise DefinitionError(f"Tag {key!r}: {value!r} must map a string to a string.")
    return result
