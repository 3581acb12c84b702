"""What every search algorithm starts from: the space, the LatencyModel, the proxy task, the process group."""
from __future__ import annotations

from dataclasses import dataclass

from latbench.errors import BadInput

from .config import REWARDS, SearchConfig


@dataclass
class SearchContext:
    cfg: SearchConfig
    space: object
    lm: object  # LatencyModel (or the PredictLatencyModel fallback)
    lut: str
    data: object  # search.data.ProxyData
    dist: object  # search.distributed.DistInfo


def check_config(cfg: SearchConfig) -> None:
    """Cheap checks of the options (before anything heavy is imported)."""
    def positive(name, value):
        if not value > 0:
            raise BadInput(f"--{name.replace('_', '-')}: must be positive, got {value}")

    from .checks import check_options

    check_options(cfg)
    positive("target_ms", cfg.target_ms)
    if cfg.steps < 1:
        raise BadInput(f"--steps: must be at least 1, got {cfg.steps}")
    positive("width", cfg.width)
    positive("batch_size", cfg.batch_size)
    if cfg.resolution < 4:
        raise BadInput(f"--resolution: must be at least 4, got {cfg.resolution}")
    if cfg.reward not in REWARDS:
        raise BadInput(f"--reward: expected one of {', '.join(REWARDS)}, got {cfg.reward!r}")
    if cfg.candidates < 1:
        raise BadInput(f"--candidates: must be at least 1, got {cfg.candidates}")
    if not 1 <= cfg.rl_samples <= min(cfg.batch_size, cfg.rl_batch_size):
        raise BadInput(f"--rl-samples: expected 1..{min(cfg.batch_size, cfg.rl_batch_size)} (one arch per chunk of "
                       f"the batch), got {cfg.rl_samples}")
    if cfg.latency_samples < 0:
        raise BadInput(f"--latency-samples: must be 0 or more, got {cfg.latency_samples}")
    if cfg.latency_samples and cfg.reward != "absolute":
        raise BadInput(f"--latency-samples: needs --reward absolute (the {cfg.reward} reward multiplies Q by the "
                       "latency term, so the two cannot be estimated apart)")


def search_space(name: str):
    """The space by name; the supernet needs a TuNAS space (template + settings)."""
    from latbench.spaces import get_space

    space = get_space(name)
    if not hasattr(space, "template") or not hasattr(space, "settings"):
        from latbench.spaces.tunas import TUNAS_SPACES

        raise BadInput(f"--space: {name}: the search supernet is built from TuNAS spaces only "
                       f"({', '.join(TUNAS_SPACES)})")
    return space


def prepare(cfg: SearchConfig) -> SearchContext:
    check_config(cfg)
    space = search_space(cfg.space)
    from .latency import load_latency_model

    lm, lut = load_latency_model(space, cfg.lut)
    from .checks import check_target

    check_target(cfg, lm, lut)
    from .data import load_proxy_data

    data = load_proxy_data(cfg.data, cfg.resolution)
    import torch

    from .distributed import init_distributed

    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    return SearchContext(cfg, space, lm, lut, data, init_distributed())
