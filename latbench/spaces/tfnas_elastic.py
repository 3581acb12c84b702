"""`tfnas-elastic`: the `tfnas` space with the mid width of every block as a decision.

TF-NAS's elasticity scaling moves each op's mid channels within [max/2, max], max = 4 x C_in for
an e3 op and 8 x C_in for an e6 op (TF-NAS's channel masks; the supernet starts at 3 x / 6 x).
A LUT of `tfnas` alone has one width per op, so a search's shrunk or expanded blocks would be
priced by the regressor. This space adds, per block, a width decision with 5 levels (0.5, 0.625,
0.75, 0.875, 1.0) x max, i.e. 2, 2.5, 3, 3.5, 4 x C_in (e3) and 4, 5, 6, 7, 8 x C_in (e6); level
2 is the nominal width, so every `tfnas` arch is an arch of this space. Profiling it gives the
table entries that interpolation needs for any width in between, and `validate --space
tfnas-elastic` samples archs with random widths. The SE width stays tied to C_in (C_in for e3,
2 x C_in for e6), as in TF-NAS's code, whatever the mid width.

Walk order: 18 op decisions, 18 width decisions (same block order), 5 depth decisions.
"""
from __future__ import annotations

from ..errors import BadInput
from .tfnas import TFNASSpace, _parse_op, op_width_depth_choices

WIDTH_LEVELS = (0.5, 0.625, 0.75, 0.875, 1.0)  # fractions of the op's maximum mid width
MAX_RATIO = {3: 4, 6: 8}


class TFNASElasticSpace(TFNASSpace):
    name = "tfnas-elastic"
    description = ("TF-NAS supernet (tfnas) with an elastic mid width per block: ops k{3,5} x e{3,6} x SE, "
                   "mid in {0.5, 0.625, 0.75, 0.875, 1} x max (max 4 x C_in for e3, 8 x C_in for e6), "
                   "SE = C_in (e3) or 2 x C_in (e6); depth 1..n per stage")
    WIDTHS = WIDTH_LEVELS

    def _make_choices(self):
        return op_width_depth_choices(self)

    def mid(self, cin: int, op_index: int, width_index: int) -> int:
        _, e, _ = _parse_op(self.OPS[op_index])
        return int(round(cin * MAX_RATIO[e] * self.WIDTHS[width_index]))

    def _block_spec(self, indices, pos, cin):
        op, w = indices[pos], indices[self.num_blocks + pos]
        k, e, se = _parse_op(self.OPS[op])
        return self.mid(cin, op, w), k, (cin * e // 3 if se else 0)

    def _block_candidates(self, pos):
        return [{pos: j, self.num_blocks + pos: w} for j in range(len(self.OPS)) for w in range(len(self.WIDTHS))]

    def _match_block(self, pos, cin, layer, mid, where):
        for j, name in enumerate(self.OPS):
            k, e, se = _parse_op(name)
            if layer["kernel"] != k or layer["se"] != (cin * e // 3 if se else 0):
                continue
            for w in range(len(self.WIDTHS)):
                if self.mid(cin, j, w) == mid:
                    return {pos: j, self.num_blocks + pos: w}
        raise BadInput(f"{where}: block k{layer['kernel']} {cin}->mid {mid} (SE {layer['se']}) is none of the "
                       f"{self.name} ops (k3/k5; mid 2, 2.5, 3, 3.5, 4 x in with SE 0 or in; mid 4..8 x in with "
                       f"SE 0 or 2 x in)")
