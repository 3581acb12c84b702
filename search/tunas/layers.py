"""Shared-weight primitives of the supernet: channel masking and operation collapsing.

Every module is allocated at its largest size. A call uses
- the first `cin` input channels (taken from the input tensor) and the first `cout` output
  channels of the weights: TuNAS channel masking ("retaining only the first N channels and
  zeroing out the remaining ones"), implemented by slicing, which computes exactly the active
  channels of the masked convolution (tests check it against an explicit mask);
- the centre k x k of the largest kernel for a smaller kernel size k: operation collapsing
  (one weight tensor for all kernel sizes of a layer position).
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
