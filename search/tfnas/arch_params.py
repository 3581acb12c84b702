"""TF-NAS architecture parameters and the two ways a step uses them.

α: per searchable block, log-probabilities over its ops (TF-NAS keeps them normalised: after
every optimiser step they are replaced by log_softmax(α)). β: per stage with a depth decision,
logits over depths 1..n (softmax(β) weights the sink-connected outputs).

Operation level, *bi-sampling* (weight steps): per block one op sampled from softmax(α) with
the Gumbel trick (argmax of Gumbel-perturbed log-probabilities, what TF-NAS's 'gumbel' mode
does) and one *other* op drawn uniformly from the remaining ones ('random' mode after the
sampled op is switched off); both paths are trained on the same batch with summed losses.
Architecture steps use Gumbel-softmax weights over all ops at temperature τ.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ArchParams(nn.Module):
    def __init__(self, num_ops: list[int], depth_sizes: list[int]):
        super().__init__()
        self.alphas = nn.ParameterList([nn.Parameter(F.log_softmax(torch.zeros(n), 0)) for n in num_ops])
        self.betas = nn.ParameterList([nn.Parameter(torch.zeros(n)) for n in depth_sizes])

    # ------------------------------------------------------------------ distributions
    def op_probs(self) -> list[torch.Tensor]:
        return [F.softmax(a, 0) for a in self.alphas]

    def depth_probs(self) -> list[torch.Tensor]:
        return [F.softmax(b, 0) for b in self.betas]

    @torch.no_grad()
    def normalise(self) -> None:
        for a in self.alphas:
            a.copy_(F.log_softmax(a, 0))

    def argmax(self) -> tuple[list[int], list[int]]:
        """(op index per block, depth index per depth stage): TF-NAS's strongest op and depth."""
        return ([int(torch.argmax(a)) for a in self.alphas], [int(torch.argmax(b)) for b in self.betas])

    # ------------------------------------------------------------------ sampling
    def gumbel_weights(self, tau: float, generator: torch.Generator) -> list[torch.Tensor]:
        """Gumbel-softmax weights over every block's ops (differentiable in α)."""
        out = []
        for a in self.alphas:
            g = _gumbel(a.shape, generator).to(a.device, a.dtype)
            out.append(F.softmax((F.log_softmax(a, 0) + g) / tau, 0))
        return out

    @torch.no_grad()
    def bi_sample(self, generator: torch.Generator) -> tuple[list[int], list[int]]:
        """(Gumbel-sampled op per block, another op per block drawn uniformly from the rest)."""
        first, second = [], []
        for a in self.alphas:
            g = _gumbel(a.shape, generator).to(a.device, a.dtype)
            i = int(torch.argmax(F.log_softmax(a, 0) + g))
            n = a.numel()
            j = int(torch.randint(n - 1, (1,), generator=generator))
            first.append(i)
            second.append(j if j < i else j + 1)
        return first, second


def _gumbel(shape, generator) -> torch.Tensor:
    u = torch.rand(shape, generator=generator).clamp_(1e-10, 1.0 - 1e-10)
    return -torch.log(-torch.log(u))


def temperature(step: int, warmup_steps: int, epoch_steps: int, start: float = 5.0, decay: float = 0.96) -> float:
    """τ at `step`: `start` until warm-up ends, then × `decay` after every epoch of architecture training."""
    done = max(0, step - warmup_steps) // max(1, epoch_steps)
    return start * decay ** done
