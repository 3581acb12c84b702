"""TuNAS's knobs (DESIGN 8.1): reward, controller, warmups, refinement.

Numbers follow the paper's appendix and the reference code (google-research/tunas,
mobile_architecture_search.py) unless a comment says why not.
"""
from __future__ import annotations

from dataclasses import dataclass

from latbench.errors import BadInput

from ..config import SearchConfig

REWARDS = ("absolute", "soft", "hard")
DEFAULT_BETA = {"absolute": -0.10, "soft": -0.07, "hard": -0.07}


@dataclass
class TunasConfig(SearchConfig):
    # reward
    reward: str = "absolute"
    beta: float | None = None  # None: DEFAULT_BETA[reward]
    # RL controller (Adam beta1=0, beta2=0.999, eps=1e-8)
    rl_lr: float = 0.05  # base lr; TuNAS's 3e-4 per 256 images is far too slow for ~1k steps
    rl_delay: float = 0.25  # RL lr is 0 for this fraction of steps
    rl_lr_growth: float = 10.0  # lr rises exponentially from base to growth x base by the end
    baseline_momentum: float = 0.95
    # archs sampled per step and process: TuNAS runs one per TPU shard (32+ per step, the controller
    # gradient averaged); K here emulates K shards in one process, each on 1/K of the training and
    # validation batch, so a step costs about the same (search/README.md)
    rl_samples: int = 1
    # absolute reward only: the latency part of the REINFORCE gradient estimated from this many
    # extra archs drawn from the policy and priced by the LatencyModel (0: from the sampled
    # arch only, as TuNAS); the same expected reward, a far less noisy gradient (search/README.md)
    latency_samples: int = 0
    # Adam's moment estimates start with the controller (after the delay) rather than during it
    # (the reference code also updates them while lr is 0; search/README.md)
    rl_moments_after_delay: bool = True
    # warmups
    op_warmup: float = 0.25  # op warmup probability decays 1 -> 0 over this fraction
    filter_warmup: float = 0.25
    # outputs
    sampled_window: float = 0.1  # sampled-average latency over the last 10% of steps
    refine: bool = False  # optional final latency refinement (search.tunas.refine); default: pure argmax
    refine_tolerance: float = 0.005

    @property
    def beta_value(self) -> float:
        return DEFAULT_BETA[self.reward] if self.beta is None else float(self.beta)

    def as_dict(self) -> dict:
        d = super().as_dict()
        d["beta"] = self.beta_value
        return d

    def check(self) -> None:
        super().check()
        if self.reward not in REWARDS:
            raise BadInput(f"--reward: expected one of {', '.join(REWARDS)}, got {self.reward!r}")
        if not 1 <= self.rl_samples <= min(self.batch_size, self.rl_batch_size):
            raise BadInput(f"--rl-samples: expected 1..{min(self.batch_size, self.rl_batch_size)} (one arch per chunk "
                           f"of the batch), got {self.rl_samples}")
        if self.latency_samples < 0:
            raise BadInput(f"--latency-samples: must be 0 or more, got {self.latency_samples}")
        if self.latency_samples and self.reward != "absolute":
            raise BadInput(f"--latency-samples: needs --reward absolute (the {self.reward} reward multiplies Q by "
                           "the latency term, so the two cannot be estimated apart)")

    def check_space(self, space) -> None:
        from latbench.spaces.tunas import TUNAS_SPACES, TunasSpace

        if not isinstance(space, TunasSpace):
            raise BadInput(f"--space: {space.name}: the TuNAS supernet is built from TuNAS spaces only "
                           f"({', '.join(TUNAS_SPACES)})")
