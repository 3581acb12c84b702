"""SearchConfig: the knobs every search algorithm shares, with the defaults the CLI uses.

Each algorithm extends it with its own knobs (`search.tunas.config.TunasConfig`,
`search.random_search.RandomConfig`, ...); the registry picks the class by `--algo`, so an option
that does not belong to the chosen algorithm is an error rather than silently ignored.
Learning rates are given per 256 images of the *global* batch (all processes) and scaled linearly
with it (the B/256 rule of the papers; `lr_scaling = "none"` turns it off); the values used are
recorded in result.json under `learning_rates`. `steps` or `epochs` (passes over the training
split by all processes together) sets the budget; without either, DEFAULT_STEPS.
Defaults are sized so `latbench search --target-ms 84` finishes in a few minutes on a 2-core
laptop CPU (README: the measured wall time).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

from latbench.errors import BadInput

DEFAULT_STEPS = 800
LR_SCALINGS = ("linear", "none")
LR_REFERENCE_BATCH = 256


@dataclass
class SearchConfig:
    target_ms: float = 84.0
    space: str = "proxylessnas"
    lut: str | None = None  # None: the algorithm's default table for the space
    algo: str = "tunas"
    steps: int | None = None  # None: from `epochs`, else DEFAULT_STEPS
    epochs: float | None = None  # alternative budget: passes over the training split (all processes)
    seed: int = 0
    out: str = "latbench-search"
    data: str | None = None  # None: built-in digits proxy task
    valid_data: str | None = None  # image folder: a separate held-out folder (same classes)
    holdout: float | None = None  # held-out split of the training data: fraction (default 0.2) or image count
    workers: int | None = None  # DataLoader workers per process for streamed image folders; None: min(4, cores)
    # proxy task / supernet
    width: float = 0.25  # proxy width multiplier on every channel count
    min_channels: int = 8  # no proxy layer narrower than this
    resolution: int = 32  # proxy input resolution
    min_feature_map: int = 2  # earliest strides become 1 until the last map is at least this
    batch_size: int = 64  # weight-training batch (per process)
    rl_batch_multiplier: float = 4.0  # held-out (controller / architecture) batch = this x batch_size
    # weights
    weight_lr: float = 0.4  # per 256 images of global batch (0.1 at the default 64 x 1 process); SGD
    # (momentum 0.9, nesterov), cosine decay, linear warmup
    lr_scaling: str = "linear"  # "linear": every lr x global batch / 256; "none": as given
    weight_lr_warmup: float = 0.025  # fraction of steps (TuNAS: 2.5%)
    weight_decay: float = 4e-5
    label_smoothing: float = 0.1
    remat: bool = True  # torch.utils.checkpoint where a layer averages several ops
    amp: bool = False  # bf16 autocast (CUDA)
    channels_last: bool | None = None  # NHWC activations and weights; None: on CUDA only (README: measured)
    checkpoint_every: int = 200  # steps between checkpoints in OUT/checkpoint (0: none); resume: same command
    progress: bool = True
    threads: int | None = 1  # torch intra-op threads per process (None: torch default); see README
    explicit: tuple = ()  # the options the user gave (registry.make_config): presets never override them

    @property
    def rl_batch_size(self) -> int:
        return max(1, int(round(self.batch_size * self.rl_batch_multiplier)))

    def __post_init__(self):
        if self.steps is None and self.epochs is None:
            self.steps = DEFAULT_STEPS

    def as_dict(self) -> dict:
        return asdict(self)

    def resolve_budget(self, train_size: int, world: int) -> None:
        """Turn `epochs` into steps once the training split's size and the world size are known."""
        if self.epochs is not None:
            self.steps = max(1, math.ceil(self.epochs * train_size / (self.batch_size * world)))

    def lr_factor(self, batch_per_process: int, world: int) -> float:
        """The factor on a per-256 learning rate for a global batch of batch_per_process x world."""
        return batch_per_process * world / LR_REFERENCE_BATCH if self.lr_scaling == "linear" else 1.0

    def check(self) -> None:
        """Cheap checks of the options (before anything heavy is imported); subclasses add theirs."""
        from .checks import check_options

        check_options(self)

        def positive(name, value):
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise BadInput(f"--{name.replace('_', '-')}: must be a positive finite number, got {value}")

        positive("target_ms", self.target_ms)
        if self.steps is not None and self.epochs is not None:
            raise BadInput("--epochs: give --steps or --epochs, not both")
        if self.steps is not None and self.steps < 1:
            raise BadInput(f"--steps: must be at least 1, got {self.steps}")
        if self.epochs is not None:
            positive("epochs", self.epochs)
        if self.lr_scaling not in LR_SCALINGS:
            raise BadInput(f"--lr-scaling: expected one of {', '.join(LR_SCALINGS)}, got {self.lr_scaling!r}")
        if self.workers is not None and self.workers < 0:
            raise BadInput(f"--workers: must be 0 or more, got {self.workers}")
        if self.checkpoint_every < 0:
            raise BadInput(f"--checkpoint-every: must be 0 (off) or more, got {self.checkpoint_every}")
        positive("width", self.width)
        positive("batch_size", self.batch_size)
        if self.resolution < 4:
            raise BadInput(f"--resolution: must be at least 4, got {self.resolution}")

    def check_space(self, space) -> None:
        """BadInput when this algorithm cannot search `space` (default: any space)."""

    @classmethod
    def field_names(cls) -> set:
        return {f.name for f in fields(cls)}
