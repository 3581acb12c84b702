"""SearchConfig: every knob of a search in one dataclass, with the defaults used by the CLI.

Defaults are sized so `latbench search --target-ms 84` finishes in a few minutes on a 2-core
laptop CPU (see README/RESULTS for the measured wall time). TuNAS-specific numbers follow the
paper's appendix and the reference code (google-research/tunas, mobile_architecture_search.py).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

REWARDS = ("absolute", "soft", "hard")
DEFAULT_BETA = {"absolute": -0.10, "soft": -0.07, "hard": -0.07}


@dataclass
class SearchConfig:
    target_ms: float = 84.0
    space: str = "proxylessnas"
    lut: str | None = None  # None: the shipped Pixel-1 table of a TuNAS space
    algo: str = "tunas"
    steps: int = 800
    seed: int = 0
    out: str = "latbench-search"
    data: str | None = None  # None: built-in digits proxy task
    # reward
    reward: str = "absolute"
    beta: float | None = None  # None: DEFAULT_BETA[reward]
    # proxy task / supernet
    width: float = 0.25  # proxy width multiplier on every channel count
    min_channels: int = 8  # no proxy layer narrower than this
    resolution: int = 32  # proxy input resolution
    min_feature_map: int = 2  # earliest strides become 1 until the last map is at least this
    batch_size: int = 64  # weight-training batch (per process)
    rl_batch_multiplier: float = 4.0  # RL (validation) batch = this x batch_size (TuNAS default 4)
    # weights
    weight_lr: float = 0.1  # SGD (momentum 0.9, nesterov), cosine decay, linear warmup
    weight_lr_warmup: float = 0.025  # fraction of steps (TuNAS: 2.5%)
    weight_decay: float = 4e-5
    label_smoothing: float = 0.1
    # RL controller (Adam beta1=0, beta2=0.999, eps=1e-8)
    rl_lr: float = 0.05  # base lr; TuNAS's 3e-4 per 256 images is far too slow for ~1k steps
    rl_delay: float = 0.25  # RL lr is 0 for this fraction of steps
    rl_lr_growth: float = 10.0  # lr rises exponentially from base to growth x base by the end
    baseline_momentum: float = 0.95
    # archs sampled per step and process: TuNAS runs one per TPU shard (32+ per step, the controller
    # gradient averaged); K here emulates K shards in one process, each on 1/K of the training and
    # validation batch, so a step costs about the same (see README: short searches)
    rl_samples: int = 1
    # absolute reward only: the latency part of the REINFORCE gradient estimated from this many
    # extra archs drawn from the policy and priced by the LatencyModel (0: from the sampled
    # arch only, as TuNAS); the same expected reward, a far less noisy gradient (README)
    latency_samples: int = 0
    # Adam's moment estimates start with the controller (after the delay) rather than during it
    # (the reference code also updates them while lr is 0; see README: short searches)
    rl_moments_after_delay: bool = True
    # warmups and rematerialisation
    op_warmup: float = 0.25  # op warmup probability decays 1 -> 0 over this fraction
    filter_warmup: float = 0.25
    remat: bool = True  # torch.utils.checkpoint of layers evaluated with all ops enabled
    # outputs
    sampled_window: float = 0.1  # sampled-average latency over the last 10% of steps
    refine: bool = False  # optional final latency refinement (search.refine); default: pure argmax (DESIGN 8.1)
    refine_tolerance: float = 0.005
    # random search
    candidates: int = 5
    band: float = 0.01  # rejection-sampling band: T0 +- 1%
    progress: bool = True
    threads: int | None = 1  # torch intra-op threads per process (None: torch default); see README

    @property
    def beta_value(self) -> float:
        return DEFAULT_BETA[self.reward] if self.beta is None else float(self.beta)

    @property
    def rl_batch_size(self) -> int:
        return max(1, int(round(self.batch_size * self.rl_batch_multiplier)))

    def as_dict(self) -> dict:
        d = asdict(self)
        d["beta"] = self.beta_value
        return d
