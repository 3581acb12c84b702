"""SearchConfig: the knobs every search algorithm shares, with the defaults the CLI uses.

Each algorithm extends it with its own knobs (`search.tunas.config.TunasConfig`,
`search.random_search.RandomConfig`, ...); the registry picks the class by `--algo`, so an option
that does not belong to the chosen algorithm is an error rather than silently ignored.
Defaults are sized so `latbench search --target-ms 84` finishes in a few minutes on a 2-core
laptop CPU (README: the measured wall time).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

from latbench.errors import BadInput


@dataclass
class SearchConfig:
    target_ms: float = 84.0
    space: str = "proxylessnas"
    lut: str | None = None  # None: the algorithm's default table for the space
    algo: str = "tunas"
    steps: int = 800
    seed: int = 0
    out: str = "latbench-search"
    data: str | None = None  # None: built-in digits proxy task
    # proxy task / supernet
    width: float = 0.25  # proxy width multiplier on every channel count
    min_channels: int = 8  # no proxy layer narrower than this
    resolution: int = 32  # proxy input resolution
    min_feature_map: int = 2  # earliest strides become 1 until the last map is at least this
    batch_size: int = 64  # weight-training batch (per process)
    rl_batch_multiplier: float = 4.0  # held-out (controller / architecture) batch = this x batch_size
    # weights
    weight_lr: float = 0.1  # SGD (momentum 0.9, nesterov), cosine decay, linear warmup
    weight_lr_warmup: float = 0.025  # fraction of steps (TuNAS: 2.5%)
    weight_decay: float = 4e-5
    label_smoothing: float = 0.1
    remat: bool = True  # torch.utils.checkpoint where a layer averages several ops
    progress: bool = True
    threads: int | None = 1  # torch intra-op threads per process (None: torch default); see README
    explicit: tuple = ()  # the options the user gave (registry.make_config): presets never override them

    @property
    def rl_batch_size(self) -> int:
        return max(1, int(round(self.batch_size * self.rl_batch_multiplier)))

    def as_dict(self) -> dict:
        return asdict(self)

    def check(self) -> None:
        """Cheap checks of the options (before anything heavy is imported); subclasses add theirs."""
        from .checks import check_options

        check_options(self)

        def positive(name, value):
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise BadInput(f"--{name.replace('_', '-')}: must be a positive finite number, got {value}")

        positive("target_ms", self.target_ms)
        if self.steps < 1:
            raise BadInput(f"--steps: must be at least 1, got {self.steps}")
        positive("width", self.width)
        positive("batch_size", self.batch_size)
        if self.resolution < 4:
            raise BadInput(f"--resolution: must be at least 4, got {self.resolution}")

    def check_space(self, space) -> None:
        """BadInput when this algorithm cannot search `space` (default: any space)."""

    @classmethod
    def field_names(cls) -> set:
        return {f.name for f in fields(cls)}
