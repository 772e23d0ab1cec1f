"""How a backfill groups an asset's partitions into runs."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from code_server.errors import DefinitionError


class BackfillPolicyType(Enum):
    SINGLE_RUN = "single_run"
    MULTI_RUN = "multi_run"


@dataclass(frozen=True, slots=True)
class BackfillPolicy:
    """``single_run()``: one run per contiguous range; ``multi_run(n)``: at most n partitions per run.

    An asset with no policy gets one run per partition, as in Dagster.
    """

    max_partitions_per_run: int | None

    def __post_init__(self) -> None:
        if self.max_partitions_per_run is not None and self.max_partitions_per_run < 1:
            raise DefinitionError(
                f"BackfillPolicy.multi_run needs max_partitions_per_run >= 1, got {self.max_partitions_per_run}."
            )

    @classmethod
    def single_run(cls) -> BackfillPolicy:
        return cls(max_partitions_per_run=None)

    @classmethod
    def multi_run(cls, max_partitions_per_run: int = 1) -> BackfillPolicy:
        return cls(max_partitions_per_run=max_partitions_per_run)

    @property
    def policy_type(self) -> BackfillPolicyType:
        if self.max_partitions_per_run is None:
            return BackfillPolicyType.SINGLE_RUN
        return BackfillPolicyType.MULTI_RUN

    def __repr__(self) -> str:
        if self.max_partitions_per_run is None:
            return "BackfillPolicy.single_run()"
        return f"BackfillPolicy.multi_run({self.max_partitions_per_run})"
