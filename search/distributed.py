"""torch.distributed for searches launched with torchrun (WORLD_SIZE > 1).

`init_distributed()` joins the process group (gloo on CPU, nccl on GPU); `wrap()` puts the
supernet in DistributedDataParallel (find_unused_parameters: each process trains its own sampled
arch, as each TPU shard does in TuNAS); `BatchStream` shards data with DistributedSampler. Only
rank 0 writes results. Without torchrun everything runs in-process with world size 1.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as torch_dist


@dataclass
class DistInfo:
    world: int = 1
    rank: int = 0
    local_rank: int = 0
    backend: str | None = None
    device: str = "cpu"

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world > 1


def init_distributed() -> DistInfo:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    cuda = torch.cuda.is_available()
    if world <= 1:
        return DistInfo(device="cuda" if cuda else "cpu")
    local = int(os.environ.get("LOCAL_RANK", "0"))
    backend = "nccl" if cuda else "gloo"
    if not torch_dist.is_initialized():
        if cuda:
            torch.cuda.set_device(local)
        torch_dist.init_process_group(backend)
    return DistInfo(world=torch_dist.get_world_size(), rank=torch_dist.get_rank(), local_rank=local,
                    backend=backend, device=f"cuda:{local}" if cuda else "cpu")


def shutdown(info: DistInfo) -> None:
    if info.enabled and torch_dist.is_initialized():
        torch_dist.destroy_process_group()


def wrap(model, info: DistInfo):
    if not info.enabled:
        return model
    from torch.nn.parallel import DistributedDataParallel

    ids = [info.local_rank] if info.device.startswith("cuda") else None
    return DistributedDataParallel(model, device_ids=ids, find_unused_parameters=True)


def unwrap(model):
    return getattr(model, "module", model)


def all_reduce_sum(t: torch.Tensor, info: DistInfo) -> torch.Tensor:
    if info.enabled:
        torch_dist.all_reduce(t)
    return t


def all_reduce_mean(t: torch.Tensor, info: DistInfo) -> torch.Tensor:
    if info.enabled:
        torch_dist.all_reduce(t)
        t /= info.world
    return t


def barrier(info: DistInfo) -> None:
    if info.enabled:
        torch_dist.barrier()


class BatchStream:
    """Endless shuffled batches of this process's shard (DistributedSampler, reshuffled per epoch)."""

    def __init__(self, x, y, batch: int, info: DistInfo, seed: int = 0):
        from torch.utils.data import DistributedSampler

        self.x, self.y = torch.as_tensor(x), torch.as_tensor(y)
        self.sampler = DistributedSampler(range(len(self.y)), num_replicas=info.world, rank=info.rank,
                                          shuffle=True, seed=seed, drop_last=False)
        self.batch = max(1, min(batch, len(self.sampler)))
        self.epoch, self.buffer = 0, []
        self.device = info.device

    def next(self):
        while len(self.buffer) < self.batch:
            self.sampler.set_epoch(self.epoch)
            self.epoch += 1
            self.buffer.extend(iter(self.sampler))
        take, self.buffer = self.buffer[: self.batch], self.buffer[self.batch:]
        idx = torch.tensor(take)
        return self.x[idx].to(self.device), self.y[idx].to(self.device)
