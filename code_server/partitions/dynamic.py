"""Partitions whose keys are added and removed at run time (customers, files, experiments, ...)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from code_server.errors import DefinitionError, PartitaError
from code_server.partitions.base import DynamicPartitionsStore, PartitionsDefinition


class DynamicPartitionsStoreRequiredError(PartitaError):
    """The keys of a dynamic partitions definition were asked for without a store to read them from.

    The keys live in the control plane's database, so only code handed the control plane's
    :class:`DynamicPartitionsStore` (sensors, runs, the planner) can list them.
    """


class DynamicPartitionsDefinition(PartitionsDefinition):
    """Partitions whose keys the control plane stores under ``name``.

    ``DynamicPartitionsDefinition(name="files")``. The definition itself holds no keys; every
    question about keys goes to the :class:`DynamicPartitionsStore` passed in, so two definitions
    with the same name are the same set of partitions.
    """

    def __init__(self, name: str) -> None:
        if not isinstance(name, str) or not name.strip():
            raise DefinitionError(
                f"DynamicPartitionsDefinition needs a non-empty name, got {name!r}; the name is where "
                "the control plane stores its keys (partition_fn is not supported)."
            )
        self._name = name

    @property
    def name(self) -> str:
        return self._name

    def get_partition_keys(
        self,
        current_time: datetime | None = None,
        dynamic_partitions_store: DynamicPartitionsStore | None = None,
    ) -> Sequence[str]:
        if dynamic_partitions_store is None:
            raise DynamicPartitionsStoreRequiredError(
                f"The keys of dynamic partitions {self._name!r} are kept by the control plane: pass its "
                "dynamic_partitions_store (sensors, schedules and runs receive one in their context)."
            )
        return tuple(dynamic_partitions_store.get_dynamic_partitions(self._name))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DynamicPartitionsDefinition) and self._name == other._name

    def __hash__(self) -> int:
        return hash((DynamicPartitionsDefinition, self._name))

    def __repr__(self) -> str:
        return f"DynamicPartitionsDefinition(name={self._name!r})"
