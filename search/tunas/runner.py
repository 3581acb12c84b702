"""TuNAS (Bender et al., CVPR 2020; DESIGN 8.1): REINFORCE with weight sharing.

Each step (one process; under torchrun every process does this with its own sample):
 1. sample an arch from the independent categorical policy (K archs with `rl_samples` = K, each
    taking 1/K of both batches below, as K TuNAS shards; the controller loss is their mean);
 2. weight update on a training batch (`weight_optimizer`: SGD or TuNAS's RMSProp, optim.py),
    for the sampled arch with op / filter warmup: every
    op decision (kernel, SE, skip) enables all its options with probability p_op and every
    filter decision (block width, expansion) takes its largest option with probability p_f,
    p decaying linearly 1 -> 0 over the first 25% of steps (layers averaging several ops are
    rematerialised when `remat` is on);
 3. RL update on a validation batch (4x the training batch): Q = accuracy of the sampled arch
    with the shared weights, T = LatencyModel latency, reward (absolute by default:
    Q + beta |T/T0 - 1|, beta from the preset: -3.0 proxy, -0.10 paper), baseline = zero-debiased EMA (momentum 0.95) of the
    (cross-process mean) reward, loss = -(reward - baseline) log pi(arch), Adam (beta1 = 0,
    beta2 = 0.999, eps = 1e-8) with lr 0 for the first 25% of steps, then base rising
    exponentially to 10x base at the end. With `latency_samples` = N (absolute reward only; the
    proxy preset's 1024) the
    sampled arch's advantage is Q - EMA(Q) and the latency term's gradient comes from N more
    archs drawn from the policy (`latency_term_loss`): the same expected reward, less noise.
The order (weights first, then the controller on the same sample) is the reference
implementation's (tunas/mobile_architecture_search.py); the warmups only change the arch
trained in step 2, never the one rewarded in step 3 (the reference code notes that this
separation is needed once filter warmup outlasts the RL delay).
Final arch = argmax per decision; reported with the sampled-average latency (mean over the
last 10% of steps) and the expected latency under the final policy.
Under torchrun every rank holds the same controller: the baseline's reward and the policy
gradient are averaged over ranks (on the device: search.distributed), the supernet's gradients by
DDP. State is checkpointed through search.checkpoint and a re-run of the same command resumes.
"""
from __future__ import annotations

import time

import numpy as np
import torch

from ..checkpoint import Checkpointer
from ..distributed import reduce_floats, reduce_mean_, wrap
from ..progress import progress_bar, tick
from ..results import base_result
from ..schedules import weight_learning_rate
from ..training import batch_accuracy, evaluate_split, train_step
from .optim import make_tunas_weight_optimizer
from .policy import CategoricalPolicy, EMABaseline, make_rl_optimizer
from .rewards import absolute_reward, reward_function
from .schedules import rl_learning_rate, warmup_probability
from .supernet import PlanGroup, Supernet


def build_supernet(ctx, seed: int):
    cfg = ctx.cfg
    torch.manual_seed(seed)
    from latbench.spaces.tunas import TunasSpace

    if not isinstance(ctx.space, TunasSpace):  # the tfnas space (TunasConfig.check_space)
        from .staged import StagedSupernet

        return ctx.place(StagedSupernet(ctx.space, ctx.data.num_classes, ctx.data.in_channels, width=cfg.width,
                                        min_channels=cfg.min_channels, resolution=cfg.resolution,
                                        min_feature_map=cfg.min_feature_map, device=ctx.dist.device))
    net = Supernet(ctx.space, ctx.data.num_classes, ctx.data.in_channels, width=cfg.width,
                   min_channels=cfg.min_channels, resolution=cfg.resolution,
                   min_feature_map=cfg.min_feature_map, remat=cfg.remat, kernel_sharing=cfg.kernel_sharing)
    return ctx.place(net)


def run_tunas(ctx) -> dict:
    cfg, space, lm, dist = ctx.cfg, ctx.space, ctx.lm, ctx.dist
    t0 = time.time()
    net = build_supernet(ctx, cfg.seed)
    planner = net.planner
    model = wrap(net, dist)
    weight_lr = ctx.weight_lr
    rl_lr_base = ctx.scaled_lr("controller", cfg.rl_lr, cfg.rl_batch_size)
    w_opt = make_tunas_weight_optimizer(model, cfg, weight_lr)
    policy = CategoricalPolicy(space.sizes, planner.parents())
    rl_opt = make_rl_optimizer(policy)
    baseline = EMABaseline(cfg.baseline_momentum)
    reward_fn, beta = reward_function(cfg.reward), cfg.beta_value
    gen = torch.Generator().manual_seed(cfg.seed * 1000 + dist.rank + 1)
    lat_gen = torch.Generator().manual_seed(cfg.seed * 1000 + dist.rank + 13)
    coins = np.random.default_rng(cfg.seed * 1000 + dist.rank + 7)
    train = ctx.stream("train", cfg.batch_size, seed=cfg.seed)
    valid = ctx.stream("valid", cfg.rl_batch_size, seed=cfg.seed + 1)
    op_dec, filter_dec = np.array(planner.op_decisions), np.array(planner.filter_decisions)
    ck = Checkpointer(ctx, shared={"supernet": net, "weight_opt": w_opt, "policy": policy.logits, "rl_opt": rl_opt,
                                   "baseline": baseline},
                      per_rank={"gen": gen, "lat_gen": lat_gen, "coins": coins, "train": train, "valid": valid})
    start, trajectory, elapsed = ck.resume()
    t0 = time.time() - elapsed
    n = cfg.steps
    bar = progress_bar(cfg, dist, "tunas", cfg.steps)
    if bar is not None and start:
        bar.update(start)
    k_samples = cfg.rl_samples  # checked by TunasConfig.check
    for step in range(start, n):
        idxs = [policy.sample(gen) for _ in range(k_samples)]
        # 2. shared weights, with op / filter warmup (1. was sampling the arch(s))
        p_op = warmup_probability(step, n, cfg.op_warmup)
        p_f = warmup_probability(step, n, cfg.filter_warmup)
        plans = []
        for idx in idxs:
            op_warm = op_dec[coins.random(len(op_dec)) < p_op] if p_op > 0 else ()
            filter_warm = filter_dec[coins.random(len(filter_dec)) < p_f] if p_f > 0 else ()
            plans.append(planner.plan(idx, op_warm, filter_warm))
        xb, yb = train.next()
        loss, _ = train_step(model, w_opt, plans[0] if k_samples == 1 else PlanGroup(plans), xb, yb,
                             weight_learning_rate(step, n, weight_lr, cfg.weight_lr_warmup), cfg.label_smoothing,
                             amp=cfg.amp)
        # 3. RL controller on a validation batch (one chunk per sampled arch)
        xv, yv = valid.next()
        qualities, latencies, rewards = [], [], []
        for idx, xc, yc in zip(idxs, torch.tensor_split(xv, k_samples), torch.tensor_split(yv, k_samples)):
            qualities.append(batch_accuracy(model, planner.plan(idx), xc, yc, amp=cfg.amp))
            latencies.append(float(lm.latency(idx)))
            rewards.append(float(reward_fn(qualities[-1], latencies[-1], cfg.target_ms, beta)))
        reward, quality, latency = (float(np.mean(v)) for v in (rewards, qualities, latencies))
        # when the latency term is priced apart (latency samples, or the expected latency alone), the
        # sampled archs carry the quality term only (its own baseline)
        scored = qualities if cfg.latency_samples or cfg.latency_term == "expected" else rewards
        b = baseline.update(reduce_floats([np.mean(scored)], dist)[0])
        rl_lr = rl_learning_rate(step, n, rl_lr_base, cfg.rl_delay, cfg.rl_lr_growth)
        for group in rl_opt.param_groups:
            group["lr"] = rl_lr
        if rl_lr > 0 or not cfg.rl_moments_after_delay:
            rl_opt.zero_grad(set_to_none=False)
            loss_rl = policy.reinforce_loss(idxs, scored, b)
            if cfg.latency_term != "samples":
                loss_rl = loss_rl + expected_latency_loss(policy, lm, cfg.target_ms, beta)
            if cfg.latency_term != "expected" and cfg.latency_samples:
                loss_rl = loss_rl + latency_term_loss(policy, lm, cfg.target_ms, beta, cfg.latency_samples, lat_gen)
            loss_rl.backward()
            reduce_mean_(policy.logits.grad, dist)
            rl_opt.step()
        argmax_lat = float(lm.latency(policy.argmax()))
        trajectory.append({"step": step, "reward": reward, "accuracy": quality, "sampled_latency_ms": latency,
                           "argmax_latency_ms": argmax_lat, "rl_lr": rl_lr, "baseline": baseline.num / baseline.den,
                           "train_loss": loss, "warmup_p": max(p_op, p_f), "entropy": policy.entropy(),
                           "time_s": time.time() - t0})
        ck.step_done(step, trajectory, time.time() - t0)
        tick(bar, step, n, lambda: f"sampled {latency:.1f} ms, argmax {argmax_lat:.1f} ms, acc {quality:.2f}")
    if bar is not None:
        bar.close()
    for stream in (train, valid):
        getattr(stream, "close", lambda: None)()
    result = _finish(ctx, net, policy, trajectory, time.time() - t0)
    if ck.resumed_at:
        result["resumed_at_step"] = ck.resumed_at
    return result


def latency_term_loss(policy, lm, target: float, beta: float, n: int, generator) -> torch.Tensor:
    """REINFORCE loss of the absolute reward's latency term β|T/T0 − 1| over `n` archs drawn from
    the policy (baseline: their mean). Latency is known exactly for any arch, so its share of the
    policy gradient need not ride on the one trained arch's noisy reward."""
    idx = policy.sample_many(n, generator)
    cost = absolute_reward(0.0, np.asarray(lm.latency(idx), dtype=np.float64), target, beta)
    advantage = torch.as_tensor(cost - cost.mean(), dtype=torch.float32)
    return -(advantage * policy.log_prob(idx)).mean()


def expected_latency_loss(policy, lm, target: float, beta: float) -> torch.Tensor:
    """Minus the latency term priced at the policy's expected latency, -beta |E[T]/T0 - 1|: exact and
    differentiable, so its pull towards T0 does not fade while the policy is still spread (the
    per-arch term's expectation E|T/T0 - 1| is flat around T0 for a spread policy)."""
    expected = lm.expected_latency([p.double() for p in policy.prob_list()])
    return (-beta * torch.abs(expected / target - 1.0)).float()


def _finish(ctx, net, policy, trajectory, wall) -> dict:
    cfg, lm, space = ctx.cfg, ctx.lm, ctx.space
    argmax = policy.argmax()
    final, refine_info = argmax, None
    if cfg.refine:
        from .refine import refine_to_target

        logp = torch.log_softmax(policy.masked_logits(), dim=1).detach().numpy()
        final, refine_info = refine_to_target(lm, logp, space.sizes, argmax, cfg.target_ms, cfg.refine_tolerance)
    k = max(1, int(round(cfg.sampled_window * len(trajectory))))
    sampled = float(np.mean([t["sampled_latency_ms"] for t in trajectory[-k:]]))
    expected = lm.expected_latency([p.detach().double() for p in policy.prob_list()])
    result = base_result(ctx, "tunas", space.decode([int(i) for i in final]), wall, indices=final)
    argmax_lat = float(lm.latency(argmax))
    result.update({
        "argmax_indices": ":".join(str(int(i)) for i in argmax), "argmax_latency_ms": argmax_lat,
        "argmax_relative_error": abs(argmax_lat / cfg.target_ms - 1),
        "sampled_latency_ms": sampled, "sampled_window_steps": k,
        "expected_latency_ms": None if expected is None else float(expected),
        "refined": refine_info is not None, "refine": refine_info,
        "proxy_accuracy": evaluate_split(net, net.planner.plan(final), ctx.data, "valid", ctx.dist, amp=cfg.amp),
        "proxy_accuracy_kind": "one-shot: final arch with the shared supernet weights, whole valid split",
        "final_entropy": policy.entropy(), "final_entropy_active": policy.entropy(argmax),
        "final_policy": [[round(float(v), 4) for v in p.detach()] for p in policy.prob_list()],
        "proxy": net.describe(), "preset": cfg.preset, "config": cfg.as_dict(), "config_sources": cfg.sources(),
        "global_batch": cfg.global_batch,
        "trajectory": trajectory,
    })
    return result
