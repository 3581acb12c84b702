"""The TF-NAS search loop (DESIGN 8.2): `run_tfnas(ctx)`, the interface of `run_tunas`.

Every step:
 1. weight step on a training batch: bi-sampling (arch_params.ArchParams.bi_sample), the two
    paths' cross-entropy losses summed; stage outputs sink-connected with softmax(β) (detached).
    During warm-up (the first `warmup` of the steps) one Gumbel-sampled path only and no
    architecture steps, as TF-NAS's train_wo_arch;
 2. every `arch_every`-th step after warm-up, an architecture step on a held-out batch: the
    supernet with Gumbel-softmax weights over all ops (temperature τ) and softmax(β) depths;
    loss = CE + λ |LAT / T − 1| with LAT the expected LUT latency of (op weights, depth
    probabilities) from a LatencyModel of the current widths (widths.ElasticView) — or, with
    `latency_target` "derived" (the proxy preset), that expected latency scaled by the detached
    ratio (derived arch's latency / expected latency), so the loss aims at the arch elasticity
    scaling fits while its gradient is TF-NAS's; Adam, then α renormalised to log-probabilities;
 3. every `elastic_every` steps after warm-up and at the last step, elasticity scaling of the
    derived arch's widths (elasticity.fit_widths), the supernet's active channels re-selected by
    depthwise L1 norm, and the LatencyModel recompiled for the new widths.
τ = 5.0 × 0.96 per epoch of architecture training. Final arch: argmax op, argmax depth, the
current widths (an Arch with arbitrary mid widths, not an index list of the space).
"""
from __future__ import annotations

import math
import time

import torch
import torch.nn.functional as F

from latbench.arch import format_indices

from ..distributed import BatchStream, all_reduce_mean, all_reduce_sum, wrap
from ..progress import progress_bar, tick
from ..results import base_result
from ..schedules import weight_learning_rate
from .arch_params import ArchParams, temperature
from .elasticity import fit_widths
from .supernet import TFNASSupernet
from .widths import BlockPricer, ElasticView, ElasticWidths, block_ops


class TFNASSearch:
    """State of one search: supernet, architecture parameters, widths, pricing, optimisers."""

    def __init__(self, ctx):
        cfg, dist = ctx.cfg, ctx.dist
        self.ctx, self.cfg, self.tcfg = ctx, cfg, cfg  # a TFNASConfig: common and TF-NAS knobs
        self.space, self.table = ctx.space, ctx.lm.table
        self.ops = block_ops(self.space)
        self.widths = ElasticWidths(self.ops)
        self.view = ElasticView(self.space, self.widths)
        self.lm = self.view.latency_model(self.table)
        self.pricer = BlockPricer(self.view, self.table)
        torch.manual_seed(cfg.seed)
        self.net = TFNASSupernet(self.space, self.ops, self.widths, ctx.data.num_classes, ctx.data.in_channels,
                                 width=cfg.width, min_channels=cfg.min_channels, resolution=cfg.resolution,
                                 min_feature_map=cfg.min_feature_map).to(dist.device)
        depth_sizes = [len(self.view.choices[self.view.depth_index(si)]) for si in self.space.depth_stages]
        self.arch = ArchParams([len(r) for r in self.ops], depth_sizes).to(dist.device)
        self.model = wrap(self.net, dist)
        t = self.tcfg
        self.w_opt = torch.optim.SGD(self.net.parameters(), lr=t.weight_lr, momentum=t.weight_momentum,
                                     weight_decay=t.weight_decay)
        self.a_opt = torch.optim.Adam(self.arch.parameters(), lr=t.arch_lr, betas=(t.arch_beta1, t.arch_beta2),
                                      weight_decay=t.arch_weight_decay)
        # every rank draws the same architecture samples (identical α, β everywhere); data differ by shard
        self.gen = torch.Generator().manual_seed(cfg.seed * 1000 + 17)
        self.train = BatchStream(ctx.data.x_train, ctx.data.y_train, cfg.batch_size, dist, seed=cfg.seed)
        self.valid = BatchStream(ctx.data.x_valid, ctx.data.y_valid, cfg.batch_size, dist, seed=cfg.seed + 1)
        n = cfg.steps
        self.warmup_steps = int(t.warmup * n)
        self.epoch_steps = t.epoch_steps or max(1, math.ceil(len(self.train.sampler) / self.train.batch))
        self.elastic_every = t.elastic_every or self.epoch_steps
        self.elastic_log = []

    # ------------------------------------------------------------------ steps
    def weight_step(self, step: int) -> tuple[float, list[list[int]]]:
        """One weight update; returns (summed loss, the trained op index lists)."""
        cfg, t = self.cfg, self.tcfg
        for group in self.w_opt.param_groups:
            group["lr"] = weight_learning_rate(step, cfg.steps, t.weight_lr, 0.0)
        first, second = self.arch.bi_sample(self.gen)
        chosen = [first] if step < self.warmup_steps else [first, second]
        depth_w = [p.detach() for p in self.arch.depth_probs()]
        xb, yb = self.train.next()
        self.model.train()
        self.w_opt.zero_grad(set_to_none=True)
        logits = self.model(xb, [(ops, depth_w) for ops in chosen])
        loss = sum(F.cross_entropy(lg, yb) for lg in logits)
        loss.backward()
        if t.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_([p for p in self.net.parameters() if p.grad is not None], t.grad_clip)
        self.w_opt.step()
        return float(loss.detach()), chosen

    def arch_step(self, tau: float) -> dict:
        t, dist = self.tcfg, self.ctx.dist
        xv, yv = self.valid.next()
        self.net.train()  # batch statistics (the search BN keeps none)
        gw = self.arch.gumbel_weights(tau, self.gen)
        depth_p = self.arch.depth_probs()
        logits = self.net(xv, [(gw, depth_p)])[0]
        ce = F.cross_entropy(logits, yv)
        lat_w = gw if t.latency_weights == "gumbel" else self.arch.op_probs()
        expected = self.lm.expected_latency([w.double() for w in lat_w] + [p.double() for p in depth_p])
        lat = expected
        if t.latency_target == "derived":  # the derived arch's latency, the expected latency's gradient
            lat = expected * (self.pricer.latency(self.derived(), self.widths.mids) / float(expected.detach()))
        lat_loss = t.lambda_lat * torch.abs(lat / self.cfg.target_ms - 1.0)
        loss = ce + lat_loss.to(ce.dtype)
        params = list(self.arch.parameters())
        grads = torch.autograd.grad(loss, params)
        self.a_opt.zero_grad(set_to_none=True)
        for p, g in zip(params, grads):
            p.grad = all_reduce_mean(g.clone(), dist)
        if t.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(params, t.grad_clip)
        self.a_opt.step()
        self.arch.normalise()
        return {"arch_ce": float(ce.detach()), "latency_loss": float(lat_loss.detach()),
                "expected_latency_ms": float(expected.detach()), "loss_latency_ms": float(lat.detach())}

    def derived(self) -> list[int]:
        """View index list of the derived arch: argmax op per block, then argmax depth per stage."""
        ops, depths = self.arch.argmax()
        return ops + depths

    def elasticity(self, step: int) -> dict:
        idx = self.derived()
        kept = set(self.view.kept_blocks(idx))
        by_stage = [[pos for pos in st if pos in kept] for st in self.net.stage_blocks]
        before = self.pricer.latency(idx, self.widths.mids)
        mids, after, action = fit_widths(idx, by_stage, self.widths, self.ops, self.pricer.latency, self.cfg.target_ms)
        changed = [(pos, j) for pos in range(len(mids)) for j in range(len(mids[pos]))
                   if mids[pos][j] != self.widths.mids[pos][j]]
        self.widths.mids = mids
        self.net.apply_widths(self.widths, changed)
        self.lm = self.view.latency_model(self.table)  # recompiled at the new widths
        entry = {"step": step, "action": action, "before_ms": before, "after_ms": after, "changed": len(changed)}
        self.elastic_log.append(entry)
        return entry

    # ------------------------------------------------------------------ evaluation
    @torch.no_grad()
    def evaluate(self, indices, batch: int = 512) -> float:
        """Accuracy of the arch `indices` (view index list) with the shared weights on the whole
        valid split (batch-statistics BN); each process takes every world-th example."""
        info, data = self.ctx.dist, self.ctx.data
        ops = [int(i) for i in indices[:self.view.num_blocks]]
        depth_w = [F.one_hot(torch.tensor(int(d)), n).float().to(info.device)
                   for d, n in zip(indices[self.view.num_blocks:], [b.numel() for b in self.arch.betas])]
        self.net.train()
        x = torch.as_tensor(data.x_valid)[info.rank::info.world]
        y = torch.as_tensor(data.y_valid)[info.rank::info.world]
        counts = torch.zeros(2, dtype=torch.float64)
        for lo in range(0, len(y), batch):
            xb, yb = x[lo:lo + batch].to(info.device), y[lo:lo + batch].to(info.device)
            counts[0] += float((self.net(xb, [(ops, depth_w)])[0].argmax(1) == yb).sum())
            counts[1] += len(yb)
        all_reduce_sum(counts, info)
        return float(counts[0] / max(1.0, float(counts[1])))

    # ------------------------------------------------------------------ loop
    def run(self) -> dict:
        cfg, t = self.cfg, self.tcfg
        t0 = time.time()
        trajectory, n = [], cfg.steps
        bar = progress_bar(cfg, self.ctx.dist, "tfnas", cfg.steps)
        for step in range(n):
            tau = temperature(step, self.warmup_steps, self.epoch_steps, t.temperature, t.temperature_decay)
            loss, _ = self.weight_step(step)
            row = {"step": step, "train_loss": loss, "temperature": tau, "arch_step": False}
            after_warmup = step >= self.warmup_steps
            if after_warmup and (step - self.warmup_steps) % t.arch_every == 0:
                row.update(self.arch_step(tau))
                row["arch_step"] = True
            if after_warmup and ((step + 1 - self.warmup_steps) % self.elastic_every == 0 or step == n - 1):
                row["elasticity"] = self.elasticity(step)
            idx = self.derived()
            row["derived_latency_ms"] = self.pricer.latency(idx, self.widths.mids)
            row["depth_probs"] = [[round(float(v), 4) for v in p.detach()] for p in self.arch.depth_probs()]
            row["time_s"] = time.time() - t0
            trajectory.append(row)
            tick(bar, step, n, lambda: f"derived {row['derived_latency_ms']:.2f} ms, tau {tau:.2f}, loss {loss:.2f}")
        if bar is not None:
            bar.close()
        return self.finish(trajectory, time.time() - t0)

    def finish(self, trajectory, wall) -> dict:
        ctx, cfg = self.ctx, self.cfg
        idx = self.derived()
        arch = self.view.decode(idx)
        result = base_result(ctx, "tfnas", arch, wall)  # latency: the table's prediction of the arch
        pred = self.table.predict(arch)
        op_p = [p.detach() for p in self.arch.op_probs()]
        depth_p = [p.detach() for p in self.arch.depth_probs()]
        expected = float(self.lm.expected_latency([p.double() for p in op_p + depth_p]))
        ops_idx = idx[:self.view.num_blocks]
        kept = self.view.kept_blocks(idx)
        result.update({
            "indices": format_indices(idx),
            "indices_kind": "argmax op per searchable block, then argmax depth index per stage; mid widths in arch",
            "model_latency_ms": float(self.lm.latency(idx)),
            "estimated_keys": sorted(pred.estimated),
            "expected_latency_ms": expected,
            "ops": [self.space.choices[p].options[o] for p, o in enumerate(ops_idx)],
            "depths": self.view.depths(idx),
            "kept_blocks": kept,  # searchable block positions in the arch; mids / bounds of those blocks
            "mids": [self.widths.mids[pos][ops_idx[pos]] for pos in kept],
            "mid_bounds": [[self.ops[pos][ops_idx[pos]].min_mid, self.ops[pos][ops_idx[pos]].max_mid] for pos in kept],
            "proxy_accuracy": self.evaluate(idx),
            "proxy_accuracy_kind": "one-shot: final arch with the shared supernet weights, whole valid split",
            "final_op_probs": [[round(float(v), 4) for v in p] for p in op_p],
            "final_depth_probs": [[round(float(v), 4) for v in p] for p in depth_p],
            "elasticity": self.elastic_log,
            "proxy": self.net.describe(), "preset": cfg.preset, "config_sources": cfg.sources(),
            "config": cfg.as_dict(),
            "schedule": {"warmup_steps": self.warmup_steps, "epoch_steps": self.epoch_steps,
                         "elastic_every": self.elastic_every},
            "trajectory": trajectory,
        })
        return result


def run_tfnas(ctx) -> dict:
    """Run a TF-NAS search in `ctx` (a search.context.SearchContext); the result dict."""
    return TFNASSearch(ctx).run()
