"""TF-NAS's own knobs, on top of the common ones of SearchConfig (target, steps, seed, batch, proxy
width/resolution, threads). Defaults are TF-NAS's (supplement section 2 and the reference code's
train_search.py), with epochs mapped to steps of the proxy task; its weight optimizer's learning
rate and decay replace the common defaults.

Presets (`--preset`, as for TuNAS; an explicit option overrides its preset value):
  proxy (default): lambda 1.0 on the derived arch's latency (`latency_target` "derived"), measured to
         land on T at the built-in proxy's budget (search/README.md; chosen on tuning seeds < 100);
  paper: TF-NAS's objective, lambda 0.1 on the expected latency, set for 90 epochs on ImageNet.
"""
from __future__ import annotations

from dataclasses import dataclass

from latbench.errors import BadInput

from ..config import SearchConfig

SPACES = ("tfnas", "tfnas-elastic", "tfnas-mbv2")
# proxy-scale latency weight (with "derived" pricing): at TF-NAS's 0.1 shallow derived archs can stay
# below T even at their widest widths (search/README.md)
PROXY_LAMBDA = 1.0
LATENCY_TARGETS = ("expected", "derived")
PRESETS = {"proxy": {"lambda_lat": PROXY_LAMBDA, "latency_target": "derived"},
           "paper": {"lambda_lat": 0.1, "latency_target": "expected"}}


@dataclass
class TFNASConfig(SearchConfig):
    space: str = "tfnas"
    preset: str = "proxy"            # PRESETS: fills every knob it names that is left at None
    lambda_lat: float | None = None  # loss = CE + lambda |LAT / T - 1| (None: the preset's)
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
    latency_target: str | None = None  # what LAT in the loss is (None: the preset's): "expected" - the
    #                                  expected latency (TF-NAS); "derived" - the expected latency scaled by
    #                                  (derived arch's latency / expected latency), the factor detached: the
    #                                  loss sees the arch elasticity scaling fits, the gradient flows as TF-NAS's

    def __post_init__(self):
        super().__post_init__()
        if self.preset not in PRESETS:
            raise BadInput(f"--preset: expected one of {', '.join(PRESETS)}, got {self.preset!r}")
        self.from_preset = tuple(k for k, v in PRESETS[self.preset].items() if getattr(self, k) is None)
        for k in self.from_preset:
            setattr(self, k, PRESETS[self.preset][k])

    def sources(self) -> dict:
        """Per preset-controlled knob: 'preset' or 'option' (given explicitly)."""
        return {k: "preset" if k in self.from_preset else "option" for k in PRESETS[self.preset]}

    def settings_text(self) -> str:
        """The preset and its resolved values (what the CLI prints before a search)."""
        src = self.sources()
        return f"tfnas settings: preset {self.preset}; " + ", ".join(
            f"{k} = {getattr(self, k)!r} [{src[k]}]" for k in PRESETS[self.preset])

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
        if self.latency_target not in LATENCY_TARGETS:
            raise BadInput(f"--latency-target: expected one of {', '.join(LATENCY_TARGETS)}, got {self.latency_target!r}")
        if self.latency_weights not in ("gumbel", "softmax"):
            raise BadInput(f"tfnas latency_weights: gumbel or softmax, got {self.latency_weights!r}")

    def check_space(self, space) -> None:
        if space.name not in SPACES:
            raise BadInput(f"--space: {space.name}: --algo tfnas searches {', '.join(SPACES)}")
