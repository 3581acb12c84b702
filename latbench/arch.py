"""The `latbench-arch/1` format: load, validate, save, shape inference, MACs and params.

An Arch is a plain list of normalised layer dicts plus the input description. Everything else in
latbench (op decomposition, model builders, LUT prediction) walks `Arch.shapes()`, so the shape
rules live in exactly one place.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from .cbc import conv_cbc, mbconv_cbc
from .errors import BadInput
from .fileio import atomic_write_text, read_json, short

FORMAT = "latbench-arch/1"
ACTIVATIONS = ("relu", "relu6", "swish", "hswish", "none")
SE_GATES = ("sigmoid", "hsigmoid")

# Per layer type: allowed fields and their defaults (None = required / absent).
_FIELDS = {
    "conv": {"out": None, "kernel": 1, "stride": 1, "groups": 1, "bn": True, "act": "relu",
             "bypass": None, "depthwise": None},
    "mbconv": {"out": None, "mid": None, "expand": None, "kernel": 3, "stride": 1, "se": 0,
               "se_gate": "sigmoid", "act": "relu", "residual": None, "expand_conv": None,
               "bypass": None, "dw": None},
    "pool": {},
    "fc": {"out": None, "act": "none"},
}
_TOP_FIELDS = {"format", "name", "resolution", "in_channels", "layers", "space", "indices"}


@dataclass(frozen=True)
class LayerShape:
    """One layer with its inferred shapes, cost and parameter count."""

    index: int
    layer: dict
    cin: int
    cout: int
    hin: int
    hout: int
    mid: int  # mbconv expansion channels; cin for other types
    residual: bool
    macs: int
    params: int
    expand: bool = False  # mbconv: has a 1x1 expansion conv (default: mid != in; `expand_conv` forces it)
    cbc: dict | None = None  # layers with channel-level bypass: the widths of `latbench.cbc`

    @property
    def type(self) -> str:
        return self.layer["type"]


@dataclass
class Arch:
    layers: list
    name: str = "arch"
    resolution: int = 224
    in_channels: int = 3
    space: str | None = None
    indices: list | None = None
    _shapes: list | None = field(default=None, repr=False, compare=False)
    source: str | None = field(default=None, repr=False, compare=False)  # the file it was read from

    @property
    def where(self) -> str:
        """What errors about this arch name: its file when it came from one, else its (cut) name."""
        return self.source or f"arch {short(self.name, 60)}"

    # ------------------------------------------------------------------ shapes and costs
    def shapes(self) -> list[LayerShape]:
        if self._shapes is None:
            self._shapes = infer_shapes(self)
        return self._shapes

    @property
    def macs(self) -> int:
        return sum(s.macs for s in self.shapes())

    @property
    def elementwise_ops(self) -> int:
        """Multiplies/adds that `macs` leaves out (it counts conv and fc weights only, as TF-slim's
        MobileNetV3 figures): SE global pooling and channel scaling, residual adds, global pooling.
        Some papers count them (MobileNetV3-Large: 216.6 M MACs here, 219 M in its paper)."""
        total = 0
        for s in self.shapes():
            if s.type == "mbconv" and s.layer.get("se"):
                total += 2 * s.mid * s.hout * s.hout
            if s.residual and not (s.cbc or {}).get("identity"):
                total += s.cout * s.hout * s.hout
            if s.type == "pool":
                total += s.cin * s.hin * s.hin
        return total

    @property
    def params(self) -> int:
        return sum(s.params for s in self.shapes())

    @property
    def num_classes(self) -> int:
        return self.shapes()[-1].cout

    # ------------------------------------------------------------------ serialisation
    def to_dict(self) -> dict:
        out = {"format": FORMAT, "name": self.name, "resolution": self.resolution,
               "in_channels": self.in_channels, "layers": [compact_layer(l) for l in self.layers]}
        if self.space is not None:
            out["space"] = self.space
        if self.indices is not None:
            out["indices"] = list(self.indices)
        return out

    def to_json(self) -> str:
        head = {k: v for k, v in self.to_dict().items() if k != "layers"}
        body = ",\n".join("  " + json.dumps(l) for l in self.to_dict()["layers"])
        text = json.dumps(head)[:-1] + ', "layers": [\n' + body + "\n]}\n"
        return text

    def save(self, path) -> None:
        atomic_write_text(path, self.to_json())


def compact_layer(layer: dict) -> dict:
    """Drop fields equal to their defaults so files stay short and diffable."""
    defaults = _FIELDS[layer["type"]]
    out = {"type": layer["type"]}
    for key, value in layer.items():
        if key == "type" or value is None:
            continue
        if key in defaults and defaults[key] == value and key not in ("out", "act"):
            continue
        out[key] = value
    return out


# ---------------------------------------------------------------------- parsing / validation
def _positive_int(value, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise BadInput(f"{where}: must be a positive integer, got {short(value)}")
    return value


def normalise_layer(raw, where: str) -> dict:
    """Validate one layer dict and fill in defaults."""
    if not isinstance(raw, dict):
        raise BadInput(f"{where}: a layer must be an object, got {type(raw).__name__}")
    kind = raw.get("type")
    if kind not in _FIELDS:
        raise BadInput(f"{where}.type: unknown layer type {short(kind)} (expected one of {', '.join(_FIELDS)})")
    allowed = _FIELDS[kind]
    unknown = sorted(set(raw) - set(allowed) - {"type"})
    if unknown:
        raise BadInput(f"{where}: unknown field {short(unknown[0])} for a {kind} layer")
    layer = {"type": kind}
    for key, default in allowed.items():
        layer[key] = raw.get(key, default)
    cbc = layer.get("bypass") is not None
    if cbc:
        _check_bypass(layer, where)
    if kind in ("conv", "mbconv", "fc"):
        if layer["out"] is None:
            raise BadInput(f"{where}.out: missing (output channels)")
        (_non_negative_int if cbc else _positive_int)(layer["out"], f"{where}.out")
    if kind in ("conv", "mbconv"):
        k = _positive_int(layer["kernel"], f"{where}.kernel")
        if k % 2 == 0:
            raise BadInput(f"{where}.kernel: must be odd for 'same' padding, got {k}")
        _positive_int(layer["stride"], f"{where}.stride")
    if "act" in layer and layer["act"] not in ACTIVATIONS:
        raise BadInput(f"{where}.act: unknown activation {short(layer['act'])} (expected one of {', '.join(ACTIVATIONS)})")
    if kind == "conv":
        _positive_int(layer["groups"], f"{where}.groups")
        if not isinstance(layer["bn"], bool):
            raise BadInput(f"{where}.bn: must be true or false")
    if not cbc:
        _check_no_bypass_fields(layer, where)
    if kind == "mbconv":
        if (layer["mid"] is None) == (layer["expand"] is None):
            raise BadInput(f"{where}: give exactly one of 'mid' (channels) or 'expand' (ratio)")
        if layer["mid"] is not None:
            (_non_negative_int if cbc else _positive_int)(layer["mid"], f"{where}.mid")
        else:
            e = layer["expand"]
            if isinstance(e, bool) or not isinstance(e, (int, float)) or not e > 0:
                raise BadInput(f"{where}.expand: must be a positive number, got {short(e)}")
        se = layer["se"]
        if isinstance(se, bool) or not isinstance(se, int) or se < 0:
            raise BadInput(f"{where}.se: must be a non-negative integer, got {short(se)}")
        if layer["se_gate"] not in SE_GATES:
            raise BadInput(f"{where}.se_gate: unknown gate {short(layer['se_gate'])} (expected sigmoid or hsigmoid)")
        for flag in ("residual", "expand_conv"):
            if layer[flag] is not None and not isinstance(layer[flag], bool):
                raise BadInput(f"{where}.{flag}: must be true or false")
    return layer


def _non_negative_int(value, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise BadInput(f"{where}: must be a non-negative integer, got {value!r}")
    return value


def _check_bypass(layer: dict, where: str) -> None:
    """The channel-level bypass fields (NetAdaptV2): `bypass` = T (positive int, true = infinity)."""
    t = layer["bypass"]
    if t is not True and (isinstance(t, bool) or not isinstance(t, int) or t <= 0):
        raise BadInput(f"{where}.bypass: must be a positive integer T or true (T = infinity), got {t!r}")
    if layer["type"] == "conv":
        if layer["groups"] != 1:
            raise BadInput(f"{where}.groups: a conv with bypass is dense (groups 1) or `depthwise`")
        if layer["depthwise"] is not None and not isinstance(layer["depthwise"], bool):
            raise BadInput(f"{where}.depthwise: must be true or false")
    elif layer["type"] == "mbconv" and layer["dw"] is not None:
        _non_negative_int(layer["dw"], f"{where}.dw")


def _check_no_bypass_fields(layer: dict, where: str) -> None:
    for key in ("depthwise", "dw"):
        if layer.get(key) is not None:
            raise BadInput(f"{where}.{key}: only with channel-level bypass (set `bypass`)")


def parse_arch(obj, source: str = "<arch>") -> Arch:
    """Build a validated Arch from a decoded JSON object; errors name `source` and the field."""
    if not isinstance(obj, dict):
        raise BadInput(f"{source}: top level must be an object")
    if obj.get("format") != FORMAT:
        raise BadInput(f"{source}: format: expected {FORMAT!r}, got {short(obj.get('format'))}")
    unknown = sorted(set(obj) - _TOP_FIELDS)
    if unknown:
        raise BadInput(f"{source}: unknown field {short(unknown[0])}")
    layers_raw = obj.get("layers")
    if not isinstance(layers_raw, list) or not layers_raw:
        raise BadInput(f"{source}: layers: must be a non-empty list")
    name = obj.get("name", Path(source).stem)
    if not isinstance(name, str):
        raise BadInput(f"{source}: name: must be a string")
    resolution = _positive_int(obj.get("resolution", 224), f"{source}: resolution")
    in_channels = _positive_int(obj.get("in_channels", 3), f"{source}: in_channels")
    space = obj.get("space")
    if space is not None and not isinstance(space, str):
        raise BadInput(f"{source}: space: must be a string")
    indices = obj.get("indices")
    if indices is not None:
        if isinstance(indices, str):
            indices = parse_indices(indices, f"{source}: indices")
        elif not (isinstance(indices, list) and all(isinstance(i, int) and not isinstance(i, bool) for i in indices)):
            raise BadInput(f"{source}: indices: must be a list of integers or a '0:1:2' string")
    layers = [normalise_layer(l, f"{source}: layers[{i}]") for i, l in enumerate(layers_raw)]
    arch = Arch(layers=layers, name=name, resolution=resolution, in_channels=in_channels,
                space=space, indices=indices, source=source)
    try:
        arch.shapes()
    except BadInput as exc:
        raise BadInput(f"{source}: {exc}") from None
    return arch


def parse_indices(text: str, where: str = "indices") -> list[int]:
    try:
        return [int(t) for t in text.strip().split(":")]
    except ValueError:
        raise BadInput(f"{where}: expected integers separated by ':', got {short(text)}") from None


def format_indices(indices) -> str:
    return ":".join(str(int(i)) for i in indices)


def load_arch(path) -> Arch:
    """Read and validate an Arch file; every error names the file (never the arch's own `name`)."""
    path = Path(path)
    return parse_arch(read_json(path, FORMAT), str(path))


# ---------------------------------------------------------------------- size limit
# Largest tensor (activations or one layer's weights, batch included) a model may have before anything
# builds or measures it: 2**28 elements is 1 GiB of float32, ~200x the largest tensor of MobileNetV2
# at 224x224 at batch 1; a typo (`out: 10**9`, resolution 100000) would otherwise allocate tens of GB.
MAX_ELEMENTS = 2 ** 28
MAX_ELEMENTS_ENV = "LATBENCH_MAX_ELEMENTS"


def max_elements(limit: int | None = None) -> int:
    """`limit`, else $LATBENCH_MAX_ELEMENTS, else MAX_ELEMENTS."""
    if limit is not None:
        return limit
    raw = os.environ.get(MAX_ELEMENTS_ENV)
    if raw is None:
        return MAX_ELEMENTS
    try:
        value = int(float(raw))
    except ValueError:
        value = 0
    if value <= 0:
        raise BadInput(f"${MAX_ELEMENTS_ENV}: expected a positive number of elements, got {short(raw)}")
    return value


def check_size(arch: Arch, batch: int = 1, limit: int | None = None) -> None:
    """BadInput naming the layer when a tensor of `arch` (batch included) exceeds the element limit."""
    limit = max_elements(limit)
    hint = f"raise the limit with --max-elements or ${MAX_ELEMENTS_ENV}"
    if batch * arch.in_channels * arch.resolution ** 2 > limit:
        raise BadInput(f"{arch.where}: input {batch}x{arch.in_channels}x{arch.resolution}x{arch.resolution} has "
                       f"{batch * arch.in_channels * arch.resolution ** 2:.3g} elements, over the limit {limit:.3g} ({hint})")
    for s in arch.shapes():
        acts = batch * max(s.cin * s.hin ** 2, s.mid * s.hin ** 2, s.cout * s.hout ** 2)
        if acts > limit:
            raise BadInput(f"{arch.where}: layers[{s.index}]: activations of {acts:.3g} elements (batch {batch}), "
                           f"over the limit {limit:.3g} ({hint})")
        if s.params > limit:
            raise BadInput(f"{arch.where}: layers[{s.index}]: {s.params:.3g} weights, over the limit {limit:.3g} ({hint})")


# ---------------------------------------------------------------------- shape inference
def expand_channels(cin: int, layer: dict) -> int:
    if layer.get("mid") is not None:
        return layer["mid"]
    return max(1, int(math.floor(cin * layer["expand"] + 0.5)))


def infer_shapes(arch: Arch) -> list[LayerShape]:
    """Walk the layers; 'same' padding: out = ceil(in / stride). Raises BadInput on bad shapes."""
    shapes = []
    c, h = arch.in_channels, arch.resolution
    pooled = False
    for i, layer in enumerate(arch.layers):
        where = f"layers[{i}]"
        kind = layer["type"]
        if kind == "conv" and layer.get("bypass") is not None:
            k, s = layer["kernel"], layer["stride"]
            if pooled and k != 1:
                raise BadInput(f"{where}.kernel: after pool only 1x1 convs are possible, got {k}")
            info = conv_cbc(c, h, layer)
            if info["dw"] and info["m"] > c:
                raise BadInput(f"{where}.out: a depthwise conv with bypass filters at most its {c} input channels, "
                               f"got {info['m']}")
            ho = -(-h // s)
            shapes.append(LayerShape(i, layer, c, info["z"], h, ho, c, False, info["macs"], info["params"],
                                     cbc=info))
            c, h = info["z"], ho
        elif kind == "conv":
            k, s, g = layer["kernel"], layer["stride"], layer["groups"]
            if pooled and k != 1:
                raise BadInput(f"{where}.kernel: after pool only 1x1 convs are possible, got {k}")
            if c % g or layer["out"] % g:
                raise BadInput(f"{where}.groups: {g} does not divide in {c} and out {layer['out']} channels")
            ho = -(-h // s)
            macs = k * k * (c // g) * layer["out"] * ho * ho
            params = k * k * (c // g) * layer["out"] + (2 * layer["out"] if layer["bn"] else layer["out"])
            shapes.append(LayerShape(i, layer, c, layer["out"], h, ho, c, False, macs, params))
            c, h = layer["out"], ho
        elif kind == "mbconv":
            if pooled:
                raise BadInput(f"{where}: an mbconv block cannot follow the global pool")
            k, s, se = layer["kernel"], layer["stride"], layer["se"]
            mid = expand_channels(c, layer)
            cout = layer["out"]
            ho = -(-h // s)
            macs = params = 0
            expand = layer["expand_conv"] if layer["expand_conv"] is not None else mid != c
            if not expand and mid != c:
                raise BadInput(f"{where}.expand_conv: false needs mid == in channels ({mid} != {c})")
            if expand:
                macs += c * mid * h * h
                params += c * mid + 2 * mid
            macs += k * k * mid * ho * ho
            params += k * k * mid + 2 * mid
            if se:
                macs += 2 * mid * se
                params += 2 * mid * se + se + mid
            macs += mid * cout * ho * ho
            params += mid * cout + 2 * cout
            residual = layer["residual"]
            if layer.get("bypass") is not None:
                if residual is None:
                    residual = s == 1
                elif residual and s != 1:
                    raise BadInput(f"{where}.residual: a residual add needs stride 1, got stride {s}")
                info = mbconv_cbc(c, h, layer, mid, expand, residual)
                if info["d"] > info["ze"]:
                    raise BadInput(f"{where}.dw: at most the {info['ze']} channels entering the depthwise conv, "
                                   f"got {info['d']}")
                shapes.append(LayerShape(i, layer, c, info["out"], h, ho, info["ze"], residual, info["macs"],
                                         info["params"], expand, cbc=info))
                c, h = info["out"], ho
                continue
            auto = s == 1 and c == cout
            if residual is None:
                residual = auto
            elif residual and not auto:
                raise BadInput(f"{where}.residual: a residual add needs stride 1 and in == out channels ({c} -> {cout}, stride {s})")
            shapes.append(LayerShape(i, layer, c, cout, h, ho, mid, residual, macs, params, expand))
            c, h = cout, ho
        elif kind == "pool":
            if pooled:
                raise BadInput(f"{where}: the map is already pooled to 1x1")
            shapes.append(LayerShape(i, layer, c, c, h, 1, c, False, 0, 0))
            h, pooled = 1, True
        elif kind == "fc":
            if not pooled and h != 1:
                raise BadInput(f"{where}: fc needs a pooled (1x1) input, the map is {h}x{h}; add a pool layer")
            macs = c * layer["out"]
            shapes.append(LayerShape(i, layer, c, layer["out"], 1, 1, c, False, macs, macs + layer["out"]))
            c, h = layer["out"], 1
    return shapes
