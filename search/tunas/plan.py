"""From an index list of a TuNAS space to what each supernet layer computes at one step.

`Planner.plan(indices, op_warm, filter_warm)` resolves the indices with the space's own
`settings()` (so the supernet follows the space definition) and maps every channel count to the
proxy width. Warmups act per decision, like TuNAS's controller (tunas/controller.py):
- a decision in `filter_warm` (block filters, expansion ratio) takes its largest option
  (filter warmup: all filters enabled);
- a decision in `op_warm` (kernel size, squeeze-excite, layer/skip) enables all of its options
  and the layer averages their outputs (op warmup; a skippable layer averages its branch with
  zero, i.e. the residual adds half the branch).
"""
from __future__ import annotations

from dataclasses import dataclass

from latbench.spaces.tunas import se_channels

FILTER_FIELDS = ("filters", "expansion")
OP_FIELDS = ("kernel", "se", "op")
MODULE_KINDS = ("conv", "sepconv", "bneck")


@dataclass(frozen=True)
class LayerPlan:
    """One layer at one step: proxy channel counts and the enabled options."""

    present: bool
    cout: int
    mid: int
    kernels: tuple
    se: tuple  # squeeze-excite on/off options enabled (averaged when both)
    se_hidden: int
    skip_avg: bool  # op warmup on a skippable layer: average of branch and skip

    @property
    def averaged(self) -> bool:
        """True when several ops are evaluated and averaged (what rematerialisation targets)."""
        return len(self.kernels) > 1 or len(self.se) > 1 or self.skip_avg


def _largest(options) -> int:
    if "layer" in options:
        return options.index("layer")
    return max(range(len(options)), key=lambda i: options[i])


class Planner:
    """Maps index lists of `space` (a TunasSpace) to per-layer plans at a proxy width."""

    def __init__(self, space, width: float = 0.25, min_channels: int = 8):
        self.space, self.width, self.min_channels = space, width, min_channels
        tmpl = space.template
        self.specs = [spec for b in tmpl.blocks for spec in b.layers]
        self.options = [c.options for c in tmpl.choices]
        self.fields = [fld for (_, _, fld) in tmpl.positions]
        searched = [len(o) > 1 for o in self.options]
        self.filter_decisions = [d for d, f in enumerate(self.fields) if f in FILTER_FIELDS and searched[d]]
        self.op_decisions = [d for d, f in enumerate(self.fields) if f in OP_FIELDS and searched[d]]
        self.max_indices = [_largest(o) for o in self.options]
        self.max_settings = space.settings(self.max_indices)

    def proxy(self, channels: int) -> int:
        """Channel count at the proxy width (round half up, at least min_channels)."""
        return max(self.min_channels, int(channels * self.width + 0.5))

    def parents(self) -> list:
        """Per decision: (op decision, index of 'skip') when the layer it shapes can be skipped, else None.

        A skipped layer's other decisions do not affect the network (TuNAS's hierarchical sampling)."""
        out = [None] * len(self.options)
        for spec in self.specs:
            dec = dict(spec.decisions)
            op = dec.get("op")
            if op is None or "skip" not in self.options[op]:
                continue
            for fld, pos in spec.decisions:
                if fld != "op":
                    out[pos] = (op, self.options[op].index("skip"))
        return out

    def plan(self, indices, op_warm=(), filter_warm=()) -> list:
        """[LayerPlan or None per layer spec] for `indices` with the warmed-up decisions."""
        idx = [int(i) for i in indices]
        op_warm, filter_warm = set(op_warm), set(filter_warm)
        for d in filter_warm:
            idx[d] = self.max_indices[d]
        skip_avg_ops = {d for d in op_warm if self.fields[d] == "op"}
        for d in skip_avg_ops:
            idx[d] = self.max_indices[d]  # 'layer': the branch is computed, then averaged with skip
        out = []
        for s in self.space.settings(idx):
            spec = s.spec
            if spec.kind not in MODULE_KINDS:
                out.append(None)
                continue
            dec = dict(spec.decisions)
            kernels = (s.kernel,)
            if dec.get("kernel") in op_warm:
                kernels = tuple(self.options[dec["kernel"]])
            ses = (s.se,)
            if dec.get("se") in op_warm:
                ses = tuple(self.options[dec["se"]])
            mid = s.mid if spec.kind == "bneck" else s.cin
            out.append(LayerPlan(present=s.present, cout=self.proxy(s.cout), mid=self.proxy(mid), kernels=kernels,
                                 se=ses, se_hidden=self.proxy(se_channels(mid)),
                                 skip_avg=dec.get("op") in skip_avg_ops))
        return out
