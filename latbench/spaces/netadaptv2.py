"""The `netadaptv2` space: sub-networks of NetAdaptV2's latency-guided initial network (appendix A.1).

Initial network: MobileNetV3-Large at 224x224 with every width rounded up to a power of two, the
depthwise kernels enlarged by 2 (3 -> 5, 5 -> 7), and one more block at 28x28 and at 14x14 (a copy
of the stage's last block). Every layer has channel-level bypass with T by output resolution,
T = 896 / resolution (112: 8, 56: 16, 28: 32, 14: 64, 7: 128) and 1024 for the 1x1 conv after the
pool (appendix B; Tables 8/9 list these T); depthwise layers T = infinity.

Decisions, network order, per layer: the filters as one of 9 uniform levels 0, 1/8, ..., 8/8 of the
full width (conv `out`; per block the expansion `mid`, depthwise `dw`, project `out` and SE
squeeze widths), and per block the depthwise kernel, odd sizes 3..full (superkernel). Width 0
removes a layer's filters (the bypass keeps the network connected; a residual block with no
project filter is the identity). A depthwise width above the channels that reach it (after a
narrowed expansion) is clipped to them, so a few index lists decode to the same network.

Judgement calls (the paper does not list its initial network; these fit Tables 8 and 9):
- SE placement and squeeze widths follow the discovered networks rather than MobileNetV3-Large:
  blocks 3, 5-9, 11-18 (Table 8 numbering) have SE, blocks 2, 4 and 10 none; squeeze width = mid/4
  for blocks with mid <= 256 and 256 for the wider ones (Table 8 lists 256 at mid 512).
- Block 2 (MobileNetV3's first block) has no expansion conv (Table 9 lists none; Table 8's "Exp 8"
  there is read as the depthwise input it filters).
The 1x1 conv after the pool has no BN (MobileNetV3).
"""
from __future__ import annotations

from dataclasses import dataclass

from ..arch import Arch, normalise_layer
from ..cbc import cbc_width, mbconv_cbc
from ..errors import BadInput
from ..ops import Op, make_op
from .base import Choice, SearchSpace

LEVELS = 9  # widths 0, 1/8, ..., 8/8 of the full width
T_BY_RESOLUTION = {112: 8, 56: 16, 28: 32, 14: 64, 7: 128, 1: 1024}


@dataclass(frozen=True)
class ConvSpec:
    out: int
    kernel: int
    stride: int
    act: str
    bn: bool = True


@dataclass(frozen=True)
class BlockSpec:
    mid: int
    out: int
    kernel: int
    stride: int
    se: int
    act: str
    expand_conv: bool = True


_B = BlockSpec
INITIAL = (
    ConvSpec(16, 3, 2, "hswish"),
    _B(16, 16, 5, 1, 0, "relu", expand_conv=False),
    _B(64, 32, 5, 2, 16, "relu"), _B(128, 32, 5, 1, 0, "relu"),
    _B(128, 64, 7, 2, 32, "relu"), _B(128, 64, 7, 1, 32, "relu"), _B(128, 64, 7, 1, 32, "relu"),
    _B(128, 64, 7, 1, 32, "relu"),
    _B(256, 128, 5, 2, 64, "hswish"), _B(256, 128, 5, 1, 0, "hswish"), _B(256, 128, 5, 1, 64, "hswish"),
    _B(256, 128, 5, 1, 64, "hswish"), _B(512, 128, 5, 1, 256, "hswish"), _B(1024, 128, 5, 1, 256, "hswish"),
    _B(1024, 128, 5, 1, 256, "hswish"),
    _B(1024, 256, 7, 2, 256, "hswish"), _B(1024, 256, 7, 1, 256, "hswish"), _B(1024, 256, 7, 1, 256, "hswish"),
    ConvSpec(1024, 1, 1, "hswish"),
    "pool",
    ConvSpec(2048, 1, 1, "hswish", bn=False),
    "fc",
)


def level_widths(full: int) -> tuple:
    return tuple(full * j // (LEVELS - 1) for j in range(LEVELS))


class NetAdaptV2Space(SearchSpace):
    name = "netadaptv2"
    description = ("NetAdaptV2 initial network (appendix A.1): MobileNetV3-Large with widths rounded up to powers "
                   "of two, depthwise kernels +2, extra blocks at 28x28 and 14x14; channel-level bypass with "
                   "T = 896/resolution; 9 width levels 0..full per layer, odd kernels 3..full")
    RESOLUTION = 224
    NUM_CLASSES = 1000
    SPEC = INITIAL
    default_table = "cpu-ort-netadaptv2-fitted"  # the shipped CPU ONNX Runtime table (layer granularity)

    def __init__(self):
        self.choices, self.slots = [], []  # slots[i]: (layer index, field) of decision i
        self.layer_t = []
        h = self.RESOLUTION
        for li, spec in enumerate(self.SPEC):
            if isinstance(spec, ConvSpec):
                h = -(-h // spec.stride)
                self.layer_t.append(T_BY_RESOLUTION.get(h, max(1, 896 // h)))
                self._add(li, "out", level_widths(spec.out))
            elif isinstance(spec, BlockSpec):
                h = -(-h // spec.stride)
                self.layer_t.append(T_BY_RESOLUTION.get(h, max(1, 896 // h)))
                if spec.expand_conv:
                    self._add(li, "mid", level_widths(spec.mid))
                self._add(li, "dw", level_widths(spec.mid))
                if spec.se:
                    self._add(li, "se", level_widths(spec.se))
                self._add(li, "out", level_widths(spec.out))
                if spec.kernel > 3:
                    self._add(li, "kernel", tuple(range(3, spec.kernel + 1, 2)))
            else:
                if spec == "pool":
                    h = 1
                self.layer_t.append(None)
        self._by_layer = {}
        for pos, (li, f) in enumerate(self.slots):
            self._by_layer.setdefault(li, {})[f] = pos

    def _add(self, li, field, options):
        self.choices.append(Choice(f"L{li}/{field}", options))
        self.slots.append((li, field))

    # -------------------------------------------------------------- full network and decode
    def full_indices(self) -> list[int]:
        """The initial network (every decision at its largest option)."""
        return [len(c) - 1 for c in self.choices]

    def layer_values(self, indices) -> list[dict]:
        """Per layer: {field: value} chosen by `indices`."""
        vals = [dict() for _ in self.SPEC]
        for pos, ((li, f), i) in enumerate(zip(self.slots, indices)):
            vals[li][f] = self.choices[pos].options[i]
        return vals

    def decode(self, indices, name: str | None = None) -> Arch:
        indices = self.check_indices(indices)
        vals = self.layer_values(indices)
        layers, c, h = [], 3, self.RESOLUTION
        for li, spec in enumerate(self.SPEC):
            v, t = vals[li], self.layer_t[li]
            if isinstance(spec, ConvSpec):
                layer = {"type": "conv", "out": v["out"], "kernel": spec.kernel, "stride": spec.stride,
                         "act": spec.act, "bn": spec.bn, "bypass": t}
                c, h = cbc_width(c, t, v["out"]), -(-h // spec.stride)
            elif isinstance(spec, BlockSpec):
                mid = v.get("mid", c)
                ze = cbc_width(c, t, mid) if spec.expand_conv else c
                layer = {"type": "mbconv", "mid": mid, "dw": min(v["dw"], ze), "out": v["out"],
                         "kernel": v.get("kernel", spec.kernel), "stride": spec.stride, "se": v.get("se", 0),
                         "se_gate": "hsigmoid", "act": spec.act, "bypass": t}
                if not spec.expand_conv:
                    layer["expand_conv"] = False
                info = mbconv_cbc(c, h, layer, mid, spec.expand_conv, spec.stride == 1)
                c, h = info["out"], -(-h // spec.stride)
            elif spec == "pool":
                layer, h = {"type": "pool"}, 1
            else:
                layer = {"type": "fc", "out": self.NUM_CLASSES}
            layers.append(normalise_layer(layer, f"{self.name} layer {li}"))
        return Arch(layers=layers, name=name or self.name, resolution=self.RESOLUTION, in_channels=3,
                    space=self.name, indices=list(indices))

    def encode(self, arch: Arch) -> list[int]:
        """Index list of `arch`; BadInput if some layer is not one of this space's options."""
        if len(arch.layers) != len(self.SPEC) or arch.resolution != self.RESOLUTION:
            raise BadInput(f"{arch.name}: not an arch of space {self.name} ({len(self.SPEC)} layers at "
                           f"{self.RESOLUTION}x{self.RESOLUTION} expected)")
        idx = []
        for pos, (li, f) in enumerate(self.slots):
            L = arch.layers[li]
            value = L.get(f)
            if f == "dw" and value is None:
                value = arch.shapes()[li].cbc["ze"]
            if f == "se" and not value:
                value = 0
            opts = self.choices[pos].options
            if value not in opts:
                raise BadInput(f"{arch.name}: layers[{li}].{f} = {value!r} is none of the {self.name} options "
                               f"{list(opts)}")
            idx.append(opts.index(value))
        if [s.cout for s in self.decode(idx).shapes()] != [s.cout for s in arch.shapes()]:
            raise BadInput(f"{arch.name}: not an arch of space {self.name} (fixed fields differ)")
        return idx

    def reference_models(self) -> dict:
        """NetAdaptV2's discovered 51 ms network (appendix B, Table 8) and the initial network."""
        from ..references import resolve_arch

        return {"NetAdaptV2-initial": self.full_indices(),
                "NetAdaptV2-51ms": self.encode(resolve_arch("netadaptv2-51ms"))}

    # -------------------------------------------------------------- ops
    def ops(self, granularity: str = "layer") -> list[Op]:
        """Every unique layer Op of the space, by propagating the set of widths that can reach
        each layer (exact: within a layer every decision is independent of the input width).
        Block granularity would pair every input width with every combination of a block's
        4-5 width decisions (~10^5 keys per block): not offered."""
        self.check_granularity(granularity)
        if granularity != "layer":
            raise BadInput(f"granularity: space {self.name} is profiled at layer granularity only "
                           "(its blocks have ~10^5 width combinations each)")
        from ..ops import bypass_conv_op  # the same op rule as decomposing an arch

        seen, out = set(), []

        def emit(op):
            if op is not None and op.key not in seen:
                seen.add(op.key)
                out.append(op)

        widths, h = {3}, self.RESOLUTION
        for li, spec in enumerate(self.SPEC):
            t = self.layer_t[li]
            own = {f: self.choices[p].options for f, p in self._by_layer.get(li, {}).items()}
            if isinstance(spec, ConvSpec):
                nxt = set()
                for c in sorted(widths):
                    for m in own["out"]:
                        emit(bypass_conv_op(h, c, m, cbc_width(c, t, m), spec.kernel, spec.stride, False, spec.act,
                                        int(spec.bn)))
                        nxt.add(cbc_width(c, t, m))
                widths, h = nxt, -(-h // spec.stride)
            elif isinstance(spec, BlockSpec):
                ho = -(-h // spec.stride)
                res = spec.stride == 1
                zes = set()
                for c in sorted(widths):
                    for e in own.get("mid", (None,)):
                        if e is None:
                            zes.add(c)
                            continue
                        ze = cbc_width(c, t, e)
                        zes.add(ze)
                        emit(bypass_conv_op(h, c, e, ze, 1, 1, False, spec.act, 1))
                nxt = set()
                for ze in sorted(zes):
                    for d in own["dw"]:
                        for k in own.get("kernel", (spec.kernel,)):
                            emit(bypass_conv_op(h, ze, min(d, ze), ze, k, spec.stride, True, spec.act, 1))
                    for s in own.get("se", ()):
                        if s:
                            emit(make_op("se", r=ho, c=ze, se=s, gate="hsigmoid"))
                    for p in own["out"]:
                        if res:
                            if p:
                                emit(bypass_conv_op(ho, ze, p, p, 1, 1, False, "none", 1))
                        else:
                            zp = cbc_width(ze, t, p)
                            emit(bypass_conv_op(ho, ze, p, zp, 1, 1, False, "none", 1))
                            nxt.add(zp)
                if res:
                    for c in sorted(widths):
                        for p in own["out"]:
                            if p:
                                emit(make_op("add", r=ho, c=c) if c == p else make_op("addpad", r=ho, i=c, o=p))
                            nxt.add(max(c, p))
                widths, h = nxt, ho
            elif spec == "pool":
                for c in sorted(widths):
                    emit(make_op("pool", r=h, c=c))
                h = 1
            else:
                for c in sorted(widths):
                    emit(make_op("fc", i=c, o=self.NUM_CLASSES, act="none"))
        return out
