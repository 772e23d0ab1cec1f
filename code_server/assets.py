"""Assets: ``@asset``, what it declares (:class:`AssetNode`), and the function it wraps."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, overload

from code_server.asset_key import AssetKey, CoercibleToAssetKey
from code_server.backfill_policy import BackfillPolicy
from code_server.errors import DefinitionError
from code_server.partitions.base import PartitionsDefinition

if TYPE_CHECKING:
    from code_server.mappings import PartitionMapping

DEFAULT_GROUP_NAME = "default"
_CONTEXT_PARAMETER_NAMES = frozenset({"context", "_context"})


@dataclass(frozen=True, slots=True)
class AssetIn:
    """Declares where a function argument comes from: ``ins={"x": AssetIn(key=..., partition_mapping=...)}``."""

    key: CoercibleToAssetKey | None = None
    partition_mapping: PartitionMapping | None = None
    key_prefix: str | Sequence[str] | None = None


@dataclass(frozen=True, slots=True)
class AssetDep:
    """An edge of the asset graph: this asset reads ``asset_key``, through ``partition_mapping`` if given.

    As in Dagster, ``deps=[AssetDep("raw", partition_mapping=...)]`` accepts any key-like value.
    """

    asset_key: AssetKey
    partition_mapping: PartitionMapping | None = None
    #: Name of the function argument that receives the parent's value; None for a ``deps=`` dependency.
    input_name: str | None = None

    def __post_init__(self) -> None:
        key: object = self.asset_key
        if isinstance(key, AssetsDefinition):
            key = key.key
        object.__setattr__(self, "asset_key", AssetKey.from_coercible(key))  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class AssetNode:
    """Everything about an asset except its code: what the code server sends and the control plane plans on."""

    key: AssetKey
    deps: tuple[AssetDep, ...] = ()
    partitions_def: PartitionsDefinition | None = None
    backfill_policy: BackfillPolicy | None = None
    group_name: str = DEFAULT_GROUP_NAME
    description: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict, hash=False)
    code_version: str | None = None
    #: Named as a dependency but defined nowhere in the code location: it is read, never materialized.
    is_external: bool = False

    @property
    def parent_keys(self) -> tuple[AssetKey, ...]:
        return tuple(dep.asset_key for dep in self.deps)


class AssetsDefinition:
    """An asset as returned by ``@asset``: its :class:`AssetNode` plus the function that computes it."""

    def __init__(self, node: AssetNode, compute_fn: Callable[..., Any], takes_context: bool) -> None:
        self.node = node
        self.compute_fn = compute_fn
        self.takes_context = takes_context

    @property
    def key(self) -> AssetKey:
        return self.node.key

    @property
    def partitions_def(self) -> PartitionsDefinition | None:
        return self.node.partitions_def

    @property
    def backfill_policy(self) -> BackfillPolicy | None:
        return self.node.backfill_policy

    @property
    def group_name(self) -> str:
        return self.node.group_name

    @property
    def deps(self) -> tuple[AssetDep, ...]:
        return self.node.deps

    @property
    def input_names(self) -> tuple[str, ...]:
        return tuple(dep.input_name for dep in self.node.deps if dep.input_name is not None)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call the function directly, as in a unit test."""
        return self.compute_fn(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<AssetsDefinition {self.key.to_user_string()}>"


@overload
def asset(compute_fn: Callable[..., Any], /) -> AssetsDefinition: ...


@overload
def asset(
    *,
    name: str | None = None,
    key: CoercibleToAssetKey | None = None,
    key_prefix: str | Sequence[str] | None = None,
    partitions_def: PartitionsDefinition | None = None,
    deps: Iterable[CoercibleToAssetKey | AssetsDefinition | AssetDep] | None = None,
    ins: Mapping[str, AssetIn] | None = None,
    backfill_policy: BackfillPolicy | None = None,
    group_name: str | None = None,
    description: str | None = None,
    tags: Mapping[str, str] | None = None,
    code_version: str | None = None,
) -> Callable[[Callable[..., Any]], AssetsDefinition]: ...


def asset(
    compute_fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    key: CoercibleToAssetKey | None = None,
    key_prefix: str | Sequence[str] | None = None,
    partitions_def: PartitionsDefinition | None = None,
    deps: Iterable[CoercibleToAssetKey | AssetsDefinition | AssetDep] | None = None,
    ins: Mapping[str, AssetIn] | None = None,
    backfill_policy: BackfillPolicy | None = None,
    group_name: str | None = None,
    description: str | None = None,
    tags: Mapping[str, str] | None = None,
    code_version: str | None = None,
) -> AssetsDefinition | Callable[[Callable[..., Any]], AssetsDefinition]:
    """Declare a software-defined asset, with Dagster's arguments.

    Function arguments other than ``context`` are inputs: each reads the asset named like the
    argument, or the one its ``AssetIn`` names. ``deps`` declares parents the function does not receive.
    """

    def build(fn: Callable[..., Any]) -> AssetsDefinition:
        asset_key = _asset_key(fn, name=name, key=key, key_prefix=key_prefix)
        takes_context, input_names = _split_parameters(fn)
        unknown_ins = sorted(set(ins or {}) - set(input_names))
        if unknown_ins:
            raise DefinitionError(
                f"Asset {asset_key.to_user_string()!r} declares ins {unknown_ins} that are not arguments of "
                f"{fn.__name__}(); add them as arguments or use deps=[...] instead."
            )
        dependencies = [_input_dep(input_name, (ins or {}).get(input_name)) for input_name in input_names]
        dependencies += [_dep_from(dep) for dep in deps or ()]
        seen: set[AssetKey] = set()
        for dependency in dependencies:
            if dependency.asset_key in seen:
                raise DefinitionError(
                    f"Asset {asset_key.to_user_string()!r} depends on "
                    f"{dependency.asset_key.to_user_string()!r} twice."
                )
            if dependency.asset_key == asset_key:
                raise DefinitionError(f"Asset {asset_key.to_user_string()!r} depends on itself.")
            seen.add(dependency.asset_key)
        node = AssetNode(
            key=asset_key,
            deps=tuple(dependencies),
            partitions_def=partitions_def,
            backfill_policy=backfill_policy,
            group_name=group_name or DEFAULT_GROUP_NAME,
            description=description if description is not None else inspect.getdoc(fn),
            tags=dict(tags or {}),
            code_version=code_version,
        )
        return AssetsDefinition(node, fn, takes_context)

    if compute_fn is not None:
        return build(compute_fn)
    return build


def _asset_key(
    fn: Callable[..., Any],
    *,
    name: str | None,
    key: CoercibleToAssetKey | None,
    key_prefix: str | Sequence[str] | None,
) -> AssetKey:
    if key is not None:
        if name is not None or key_prefix is not None:
            raise DefinitionError(f"@asset on {fn.__name__}: pass either key, or name/key_prefix, not both.")
        return AssetKey.from_coercible(key)
    base = AssetKey(name or fn.__name__)
    return base.with_prefix(key_prefix) if key_prefix else base


def _split_parameters(fn: Callable[..., Any]) -> tuple[bool, list[str]]:
    """Tell whether ``fn`` wants a context (its first parameter) and name its input parameters."""
    parameters = list(inspect.signature(fn).parameters.values())
    takes_context = bool(parameters) and _is_context_parameter(parameters[0])
    inputs = parameters[1:] if takes_context else parameters
    for parameter in inputs:
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            raise DefinitionError(f"@asset {fn.__name__}: *args and **kwargs cannot be asset inputs.")
    return takes_context, [parameter.name for parameter in inputs]


def _is_context_parameter(parameter: inspect.Parameter) -> bool:
    if parameter.name in _CONTEXT_PARAMETER_NAMES:
        return True
    annotation = parameter.annotation
    annotation_name = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", "")
    return str(annotation_name).endswith("ExecutionContext")


def _input_dep(input_name: str, asset_in: AssetIn | None) -> AssetDep:
    if asset_in is None:
        return AssetDep(AssetKey(input_name), input_name=input_name)
    key = AssetKey.from_coercible(asset_in.key) if asset_in.key is not None else AssetKey(input_name)
    if asset_in.key_prefix:
        key = key.with_prefix(asset_in.key_prefix)
    return AssetDep(key, partition_mapping=asset_in.partition_mapping, input_name=input_name)


def _dep_from(value: CoercibleToAssetKey | AssetsDefinition | AssetDep) -> AssetDep:
    if isinstance(value, AssetDep):
        return value
    if isinstance(value, AssetsDefinition):
        return AssetDep(value.key)
    return AssetDep(AssetKey.from_coercible(value))
