"""TuNAS's simulated Pixel-1 latency model, evaluated raw from the packaged data file.

latency_ms = bias + sum over layers with cost features of weights[o][i][c], where o is the
position of the layer's output (block) width among its output options, i that of its input width
(0 for the network's first layer), and c that of its choice: the mixed-radix index over the
layer's `choice_axes` (kernel, expansion ratio, squeeze-excite, in that order), or the last entry
("skip") when the layer is skipped. A skipped layer still contributes its skip weight.

Individual weights are regression coefficients (some negative); only sums are meaningful.
`cost_terms` yields every term so that a LUT importer can re-base them per layer.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

from .space import TunasSpace, feature_index, load_tunas_data, tunas_space


@dataclass(frozen=True)
class CostTerm:
    """One layer's contribution: weights[o][i][c] of layer `layer` (e.g. "block2/layer1")."""

    layer: str
    o: int
    i: int
    c: int
    weight: float
    choice: str  # the choice feature's label, e.g. "k5_e3" or "skip"


def _space(space) -> TunasSpace:
    return space if isinstance(space, TunasSpace) else tunas_space(space)


def bias_ms(space) -> float:
    """The model's bias (ms) for a TuNAS space (latbench name, TuNAS key or space object)."""
    return float(load_tunas_data()["spaces"][_space(space).tunas_key]["bias"])


def cost_terms(space, indices) -> Iterator[CostTerm]:
    """Per layer with cost features, in network order: (layer name, o, i, c, weight, label)."""
    for s in _space(space).settings(indices):
        if not s.spec.has_cost:
            continue
        o, i, c = feature_index(s)
        e = s.spec.entry
        yield CostTerm(e["name"], o, i, c, float(e["weights"][o][i][c]), e["choice_features"][c])


def pixel1_latency_ms(space_name, indices) -> float:
    """Simulated Pixel-1 latency (ms) of `indices` in a TuNAS space (name, key or space object)."""
    return bias_ms(space_name) + sum(t.weight for t in cost_terms(space_name, indices))
