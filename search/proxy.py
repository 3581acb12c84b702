"""An Arch at the proxy task's scale, as a plain torch network (no weight sharing).

Every channel count x `width` (round half up, at least `min_channels`), input at `resolution`
with the data's channels and classes, and the last stride-2 layers set to stride 1 until the
final feature map is at least `min_feature_map` wide (at 32 px the usual total stride 32 would end
on 1x1). Used to train one arch from fresh weights (random-search candidates, benchmarks); any
space's archs, any algorithm's result.
"""
from __future__ import annotations

from latbench.arch import Arch


def proxy_strides(strides: list, resolution: int, min_feature_map: int) -> list:
    """Set the last strides > 1 to 1 until resolution / total stride >= min_feature_map."""
    out = list(strides)
    total = 1
    for s in out:
        total *= s
    for i in reversed(range(len(out))):
        s = out[i]
        if resolution / total >= min_feature_map or total == 1:
            break
        if s > 1:
            out[i] = 1
            total //= s
    return out


def proxy_channels(channels: int, width: float, min_channels: int) -> int:
    return max(min_channels, int(channels * width + 0.5))


def proxy_arch(arch: Arch, width: float, min_channels: int, resolution: int, min_feature_map: int,
               num_classes: int, in_channels: int) -> Arch:
    """`arch` scaled to the proxy task (module docstring)."""
    shapes = arch.shapes()
    strided = [i for i, s in enumerate(shapes) if "stride" in s.layer]
    strides = dict(zip(strided, proxy_strides([shapes[i].layer["stride"] for i in strided], resolution,
                                              min_feature_map)))
    last_fc = max((i for i, s in enumerate(shapes) if s.type == "fc"), default=None)

    def ch(c):
        return proxy_channels(c, width, min_channels)

    layers = []
    for i, s in enumerate(shapes):
        L = {k: v for k, v in s.layer.items() if v is not None}
        if i in strides:
            L["stride"] = strides[i]
        if s.type == "conv":
            L["out"] = ch(s.cout)
            if L.get("groups", 1) > 1:
                L["groups"] = ch(s.cin) if L["groups"] == s.cin else 1
        elif s.type == "mbconv":
            L.pop("expand", None)
            L.update(out=ch(s.cout), mid=ch(s.mid))
            if L.get("se"):
                L["se"] = ch(L["se"])
            if not s.residual:
                L["residual"] = False
            if s.expand and L["mid"] == ch(s.cin):
                L["expand_conv"] = True
        elif s.type == "fc":
            L["out"] = num_classes if i == last_fc else ch(s.cout)
        layers.append(L)
    from latbench.arch import parse_arch

    return parse_arch({"format": "latbench-arch/1", "name": f"{arch.name}@proxy", "resolution": resolution,
                       "in_channels": in_channels, "layers": layers}, f"{arch.name} at the proxy scale")


def build_proxy_net(arch: Arch, cfg, num_classes: int, in_channels: int, seed: int):
    """(module taking (x, plan=None), the proxy Arch): `arch` at the proxy scale with fresh seeded weights."""
    import torch
    from torch import nn

    from latbench.build.torch_model import build_torch

    small = proxy_arch(arch, cfg.width, cfg.min_channels, cfg.resolution, cfg.min_feature_map, num_classes,
                       in_channels)
    torch.manual_seed(seed)

    class ProxyNet(nn.Module):
        """The training interface of a supernet (forward(x, plan)) over a fixed network."""

        def __init__(self):
            super().__init__()
            self.net = build_torch(small, seed=seed, training=True)

        def forward(self, x, plan=None):
            return torch.flatten(self.net(x), 1)

        def describe(self) -> dict:
            return {"width": cfg.width, "min_channels": cfg.min_channels, "resolution": cfg.resolution,
                    "macs": small.macs, "parameters": sum(p.numel() for p in self.parameters())}

    return ProxyNet(), small
