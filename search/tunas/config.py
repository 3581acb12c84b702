"""TuNAS's knobs (DESIGN 8.1): preset, reward, controller, weight optimiser, warmups, refinement.

Numbers follow the paper's appendix and the reference code (google-research/tunas,
mobile_architecture_search.py) unless a comment says why not. A knob left at None is filled in by
the preset (`presets.py`: `proxy`, the default, or `paper`); an explicit value overrides it.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from latbench.errors import BadInput

from ..config import SearchConfig
from .presets import DEFAULT_PRESET, PRESETS, preset_values

REWARDS = ("absolute", "soft", "hard")
WEIGHT_OPTIMIZERS = ("sgd", "rmsprop")
WEIGHT_DECAY_ON = ("all", "conv")
LATENCY_TERMS = ("samples", "expected", "samples+expected")
PRESET_KEYS = tuple(PRESETS[DEFAULT_PRESET])
DEFAULT_BETA = {"absolute": -0.10, "soft": -0.07, "hard": -0.07}
# the default budget (no --steps / --epochs) of the two larger TuNAS spaces (~10^28 and ~10^43 archs
# against proxylessnas's ~10^21): at 800 steps the policy was still spread when it collapsed and the
# argmax missed T0 by 0.5-0.9 % on 2 of 10 reporting seeds of proxylessnas-enlarged; 1200 steps
# landed tuning seeds 50-57 at a mean 0.08 % (800: 0.22 %). Other spaces: search.config.DEFAULT_STEPS.
LARGER_SPACE_STEPS = {"proxylessnas-enlarged": 1200, "mobilenetv3-like": 1200}


@dataclass
class TunasConfig(SearchConfig):
    preset: str = DEFAULT_PRESET  # presets.PRESETS: fills every knob below left at None
    # weights (None: from the preset); learning rates are per 256 images of global batch (SearchConfig)
    weight_lr: float | None = None
    weight_optimizer: str | None = None  # sgd (momentum 0.9, Nesterov) | rmsprop (TuNAS's, TF1 form)
    rmsprop_epsilon: float = 0.1  # TuNAS appendix E.1 (the reference search code uses 1.0)
    weight_decay_on: str | None = None  # all: every trained tensor | conv: conv kernels only (TuNAS)
    kernel_sharing: bool = False  # True: one depthwise weight + BN for all kernel sizes (OFA-style)
    # reward
    reward: str = "absolute"
    beta: float | None = None  # None: the preset's (absolute reward), else DEFAULT_BETA[reward]
    # RL controller (Adam beta1=0, beta2=0.999, eps=1e-8); rl_lr per 256 held-out images of global batch
    rl_lr: float | None = None
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
    latency_samples: int | None = None
    # absolute reward only: "samples" prices each arch (the sampled one, or latency_samples more, as
    # above); "expected" prices the policy's expected latency E[T] instead, beta |E[T]/T0 - 1|, whose
    # exact gradient pulls the policy's centre to T0 however spread it is; "samples+expected" adds
    # the two (search/README.md)
    latency_term: str = "samples"
    # Adam's moment estimates start with the controller (after the delay) rather than during it
    # (the reference code also updates them while lr is 0; search/README.md)
    rl_moments_after_delay: bool | None = None
    # warmups
    op_warmup: float = 0.25  # op warmup probability decays 1 -> 0 over this fraction
    filter_warmup: float = 0.25
    # outputs
    sampled_window: float = 0.1  # sampled-average latency over the last 10% of steps
    refine: bool = False  # optional final latency refinement (search.tunas.refine); default: pure argmax
    refine_tolerance: float = 0.005

    def __post_init__(self):
        if self.steps is None and self.epochs is None and self.space in LARGER_SPACE_STEPS:
            self.steps = LARGER_SPACE_STEPS[self.space]
        super().__post_init__()
        given = {k: getattr(self, k) for k in PRESET_KEYS if getattr(self, k) is not None}
        filled = preset_values(self.preset, given, self.reward)
        for k, v in filled.items():
            setattr(self, k, v)
        self.given = tuple(given)
        self.from_preset = tuple(k for k in PRESET_KEYS if k in filled)
        if self.latency_samples is None:
            self.latency_samples = 0  # soft / hard reward: the sampled arch prices latency
        self.world = max(1, int(os.environ.get("WORLD_SIZE") or 1))  # torchrun's process count

    @property
    def global_batch(self) -> int:
        """Training images per step over all processes (what the learning rates scale with)."""
        return self.batch_size * self.world

    def sources(self) -> dict:
        """Per preset-controlled knob: 'option' (given explicitly), 'preset', or 'default' (the
        soft / hard reward's own beta and latency pricing)."""
        given = set(self.given)
        return {k: "option" if k in given else "preset" if k in self.from_preset else "default"
                for k in PRESET_KEYS}

    def settings_text(self) -> str:
        """The preset and every resolved value, one block (what the CLI prints before a search)."""
        src = self.sources()
        d = self.as_dict()
        head = (f"tunas settings: preset {self.preset} (global batch {self.global_batch} = {self.batch_size} x "
                f"{self.world} process{'es' if self.world > 1 else ''}); [preset] / [option] / [default]:")
        rows = [f"  {k} = {d[k]!r} [{src[k]}]" for k in PRESET_KEYS]
        rest = [f"{k}={v!r}" for k, v in d.items() if k not in PRESET_KEYS and k not in ("preset", "progress")]
        lines, line = [], " "
        for item in rest:
            if len(line) + len(item) > 100:
                lines.append(line)
                line = " "
            line += " " + item
        return "\n".join([head, *rows, *lines, line])

    @property
    def beta_value(self) -> float:
        return DEFAULT_BETA[self.reward] if self.beta is None else float(self.beta)

    def as_dict(self) -> dict:
        d = super().as_dict()
        d["beta"] = self.beta_value
        return d

    def check(self) -> None:
        super().check()
        if self.weight_optimizer not in WEIGHT_OPTIMIZERS:
            raise BadInput(f"--weight-optimizer: expected one of {', '.join(WEIGHT_OPTIMIZERS)}, got {self.weight_optimizer!r}")
        if self.weight_decay_on not in WEIGHT_DECAY_ON:
            raise BadInput(f"--weight-decay-on: expected one of {', '.join(WEIGHT_DECAY_ON)}, got {self.weight_decay_on!r}")
        for name in ("weight_lr", "rl_lr"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and v > 0):
                raise BadInput(f"--{name.replace('_', '-')}: must be a positive number, got {v}")
        if self.reward not in REWARDS:
            raise BadInput(f"--reward: expected one of {', '.join(REWARDS)}, got {self.reward!r}")
        if not 1 <= self.rl_samples <= min(self.batch_size, self.rl_batch_size):
            raise BadInput(f"--rl-samples: expected 1..{min(self.batch_size, self.rl_batch_size)} (one arch per chunk "
                           f"of the batch), got {self.rl_samples}")
        if self.latency_samples < 0:
            raise BadInput(f"--latency-samples: must be 0 or more, got {self.latency_samples}")
        if self.latency_term not in LATENCY_TERMS:
            raise BadInput(f"--latency-term: expected one of {', '.join(LATENCY_TERMS)}, got {self.latency_term!r}")
        if self.latency_term != "samples" and self.reward != "absolute":
            raise BadInput(f"--latency-term {self.latency_term}: needs --reward absolute (the {self.reward} reward multiplies Q "
                           "by the latency term)")
        if self.latency_samples and self.reward != "absolute":
            raise BadInput(f"--latency-samples: needs --reward absolute (the {self.reward} reward multiplies Q by "
                           "the latency term, so the two cannot be estimated apart)")

    def check_space(self, space) -> None:
        from latbench.spaces.tfnas import TFNASSpace
        from latbench.spaces.tunas import TUNAS_SPACES, TunasSpace

        if isinstance(space, TFNASSpace) and space.num_decisions == space.num_blocks + len(space.depth_stages):
            # op and depth decisions only (not tfnas-elastic's widths): TuNAS's controller on TF-NAS's supernet
            if self.kernel_sharing:
                raise BadInput(f"--kernel-sharing: the {space.name} supernet keeps every op separate")
            return
        if not isinstance(space, TunasSpace):
            raise BadInput(f"--space: {space.name}: the TuNAS supernet is built from TuNAS spaces "
                           f"({', '.join(TUNAS_SPACES)}) and tfnas only")
