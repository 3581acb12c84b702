"""What the TuNAS loop feeds each update, pinned by spying on a short real search: the warmups change
only the trained arch, the controller sees only the validation split, and with the many-sample
latency term the accuracy part of the advantage still comes from the sampled (trained) arch."""
import dataclasses
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import search.tunas.runner as runner  # noqa: E402
from search.context import prepare  # noqa: E402
from search.registry import make_config  # noqa: E402
from search.tunas.policy import CategoricalPolicy  # noqa: E402

VALID_OFFSET = 1000.0  # validation images are shifted by this, so every batch says where it came from


def _spied_search(monkeypatch, steps=8, **options):
    cfg = make_config("tunas", target_ms=84, steps=steps, width=0.125, resolution=16, batch_size=8,
                      progress=False, seed=3, **options)
    ctx = prepare(cfg)
    ctx.data = dataclasses.replace(ctx.data, x_valid=ctx.data.x_valid + VALID_OFFSET)
    log = {"sampled": [], "train": [], "score": [], "reinforce": []}
    orig_sample, orig_train, orig_acc = CategoricalPolicy.sample, runner.train_step, runner.batch_accuracy
    orig_reinforce = CategoricalPolicy.reinforce_loss

    def sample(self, generator=None):
        idx = orig_sample(self, generator)
        log["sampled"].append(idx.copy())
        return idx

    def train_step(model, opt, plan, x, y, lr, ls=0.1, **kw):
        log["train"].append((plan, float(x.min()), float(x.max())))
        return orig_train(model, opt, plan, x, y, lr, ls, **kw)

    def batch_accuracy(model, plan, x, y, **kw):
        q = orig_acc(model, plan, x, y, **kw)
        log["score"].append((plan, float(x.min()), q))
        return q

    def reinforce_loss(self, samples, rewards, baseline):
        log["reinforce"].append(([np.array(s) for s in samples], list(rewards)))
        return orig_reinforce(self, samples, rewards, baseline)

    monkeypatch.setattr(CategoricalPolicy, "sample", sample)
    monkeypatch.setattr(runner, "train_step", train_step)
    monkeypatch.setattr(runner, "batch_accuracy", batch_accuracy)
    monkeypatch.setattr(CategoricalPolicy, "reinforce_loss", reinforce_loss)
    result = runner.run_tunas(ctx)
    return ctx, log, result


def test_warmup_changes_the_trained_arch_only(monkeypatch):
    ctx, log, _ = _spied_search(monkeypatch, steps=8)
    planner = runner.Supernet(ctx.space, 10, width=0.125, resolution=16).planner
    assert len(log["sampled"]) == len(log["train"]) == len(log["score"]) == 8
    warm_steps = 0
    for idx, (trained, _, _), (scored, _, _) in zip(log["sampled"], log["train"], log["score"]):
        assert scored == planner.plan(idx)  # the controller scores exactly the sampled arch
        if trained != scored:
            warm_steps += 1
            assert any(p is not None and p.averaged for p in trained) or any(
                a is not None and (a.cout, a.mid) != (b.cout, b.mid) for a, b in zip(trained, scored))
    assert warm_steps >= 1  # 8 steps, warmup over the first 2: step 0 trains with everything enabled


def test_controller_sees_only_the_validation_split(monkeypatch):
    _, log, _ = _spied_search(monkeypatch, steps=6)
    assert all(lo > VALID_OFFSET / 2 for _, lo, _ in log["score"])  # every scored batch is validation data
    assert all(hi < VALID_OFFSET / 2 for _, _, hi in log["train"])  # every weight batch is training data


@pytest.mark.parametrize("latency_samples", [0, 64])
def test_advantage_accuracy_comes_from_the_trained_arch(monkeypatch, latency_samples):
    _, log, result = _spied_search(monkeypatch, steps=8, latency_samples=latency_samples, rl_moments_after_delay=False)
    assert len(log["reinforce"]) == 8
    beta = result["config"]["beta"]
    for (samples, scored), idx, (_, _, q), t in zip(log["reinforce"], log["sampled"], log["score"], result["trajectory"]):
        assert len(samples) == 1 and np.array_equal(samples[0], idx)  # the arch trained this step
        if latency_samples:
            assert scored == [q]  # Q alone; latency is priced on the extra archs
        else:
            lat = t["sampled_latency_ms"]
            assert scored == [pytest.approx(q + beta * abs(lat / 84 - 1))]
