"""The weight optimiser of a TuNAS search (`weight_optimizer`, `weight_decay_on`; presets.py).

- sgd: momentum 0.9, Nesterov (the `proxy` preset; search.training's optimiser).
- rmsprop: TuNAS's (appendix E.1: decay 0.9, momentum 0.9, epsilon 0.1) in the form of TensorFlow 1's
  `tf.train.RMSPropOptimizer`, which the reference code uses: the mean square starts at 1 (not 0),
  epsilon sits inside the square root, and the learning rate enters the momentum accumulator:
      ms  <- decay ms + (1 - decay) g^2
      mom <- momentum mom + lr g / sqrt(ms + eps)
      w   <- w - mom
  (torch.optim.RMSprop starts ms at 0 and adds eps outside the root: with epsilon 0.1 its first
  steps would be up to ~30x larger.)
L2 (`weight_decay`, added to the gradient as d/dw of weight_decay/2 * |w|^2, like the reference
code's `l2(weight_decay / 2)` regulariser): on every trained tensor (`all`) or on convolution
kernels only (`conv`: TuNAS appendix E.1, "all convolutional kernels except the final fully
connected layer"; no BN scales/offsets, biases or classifier). Either way only tensors the step
used (that have a gradient) are decayed, as TuNAS regularises "only parameters which are used in
the current training step".
"""
from __future__ import annotations

import torch

from ..distributed import unwrap
from .layers import SharedConv2d, SharedDepthwise

RMSPROP_DECAY, RMSPROP_MOMENTUM = 0.9, 0.9


class TFRMSprop(torch.optim.Optimizer):
    """RMSProp as tf.compat.v1.train.RMSPropOptimizer (non-centred), with coupled L2 weight decay."""

    def __init__(self, params, lr: float, decay: float = RMSPROP_DECAY, momentum: float = RMSPROP_MOMENTUM,
                 eps: float = 0.1, weight_decay: float = 0.0):
        super().__init__(params, dict(lr=lr, decay=decay, momentum=momentum, eps=eps, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            lr, decay, momentum, eps, wd = (group[k] for k in ("lr", "decay", "momentum", "eps", "weight_decay"))
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad if wd == 0 else p.grad.add(p, alpha=wd)
                state = self.state[p]
                if not state:
                    state["ms"] = torch.ones_like(p)
                    state["mom"] = torch.zeros_like(p)
                ms, mom = state["ms"], state["mom"]
                ms.mul_(decay).addcmul_(g, g, value=1 - decay)
                mom.mul_(momentum).addcdiv_(g, (ms + eps).sqrt_(), value=lr)
                p.sub_(mom)


def conv_kernels(model) -> set:
    """ids of the convolution kernels of a supernet (stem/head, depthwise, 1x1, squeeze-excite convs)."""
    net = unwrap(model)
    if hasattr(net, "conv_kernels"):  # staged.StagedSupernet names its own
        return net.conv_kernels()
    return {id(m.weight) for m in unwrap(model).modules() if isinstance(m, (SharedConv2d, SharedDepthwise))}


def param_groups(model, weight_decay: float, on: str = "all") -> list:
    params = list(model.parameters())
    if on == "all":
        return [{"params": params, "weight_decay": weight_decay}]
    kernels = conv_kernels(model)
    return [{"params": [p for p in params if id(p) in kernels], "weight_decay": weight_decay},
            {"params": [p for p in params if id(p) not in kernels], "weight_decay": 0.0}]


def make_tunas_weight_optimizer(model, cfg, lr: float):
    """The optimiser `cfg.weight_optimizer` names over `model`'s parameters at `lr` (the scaled
    weight_lr), L2 per `cfg.weight_decay_on`."""
    groups = param_groups(model, cfg.weight_decay, cfg.weight_decay_on)
    if cfg.weight_optimizer == "rmsprop":
        return TFRMSprop(groups, lr=lr, eps=cfg.rmsprop_epsilon)
    return torch.optim.SGD(groups, lr=lr, momentum=0.9, nesterov=True)
