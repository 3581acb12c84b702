"""TF-NAS's own knobs, on top of the common ones of SearchConfig (target, steps, seed, batch, proxy
width/resolution, threads). Defaults are TF-NAS's (supplement section 2 and the reference code's
train_search.py), with epochs mapped to steps of the proxy task; its weight optimizer's learning
rate and decay replace the common defaults.
"""
from __future__ import annotations

from dataclasses import dataclass

from latbench.errors import BadInput

from ..config import SearchConfig

SPACES = ("tfnas", "tfnas-elastic", "tfnas-mbv2")


@dataclass
class TFNASConfig(SearchConfig):
    space: str = "tfnas"
    lambda_lat: float = 0.1          # loss = CE + lambda |LAT / T - 1|
    temperature: float = 5.0         # Gumbel-softmax temperature at the start of architecture training
    temperature_decay: float = 0.96  # x per epoch of architecture training
    warmup: float = 0.1              # fraction of steps training weights only (TF-NAS: 10 of 90 epochs)
    arch_every: int = 2              # architecture step on every 2nd step
    epoch_steps: int | None = None   # steps per "epoch" (temperature, elasticity); None: one pass over the
    #                                  proxy training split at the batch size
    elastic_every: int | None = None  # elasticity scaling every N steps after warm-up (and at the last
    #                                  step); None: every epoch
    weight_lr: float = 0.025         # SGD, momentum 0.9, cosine to 0
    weight_momentum: float = 0.9
    weight_decay: float = 1e-5
    arch_lr: float = 0.01            # Adam (0.5, 0.999)
    arch_beta1: float = 0.5
    arch_beta2: float = 0.999
    arch_weight_decay: float = 5e-4
    grad_clip: float = 5.0
    latency_weights: str = "gumbel"  # "gumbel": the arch step's own Gumbel-softmax weights price the
    #                                  latency (TF-NAS's code); "softmax": softmax(alpha)

    def check(self) -> None:
        super().check()
        if not self.lambda_lat >= 0:
            raise BadInput(f"tfnas lambda_lat: must be >= 0, got {self.lambda_lat}")
        if not self.temperature > 0 or not 0 < self.temperature_decay <= 1:
            raise BadInput("tfnas temperature: must be > 0 and the decay in (0, 1]")
        if not 0 <= self.warmup < 1:
            raise BadInput(f"tfnas warmup: a fraction in [0, 1), got {self.warmup}")
        if self.arch_every < 1:
            raise BadInput(f"tfnas arch_every: must be at least 1, got {self.arch_every}")
        for name in ("epoch_steps", "elastic_every"):
            v = getattr(self, name)
            if v is not None and v < 1:
                raise BadInput(f"tfnas {name}: must be at least 1, got {v}")
        if self.latency_weights not in ("gumbel", "softmax"):
            raise BadInput(f"tfnas latency_weights: gumbel or softmax, got {self.latency_weights!r}")

    def check_space(self, space) -> None:
        if space.name not in SPACES:
            raise BadInput(f"--space: {space.name}: --algo tfnas searches {', '.join(SPACES)}")
