"""TF-NAS search spaces: `tfnas` (the TF-NAS supernet, DESIGN 8.2) and `tfnas-mbv2` (supplement Table 5).

Both are macro spaces of MBInvRes (inverted bottleneck) blocks in stages. Every stage's first block
changes the shape (stride or width) and is always kept; the later blocks of a stage are stride 1,
width preserving and can be removed by the stage's depth decision (TF-NAS *sink-connecting*: the
stage output is the output after `depth` blocks). Removed blocks are omitted from the decoded Arch;
their op decisions are then irrelevant: `canonical` (and `encode` of an arch without recorded
indices) writes 0 for them.

Walk order (fixed):
- `tfnas`: 18 op decisions, one per searchable block in network order (stage 1 block 1, stage 1
  block 2, stage 2 block 1, ...), then 5 depth decisions for stages 1..5 (stage 6 has a single
  block, so no decision). 23 decisions in all.
- `tfnas-mbv2`: 18 op decisions, then 18 width decisions (same block order), then 5 depth decisions
  for stages 3..7 of Table 5 (stage 8 has a single block). 41 decisions in all.

Judgement calls (documented here because other modules rely on them):
- `tfnas` op order follows TF-NAS's own PRIMITIVES list (github.com/AberHu/TF-NAS,
  models/model_search.py): k3_e3, k3_e6, k5_e3, k5_e6, then the same four with SE.
  Mid channels = e x C_in (3x or 6x, the supernet's initial widths; elasticity scaling of widths is
  not a decision of this space).
- SE width rule: squeeze channels = mid // 3, i.e. C_in for e3 and 2 x C_in for e6. This is what
  TF-NAS's code does (se_channels = ic for e3, ic*2 for e6) and it reproduces the `e_se x C_in`
  column of every SE block in supplement Tables 9-12, 17 and 18 (e.g. C_in 24 -> 48 for e6, C_in
  80 -> 80 for e3). Because the SE width is tied to C_in there, it does not follow the mid
  channels when elasticity scaling shrinks them (TF-NAS-C: 24 -> mid 48, SE 24).
- The fixed 32 -> 16 block of `tfnas` has an 8-channel SE: TF-NAS's supernet builds it as
  MBInvertedResBlock(32, 32, 8, 16, k3, relu), and all six SE-searched TF-NAS archs (A, B, C, D,
  CPU-A, CPU-B) list e_se x C_in = 8 there (the -wose archs come from a supernet without SE).
  `FIXED_BLOCK_SE` holds it; set 0 in a subclass for the without-SE variant.
- `tfnas-mbv2`'s continuous expansion ratios (e3 in [2, 4], e6 in [4, 8]) are discretised into 5
  levels per op, the same fractions of the op's maximum ratio as TF-NAS's elasticity range
  [max/2, max]: width options (0.5, 0.625, 0.75, 0.875, 1.0) x max, i.e. e3 in {2, 2.5, 3, 3.5, 4}
  and e6 in {4, 5, 6, 7, 8}; level 2 is the nominal ratio 3 or 6. mid = round(C_in x ratio) (all
  C_in are multiples of 8, so it is exact). Ratio 4 is reachable twice (e3 at level 4, e6 at
  level 0): the two index lists decode to the same Arch and `canonical` picks the e3 one.
- References: no published TF-NAS arch is exactly expressible. All twelve were derived after
  elasticity scaling changed their mid channels: TF-NAS-A/B/D and A/B/D-wose have arbitrary
  widths (e.g. 16 -> 83); TF-NAS-C, C-wose, CPU-A and CPU-B sit on elasticity bounds (mid = 2 x or
  4 x C_in: TF-NAS's channel masks let an e3 op range over [2, 4] x C_in and an e6 op over
  [4, 8] x C_in around the initial 3x/6x), never on 3x/6x;
  MBV2-A/B are off the 5-level grid (16 -> 106,
  32 -> 159). Rounding them to the nearest expressible arch would not be the published network,
  so `tfnas` has no reference models; `tfnas-mbv2` has MobileNetV2 1.0 (all blocks k3, ratio 6,
  same depths, ReLU6), which is exact.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..arch import Arch, normalise_layer
from ..errors import BadInput
from ..ops import Op, decompose
from .base import Choice, Factor, SearchSpace


@dataclass(frozen=True)
class Stage:
    out: int       # output channels of every block of the stage
    blocks: int    # maximum number of blocks
    stride: int    # stride of the first block
    act: str


def _conv(out, kernel, stride, act, **extra):
    return normalise_layer({"type": "conv", "out": out, "kernel": kernel, "stride": stride, "act": act, **extra}, "conv")


def _mbconv(mid, out, kernel, stride, act, se=0):
    return normalise_layer({"type": "mbconv", "mid": mid, "out": out, "kernel": kernel, "stride": stride,
                            "se": se, "act": act}, "mbconv")


def _signature(shape) -> tuple:
    """What makes two layers the same computation (independent of how the file spelled it)."""
    L = shape.layer
    return (L["type"], shape.cin, shape.cout, shape.hin, shape.hout, shape.mid, L.get("kernel"), L.get("stride"),
            L.get("groups"), L.get("bn"), L.get("se"), L.get("se_gate") if L.get("se") else None, L.get("act"),
            shape.residual)


class _StagedSpace(SearchSpace):
    """Shared machinery: stem, fixed block, searchable stages with depth, head."""

    STAGES: tuple = ()
    STEM = (32, 3, 2)          # out, kernel, stride
    STEM_ACT = "relu"
    FIXED_BLOCK = (32, 16, 3)  # mid, out, kernel (stride 1)
    FIXED_BLOCK_ACT = "relu"
    FIXED_BLOCK_SE = 0
    HEAD = 1280
    HEAD_ACT = "swish"
    NUM_CLASSES = 1000
    RESOLUTION = 224
    FIRST_STAGE_NUMBER = 1     # how the paper numbers the first searchable stage (decision names, messages)

    def __init__(self):
        # (stage index, block index within stage) of every searchable block, network order
        self.blocks = [(si, b) for si, st in enumerate(self.STAGES) for b in range(st.blocks)]
        # stages that carry a depth decision (more than one block possible)
        self.depth_stages = [si for si, st in enumerate(self.STAGES) if st.blocks > 1]
        self.choices = self._make_choices()

    # -------------------------------------------------------------- per space
    def _make_choices(self) -> list:
        raise NotImplementedError

    def _block_spec(self, indices, block_pos: int, cin: int) -> tuple:
        """(mid, kernel, se) of searchable block `block_pos` with input channels `cin`."""
        raise NotImplementedError

    def _block_candidates(self, block_pos: int):
        """Every per-block assignment: iterable of {decision position: index} dicts."""
        raise NotImplementedError

    def _match_block(self, block_pos: int, cin: int, layer: dict, mid: int, where: str) -> dict:
        """{decision position: index} that produces this block; BadInput if none."""
        raise NotImplementedError

    # -------------------------------------------------------------- decisions layout
    @property
    def num_blocks(self) -> int:
        return len(self.blocks)

    def depth_decision(self, stage: int) -> int | None:
        """Position of `stage`'s depth decision in the index list (None: single-block stage)."""
        if stage not in self.depth_stages:
            return None
        return len(self.choices) - len(self.depth_stages) + self.depth_stages.index(stage)

    def depths(self, indices) -> list[int]:
        """Number of blocks kept per stage."""
        out = []
        for si, st in enumerate(self.STAGES):
            pos = self.depth_decision(si)
            out.append(1 if pos is None else self.choices[pos].options[indices[pos]])
        return out

    # -------------------------------------------------------------- decode
    def decode(self, indices, name: str | None = None) -> Arch:
        indices = self.check_indices(indices)
        depths = self.depths(indices)
        layers = [_conv(self.STEM[0], self.STEM[1], self.STEM[2], self.STEM_ACT)]
        mid, out, k = self.FIXED_BLOCK
        layers.append(_mbconv(mid, out, k, 1, self.FIXED_BLOCK_ACT, self.FIXED_BLOCK_SE))
        cin = out
        for pos, (si, b) in enumerate(self.blocks):
            if b >= depths[si]:
                continue
            st = self.STAGES[si]
            bmid, bk, bse = self._block_spec(indices, pos, cin)
            layers.append(_mbconv(bmid, st.out, bk, st.stride if b == 0 else 1, st.act, bse))
            cin = st.out
        layers.append(_conv(self.HEAD, 1, 1, self.HEAD_ACT))
        layers.append(normalise_layer({"type": "pool"}, "pool"))
        layers.append(normalise_layer({"type": "fc", "out": self.NUM_CLASSES}, "fc"))
        return Arch(layers=layers, name=name or self.name, resolution=self.RESOLUTION,
                    in_channels=3, space=self.name, indices=list(indices))

    # -------------------------------------------------------------- encode
    def encode(self, arch: Arch) -> list[int]:
        """Index list of `arch`; BadInput if it is not a network of this space.

        Recorded `arch.indices` (space == this space) are returned when they decode to the same
        network; otherwise the canonical list: 0 for the op/width decisions of removed blocks and,
        in `tfnas-mbv2`, the e3 op for ratio 4."""
        if arch.space == self.name and arch.indices is not None:
            # a wrong length or an index out of range is an inconsistent file, not a hint to ignore
            recorded = self.check_indices(arch.indices, f"{arch.where}: indices")
            if self._same_network(arch, self.decode(recorded)):
                return recorded
        return self._encode_canonical(arch)

    @staticmethod
    def _same_network(a: Arch, b: Arch) -> bool:
        sa, sb = a.shapes(), b.shapes()
        return len(sa) == len(sb) and all(_signature(x) == _signature(y) for x, y in zip(sa, sb))

    def _encode_canonical(self, arch: Arch) -> list[int]:
        where = arch.where
        if arch.resolution != self.RESOLUTION or arch.in_channels != 3:
            raise BadInput(f"{where}: space {self.name} needs a {self.RESOLUTION}x{self.RESOLUTION} RGB input, "
                           f"got resolution {arch.resolution}, {arch.in_channels} channels")
        shapes = arch.shapes()
        n_fixed = 2 + 3  # stem + fixed block, head conv + pool + fc
        body = shapes[2:-3] if len(shapes) >= n_fixed else []
        if len(shapes) < n_fixed or any(s.type != "mbconv" for s in body):
            raise BadInput(f"{where}: not an arch of space {self.name} (expected stem conv, fixed block, "
                           f"mbconv blocks, 1x1 head conv, pool, fc)")
        indices = [0] * len(self.choices)
        i = 0
        for si, st in enumerate(self.STAGES):
            depth = 0
            while i < len(body) and body[i].cout == st.out and depth < st.blocks:
                s = body[i]
                pos = self.blocks.index((si, depth))
                for p, v in self._match_block(pos, s.cin, s.layer, s.mid, f"{where}: layers[{s.index}]").items():
                    indices[p] = v
                depth += 1
                i += 1
            if depth == 0:
                raise BadInput(f"{where}: stage {si + self.FIRST_STAGE_NUMBER} of space {self.name} (width {st.out}) is missing")
            dpos = self.depth_decision(si)
            if dpos is not None:
                indices[dpos] = self.choices[dpos].options.index(depth)
        if i != len(body):
            s = body[i]
            raise BadInput(f"{where}: layers[{s.index}]: block {s.cin}->{s.cout} does not fit space {self.name} "
                           f"(too many blocks in a stage or an unknown width)")
        # verify: everything else (stem, fixed block, strides, activations, head) must match exactly
        ref = self.decode(indices).shapes()
        for mine, want in zip(shapes, ref):
            if _signature(mine) != _signature(want):
                raise BadInput(f"{where}: layers[{mine.index}] ({mine.type}) differs from what space {self.name} "
                               f"builds there")
        if len(ref) != len(shapes):
            raise BadInput(f"{where}: not an arch of space {self.name}")
        return indices

    def canonical(self, indices) -> list[int]:
        """The canonical index list of the network `indices` decode to (see `encode`)."""
        return self._encode_canonical(self.decode(indices))

    # -------------------------------------------------------------- ops
    def ops(self, granularity: str = "block") -> list[Op]:
        """Every unique Op of the space. Block shapes depend only on the block's position (widths are
        fixed per stage and depth only removes width-preserving blocks), so the union over the
        full-depth archs with every per-block option covers the space. Order: network order, the
        options of a position in decision order."""
        self.check_granularity(granularity)
        full_depth = [0] * len(self.choices)
        for si in self.depth_stages:
            pos = self.depth_decision(si)
            full_depth[pos] = len(self.choices[pos]) - 1
        per_layer: dict[int, list[Op]] = {}
        candidates = [list(self._block_candidates(pos)) for pos in range(self.num_blocks)]
        for j in range(len(candidates[0])):  # option j at every block, full depth
            idx = list(full_depth)
            for cands in candidates:
                for p, v in cands[j].items():
                    idx[p] = v
            for use in decompose(self.decode(idx), granularity):
                per_layer.setdefault(use.layer_index, []).append(use.op)
        seen, out = set(), []
        for li in sorted(per_layer):
            for op in per_layer[li]:
                if op.key not in seen:
                    seen.add(op.key)
                    out.append(op)
        return out

    # -------------------------------------------------------------- cost factors
    def _block_contexts(self) -> list[tuple[int, int]]:
        """(input channels, input resolution) of every searchable block, network order.

        Fixed by the stage structure: a stage's first block is always kept and every stage's
        output width is fixed, so a first block takes the previous stage's width and the stride
        pattern of the kept blocks (only first blocks stride) fixes every resolution; a later
        block takes its own stage's width. Depth only removes width-preserving, stride-1 blocks.
        """
        c = self.FIXED_BLOCK[1]
        h = -(-self.RESOLUTION // self.STEM[2])  # the fixed block is stride 1
        out = []
        for si, b in self.blocks:
            st = self.STAGES[si]
            out.append((c, h))
            if b == 0:
                h = -(-h // st.stride)
            c = st.out
        return out

    def cost_factors(self, granularity: str = "block") -> list:
        """Stem, fixed block, head conv, pool and fc as one constant Factor, then one Factor per
        searchable block over its own decisions (op; op and width in `tfnas-mbv2`) plus, for a
        block after the first of its stage, the stage's depth decision (the block contributes no
        ops when the depth removes it). A block's ops do not depend on anything else: its input
        width and resolution are fixed (see `_block_contexts`) and its residual add is stride 1
        with in == out, i.e. exactly the non-first blocks of a stage."""
        self.check_granularity(granularity)
        # constant part: the layers before and after the searchable blocks of any arch
        ref = self.decode([0] * len(self.choices))
        n_layers = len(ref.layers)
        const_layers = {0, 1, n_layers - 3, n_layers - 2, n_layers - 1}
        const_ops = tuple(u.op for u in decompose(ref, granularity) if u.layer_index in const_layers)
        factors = [Factor((), lambda values, _ops=const_ops: list(_ops), "stem+fixed+head")]
        n0 = self.FIRST_STAGE_NUMBER
        for pos, ((si, b), (cin, hin)) in enumerate(zip(self.blocks, self._block_contexts())):
            own = tuple(sorted(self._block_candidates(pos)[0]))
            dpos = self.depth_decision(si) if b > 0 else None
            decisions = own + ((dpos,) if dpos is not None else ())
            factors.append(Factor(decisions, self._block_factor_ops(pos, si, b, cin, hin, own, dpos, granularity),
                                  f"stage{si + n0}/block{b + 1}"))
        return factors

    def _block_factor_ops(self, pos, si, b, cin, hin, own, dpos, granularity):
        st = self.STAGES[si]
        depth_options = self.choices[dpos].options if dpos is not None else None
        cache = {}

        def ops(values):
            values = tuple(int(v) for v in values)
            if values not in cache:
                if dpos is not None and depth_options[values[-1]] <= b:
                    cache[values] = ()  # removed by the stage's depth
                else:
                    idx = [0] * len(self.choices)
                    for p, v in zip(own, values):
                        idx[p] = v
                    mid, k, se = self._block_spec(idx, pos, cin)
                    layer = _mbconv(mid, st.out, k, st.stride if b == 0 else 1, st.act, se)
                    block = Arch(layers=[layer], name=f"{self.name}/block{pos}", resolution=hin, in_channels=cin)
                    cache[values] = tuple(u.op for u in decompose(block, granularity))
            return list(cache[values])

        return ops


# ====================================================================== tfnas
TFNAS_OPS = ("k3_e3", "k3_e6", "k5_e3", "k5_e6", "k3_e3_se", "k3_e6_se", "k5_e3_se", "k5_e6_se")


def _parse_op(name: str) -> tuple[int, int, bool]:
    parts = name.split("_")
    return int(parts[0][1:]), int(parts[1][1:]), len(parts) > 2


class TFNASSpace(_StagedSpace):
    """The TF-NAS supernet (DESIGN 8.2): 18 searchable MBInvRes blocks in 6 stages, 8 ops each."""

    name = "tfnas"
    description = ("TF-NAS supernet: stem 3->32 s2, fixed k3 block 32->16 (SE 8), 18 MBInvRes blocks in 6 stages "
                   "(24 s2 relu x2, 40 s2 swish x3, 80 s2 swish x4, 112 s1 swish x4, 192 s2 swish x4, "
                   "320 s1 swish x1); ops k{3,5} x e{3,6} x SE{no,yes} (SE = mid/3); depth 1..n per stage; "
                   "head 1x1 1280 swish, pool, fc 1000")
    STAGES = (Stage(24, 2, 2, "relu"), Stage(40, 3, 2, "swish"), Stage(80, 4, 2, "swish"),
              Stage(112, 4, 1, "swish"), Stage(192, 4, 2, "swish"), Stage(320, 1, 1, "swish"))
    FIXED_BLOCK_SE = 8
    HEAD_ACT = "swish"
    OPS = TFNAS_OPS
    default_table = "cpu-torch-tfnas-fitted"  # the shipped CPU PyTorch table (TF-NAS's own CPU setup)

    def _make_choices(self):
        n0 = self.FIRST_STAGE_NUMBER
        choices = [Choice(f"stage{si + n0}/block{b + 1}/op", self.OPS) for si, b in self.blocks]
        choices += [Choice(f"stage{si + n0}/depth", tuple(range(1, self.STAGES[si].blocks + 1)))
                    for si in self.depth_stages]
        return choices

    def _block_spec(self, indices, pos, cin):
        k, e, se = _parse_op(self.OPS[indices[pos]])
        mid = cin * e
        return mid, k, (mid // 3 if se else 0)

    def _block_candidates(self, pos):
        return [{pos: j} for j in range(len(self.OPS))]

    def _match_block(self, pos, cin, layer, mid, where):
        for j, name in enumerate(self.OPS):
            k, e, se = _parse_op(name)
            if layer["kernel"] == k and mid == cin * e and layer["se"] == (mid // 3 if se else 0):
                return {pos: j}
        raise BadInput(f"{where}: block k{layer['kernel']} {cin}->mid {mid} (SE {layer['se']}) is none of the "
                       f"{self.name} ops (k3/k5, mid 3x or 6x in, SE 0 or mid/3)")

    def reference_models(self) -> dict:
        """None: every published TF-NAS arch had its mid channels changed by elasticity scaling."""
        return {}


# ====================================================================== tfnas-mbv2
MBV2_OPS = ("k3_e3", "k5_e3", "k3_e6", "k5_e6")
MBV2_MAX_RATIO = {3: 4.0, 6: 8.0}                   # e3 in [2, 4], e6 in [4, 8]
MBV2_WIDTHS = (0.5, 0.625, 0.75, 0.875, 1.0)        # fraction of the op's maximum ratio


class TFNASMBV2Space(_StagedSpace):
    """TF-NAS supplement Table 5: the MobileNetV2-based supernet, discretised expansion ratios."""

    name = "tfnas-mbv2"
    description = ("TF-NAS MobileNetV2-based supernet (supplement Table 5): ReLU6, stem 3->32 s2, fixed k3_e1 "
                   "block 32->16, stages 24 [1,2] s2, 32 [1,3] s2, 64 [1,4] s2, 96 [1,4] s1, 160 [1,4] s2, "
                   "320 [1] s1; ops k3_e3/k5_e3/k3_e6/k5_e6 with ratio e3 in {2,2.5,3,3.5,4}, "
                   "e6 in {4,5,6,7,8}; head 1x1 1280, pool, fc 1000")
    STAGES = (Stage(24, 2, 2, "relu6"), Stage(32, 3, 2, "relu6"), Stage(64, 4, 2, "relu6"),
              Stage(96, 4, 1, "relu6"), Stage(160, 4, 2, "relu6"), Stage(320, 1, 1, "relu6"))
    STEM_ACT = "relu6"
    FIXED_BLOCK_ACT = "relu6"
    FIXED_BLOCK_SE = 0
    HEAD_ACT = "relu6"
    OPS = MBV2_OPS
    WIDTHS = MBV2_WIDTHS
    FIRST_STAGE_NUMBER = 3     # Table 5 numbers the stem 1 and the fixed block 2

    def _make_choices(self):
        return op_width_depth_choices(self)

    def ratio(self, op_index: int, width_index: int) -> float:
        _, e, _ = _parse_op(self.OPS[op_index])
        return MBV2_MAX_RATIO[e] * self.WIDTHS[width_index]

    @staticmethod
    def _mid(cin: int, ratio: float) -> int:
        return int(cin * ratio + 0.5)

    def _block_spec(self, indices, pos, cin):
        op, w = indices[pos], indices[self.num_blocks + pos]
        k, _, _ = _parse_op(self.OPS[op])
        return self._mid(cin, self.ratio(op, w)), k, 0

    def _block_candidates(self, pos):
        return [{pos: j, self.num_blocks + pos: w} for j in range(len(self.OPS)) for w in range(len(self.WIDTHS))]

    def _match_block(self, pos, cin, layer, mid, where):
        if layer["se"]:
            raise BadInput(f"{where}: space {self.name} has no squeeze-and-excite")
        for j, name in enumerate(self.OPS):  # first match wins: ratio 4 encodes as e3 at full width
            k, _, _ = _parse_op(name)
            if layer["kernel"] != k:
                continue
            for w in range(len(self.WIDTHS)):
                if self._mid(cin, self.ratio(j, w)) == mid:
                    return {pos: j, self.num_blocks + pos: w}
        raise BadInput(f"{where}: block k{layer['kernel']} {cin}->mid {mid} is none of the {self.name} ops "
                       f"(k3/k5, ratio in {{2, 2.5, 3, 3.5, 4, 5, 6, 7, 8}})")

    def reference_models(self) -> dict:
        """MobileNetV2 1.0: every block k3_e6 at the nominal ratio 6 (width level 2), depths 2, 3, 4, 3, 3.
        TF-NAS-MBV2-A/B are off the discretisation grid (their widths are elasticity-scaled)."""
        n = self.num_blocks
        ops = [self.OPS.index("k3_e6")] * n
        widths = [self.WIDTHS.index(0.75)] * n
        depths = [2, 3, 4, 3, 3]
        depth_idx = [self.choices[self.depth_decision(si)].options.index(d) for si, d in zip(self.depth_stages, depths)]
        return {"MobileNetV2": self.canonical(ops + widths + depth_idx)}


def op_width_depth_choices(space) -> list:
    """Decisions of a TF-NAS space with a width per block: every block's op, every block's width
    (`space.WIDTHS`), then every stage's depth, in that walk order."""
    n0 = space.FIRST_STAGE_NUMBER
    choices = [Choice(f"stage{si + n0}/block{b + 1}/op", space.OPS) for si, b in space.blocks]
    choices += [Choice(f"stage{si + n0}/block{b + 1}/width", space.WIDTHS) for si, b in space.blocks]
    choices += [Choice(f"stage{si + n0}/depth", tuple(range(1, space.STAGES[si].blocks + 1)))
                for si in space.depth_stages]
    return choices
