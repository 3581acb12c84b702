"""TuNAS's controller: an independent categorical distribution per decision (tunas/controller.py).

Logits start at 0 (uniform). Sampling, log-probabilities, entropy and argmax work on all decisions
at once through one padded [D, K] logit tensor (options beyond a decision's count are masked).
Hierarchical (as TuNAS's default): a decision that only shapes a layer the sample skips is
inactive and contributes no log-probability (nor entropy, when `entropy` is given the sample).
"""
from __future__ import annotations

import numpy as np
import torch


class CategoricalPolicy:
    def __init__(self, sizes, parents=None):
        self.sizes = [int(s) for s in sizes]
        d, k = len(self.sizes), max(self.sizes)
        self.logits = torch.zeros(d, k, requires_grad=True)
        self.valid = torch.arange(k)[None, :] < torch.tensor(self.sizes)[:, None]
        self.parents = list(parents) if parents is not None else [None] * d
        self._parent_pos = torch.tensor([p[0] if p else 0 for p in self.parents])
        self._parent_val = torch.tensor([p[1] if p else -1 for p in self.parents])
        self._has_parent = torch.tensor([p is not None for p in self.parents])

    def masked_logits(self) -> torch.Tensor:
        return self.logits.masked_fill(~self.valid, float("-inf"))

    def probs(self) -> torch.Tensor:
        """[D, K] probabilities (0 beyond each decision's option count)."""
        return torch.softmax(self.masked_logits(), dim=1)

    def prob_list(self) -> list:
        """One 1-D probability tensor per decision (what LatencyModel.expected_latency takes)."""
        p = self.probs()
        return [p[i, :n] for i, n in enumerate(self.sizes)]

    def sample(self, generator: torch.Generator | None = None) -> np.ndarray:
        with torch.no_grad():
            return torch.multinomial(self.probs(), 1, generator=generator)[:, 0].numpy()

    def sample_many(self, n: int, generator: torch.Generator | None = None) -> np.ndarray:
        """[n, D] index lists drawn independently from the policy."""
        with torch.no_grad():
            return torch.multinomial(self.probs(), n, replacement=True, generator=generator).T.numpy()

    def argmax(self) -> np.ndarray:
        with torch.no_grad():
            return self.masked_logits().argmax(dim=1).numpy()

    def active(self, indices) -> torch.Tensor:
        """[D] (or [N, D] for [N, D] indices) bool: decisions whose value matters for `indices`
        (parent layer not skipped)."""
        idx = torch.as_tensor(np.asarray(indices), dtype=torch.long)
        skipped = self._has_parent & (idx[..., self._parent_pos] == self._parent_val)
        return ~skipped

    def log_prob(self, indices) -> torch.Tensor:
        """Differentiable log-probability of `indices` ([D]: a scalar; [N, D]: [N]), active
        decisions only."""
        idx = torch.as_tensor(np.asarray(indices), dtype=torch.long)
        logp = torch.log_softmax(self.masked_logits(), dim=1)
        chosen = logp.gather(1, idx.reshape(-1, idx.shape[-1]).T).T.reshape(idx.shape)
        return (chosen * self.active(idx)).sum(dim=-1)

    def reinforce_loss(self, samples, rewards, baseline: float) -> torch.Tensor:
        """REINFORCE loss of one step, averaged over its samples (TuNAS: over its shards):
        mean_k −(reward_k − baseline) · log π(sample_k)."""
        return sum(-(r - baseline) * self.log_prob(idx) for r, idx in zip(rewards, samples)) / len(samples)

    def entropy(self, indices=None) -> float:
        """Entropy (nats) of all decisions, or with `indices` of those active for that arch only
        (decisions under a skipped layer get no gradient and stay near uniform)."""
        with torch.no_grad():
            p = self.probs()
            logp = torch.log_softmax(self.masked_logits(), dim=1)
            per_decision = -(p * logp.masked_fill(~self.valid, 0.0)).sum(dim=1)
            if indices is not None:
                per_decision = per_decision * self.active(indices)
            return float(per_decision.sum())


class EMABaseline:
    """Zero-debiased exponential moving average of the reward (tunas/custom_layers.py)."""

    def __init__(self, momentum: float = 0.95):
        self.momentum, self.num, self.den = momentum, 0.0, 0.0

    def update(self, value: float) -> float:
        """Fold `value` in and return the new average (TuNAS uses it for the same step's advantage)."""
        m = self.momentum
        self.num = m * self.num + (1 - m) * value
        self.den = m * self.den + (1 - m)
        return self.num / self.den


def make_rl_optimizer(policy: CategoricalPolicy, lr: float = 0.0):
    """Adam with beta1 = 0, beta2 = 0.999, eps = 1e-8 (TuNAS appendix E.2); lr is set every step."""
    return torch.optim.Adam([policy.logits], lr=lr, betas=(0.0, 0.999), eps=1e-8)
