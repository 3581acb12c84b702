"""NetAdaptV2's own knobs (the shared SearchConfig carries target, space, LUT, seed, data, output).

`proxy` (default) is sized for the built-in digits proxy on a 2-core CPU (a search in minutes);
`paper` is section 4.1.1's latency-guided setting: J = 200 samples per iteration, L = 10 layers
shrunk per sample, 3 % initial resource reduction decayed by 0.98 per iteration.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace

from ..config import SearchConfig

METRICS = ("latency", "macs")


@dataclass(frozen=True)
class NetAdaptV2Config:
    metric: str = "latency"          # latency (a LUT, ms) or macs (target in millions of MACs)
    samples: int = 12                # J: samples per MCD iteration
    layers: int = 4                  # L: layers shrunk per sample (SCD: 1)
    initial_reduction: float = 0.05  # of the initial network's metric, first iteration
    decay: float = 0.98              # resource reduction x decay per iteration
    band: float = 0.01               # the final arch lands in [(1 - band) T, T]
    scd: bool = False                # single-layer coordinate descent: one sample per layer, L = 1
    max_iterations: int = 1000
    # super-network training (ordered dropout)
    train_steps: int = 200
    batch_size: int = 64
    lr: float = 0.05                 # SGD momentum 0.9, cosine decay
    weight_decay: float = 1e-5
    width: float = 0.125             # proxy width multiplier of the initial network
    resolution: int = 16
    min_feature_map: int = 2
    eval_batch: int = 256            # held-out images scoring each sample
    ordered_dropout: bool = True     # False: one sub-network per step (the ablation of Table 3)
    # images per batch that run the initial network (the "sandwich rule" of slimmable networks /
    # BigNAS), the rest balanced ordered dropout. Not in the paper: at the proxy's ~10^2 steps,
    # uniform per-layer widths alone leave even the full network at chance (measured: loss stays
    # at ln 10 after 200 steps), so MCD would rank samples on noise; the paper preset uses 0.
    full_fraction: float = 0.25

    def as_dict(self) -> dict:
        return asdict(self)


PRESETS = {
    "proxy": NetAdaptV2Config(),
    "paper": NetAdaptV2Config(samples=200, layers=10, initial_reduction=0.03, decay=0.98, full_fraction=0.0),
}


def make_config(preset: str = "proxy", **overrides) -> NetAdaptV2Config:
    """The preset with explicit overrides (None values are ignored)."""
    from latbench.errors import BadInput

    if preset not in PRESETS:
        raise BadInput(f"--preset: expected one of {', '.join(PRESETS)}, got {preset!r}")
    cfg = replace(PRESETS[preset], **{k: v for k, v in overrides.items() if v is not None})
    if cfg.metric not in METRICS:
        raise BadInput(f"--metric: expected one of {', '.join(METRICS)}, got {cfg.metric!r}")
    for name in ("samples", "layers", "train_steps", "batch_size", "eval_batch"):
        if getattr(cfg, name) < 1:
            raise BadInput(f"--{name.replace('_', '-')}: must be at least 1, got {getattr(cfg, name)}")
    if not 0 <= cfg.full_fraction <= 1:
        raise BadInput(f"--full-fraction: must be in [0, 1], got {cfg.full_fraction}")
    if not 0 < cfg.initial_reduction < 1 or not 0 < cfg.decay <= 1 or not 0 <= cfg.band < 1:
        raise BadInput("--initial-reduction must be in (0, 1), --decay in (0, 1], --band in [0, 1)")
    return cfg


# the shared options that map onto this algorithm's own (they have other defaults here)
SHARED_AS_OWN = {"steps": "train_steps", "batch_size": "batch_size", "width": "width", "resolution": "resolution",
                 "min_feature_map": "min_feature_map", "weight_decay": "weight_decay", "weight_lr": "lr"}


@dataclass
class NetAdaptV2SearchConfig(SearchConfig):
    """`latbench search --algo netadaptv2`: the shared options plus the preset and the NetAdaptV2 knobs
    (None: the preset's value). `algo_config()` resolves them into a NetAdaptV2Config: preset first,
    then every option the user gave, shared ones (--steps, --width, ...) included."""

    space: str = "netadaptv2"
    preset: str = "proxy"
    metric: str | None = None
    samples: int | None = None
    layers: int | None = None
    initial_reduction: float | None = None
    decay: float | None = None
    band: float | None = None
    scd: bool | None = None
    ordered_dropout: bool | None = None
    full_fraction: float | None = None
    max_iterations: int | None = None
    eval_batch: int | None = None

    def algo_config(self) -> NetAdaptV2Config:
        own = {f.name: getattr(self, f.name) for f in fields(NetAdaptV2Config) if hasattr(self, f.name)
               and f.name not in SHARED_AS_OWN.values() and getattr(self, f.name) is not None}
        shared = {SHARED_AS_OWN[k]: getattr(self, k) for k in self.explicit if k in SHARED_AS_OWN}
        return make_config(self.preset, **own, **shared)

    def check(self) -> None:
        super().check()
        self.algo_config()

    def check_space(self, space) -> None:
        from latbench.errors import BadInput

        if not hasattr(space, "SPEC") or not hasattr(space, "slots"):
            raise BadInput(f"--space: {space.name}: netadaptv2 searches sub-networks of an initial network "
                           "(--space netadaptv2)")
