"""Elastic mid widths of a TF-NAS space and how they are priced.

TF-NAS (supplement section 3) allocates every candidate op at a full width and lets elasticity
scaling move its active mid channels within [max/2, max]; the supernet starts at the space's
nominal widths. TF-NAS's own channel masks (tools/config.py of the reference code) make max
= 4 x C_in for an e3 op and 8 x C_in for an e6 op, started at 3 x and 6 x: so the range is
[2, 4] x C_in and [4, 8] x C_in, the ranges the supplement's published archs sit in.

`ElasticWidths` holds the current mid of every (block, op) at deployment scale. `ElasticView`
is the space seen by the search: only the op and depth decisions (a `tfnas-mbv2` width decision
is replaced by the elastic width), decoding to an Arch with the current widths. Pricing is a
LatencyModel *recompiled* for the view whenever the widths change (`ElasticView.latency_model`):
its tables are filled by `LatencyTable.op_ms` on the exact keys of the current widths, so a
width between measured entries is priced the way `LatencyTable.predict` prices it (interpolated
along the width, else regressed) and the model equals `predict` on every decoded arch (tests).
Compiling is cheap (one small table per block), so it runs after every elasticity step.

Uses the staged TF-NAS spaces' own block definitions (`_block_spec`, `_block_contexts`) so the
kernel, SE width and stride of each op stay exactly the space's.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass

from latbench.arch import Arch, normalise_layer
from latbench.errors import BadInput
from latbench.ops import decompose
from latbench.spaces.base import Factor, SearchSpace

MAX_PER_NOMINAL = 4 / 3  # e3 -> max 4 x C_in, e6 -> max 8 x C_in (TF-NAS's channel masks)


@dataclass(frozen=True)
class BlockOp:
    """One candidate op of one searchable block at deployment scale (width-independent part)."""

    cin: int
    hin: int
    cout: int
    kernel: int
    stride: int
    act: str
    se: int
    nominal_mid: int
    max_mid: int

    @property
    def min_mid(self) -> int:
        return self.max_mid // 2

    def layer(self, mid: int) -> dict:
        return normalise_layer({"type": "mbconv", "mid": int(mid), "out": self.cout, "kernel": self.kernel,
                                "stride": self.stride, "se": self.se, "act": self.act}, "mbconv")


def op_decisions(space) -> list[int]:
    """Positions of the op decision of every searchable block (network order)."""
    return [pos for pos in range(space.num_blocks)]


def block_ops(space) -> list[list[BlockOp]]:
    """[block][op] definitions of a staged TF-NAS space (`tfnas` or `tfnas-mbv2`)."""
    if not hasattr(space, "STAGES") or not hasattr(space, "_block_spec"):
        raise BadInput(f"--space: {space.name}: TF-NAS search needs a TF-NAS space (tfnas, tfnas-mbv2)")
    nominal = [0] * space.num_decisions
    width_dec = getattr(space, "WIDTHS", None)
    if width_dec is not None:  # tfnas-mbv2: the width decisions at their nominal level (ratio 3 or 6)
        for pos in range(space.num_blocks):
            nominal[space.num_blocks + pos] = space.WIDTHS.index(0.75)
    out = []
    for pos, ((si, b), (cin, hin)) in enumerate(zip(space.blocks, space._block_contexts())):
        st = space.STAGES[si]
        row = []
        for j in range(len(space.choices[pos])):
            idx = list(nominal)
            idx[pos] = j
            mid, k, se = space._block_spec(idx, pos, cin)
            row.append(BlockOp(cin=cin, hin=hin, cout=st.out, kernel=k, stride=st.stride if b == 0 else 1,
                               act=st.act, se=se, nominal_mid=mid, max_mid=int(round(mid * MAX_PER_NOMINAL))))
        out.append(row)
    return out


class ElasticWidths:
    """Current mid channels of every (block, op), deployment scale, each within [max/2, max]."""

    def __init__(self, ops: list[list[BlockOp]], mids=None):
        self.ops = ops
        self.mids = [[o.nominal_mid for o in row] for row in ops] if mids is None else [list(map(int, r)) for r in mids]
        for pos, (row, mrow) in enumerate(zip(self.ops, self.mids)):
            for j, (o, m) in enumerate(zip(row, mrow)):
                if not o.min_mid <= m <= o.max_mid:
                    raise ValueError(f"block {pos} op {j}: mid {m} outside [{o.min_mid}, {o.max_mid}]")

    def copy(self) -> "ElasticWidths":
        return ElasticWidths(self.ops, self.mids)

    def fraction(self, pos: int, op: int) -> float:
        """Active share of the op's allocated width (what the proxy supernet keeps)."""
        return self.mids[pos][op] / self.ops[pos][op].max_mid


class ElasticView(SearchSpace):
    """A TF-NAS space's op + depth decisions with the mid widths fixed by an ElasticWidths.

    Index list: one op index per searchable block, then the base space's depth decisions."""

    def __init__(self, base, widths: ElasticWidths):
        self.base, self.widths = base, widths
        self.name = base.name
        self.description = f"{base.name} with elastic mid widths"
        self.depth_positions = [base.depth_decision(si) for si in base.depth_stages]
        self.choices = [base.choices[p] for p in op_decisions(base)] + [base.choices[p] for p in self.depth_positions]

    @property
    def num_blocks(self) -> int:
        return self.base.num_blocks

    def depth_index(self, stage: int) -> int | None:
        """Position of `stage`'s depth decision in this view's index list."""
        if stage not in self.base.depth_stages:
            return None
        return self.num_blocks + self.base.depth_stages.index(stage)

    def depths(self, indices) -> list[int]:
        out = []
        for si in range(len(self.base.STAGES)):
            d = self.depth_index(si)
            out.append(1 if d is None else self.choices[d].options[int(indices[d])])
        return out

    def kept_blocks(self, indices) -> list[int]:
        depths = self.depths(indices)
        return [pos for pos, (si, b) in enumerate(self.base.blocks) if b < depths[si]]

    def block_layer(self, pos: int, op: int) -> dict:
        return self.widths.ops[pos][op].layer(self.widths.mids[pos][op])

    def decode(self, indices, name: str | None = None) -> Arch:
        indices = self.check_indices(indices)
        ref = self.base.decode([0] * self.base.num_decisions)  # stem, fixed block, head: any arch's
        n = len(ref.layers)
        layers = list(ref.layers[:2])
        layers += [self.block_layer(pos, indices[pos]) for pos in self.kept_blocks(indices)]
        layers += list(ref.layers[n - 3:])
        return Arch(layers=layers, name=name or f"{self.base.name}-elastic", resolution=ref.resolution,
                    in_channels=ref.in_channels)

    def cost_factors(self, granularity: str = "block") -> list:
        """Like the base space's: the constant layers, then one factor per block over its op (and,
        after a stage's first block, the stage's depth), at the current widths."""
        self.check_granularity(granularity)
        ref = self.base.decode([0] * self.base.num_decisions)
        n = len(ref.layers)
        const_layers = {0, 1, n - 3, n - 2, n - 1}
        const_ops = tuple(u.op for u in decompose(ref, granularity) if u.layer_index in const_layers)
        factors = [Factor((), lambda values, _ops=const_ops: list(_ops), "stem+fixed+head")]
        for pos, (si, b) in enumerate(self.base.blocks):
            d = self.depth_index(si) if b > 0 else None
            decisions = (pos,) + ((d,) if d is not None else ())
            factors.append(Factor(decisions, self._factor_ops(pos, b, d, granularity), f"block{pos}"))
        return factors

    def _factor_ops(self, pos, b, d, granularity):
        depth_options = self.choices[d].options if d is not None else None

        def ops(values):
            if d is not None and depth_options[int(values[1])] <= b:
                return []
            return block_op_list(self.widths.ops[pos][int(values[0])], self.widths.mids[pos][int(values[0])],
                                 granularity)

        return ops

    def latency_model(self, table):
        """A LatencyModel of this view at the current widths (rebuild it after the widths change)."""
        from latbench.lut.latency_model import LatencyModel

        return LatencyModel(self, table)

    def all_indices(self):
        """Every index list of the view (only for tiny test spaces)."""
        return itertools.product(*[range(len(c)) for c in self.choices])


_BLOCK_CACHE: dict = {}


def block_op_list(op: BlockOp, mid: int, granularity: str) -> list:
    """The Ops of one block at `mid` (cached: elasticity prices the same widths many times)."""
    key = (op, int(mid), granularity)
    if key not in _BLOCK_CACHE:
        block = Arch(layers=[op.layer(mid)], name="block", resolution=op.hin, in_channels=op.cin)
        _BLOCK_CACHE[key] = tuple(u.op for u in decompose(block, granularity))
    return list(_BLOCK_CACHE[key])


class BlockPricer:
    """Predicted ms of the derived arch for given widths, without decoding (elasticity scaling
    prices hundreds of width settings): base + constant layers + Σ kept blocks' op_ms. Equals
    `table.predict(view.decode(indices))` (tests)."""

    def __init__(self, view: ElasticView, table):
        self.view, self.table = view, table
        g = table.granularity
        ref = view.base.decode([0] * view.base.num_decisions)
        n = len(ref.layers)
        const_layers = {0, 1, n - 3, n - 2, n - 1}
        self.const_ms = table.base_ms + sum(table.op_ms(u.op.key)[0] for u in decompose(ref, g)
                                            if u.layer_index in const_layers)
        self._ms = {}

    def block_ms(self, pos: int, op: int, mid: int) -> float:
        key = (pos, op, int(mid))
        if key not in self._ms:
            ops = block_op_list(self.view.widths.ops[pos][op], mid, self.table.granularity)
            self._ms[key] = sum(self.table.op_ms(o.key)[0] for o in ops)
        return self._ms[key]

    def latency(self, indices, mids) -> float:
        """ms of the arch `indices` (view index list) with mids[pos][op] as the widths."""
        total = self.const_ms
        for pos in self.view.kept_blocks(indices):
            op = int(indices[pos])
            total += self.block_ms(pos, op, mids[pos][op])
        return total
