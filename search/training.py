"""Shared-weight training and evaluation on the proxy task."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .distributed import DistInfo, all_reduce_sum, unwrap


def make_weight_optimizer(model, cfg):
    """SGD, momentum 0.9 (Nesterov), weight decay; tensors a step does not touch have no grad and stay put."""
    return torch.optim.SGD(model.parameters(), lr=cfg.weight_lr, momentum=0.9, nesterov=True,
                           weight_decay=cfg.weight_decay)


def train_step(model, optimizer, plan, x, y, lr: float, label_smoothing: float = 0.1) -> tuple[float, float]:
    """One weight update on a batch; returns (loss, batch accuracy)."""
    for group in optimizer.param_groups:
        group["lr"] = lr
    model.train()
    optimizer.zero_grad(set_to_none=True)
    logits = model(x, plan)
    loss = F.cross_entropy(logits, y, label_smoothing=label_smoothing)
    loss.backward()
    optimizer.step()
    with torch.no_grad():
        acc = (logits.argmax(1) == y).float().mean()
    return loss.item(), acc.item()


@torch.no_grad()
def batch_accuracy(model, plan, x, y) -> float:
    """Accuracy of one arch on one batch with the shared weights (batch-statistics BN)."""
    net = unwrap(model)
    net.eval()
    return float((net(x, plan).argmax(1) == y).float().mean())


@torch.no_grad()
def evaluate(model, plan, x, y, info: DistInfo, batch: int = 512) -> float:
    """Accuracy of one arch on a whole split; each process takes every world-th example."""
    net = unwrap(model)
    net.eval()
    x, y = torch.as_tensor(x)[info.rank::info.world], torch.as_tensor(y)[info.rank::info.world]
    counts = torch.zeros(2, dtype=torch.float64)
    for lo in range(0, len(y), batch):
        xb, yb = x[lo:lo + batch].to(info.device), y[lo:lo + batch].to(info.device)
        counts[0] += float((net(xb, plan).argmax(1) == yb).sum())
        counts[1] += len(yb)
    all_reduce_sum(counts, info)
    return float(counts[0] / max(1.0, float(counts[1])))
