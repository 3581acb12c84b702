"""Search spaces as data: categorical decisions in a fixed walk order; an arch is an index list."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..arch import Arch, format_indices
from ..errors import BadInput
from ..ops import GRANULARITIES, Op, decompose, op_from_key


@dataclass(frozen=True)
class Choice:
    """One categorical decision: `name` (unique in its space) and the option values."""

    name: str
    options: tuple

    def __len__(self):
        return len(self.options)


class SearchSpace:
    """Base class. Subclasses set `name`, `choices` and implement `decode` (and `ops`, `encode`)."""

    name: str = ""
    description: str = ""
    default_table: str | None = None  # the shipped table a search uses without --lut
    choices: list  # list[Choice], walk order

    # -------------------------------------------------------------- generic part
    @property
    def num_decisions(self) -> int:
        return len(self.choices)

    @property
    def cardinality(self) -> int:
        return math.prod(len(c) for c in self.choices)

    @property
    def sizes(self) -> list[int]:
        return [len(c) for c in self.choices]

    def sample(self, seed_or_rng=None) -> list[int]:
        rng = seed_or_rng if isinstance(seed_or_rng, np.random.Generator) else np.random.default_rng(seed_or_rng)
        return [int(rng.integers(len(c))) for c in self.choices]

    def check_indices(self, indices, where: str = "indices") -> list[int]:
        indices = [int(i) for i in indices]
        if len(indices) != len(self.choices):
            raise BadInput(f"{where}: space {self.name} has {len(self.choices)} decisions, got {len(indices)} indices")
        for pos, (i, c) in enumerate(zip(indices, self.choices)):
            if not 0 <= i < len(c):
                raise BadInput(f"{where}[{pos}] ({c.name}): index {i} out of range 0..{len(c) - 1}")
        return indices

    def check_granularity(self, granularity: str) -> None:
        if granularity not in GRANULARITIES:
            raise BadInput(f"granularity: expected one of {', '.join(GRANULARITIES)}, got {granularity!r}")

    def describe(self) -> dict:
        return {"name": self.name, "description": self.description, "decisions": self.num_decisions,
                "cardinality": self.cardinality, "log10_cardinality": round(math.log10(self.cardinality), 2),
                "references": {k: format_indices(v) for k, v in self.reference_models().items()}}

    # -------------------------------------------------------------- per space
    def decode(self, indices) -> Arch:
        raise NotImplementedError

    def encode(self, arch: Arch) -> list[int]:
        raise NotImplementedError(f"space {self.name} cannot encode archs")

    def ops(self, granularity: str = "block") -> list[Op]:
        """Every unique Op any arch of the space can contain (what `profile` must measure)."""
        raise NotImplementedError

    def arch_keys(self, arch: Arch, granularity: str) -> list:
        """[(layer index, part, key)] of `arch` at `granularity`: what a table of that granularity prices.
        Spaces with keys of their own (imported TuNAS tables: `tunas-layer`) override this."""
        self.check_granularity(granularity)
        return [(u.layer_index, u.part, u.op.key) for u in decompose(arch, granularity)]

    def check_table_key(self, key: str, granularity: str) -> None:
        """BadInput when `key` cannot be a key of a `granularity` table of this space (a loaded table's
        garbage keys are refused rather than silently never priced)."""
        if granularity in GRANULARITIES:
            op_from_key(key)
        else:
            raise BadInput(f"space {self.name} has no {granularity} keys")

    def published_table(self, data_path=None) -> dict:
        """A published latency model of this space as table fields (`latbench import-lut`); none by default."""
        raise BadInput(f"--space: {self.name} has no published latency table to import")

    def reference_models(self) -> dict:
        """{name: index list} of published architectures expressible in this space."""
        return {}

    def cost_factors(self, granularity: str = "block") -> list:
        """The arch's ops as a sum of Factors (see Factor), for LatencyModel."""
        raise NotImplementedError(f"space {self.name} has no cost factors")


@dataclass(frozen=True)
class Factor:
    """A piece of an arch's cost that depends only on a few decisions.

    `decisions` are positions in the index list; `ops(values)` gives the Ops this piece contributes
    for those decision values (possibly none, e.g. a skipped layer). The factors of a space
    partition every decoded arch's ops exactly; LatencyModel compiles each into a small table.
    """

    decisions: tuple
    ops: object  # Callable[[tuple], list[Op]]
    name: str = ""
