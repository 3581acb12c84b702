"""Shared-weight training and evaluation on the proxy task.

`amp`: bf16 autocast around the forward pass and the loss (the backward runs outside it, as torch
recommends); bf16 needs no loss scaling. Meant for CUDA; on a CPU it runs (slowly on most CPUs).
"""
from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F

from .distributed import DistInfo, all_reduce_sum, unwrap


def autocast(device, amp: bool):
    """bf16 autocast on `device` when `amp`, else a no-op context."""
    if not amp:
        return contextlib.nullcontext()
    return torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16)


def make_weight_optimizer(model, cfg, lr: float | None = None):
    """SGD, momentum 0.9 (Nesterov), weight decay; tensors a step does not touch have no grad and stay put."""
    return torch.optim.SGD(model.parameters(), lr=cfg.weight_lr if lr is None else lr, momentum=0.9, nesterov=True,
                           weight_decay=cfg.weight_decay)


def train_step(model, optimizer, plan, x, y, lr: float, label_smoothing: float = 0.1,
               amp: bool = False) -> tuple[float, float]:
    """One weight update on a batch; returns (loss, batch accuracy)."""
    for group in optimizer.param_groups:
        group["lr"] = lr
    model.train()
    optimizer.zero_grad(set_to_none=True)
    with autocast(x.device, amp):
        logits = model(x, plan)
        loss = F.cross_entropy(logits.float(), y, label_smoothing=label_smoothing)
    loss.backward()
    optimizer.step()
    with torch.no_grad():
        acc = (logits.argmax(1) == y).float().mean()
    return loss.item(), acc.item()


@torch.no_grad()
def batch_accuracy(model, plan, x, y, amp: bool = False) -> float:
    """Accuracy of one arch on one batch with the shared weights (batch-statistics BN)."""
    net = unwrap(model)
    net.eval()
    with autocast(x.device, amp):
        return float((net(x, plan).argmax(1) == y).float().mean())


@torch.no_grad()
def evaluate_batches(model, plan, batches, info: DistInfo, amp: bool = False) -> float:
    """Accuracy of one arch over this process's `batches` of (x, y), summed over all processes
    (the counts are reduced on the process group's device)."""
    net = unwrap(model)
    net.eval()
    counts = torch.zeros(2, dtype=torch.float64, device=info.device)
    for xb, yb in batches:
        with autocast(xb.device, amp):
            counts[0] += (net(xb, plan).argmax(1) == yb).sum()
        counts[1] += len(yb)
    all_reduce_sum(counts, info)
    counts = counts.cpu()
    return float(counts[0] / max(1.0, float(counts[1])))


def evaluate(model, plan, x, y, info: DistInfo, batch: int = 512, amp: bool = False) -> float:
    """Accuracy of one arch on whole in-memory arrays; each process takes every world-th example."""
    x, y = torch.as_tensor(x)[info.rank::info.world], torch.as_tensor(y)[info.rank::info.world]
    return evaluate_batches(model, plan, ((x[lo:lo + batch].to(info.device), y[lo:lo + batch].to(info.device))
                                          for lo in range(0, len(y), batch)), info, amp)


def evaluate_split(model, plan, data, split: str, info: DistInfo, amp: bool = False) -> float:
    """Accuracy of one arch on a whole split of the proxy data (in memory or streamed)."""
    return evaluate_batches(model, plan, data.eval_batches(split, info), info, amp)
