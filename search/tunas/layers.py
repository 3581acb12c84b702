"""Shared-weight primitives of the supernet: channel masking and operation collapsing.

Every module is allocated at its largest size. A call uses
- the first `cin` input channels (taken from the input tensor) and the first `cout` output
  channels of the weights: TuNAS channel masking ("retaining only the first N channels and
  zeroing out the remaining ones"), implemented by slicing, which computes exactly the active
  channels of the masked convolution (tests check it against an explicit mask);
- per kernel size, its own depthwise conv and batch norm (`KernelChoice`), as TuNAS: operation
  collapsing shares only the 1x1 expand/project convs across kernel sizes and expansion ratios
  (TuNAS section 4.1, figure 2). With `share=True` (the `kernel_sharing` option) one weight at the
  largest kernel serves every size through its centre k x k, and one batch norm (OFA-style, not TuNAS).
Batch norm always uses batch statistics (TuNAS appendix E.2: batch norm in training mode, also
when evaluating candidates), so no running statistics are kept.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

BN_EPS = 1e-3  # TuNAS appendix E.1

from ..activations import ACTIVATIONS, activation  # noqa: F401  (used by the supernet through this module)


def centre(weight: torch.Tensor, kernel: int) -> torch.Tensor:
    """The centre kernel x kernel window of a [..., K, K] weight (K - kernel must be even)."""
    k_max = weight.shape[-1]
    if kernel == k_max:
        return weight
    if kernel > k_max or (k_max - kernel) % 2:
        raise ValueError(f"kernel {kernel} cannot be cut from the centre of a {k_max}x{k_max} kernel")
    o = (k_max - kernel) // 2
    return weight[..., o:o + kernel, o:o + kernel]


def channel_mask(active: int, total: int, dtype=torch.float32) -> torch.Tensor:
    """[total] mask with the first `active` entries 1 (TuNAS's sequence mask)."""
    return (torch.arange(total) < active).to(dtype)


class SharedConv2d(nn.Module):
    """k x k convolution (optionally with bias) shared by every (cin, cout, kernel) it is used at."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, bias: bool = False):
        super().__init__()
        self.stride, self.kernel = stride, kernel
        self.weight = nn.Parameter(torch.empty(cout, cin, kernel, kernel))
        nn.init.kaiming_normal_(self.weight, mode="fan_out", nonlinearity="relu")
        self.bias = nn.Parameter(torch.zeros(cout)) if bias else None

    def forward(self, x: torch.Tensor, cout: int, kernel: int | None = None) -> torch.Tensor:
        k = kernel or self.kernel
        w = centre(self.weight[:cout, : x.shape[1]], k)
        b = None if self.bias is None else self.bias[:cout]
        return F.conv2d(x, w, b, self.stride, k // 2)


class SharedDepthwise(nn.Module):
    """Depthwise k x k convolution: channels and kernel sizes share one [C, 1, K, K] weight."""

    def __init__(self, channels: int, kernel: int, stride: int = 1):
        super().__init__()
        self.stride, self.kernel = stride, kernel
        self.weight = nn.Parameter(torch.empty(channels, 1, kernel, kernel))
        # fan-in of a depthwise filter is k*k (TuNAS appendix footnote 8: do not count channels)
        nn.init.normal_(self.weight, 0.0, math.sqrt(2.0 / (kernel * kernel)))

    def forward(self, x: torch.Tensor, kernel: int | None = None) -> torch.Tensor:
        k = kernel or self.kernel
        c = x.shape[1]
        return F.conv2d(x, centre(self.weight[:c], k), None, self.stride, k // 2, 1, c)


class KernelChoice(nn.Module):
    """The kernel-size choice of one layer position: `make(k)` builds the module used at kernel k.

    share=False (TuNAS): one module per kernel size in `kernels`. share=True (kernel sharing, OFA's
    idea): one module at the largest kernel, called with the smaller k (it cuts the centre)."""

    def __init__(self, kernels, make, share: bool = False):
        super().__init__()
        self.share, self.kmax = share, max(kernels)
        sizes = (self.kmax,) if share else tuple(sorted(set(kernels)))
        self.ops = nn.ModuleDict({str(k): make(k) for k in sizes})

    def forward(self, x: torch.Tensor, kernel: int | None, *args) -> torch.Tensor:
        kernel = kernel or self.kmax  # None: a layer whose kernel is not searched
        return self.ops[str(self.kmax if self.share else kernel)](x, kernel, *args)


class DepthwiseBN(nn.Module):
    """Depthwise k x k conv + batch norm (the part of an inverted bottleneck a kernel size owns)."""

    def __init__(self, channels: int, kernel: int, stride: int = 1):
        super().__init__()
        self.conv, self.bn = SharedDepthwise(channels, kernel, stride), SharedBatchNorm(channels)

    def forward(self, x: torch.Tensor, kernel: int) -> torch.Tensor:
        return self.bn(self.conv(x, kernel))


class ConvBN(nn.Module):
    """k x k conv + batch norm (or bias): a searched-kernel stem/head conv at one kernel size."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, bn: bool = True):
        super().__init__()
        self.conv = SharedConv2d(cin, cout, kernel, stride, bias=not bn)
        self.bn = SharedBatchNorm(cout) if bn else None

    def forward(self, x: torch.Tensor, kernel: int, cout: int) -> torch.Tensor:
        y = self.conv(x, cout, kernel)
        return self.bn(y) if self.bn is not None else y


class SharedBatchNorm(nn.Module):
    """Batch norm over the first C channels of the input, always with batch statistics."""

    def __init__(self, channels: int, eps: float = BN_EPS):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        return F.batch_norm(x, None, None, self.weight[:c], self.bias[:c], True, 0.0, self.eps)


class SharedSqueezeExcite(nn.Module):
    """Squeeze-and-excite: pool, 1x1 (bias) to `hidden`, ReLU, 1x1 (bias) back, sigmoid gate."""

    def __init__(self, channels: int, hidden: int):
        super().__init__()
        self.reduce = SharedConv2d(channels, hidden, 1, bias=True)
        self.expand = SharedConv2d(hidden, channels, 1, bias=True)

    def forward(self, x: torch.Tensor, hidden: int) -> torch.Tensor:
        s = F.adaptive_avg_pool2d(x, 1)
        s = F.relu(self.reduce(s, hidden))
        return x * torch.sigmoid(self.expand(s, x.shape[1]))


class SharedLinear(nn.Module):
    """Classifier on the first `cin` features (TuNAS E.1: weights ~ N(0, 0.01), bias 0)."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(cout, cin) * 0.01)
        self.bias = nn.Parameter(torch.zeros(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight[:, : x.shape[1]], self.bias)
