"""Ops: the units of cost. An Arch decomposes into Ops at `block` or `layer` granularity.

An Op's canonical `key` is the LUT key, e.g. ``mbconv:r=56:i=24:o=40:m=72:x=1:k=5:s=2:se=0:gate=sigmoid:act=relu:res=0``.
Keys carry the input resolution and every width, so two layers share an entry only when they are
the same computation. Width fields (i, o, m, c, se) are what LUT interpolation varies along.
"""
from __future__ import annotations

from dataclasses import dataclass

from .arch import Arch, LayerShape
from .cbc import mbconv_cbc
from .errors import BadInput

GRANULARITIES = ("block", "layer")

# Field order per op kind; the key lists them in this order.
OP_FIELDS = {
    "conv": ("r", "i", "o", "k", "s", "g", "act", "bn"),
    "mbconv": ("r", "i", "o", "m", "x", "k", "s", "se", "gate", "act", "res"),
    "se": ("r", "c", "se", "gate"),
    "add": ("r", "c"),
    "pool": ("r", "c"),
    "fc": ("i", "o", "act"),
    # channel-level bypass (NetAdaptV2): m filters of a layer with i input channels, o = Z output
    # channels (o - m of them bypassed input channels); dw = 1: depthwise over the first m channels
    "cbconv": ("r", "i", "m", "o", "k", "s", "dw", "act", "bn"),
    # residual add of a skip with i channels and a path with o channels (i != o): the wider side's
    # extra channels pass through
    "addpad": ("r", "i", "o"),
    # a whole mbconv block with bypass T = t (0: infinity); m expansion filters (x: has the
    # expansion conv), d depthwise filters, o project filters
    "mbcbc": ("r", "i", "m", "x", "d", "o", "t", "k", "s", "se", "gate", "act", "res"),
}
WIDTH_FIELDS = ("i", "o", "m", "c", "se")
_STRING_FIELDS = ("act", "gate")


@dataclass(frozen=True)
class Op:
    kind: str
    fields: tuple  # ((name, value), ...) in OP_FIELDS order

    @property
    def key(self) -> str:
        return ":".join([self.kind] + [f"{n}={v}" for n, v in self.fields])

    def __getitem__(self, name):
        for n, v in self.fields:
            if n == name:
                return v
        raise KeyError(name)

    def as_dict(self) -> dict:
        return dict(self.fields)

    @property
    def in_channels(self) -> int:
        d = self.as_dict()
        return d.get("i", d.get("c"))

    @property
    def resolution(self) -> int:
        return self.as_dict().get("r", 1)


@dataclass(frozen=True)
class OpUse:
    """An Op as it occurs in an Arch: which layer, and which part of a block (layer granularity)."""

    layer_index: int
    part: str  # "" for a whole layer/block, else expand / dw / se / project / add
    op: Op


def make_op(kind: str, **values) -> Op:
    if kind == "mbconv" and "x" not in values and "m" in values and "i" in values:
        values["x"] = int(int(values["m"]) != int(values["i"]))  # the format's default expansion rule
    names = OP_FIELDS[kind]
    missing = [n for n in names if n not in values]
    if missing:
        raise ValueError(f"op {kind}: missing fields {missing}")
    fields = []
    for n in names:
        v = values[n]
        if n not in _STRING_FIELDS:
            v = int(v)
        fields.append((n, v))
    return Op(kind, tuple(fields))


def op_from_key(key: str) -> Op:
    parts = key.split(":")
    kind = parts[0]
    if kind not in OP_FIELDS:
        raise BadInput(f"op key {key!r}: unknown op kind {kind!r}")
    values = {}
    for token in parts[1:]:
        name, sep, value = token.partition("=")
        if not sep:
            raise BadInput(f"op key {key!r}: malformed field {token!r}")
        values[name] = value
    if set(values) != set(OP_FIELDS[kind]):
        raise BadInput(f"op key {key!r}: expected fields {', '.join(OP_FIELDS[kind])}")
    try:
        return make_op(kind, **values)
    except ValueError:
        raise BadInput(f"op key {key!r}: non-integer width/size field") from None


def bypass_conv_op(r, i, m, o, k, stride, dw, act, bn):
    """A layer with bypass as an Op: the plain conv when nothing is bypassed, None when it is the
    identity (no filter, every channel passed through at stride 1)."""
    if o == m and m > 0:
        return make_op("conv", r=r, i=m if dw else i, o=m, k=k, s=stride, g=m if dw else 1, act=act, bn=bn)
    if m == 0 and o == i and stride == 1:
        return None
    return make_op("cbconv", r=r, i=i, m=m, o=o, k=k, s=stride, dw=int(dw), act=act, bn=bn)


def _cbc_ops(s: LayerShape, granularity: str) -> list[OpUse]:
    L, c = s.layer, s.cbc
    if L["type"] == "conv":
        op = bypass_conv_op(s.hin, s.cin, c["m"], c["z"], L["kernel"], L["stride"], c["dw"], L["act"], int(L["bn"]))
        return [] if op is None else [OpUse(s.index, "", op)]
    if c["identity"]:
        return []
    if granularity == "block":
        t = 0 if c["t"] is None else c["t"]
        return [OpUse(s.index, "", make_op("mbcbc", r=s.hin, i=s.cin, m=c["e"], x=int(s.expand), d=c["d"], o=c["p"],
                                           t=t, k=L["kernel"], s=L["stride"], se=L["se"], gate=L["se_gate"],
                                           act=L["act"], res=int(s.residual)))]
    parts = []
    if s.expand:
        parts.append(("expand", bypass_conv_op(s.hin, s.cin, c["e"], c["ze"], 1, 1, False, L["act"], 1)))
    parts.append(("dw", bypass_conv_op(s.hin, c["ze"], c["d"], c["zd"], L["kernel"], L["stride"], True, L["act"], 1)))
    if L["se"]:
        parts.append(("se", make_op("se", r=s.hout, c=c["zd"], se=L["se"], gate=L["se_gate"])))
    parts.append(("project", bypass_conv_op(s.hout, c["zd"], c["p"], c["zp"], 1, 1, False, "none", 1)))
    if s.residual:
        add = (make_op("add", r=s.hout, c=s.cin) if s.cin == c["p"]
               else make_op("addpad", r=s.hout, i=s.cin, o=c["p"]))
        parts.append(("add", add))
    return [OpUse(s.index, part, op) for part, op in parts if op is not None]


def _layer_ops(s: LayerShape, granularity: str) -> list[OpUse]:
    if s.cbc is not None:
        return _cbc_ops(s, granularity)
    L = s.layer
    t = L["type"]
    if t == "conv":
        return [OpUse(s.index, "", make_op("conv", r=s.hin, i=s.cin, o=s.cout, k=L["kernel"], s=L["stride"],
                                           g=L["groups"], act=L["act"], bn=int(L["bn"])))]
    if t == "pool":
        return [OpUse(s.index, "", make_op("pool", r=s.hin, c=s.cin))]
    if t == "fc":
        return [OpUse(s.index, "", make_op("fc", i=s.cin, o=s.cout, act=L["act"]))]
    # mbconv
    if granularity == "block":
        return [OpUse(s.index, "", make_op("mbconv", r=s.hin, i=s.cin, o=s.cout, m=s.mid, x=int(s.expand), k=L["kernel"],
                                           s=L["stride"], se=L["se"], gate=L["se_gate"], act=L["act"],
                                           res=int(s.residual)))]
    uses = []
    if s.expand:
        uses.append(OpUse(s.index, "expand", make_op("conv", r=s.hin, i=s.cin, o=s.mid, k=1, s=1, g=1,
                                                     act=L["act"], bn=1)))
    uses.append(OpUse(s.index, "dw", make_op("conv", r=s.hin, i=s.mid, o=s.mid, k=L["kernel"], s=L["stride"],
                                             g=s.mid, act=L["act"], bn=1)))
    if L["se"]:
        uses.append(OpUse(s.index, "se", make_op("se", r=s.hout, c=s.mid, se=L["se"], gate=L["se_gate"])))
    uses.append(OpUse(s.index, "project", make_op("conv", r=s.hout, i=s.mid, o=s.cout, k=1, s=1, g=1,
                                                  act="none", bn=1)))
    if s.residual:
        uses.append(OpUse(s.index, "add", make_op("add", r=s.hout, c=s.cout)))
    return uses


def decompose(arch: Arch, granularity: str = "block") -> list[OpUse]:
    """Every Op of `arch` in network order (repeats kept)."""
    if granularity not in GRANULARITIES:
        raise BadInput(f"granularity: expected one of {', '.join(GRANULARITIES)}, got {granularity!r}")
    out = []
    for s in arch.shapes():
        out.extend(_layer_ops(s, granularity))
    return out


def arch_op_keys(arch: Arch, granularity: str = "block") -> list[str]:
    return [u.op.key for u in decompose(arch, granularity)]


def op_features(op: Op) -> dict:
    """Work and memory of one op at batch 1: MACs, input/output elements, weights.

    What a latency regressor needs to generalise to unmeasured keys (latency is close to linear
    in these for a given op kind on one device).
    """
    d = op.as_dict()
    r = d.get("r", 1)
    if op.kind == "conv":
        ro = -(-r // d["s"])
        w = d["k"] * d["k"] * (d["i"] // d["g"]) * d["o"]
        return {"macs": w * ro * ro, "in": d["i"] * r * r, "out": d["o"] * ro * ro, "weights": w}
    if op.kind == "mbconv":
        ro = -(-r // d["s"])
        i, m, o, k = d["i"], d["m"], d["o"], d["k"]
        exp = i * m if d["x"] else 0
        w = exp + k * k * m + 2 * m * d["se"] + m * o
        macs = exp * r * r + k * k * m * ro * ro + 2 * m * d["se"] + m * o * ro * ro
        return {"macs": macs, "in": i * r * r, "out": o * ro * ro + m * (r * r + ro * ro), "weights": w}
    if op.kind == "se":
        return {"macs": 2 * d["c"] * d["se"] + 2 * d["c"] * r * r, "in": d["c"] * r * r, "out": d["c"] * r * r,
                "weights": 2 * d["c"] * d["se"]}
    if op.kind in ("add", "pool"):
        return {"macs": d["c"] * r * r, "in": d["c"] * r * r, "out": d["c"] * r * r if op.kind == "add" else d["c"],
                "weights": 0}
    if op.kind == "fc":
        return {"macs": d["i"] * d["o"], "in": d["i"], "out": d["o"], "weights": d["i"] * d["o"]}
    if op.kind == "cbconv":
        ro = -(-r // d["s"])
        w = d["k"] * d["k"] * (1 if d["dw"] else d["i"]) * d["m"]
        return {"macs": w * ro * ro, "in": d["i"] * r * r, "out": d["o"] * ro * ro, "weights": w}
    if op.kind == "addpad":
        return {"macs": min(d["i"], d["o"]) * r * r, "in": (d["i"] + d["o"]) * r * r,
                "out": max(d["i"], d["o"]) * r * r, "weights": 0}
    if op.kind == "mbcbc":
        layer = {"bypass": d["t"] or True, "kernel": d["k"], "stride": d["s"], "se": d["se"], "dw": d["d"],
                 "out": d["o"]}
        c = mbconv_cbc(d["i"], r, layer, d["m"], bool(d["x"]), bool(d["res"]))
        ro = -(-r // d["s"])
        w = d["i"] * c["e"] + d["k"] ** 2 * c["d"] + 2 * c["zd"] * d["se"] + c["zd"] * c["p"]
        return {"macs": c["macs"], "in": d["i"] * r * r, "out": c["out"] * ro * ro + c["ze"] * (r * r + ro * ro),
                "weights": w}
    raise ValueError(op.kind)
