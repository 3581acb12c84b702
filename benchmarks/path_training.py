"""Does TF-NAS's supernet learn the proxy task when its weight steps sample the ops? (characterisation)

Trains the `tfnas` supernet (search/tfnas/supernet.py, proxy width 0.25, resolution 32, digits) with
SGD (momentum 0.9, wd 1e-5, grad clip 5: TF-NAS's weight optimiser) under one of four path regimes and
prints the training loss every 25 steps:

  fixed      one randomly drawn arch for every step (a stand-alone network inside the supernet)
  random     a new uniformly drawn op per block every step (what TF-NAS's weight step amounts to
             while softmax(alpha) is still spread)
  averaged   all 8 ops of every block averaged for the first half, then random single paths
  warmup     TuNAS's op warmup: each block averages its ops with probability 1 -> 0 over the first
             half, then random single paths

Depth: every stage at its deepest (the sink weights one-hot), so only the op sampling differs.

  python benchmarks/path_training.py --mode random --lr 0.1 --steps 200
"""
from __future__ import annotations

import argparse

import numpy as np
import torch
import torch.nn.functional as F


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mode", choices=("fixed", "random", "averaged", "warmup"), default="random")
    ap.add_argument("--lr", type=float, default=0.025, help="SGD learning rate (TF-NAS: 0.025)")
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    from latbench.spaces import get_space
    from search.data import load_proxy_data
    from search.tfnas.supernet import TFNASSupernet
    from search.tfnas.widths import ElasticWidths, block_ops

    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    space = get_space("tfnas")
    ops = block_ops(space)
    data = load_proxy_data(None, 32)
    net = TFNASSupernet(space, ops, ElasticWidths(ops), data.num_classes, data.in_channels)
    opt = torch.optim.SGD(net.parameters(), lr=args.lr, momentum=0.9, weight_decay=1e-5)
    x, y = torch.as_tensor(data.x_train), torch.as_tensor(data.y_train)
    deepest = [len(st) - 1 for st in net.stage_blocks if len(st) > 1]
    fixed = [int(rng.integers(len(row))) for row in ops]
    half = args.steps // 2

    def averaged(row):
        return torch.full((len(row),), 1.0 / len(row))

    net.train()
    for step in range(args.steps):
        single = [int(rng.integers(len(row))) for row in ops]
        if args.mode == "fixed":
            path = fixed
        elif args.mode == "averaged" and step < half:
            path = [averaged(row) for row in ops]
        elif args.mode == "warmup":
            p = max(0.0, 1.0 - step / half)
            path = [averaged(row) if rng.random() < p else i for row, i in zip(ops, single)]
        else:
            path = single
        i = torch.as_tensor(rng.integers(len(y), size=args.batch))
        loss = F.cross_entropy(net(x[i], [(path, deepest)])[0], y[i])
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 5.0)
        opt.step()
        if step % 25 == 24 or step == 0:
            print(f"{args.mode} lr {args.lr} step {step + 1}: loss {float(loss.detach()):.3f}", flush=True)


if __name__ == "__main__":
    main()
