"""Channel-level bypass connections (NetAdaptV2 §2.2): widths, MACs and params of layers that use them.

A layer with C input channels, T initial filters ("bypass": T) and M filters left outputs
Z = max(min(C, T), M) channels: channels 0..M-1 are its filters' outputs, channels M..Z-1 are the
input channels M..Z-1 passed through unchanged (spatially subsampled, x[::s, ::s], at stride s,
i.e. a 1x1 identity conv of stride s). A depthwise layer filters its first M input channels and
bypasses the rest (T = infinity, the paper's rule for depthwise layers): Z = C.

In an mbconv block with "bypass": T the expansion and project 1x1 convs use T, the depthwise
conv infinity. With a residual add (stride 1, the default for bypass blocks) the project conv
does not bypass: the residual already carries the block input, so a block whose filters are all
removed is exactly the identity. Its add pads: channels that only one side has pass unchanged
(as in the super-network, where missing channels are zeros), out = max(C, P).

Pure functions on integers; `arch` turns them into LayerShapes.
"""
from __future__ import annotations

INF = None  # T = infinity (depthwise layers, "bypass": true)


def cbc_width(c: int, t, m: int) -> int:
    """Z = max(min(C, T), M); T None = infinity."""
    return max(c if t is None else min(c, t), m)


def bypass_t(value):
    """The "bypass" field as T: an int, or None for true (infinity)."""
    return None if value is True else value


def conv_cbc(c: int, h: int, layer: dict) -> dict:
    """Widths and cost of a `conv` layer with "bypass"."""
    k, s, m = layer["kernel"], layer["stride"], layer["out"]
    dw = bool(layer.get("depthwise"))
    t = None if dw else bypass_t(layer["bypass"])
    z = cbc_width(c, t, m)
    ho = -(-h // s)
    per = k * k * (1 if dw else c)
    macs = per * m * ho * ho
    params = per * m + (2 * m if layer["bn"] else m)
    return {"m": m, "z": z, "dw": dw, "macs": macs, "params": params}


def mbconv_cbc(c: int, h: int, layer: dict, mid: int, expand: bool, residual: bool) -> dict:
    """Widths and cost of an `mbconv` block with "bypass".

    Keys: e (expansion filters), ze (channels into the depthwise conv), d (depthwise filters),
    zd (channels out of it, = ze), p (project filters), zp (channels out of the project conv),
    out (block output: max(C, P) with a residual add, else zp), identity (nothing computed).
    """
    t = bypass_t(layer["bypass"])
    k, s, se = layer["kernel"], layer["stride"], layer["se"]
    ho = -(-h // s)
    e = mid if expand else 0
    ze = cbc_width(c, t, e) if expand else c
    d = ze if layer.get("dw") is None else layer["dw"]
    zd = ze
    p = layer["out"]
    zp = p if residual else cbc_width(zd, t, p)
    out = max(c, p) if residual else zp
    identity = residual and p == 0  # the project conv has no filter: nothing reaches the add
    macs = params = 0
    if not identity:
        if e:
            macs += c * e * h * h
            params += c * e + 2 * e
        if d:
            macs += k * k * d * ho * ho
            params += k * k * d + 2 * d
        if se:
            macs += 2 * zd * se
            params += 2 * zd * se + se + zd
        macs += zd * p * ho * ho
        params += zd * p + 2 * p
    return {"e": e, "ze": ze, "d": d, "zd": zd, "p": p, "zp": zp, "out": out, "t": t, "identity": identity,
            "macs": macs, "params": params}
