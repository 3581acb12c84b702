"""The three TuNAS search spaces, read from the packaged TuNAS data file.

`proxylessnas`, `proxylessnas-enlarged` and `mobilenetv3-like` are TuNAS's `proxylessnas_search`,
`proxylessnas_enlarged_search` and `mobilenet_v3_like_search` (TuNAS paper Table 2 / section 3.1;
code: google-research `tunas/mobile_search_space_v3.py`). Everything structural (blocks, layers,
strides, activations, width and choice options, the decision order) comes from
`latbench/data/tunas_pixel1_cost_model.json`; nothing is copied into this module by hand.

Decisions are exactly TuNAS's index vector (one entry per `OneOf` node, single-choice nodes
included), so an index string from TuNAS (e.g. `searched_architectures.csv`) decodes directly.

How TuNAS layers become latbench layers:
- `conv` + the activation layer after it -> one `conv` (act "none" if no activation follows);
  the MobileNetV3 head's second 1x1 conv (after the pool, no batch norm) gets `"bn": false`.
- depthwise-separable conv -> `mbconv` with `mid == in` (no expansion conv).
- inverted bottleneck -> `mbconv` with absolute `mid = scale_filters(in, ratio, 8)`
  (round half up to a multiple of 8, at least 8), always with its 1x1 expansion conv: where
  `mid == in` (expansion ratio 1, mobilenetv3-like only) the layer says so with
  `"expand_conv": true`, which `encode` requires there; squeeze-excite channels
  `make_divisible(mid * 0.25, 8)` with a plain sigmoid gate (TuNAS `rematlib/mobile_model_v3.py`:
  `_SQUEEZE_AND_EXCITE_RATIO = 0.25`, `se_gating_activation` defaults to `SIGMOID` = `tf.nn.sigmoid`).
- layers that TuNAS does not wrap in a `ResidualSpec` (the first layer of every block) get
  `"residual": false`; residual layers keep the default (a residual add, shapes always match).
- skipped layers and detection endpoints are omitted; `swish6` (hard swish) becomes `hswish`.
- a global pool and an `fc` to 1000 classes close the network (TuNAS's classifier is a 1x1 conv
  on the pooled map, outside the search-space spec and without a cost feature).

Expansion ratio 1 (formerly a known limitation): TuNAS keeps the 1x1 expansion conv of an
inverted bottleneck with ratio 1, while a `latbench-arch/1` `mbconv` with `mid == in` has none by
default. The decoder writes `"expand_conv": true` on such layers, so their MACs and ops include
that conv, exactly as in TuNAS; an arch without it is a different network and `encode` rejects it.

Cost factors (`cost_factors`, for `LatencyModel`): one Factor per layer position that has ops
(granularity block/layer: its latbench ops; tunas-layer: its TuNAS cost-model term), depending only
on the decisions that layer reads: its input width (the previous block's width for a block's first
layer, else its own block's), its block's width, and its own kernel / expansion / SE / skip
decisions; single-option decisions are constants and left out. Plus one Factor for the `fc`
(the last block's width). The factors' keys are exactly the arch's keys, for every index list.

Cardinality (`SearchSpace.cardinality`, the product of the option counts) is counted the way
TuNAS Table 1 counts it, as an upper bound: a skippable layer contributes all its
(kernel, expansion, SE) combinations times {layer, skip}, although every skip combination is the
same network, and which of a block's optional layers are skipped is not distinguishable either.
That gives 2.2e21, 1.4e28 and 8.5e42 (paper: ~1e21, ~1e28, ~1e43).
"""
from __future__ import annotations

import functools
import json
import re
from collections import namedtuple
from dataclasses import dataclass, field
from pathlib import Path

from ...arch import Arch, normalise_layer
from ...errors import BadInput
from ...fileio import short
from ...ops import Op, decompose
from ..base import Choice, Factor, SearchSpace
from .keys import TUNAS_GRANULARITY, is_term_key, term_key

DATA_FILE = Path(__file__).resolve().parents[2] / "data" / "tunas_pixel1_cost_model.json"
RESOLUTION = 224
IN_CHANNELS = 3
NUM_CLASSES = 1000
SE_RATIO = 0.25
SE_GATE = "sigmoid"

_ACTS = {"relu": "relu", "relu6": "relu6", "swish6": "hswish"}
# `what` of a tunas_index_vector position -> decision field
_FIELDS = {"kernel size": "kernel", "expansion ratio": "expansion", "squeeze-excite": "se",
           "layer present / skipped": "op", "block output filters": "filters"}
# choice_axes name of a cost-feature layer -> decision field
_AXES = {"kernel": "kernel", "expansion_ratio": "expansion", "squeeze_excite": "se"}


# ---------------------------------------------------------------------- TuNAS arithmetic
def scale_filters(filters: int, multiplier: float, base: int = 8) -> int:
    """TuNAS `search_space_utils.scale_filters`: round half up to a multiple of `base`, >= base."""
    return max(int(int(filters * multiplier / base + 0.5) * base), base)


def make_divisible(value: float, divisor: int = 8) -> int:
    """TuNAS/MobileNetV3 `make_divisible`: nearest multiple, never more than 10% below `value`."""
    new = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * value else new


def se_channels(mid: int, base: int = 8) -> int:
    """Squeeze-excite hidden channels TuNAS uses for `mid` expansion channels."""
    return make_divisible(mid * SE_RATIO, base)


@functools.lru_cache(maxsize=None)
def load_tunas_data() -> dict:
    """The packaged TuNAS data file (read once)."""
    with open(DATA_FILE) as fh:
        return json.load(fh)


# ---------------------------------------------------------------------- template
@dataclass(frozen=True)
class LayerSpec:
    """One TuNAS layer position (`blockB/layerL`), as the data file describes it."""

    name: str
    block: int
    layer: int
    kind: str  # conv | act | sepconv | bneck | pool | endpoint
    stride: int
    hin: int  # input resolution at this position
    act: str  # conv: the activation after it; sepconv/bneck: inner activation; act: itself
    kernel: int | None  # fixed kernel where it is not searched
    bn: bool
    residual: bool  # wrapped in a TuNAS ResidualSpec
    decisions: tuple  # ((field, position), ...)
    entry: dict = field(compare=False, repr=False)  # the data file's layer entry

    @property
    def has_cost(self) -> bool:
        return bool(self.entry.get("has_cost_features"))


@dataclass(frozen=True)
class Block:
    index: int
    width_pos: int
    widths: tuple
    layers: tuple  # LayerSpec


@dataclass(frozen=True)
class LayerSetting:
    """A LayerSpec resolved against an index list."""

    spec: LayerSpec
    cin: int
    cout: int
    kernel: int | None
    expansion: float | None
    se: bool
    present: bool

    @property
    def mid(self) -> int:
        if self.spec.kind == "bneck":
            return scale_filters(self.cin, self.expansion)
        return self.cin


@dataclass(frozen=True)
class Template:
    key: str
    description: str
    blocks: tuple
    choices: tuple
    positions: tuple  # per decision: (block, layer or None, field)


def _kind(entry: dict) -> str:
    t = entry["type"].lower()
    for word, kind in (("endpoint", "endpoint"), ("global average pool", "pool"), ("activation", "act"),
                       ("inverted bottleneck", "bneck"), ("depthwise-separable", "sepconv")):
        if word in t:
            return kind
    if t.startswith("conv"):
        return "conv"
    raise ValueError(f"TuNAS data: unrecognised layer type {entry['type']!r} ({entry['name']})")


def _act_name(entry: dict) -> str:
    name = entry.get("activation")
    if name is None:
        found = re.search(r"\b(relu6|relu|swish6)\b", entry["type"].lower())
        name = found.group(1) if found else None
    if name not in _ACTS:
        raise ValueError(f"TuNAS data: no known activation for {entry['name']} ({entry['type']!r})")
    return _ACTS[name]


def _fixed_kernel(entry: dict) -> int | None:
    found = re.match(r"conv (\d+)x\1\b", entry["type"].lower())
    return int(found.group(1)) if found else None


@functools.lru_cache(maxsize=None)
def build_template(key: str) -> Template:
    """Parse one space of the data file into blocks, layer specs and decisions."""
    space = load_tunas_data()["spaces"][key]
    entries = space["layers_with_cost_features"] + space["layers_without_cost_features"]
    entries = sorted(entries, key=lambda e: (e["block"], e["layer"]))
    positions, choices, by_layer, width_pos = [], [], {}, {}
    for p in space["tunas_index_vector"]["positions"]:
        fld = _FIELDS[p["what"]]
        layer = p.get("layer")
        name = f"block{p['block']}/filters" if layer is None else f"block{p['block']}/layer{layer}/{fld}"
        choices.append(Choice(name, tuple(p["choices"])))
        positions.append((p["block"], layer, fld))
        if layer is None:
            width_pos[p["block"]] = len(choices) - 1
        else:
            by_layer.setdefault((p["block"], layer), []).append((fld, len(choices) - 1))

    specs, h = [], RESOLUTION
    for n, e in enumerate(entries):
        kind = _kind(e)
        stride = e["stride"] if isinstance(e["stride"], int) else 1
        act = "none"
        if kind in ("sepconv", "bneck", "act"):
            act = _act_name(e)
        elif kind == "conv" and n + 1 < len(entries) and _kind(entries[n + 1]) == "act":
            act = _act_name(entries[n + 1])
        t = e["type"].lower()
        decisions = tuple(by_layer.pop((e["block"], e["layer"]), ()))
        for axis in e.get("choice_axes") or ():  # the cost features and the index vector must agree
            pos = dict(decisions).get(_AXES[axis["name"]])
            if pos is None or list(choices[pos].options) != axis["values"]:
                raise ValueError(f"TuNAS data: {e['name']} {axis['name']} options disagree with the index vector")
        specs.append(LayerSpec(
            name=e["name"], block=e["block"], layer=e["layer"], kind=kind, stride=stride, hin=h, act=act,
            kernel=_fixed_kernel(e) if kind == "conv" else None, bn="without batchnorm" not in t,
            residual="residual" in t and "no residual" not in t, decisions=decisions, entry=e))
        if kind in ("conv", "sepconv", "bneck"):
            h = -(-h // stride)
        elif kind == "pool":
            h = 1
    if by_layer:
        raise ValueError(f"TuNAS data: decisions for unknown layers {sorted(by_layer)}")
    n_blocks = len(space["block_filters_options"])
    blocks = tuple(Block(b, width_pos[b], tuple(space["block_filters_options"][b]),
                         tuple(s for s in specs if s.block == b)) for b in range(n_blocks))
    for b in blocks:
        if list(choices[b.width_pos].options) != list(b.widths):
            raise ValueError(f"TuNAS data: block {b.index} width options disagree with the index vector")
    return Template(key, space["description"], blocks, tuple(choices), tuple(positions))


def resolve_setting(tmpl: Template, block: Block, spec: LayerSpec, value) -> LayerSetting:
    """`spec` (a layer position of `block`) resolved; `value(position)` gives a decision's option value.

    A block's first layer reads the previous block's width (the network input for block 0), every
    other layer its own block's width."""
    if spec.layer == 0:
        cin = value(tmpl.blocks[block.index - 1].width_pos) if block.index else IN_CHANNELS
    else:
        cin = value(block.width_pos)
    val = {f: value(p) for f, p in spec.decisions}
    return LayerSetting(spec, cin, value(block.width_pos), val.get("kernel", spec.kernel), val.get("expansion"),
                        bool(val.get("se", False)), val.get("op", "layer") != "skip")


def input_width_pos(tmpl: Template, block: Block, spec: LayerSpec) -> int | None:
    """Decision position of `spec`'s input width (None: the network input, a constant)."""
    if spec.layer == 0:
        return tmpl.blocks[block.index - 1].width_pos if block.index else None
    return block.width_pos


def setting_inputs(tmpl: Template, block: Block, spec: LayerSpec) -> tuple:
    """Decision positions `resolve_setting` reads for `spec` (input width, block width, own decisions)."""
    pos = [input_width_pos(tmpl, block, spec), block.width_pos] + [p for _, p in spec.decisions]
    return tuple(p for p in dict.fromkeys(pos) if p is not None)


# ---------------------------------------------------------------------- spaces
def _mbconv(s: LayerSetting) -> dict:
    mid = s.mid
    return {"type": "mbconv", "mid": mid, "out": s.cout, "kernel": s.kernel, "stride": s.spec.stride,
            "se": se_channels(mid) if s.se else 0, "se_gate": SE_GATE, "act": s.spec.act,
            "residual": None if s.spec.residual else False,
            # TuNAS's inverted bottleneck always has its 1x1 expansion conv, also at ratio 1 (mid == in)
            "expand_conv": True if s.spec.kind == "bneck" and mid == s.cin else None}


def _latbench_layer(s: LayerSetting) -> dict | None:
    """The latbench layer for a resolved TuNAS layer (None: nothing of its own in the Arch)."""
    kind = s.spec.kind
    if kind == "conv":
        return {"type": "conv", "out": s.cout, "kernel": s.kernel, "stride": s.spec.stride,
                "bn": s.spec.bn, "act": s.spec.act}
    if kind in ("sepconv", "bneck"):
        return _mbconv(s) if s.present else None
    if kind == "pool":
        return {"type": "pool"}
    return None  # activation (merged into its conv) or detection endpoint


_SIGNATURE = ("type", "in", "out", "resolution", "mid", "residual", "kernel", "stride", "groups", "bn", "act",
              "se", "se_gate", "expand")


def _signature(arch: Arch) -> list[tuple]:
    """What makes two archs the same network, layer by layer (fields as in _SIGNATURE)."""
    out = []
    for s in arch.shapes():
        L = s.layer
        se = L.get("se", 0)
        out.append((s.type, s.cin, s.cout, s.hin, s.mid, s.residual, L.get("kernel"), L.get("stride"),
                    L.get("groups"), L.get("bn"), L.get("act"), se, L.get("se_gate") if se else None,
                    s.expand if s.type == "mbconv" else None))
    return out


def _first_difference(want: list, got: list) -> str:
    for i, (a, b) in enumerate(zip(want, got)):
        if a != b:
            f = next(n for n, x, y in zip(_SIGNATURE, a, b) if x != y)
            return f"layers[{i}]: {f} {b[_SIGNATURE.index(f)]!r}, expected {a[_SIGNATURE.index(f)]!r}"
    return f"layers[{min(len(want), len(got))}]: {len(got)} layers, expected {len(want)}"


class TunasSpace(SearchSpace):
    """A TuNAS search space; subclasses set `name` and `tunas_key`."""

    tunas_key: str = ""

    @property
    def default_table(self) -> str:
        return f"pixel1-tunas-{self.name}"  # TuNAS's own Pixel-1 cost model, imported

    @property
    def template(self) -> Template:
        return build_template(self.tunas_key)

    @property
    def choices(self) -> list:
        return list(self.template.choices)

    @property
    def description(self) -> str:
        return self.template.description

    # -------------------------------------------------------------- index list -> layers
    def settings(self, indices) -> list[LayerSetting]:
        """Every TuNAS layer position resolved against `indices` (skipped ones marked absent)."""
        idx = self.check_indices(indices)
        tmpl = self.template
        opts = [c.options for c in tmpl.choices]

        def value(p):
            return opts[p][idx[p]]

        return [resolve_setting(tmpl, b, spec, value) for b in tmpl.blocks for spec in b.layers]

    def decode(self, indices, name: str | None = None) -> Arch:
        idx = self.check_indices(indices)
        layers = [_latbench_layer(s) for s in self.settings(idx)]
        layers = [l for l in layers if l is not None] + [{"type": "fc", "out": NUM_CLASSES}]
        layers = [normalise_layer(l, f"{self.name}: layers[{i}]") for i, l in enumerate(layers)]
        return Arch(layers=layers, name=name or self.name, resolution=RESOLUTION, in_channels=IN_CHANNELS,
                    space=self.name, indices=idx)

    # -------------------------------------------------------------- arch -> index list
    def encode(self, arch: Arch) -> list[int]:
        """Index list of `arch`; BadInput if the arch is not a network of this space.

        Recorded `arch.indices` are returned when they decode to the same network. Otherwise the
        canonical index list is built: in each block the present optional layers take the first
        optional positions, and decisions of skipped layers are 0 (TuNAS cannot tell these
        apart either, except through per-position cost-model weights that differ by < 0.05 ms).
        """
        if arch.indices is not None and arch.space == self.name:
            # a wrong length or an index out of range is an inconsistent file, not a hint to ignore
            idx = self.check_indices(arch.indices, f"{arch.where}: indices")
            if _signature(self.decode(idx)) == _signature(arch):
                return idx
        idx = self._extract(arch)
        want, got = _signature(self.decode(idx)), _signature(arch)
        if want != got:
            raise BadInput(f"{arch.where}: {_first_difference(want, got)} (not expressible in space {self.name})")
        return idx

    def canonical(self, indices) -> list[int]:
        """The canonical index list of the network `indices` decode to (see `encode`)."""
        return self._extract(self.decode(indices))

    def _extract(self, arch: Arch) -> list[int]:
        tmpl = self.template
        shapes = arch.shapes()
        idx = [0] * len(tmpl.choices)
        cur = 0

        def pick(pos: int, value, where: str) -> None:
            options = tmpl.choices[pos].options
            if value not in options:
                raise BadInput(f"{arch.where}: {where}: {tmpl.choices[pos].name} {value!r} is not an option "
                               f"of space {self.name} ({', '.join(map(str, options))})")
            idx[pos] = options.index(value)

        for b in tmpl.blocks:
            for spec in b.layers:
                if spec.kind in ("act", "endpoint"):
                    continue
                s = shapes[cur] if cur < len(shapes) else None
                where = f"layers[{cur}] ({spec.name})"
                want = {"conv": "conv", "pool": "pool"}.get(spec.kind, "mbconv")
                dec = dict(spec.decisions)
                if spec.residual and "op" in dec:  # optional: present iff a residual mbconv sits here
                    present = s is not None and s.type == "mbconv" and s.residual
                    pick(dec["op"], "layer" if present else "skip", where)
                    if not present:
                        continue
                if s is None or s.type != want:
                    raise BadInput(f"{arch.where}: {where}: expected a {want} layer for space {self.name}, "
                                   f"got {s.type if s else 'the end of the network'}")
                if spec.layer == 0 and spec.kind != "pool":
                    pick(b.width_pos, s.cout, where)
                if "kernel" in dec:
                    pick(dec["kernel"], s.layer["kernel"], where)
                if "expansion" in dec:
                    ratios = [r for r in tmpl.choices[dec["expansion"]].options if scale_filters(s.cin, r) == s.mid]
                    if not ratios:
                        raise BadInput(f"{arch.where}: {where}: mid {s.mid} for {s.cin} input channels is no "
                                       f"expansion ratio of space {self.name}")
                    idx[dec["expansion"]] = tmpl.choices[dec["expansion"]].options.index(ratios[0])
                if "se" in dec:
                    pick(dec["se"], bool(s.layer["se"]), where)
                cur += 1
        if cur != len(shapes) - 1 or shapes[cur].type != "fc":
            raise BadInput(f"{arch.where}: layers[{cur}]: space {self.name} networks end with a single fc layer")
        return idx

    # -------------------------------------------------------------- ops
    def ops(self, granularity: str = "block") -> list[Op]:
        """Every unique Op of the space: per layer position, all reachable (in, out) widths x
        choices (kernel, expansion, SE) at that position's resolution; network order, no repeats."""
        self.check_granularity(granularity)
        return list(_space_ops(self.tunas_key, granularity))

    # -------------------------------------------------------------- keys of a LUT
    def arch_keys(self, arch: Arch, granularity: str) -> list:
        """As SearchSpace.arch_keys; `tunas-layer` (imported TuNAS tables): one key per present TuNAS
        layer, `tunas:blockB/layerL:o=OUT:i=IN:CHOICE` (the term of TuNAS's linear cost model)."""
        if granularity != TUNAS_GRANULARITY:
            return super().arch_keys(arch, granularity)
        keys = []
        for s in self.settings(self.encode(arch)):
            if not s.spec.has_cost or not s.present:
                continue
            e = s.spec.entry
            label = e["choice_features"][feature_index(s)[2]]
            keys.append((None, "", term_key(e["name"], s.cout, s.cin if e["input_filters_options"] else None, label)))
        return keys

    def check_table_key(self, key: str, granularity: str) -> None:
        if granularity == TUNAS_GRANULARITY:
            if not is_term_key(key):
                raise BadInput(f"{short(key)} is not a {TUNAS_GRANULARITY} key (tunas:LAYER:o=OUT:i=IN:CHOICE)")
            return
        super().check_table_key(key, granularity)

    def published_table(self, data_path=None) -> dict:
        """TuNAS's Pixel-1 cost model of this space as table fields (see `published.normalised_cost_model`)."""
        from .published import normalised_cost_model

        return normalised_cost_model(self, data_path or DATA_FILE)

    # -------------------------------------------------------------- cost factors
    def cost_factors(self, granularity: str = "block") -> list[Factor]:
        """The arch's keys as a sum of Factors (see the module docstring), for `LatencyModel`.

        Granularity `block` / `layer`: the latbench Ops of `decompose(decode(indices), granularity)`;
        `tunas-layer`: one object with `.key` per present TuNAS layer, as `arch_keys`.
        For every index list the factors' keys are exactly the arch's keys (as a multiset)."""
        if granularity != TUNAS_GRANULARITY:
            self.check_granularity(granularity)
        return list(_cost_factors(self.tunas_key, granularity))

    # -------------------------------------------------------------- references
    def reference_models(self) -> dict:
        """{name: index list} for every architecture the data file writes out for this space.

        TuNAS's own index string where the file gives one (searched architectures, the cost-model
        test architecture); otherwise derived from the reference's `layers` and `widths`
        (`indices_from_layers`: kernel, expansion, SE, skipped per position; skipped layers' other
        decisions are 0)."""
        refs = load_tunas_data()["reference_architectures"].get(self.tunas_key, {})
        out = {}
        for name, ref in refs.items():
            if isinstance(ref, dict) and "indices" in ref:
                out[name] = self.check_indices(ref["indices"].split(":"), f"{self.name} reference {name}")
            elif isinstance(ref, dict) and "layers" in ref:
                out[name] = self.indices_from_layers(ref)
        return out

    def indices_from_layers(self, ref: dict) -> list[int]:
        """Index list of a reference written out layer by layer (`layers` + `widths`)."""
        by_name = {L["layer"]: L for L in ref["layers"]}
        keys = {"kernel": "kernel", "expansion": "expansion_ratio", "se": "squeeze_excite"}
        idx = []
        for choice, (block, layer, fld) in zip(self.template.choices, self.template.positions):
            if fld == "filters":
                value = ref["widths"][block]
            else:
                L = by_name[f"block{block}/layer{layer}"]
                if fld == "op":
                    value = "skip" if L.get("skipped") else "layer"
                else:
                    value = None if L.get("skipped") else L[keys[fld]]
            idx.append(0 if value is None else choice.options.index(value))
        return idx


TunasTerm = namedtuple("TunasTerm", "key")  # a tunas-layer cost factor's "op": just the table key
_AXIS_VALUE = {"kernel": lambda s: s.kernel, "expansion_ratio": lambda s: s.expansion,
               "squeeze_excite": lambda s: s.se}


def feature_index(setting: LayerSetting) -> tuple[int, int, int]:
    """(o, i, c) of a resolved layer that has cost features: the positions of its output width, input
    width (0 for the network's first layer) and choice (mixed radix over the layer's `choice_axes`,
    or the last entry, "skip", when the layer is skipped) in TuNAS's cost-model weights."""
    e = setting.spec.entry
    o = e["output_filters_options"].index(setting.cout)
    i = 0 if e["input_filters_options"] is None else e["input_filters_options"].index(setting.cin)
    if not setting.present:
        return o, i, len(e["choice_features"]) - 1
    c = 0
    for axis in e.get("choice_axes") or ():
        c = c * len(axis["values"]) + axis["values"].index(_AXIS_VALUE[axis["name"]](setting))
    return o, i, c


@functools.lru_cache(maxsize=None)
def _unit_ops(layer_items: tuple, cin: int, hin: int, granularity: str) -> tuple:
    """Ops of one latbench layer (sorted items) with `cin` input channels at resolution `hin`."""
    layer = normalise_layer(dict(layer_items), "op")
    mini = Arch(layers=[layer], resolution=hin, in_channels=cin)
    return tuple(use.op for use in decompose(mini, granularity))


def _fc_ops(cin: int, granularity: str) -> tuple:
    return _unit_ops((("out", NUM_CLASSES), ("type", "fc")), cin, 1, granularity)


def _layer_factor_ops(tmpl: Template, block: Block, spec: LayerSpec, decisions: tuple, granularity: str):
    """Factor.ops for one layer position: values at `decisions` -> its ops (keys) in the arch."""
    opts = [c.options for c in tmpl.choices]

    @functools.lru_cache(maxsize=None)
    def ops(values: tuple) -> tuple:
        at = dict(zip(decisions, values))

        def value(p):
            return opts[p][at.get(p, 0)]  # positions not in `decisions` have a single option

        s = resolve_setting(tmpl, block, spec, value)
        if granularity == TUNAS_GRANULARITY:
            if not s.present:
                return ()
            e = spec.entry
            _, _, c = feature_index(s)
            label = e["choice_features"][c]
            if label == "skip":
                return ()
            return (TunasTerm(term_key(e["name"], s.cout, s.cin if e["input_filters_options"] else None, label)),)
        layer = _latbench_layer(s)
        if layer is None:
            return ()
        return _unit_ops(tuple(sorted(layer.items())), s.cin, spec.hin, granularity)

    return ops


@functools.lru_cache(maxsize=None)
def _cost_factors(key: str, granularity: str) -> tuple:
    tmpl = build_template(key)
    sizes = [len(c) for c in tmpl.choices]
    factors = []
    for b in tmpl.blocks:
        for spec in b.layers:
            if granularity == TUNAS_GRANULARITY:
                if not spec.has_cost:
                    continue
                e = spec.entry
                fields = {_AXES[a["name"]] for a in e.get("choice_axes") or ()} | {"op"}  # -> c
                reads = [input_width_pos(tmpl, b, spec)] if e["input_filters_options"] is not None else []  # i
                reads += [b.width_pos] + [p for f, p in spec.decisions if f in fields]  # o, c
            else:
                if spec.kind in ("act", "endpoint"):
                    continue  # merged into the conv before it / no computation
                reads = setting_inputs(tmpl, b, spec)
            decisions = tuple(p for p in dict.fromkeys(reads) if p is not None and sizes[p] > 1)
            factors.append(Factor(decisions, _layer_factor_ops(tmpl, b, spec, decisions, granularity), spec.name))
    if granularity != TUNAS_GRANULARITY:  # the fc after the pool: the last block's width
        last = tmpl.blocks[-1]
        opts = tmpl.choices[last.width_pos].options
        if len(opts) > 1:
            factors.append(Factor((last.width_pos,), lambda v, o=opts, g=granularity: _fc_ops(o[v[0]], g), "fc"))
        else:
            factors.append(Factor((), lambda v, w=opts[0], g=granularity: _fc_ops(w, g), "fc"))
    return tuple(factors)


@functools.lru_cache(maxsize=None)
def _space_ops(key: str, granularity: str) -> tuple:
    tmpl = build_template(key)
    opts = [c.options for c in tmpl.choices]
    units = {}  # (layer as a tuple, cin, hin) -> None, in network order
    for b in tmpl.blocks:
        prev = tmpl.blocks[b.index - 1].widths if b.index else (IN_CHANNELS,)
        for spec in b.layers:
            if spec.kind in ("act", "endpoint"):
                continue
            pairs = [(i, o) for i in prev for o in b.widths] if spec.layer == 0 else [(w, w) for w in b.widths]
            dec = dict(spec.decisions)
            kernels = opts[dec["kernel"]] if "kernel" in dec else (spec.kernel,)
            ratios = opts[dec["expansion"]] if "expansion" in dec else (None,)
            ses = opts[dec["se"]] if "se" in dec else (False,)
            for (cin, cout) in pairs:
                for k in kernels:
                    for r in ratios:
                        for se in ses:
                            layer = _latbench_layer(LayerSetting(spec, cin, cout, k, r, se, True))
                            units[(tuple(sorted(layer.items())), cin, spec.hin)] = None
    for w in tmpl.blocks[-1].widths:
        units[((("out", NUM_CLASSES), ("type", "fc")), w, 1)] = None
    ops = {}
    for layer_items, cin, hin in units:
        for op in _unit_ops(layer_items, cin, hin, granularity):
            ops.setdefault(op.key, op)
    return tuple(ops.values())


class ProxylessNASSpace(TunasSpace):
    """TuNAS `proxylessnas_search`: ProxylessNAS-Mobile widths, kernel 3/5/7 x expansion 3/6, skips."""

    name = "proxylessnas"
    tunas_key = "proxylessnas_search"


class ProxylessNASEnlargedSpace(TunasSpace):
    """TuNAS `proxylessnas_enlarged_search`: ProxylessNAS plus searched block widths."""

    name = "proxylessnas-enlarged"
    tunas_key = "proxylessnas_enlarged_search"


class MobileNetV3LikeSpace(TunasSpace):
    """TuNAS `mobilenet_v3_like_search`: MobileNetV3-Large skeleton, expansion 1..6, SE on/off."""

    name = "mobilenetv3-like"
    tunas_key = "mobilenet_v3_like_search"


TUNAS_SPACES = {cls.name: cls for cls in (ProxylessNASSpace, ProxylessNASEnlargedSpace, MobileNetV3LikeSpace)}


def tunas_space(name_or_key: str) -> TunasSpace:
    """A TuNAS space by latbench name (`proxylessnas`) or TuNAS key (`proxylessnas_search`)."""
    for cls in TUNAS_SPACES.values():
        if name_or_key in (cls.name, cls.tunas_key):
            return cls()
    raise BadInput(f"space: unknown TuNAS space {name_or_key!r} (known: "
                   f"{', '.join(c.name for c in TUNAS_SPACES.values())})")

