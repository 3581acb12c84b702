"""What every search algorithm starts from: the space, the LatencyModel, the proxy task, the process group."""
from __future__ import annotations

from dataclasses import dataclass

from .config import SearchConfig


@dataclass
class SearchContext:
    cfg: SearchConfig  # the algorithm's own subclass (registry.make_config)
    space: object
    lm: object  # LatencyModel of (space, table); lm.table is the LatencyTable
    lut: str
    data: object  # search.data.ProxyData
    dist: object  # search.distributed.DistInfo


def prepare(cfg: SearchConfig) -> SearchContext:
    """Check the options, then load the space, the table, the data and the process group."""
    cfg.check()
    from latbench.spaces import get_space

    space = get_space(cfg.space)
    cfg.check_space(space)
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
