"""Subnormal floats flushed to zero for eager PyTorch on the CPU (FTZ + DAZ).

With seeded random weights, activations grow through a network, squeeze-excite gates saturate and
sigmoid(−88) ≈ 6e-39 is a subnormal float; x86 cores take a slow microcode assist for every
operation on one. A few such values (up to 0.6 % of an SE output) made whole mobilenetv3-like
networks 12–20 % slower than with them flushed (measured on the CPU VM), and only in a network: an
op timed alone gets a fresh standard-normal input. That is a cost of the random numbers, not of
the architecture, and no lookup table can hold it. LiteRT (XNNPACK runs with subnormals off) and
ONNX Runtime (its sigmoid returns 0, never a subnormal; `session.set_denormal_as_zero` changed
nothing on the same networks) do not show it.

`flush_denormals()` sets FTZ/DAZ on the calling thread (PyTorch runs one thread here) each time a
torch model is prepared; the device fingerprint records it, so stores made without it never mix.
"""
from __future__ import annotations

_state: str | None = None


def flush_denormals() -> str:
    """Flush subnormals to zero on this thread; return what is in force (for the fingerprint)."""
    global _state
    import torch

    supported = torch.set_flush_denormal(True)  # per thread: cheap, so set on every call
    if _state is None:
        _state = "flushed to zero (FTZ+DAZ)" if supported else "kept (CPU cannot flush)"
    return _state
