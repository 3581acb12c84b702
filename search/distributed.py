"""torch.distributed for searches launched with torchrun (WORLD_SIZE > 1), on one node or many.

`init_distributed()` joins the process group torchrun's rendezvous set up (gloo on CPU, nccl on
CUDA); `wrap()` puts the supernet in DistributedDataParallel (find_unused_parameters: each process
trains its own sampled arch, as each TPU shard does in TuNAS); `BatchStream` shards in-memory data
with DistributedSampler (streamed folders: `search.folder_data`). Only rank 0 writes results.
Without torchrun everything runs in-process with world size 1.

Collectives run on the process group's device: NCCL has no CPU tensors, so every helper here
checks the tensor's device against `DistInfo.device` before it reaches torch.distributed (a CPU
tensor on a CUDA run is a bug caught on any machine, not a hang on a GPU cluster); state kept on
the CPU (the controller's logits, Python floats) goes through `reduce_mean_` / `reduce_floats`,
which copy it to the device and back.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as torch_dist

from latbench.errors import BadInput


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


def check_collective_device(t: torch.Tensor, info: DistInfo) -> None:
    """RuntimeError unless `t` lives where the process group's collectives run (NCCL: CUDA only)."""
    want = torch.device(info.device).type
    if info.backend == "nccl":
        want = "cuda"
    if t.device.type != want:
        raise RuntimeError(f"collective on a {t.device} tensor in a {info.backend or 'single-process'} run on "
                           f"{info.device}: move it to the device first (search.distributed.reduce_mean_)")


def all_reduce_sum(t: torch.Tensor, info: DistInfo) -> torch.Tensor:
    check_collective_device(t, info)
    if info.enabled:
        torch_dist.all_reduce(t)
    return t


def all_reduce_mean(t: torch.Tensor, info: DistInfo) -> torch.Tensor:
    check_collective_device(t, info)
    if info.enabled:
        torch_dist.all_reduce(t)
        t /= info.world
    return t


def all_reduce_min(t: torch.Tensor, info: DistInfo) -> torch.Tensor:
    check_collective_device(t, info)
    if info.enabled:
        torch_dist.all_reduce(t, op=torch_dist.ReduceOp.MIN)
    return t


def reduce_mean_(t: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """In-place cross-process mean of `t` wherever it lives (a CPU tensor travels to the device and back)."""
    if not info.enabled:
        return t
    on_device = t.detach().to(info.device, copy=True)
    all_reduce_mean(on_device, info)
    t.copy_(on_device.to(t.device))
    return t


def reduce_floats(values, info: DistInfo, op: str = "mean") -> list:
    """Cross-process mean / sum / min of Python numbers (float64 on the device)."""
    t = torch.tensor([float(v) for v in values], dtype=torch.float64, device=info.device)
    {"mean": all_reduce_mean, "sum": all_reduce_sum, "min": all_reduce_min}[op](t, info)
    return [float(v) for v in t.cpu()]


def barrier(info: DistInfo) -> None:
    if info.enabled:
        if info.backend == "nccl":
            torch_dist.barrier(device_ids=[info.local_rank])
        else:
            torch_dist.barrier()


def check_batch(batch: int, shard: int, total: int, info: DistInfo, what: str) -> None:
    """BadInput when a batch cannot be filled from one process's shard (never a silently smaller batch)."""
    if batch > shard:
        raise BadInput(f"--batch-size: a {what} batch of {batch} per process needs at least {batch} examples per "
                       f"process, but the {what} split has {total} = {shard} per process over {info.world} "
                       f"process(es); use a smaller --batch-size, more data or another --holdout")


class BatchStream:
    """Endless shuffled batches of this process's shard of in-memory arrays (DistributedSampler,
    reshuffled per epoch; one epoch's tail continues into the next). `state_dict()` is the position."""

    def __init__(self, x, y, batch: int, info: DistInfo, seed: int = 0, what: str = "training"):
        from torch.utils.data import DistributedSampler

        self.x, self.y = torch.as_tensor(x), torch.as_tensor(y)
        self.sampler = DistributedSampler(range(len(self.y)), num_replicas=info.world, rank=info.rank,
                                          shuffle=True, seed=seed, drop_last=False)
        check_batch(batch, len(self.sampler), len(self.y), info, what)
        self.batch = batch
        self.epoch, self.buffer = 0, []
        self.device = info.device
        self.channels_last = False

    def next(self):
        while len(self.buffer) < self.batch:
            self.sampler.set_epoch(self.epoch)
            self.epoch += 1
            self.buffer.extend(iter(self.sampler))
        take, self.buffer = self.buffer[: self.batch], self.buffer[self.batch:]
        idx = torch.tensor(take)
        x = self.x[idx].to(self.device)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x, self.y[idx].to(self.device)

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "buffer": list(self.buffer)}

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.buffer = int(state["epoch"]), [int(i) for i in state["buffer"]]
