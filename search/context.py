"""What every search algorithm starts from: the space, the LatencyModel, the proxy task, the process group,
the resolved budget and learning rates."""
from __future__ import annotations

from dataclasses import dataclass, field

from .config import SearchConfig


@dataclass
class SearchContext:
    cfg: SearchConfig  # the algorithm's own subclass (registry.make_config)
    space: object
    lm: object  # LatencyModel of (space, table); lm.table is the LatencyTable
    lut: str
    data: object  # search.data.ProxyData (in memory) or search.folder_data.FolderData (streamed)
    dist: object  # search.distributed.DistInfo
    learning_rates: dict = field(default_factory=dict)  # name -> {per_256, global_batch, lr}: result.json

    def scaled_lr(self, name: str, per_256: float, batch_per_process: int) -> float:
        """`per_256` scaled to this run's global batch (cfg.lr_scaling), recorded under `name`."""
        lr = per_256 * self.cfg.lr_factor(batch_per_process, self.dist.world)
        self.learning_rates[name] = {"per_256": per_256, "global_batch": batch_per_process * self.dist.world,
                                     "scaling": self.cfg.lr_scaling, "lr": lr}
        return lr

    @property
    def weight_lr(self) -> float:
        """The shared weights' peak learning rate for the training batch (recorded as "weights")."""
        return self.scaled_lr("weights", self.cfg.weight_lr, self.cfg.batch_size)

    @property
    def channels_last(self) -> bool:
        """NHWC on CUDA (tensor cores); on a CPU measured slower for these small supernets (README)."""
        flag = self.cfg.channels_last
        return self.dist.device.startswith("cuda") if flag is None else bool(flag)

    def stream(self, split: str, batch: int, seed: int, what: str | None = None):
        """Endless batches of `split` for this process, in the run's memory format."""
        s = self.data.stream(split, batch, self.dist, seed=seed, what=what)
        s.channels_last = self.channels_last
        return s

    def place(self, model):
        """`model` on the run's device and in its memory format."""
        import torch

        model = model.to(self.dist.device)
        return model.to(memory_format=torch.channels_last) if self.channels_last else model


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

    import os

    workers = cfg.workers if cfg.workers is not None else min(4, len(os.sched_getaffinity(0)))
    data = load_proxy_data(cfg.data, cfg.resolution, holdout=cfg.holdout, valid=cfg.valid_data, workers=workers)
    import torch

    from .distributed import init_distributed

    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    dist = init_distributed()
    cfg.resolve_budget(data.size("train"), dist.world)
    return SearchContext(cfg, space, lm, lut, data, dist)
