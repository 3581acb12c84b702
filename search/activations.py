"""The activations of the `latbench-arch/1` format as torch functions, for every supernet."""
from __future__ import annotations

import torch.nn.functional as F

ACTIVATIONS = {"relu": F.relu, "relu6": F.relu6, "hswish": F.hardswish, "swish": F.silu,
               "none": lambda x: x}


def activation(name: str):
    return ACTIVATIONS[name]
