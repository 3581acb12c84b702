"""Rewards, RL learning-rate schedule, warmup and weight schedules, the reward baseline."""
import math
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the top-level `search` package

from latbench.errors import BadInput  # noqa: E402
from search.tunas.policy import EMABaseline  # noqa: E402
from search.tunas.rewards import absolute_reward, hard_reward, reward_function, soft_reward  # noqa: E402
from search.schedules import weight_learning_rate
from search.tunas.schedules import rl_learning_rate, warmup_probability  # noqa: E402


def test_absolute_reward_values():
    assert absolute_reward(0.8, 84.0, 84.0) == pytest.approx(0.8)
    assert absolute_reward(0.8, 92.4, 84.0) == pytest.approx(0.8 - 0.10 * 0.1)
    assert absolute_reward(0.8, 75.6, 84.0) == pytest.approx(0.8 - 0.10 * 0.1)  # symmetric
    assert absolute_reward(0.5, 168.0, 84.0, beta=-0.5) == pytest.approx(0.0)


def test_soft_and_hard_reward_values():
    assert soft_reward(0.8, 92.4, 84.0) == pytest.approx(0.8 * 1.1 ** -0.07)
    assert soft_reward(0.8, 75.6, 84.0) == pytest.approx(0.8 * 0.9 ** -0.07)  # faster is rewarded
    assert hard_reward(0.8, 75.6, 84.0) == pytest.approx(0.8)  # no bonus below the target
    assert hard_reward(0.8, 92.4, 84.0) == pytest.approx(0.8 * 1.1 ** -0.07)
    q, t = np.array([0.8, 0.8]), np.array([75.6, 92.4])
    np.testing.assert_allclose(hard_reward(q, t, 84.0), [0.8, 0.8 * 1.1 ** -0.07])


def test_reward_by_name():
    assert reward_function("absolute") is absolute_reward
    with pytest.raises(BadInput):
        reward_function("linear")


def test_rl_learning_rate_schedule():
    n, base = 1000, 0.02
    lrs = [rl_learning_rate(s, n, base) for s in range(n)]
    assert all(lr == 0 for lr in lrs[:250])  # 0 for the first 25%
    assert lrs[250] == pytest.approx(base)  # base when the controller starts
    assert lrs[-1] == pytest.approx(10 * base)  # 10x base at the end
    assert all(b >= a for a, b in zip(lrs, lrs[1:]))  # monotone
    ratios = [b / a for a, b in zip(lrs[250:], lrs[251:])]
    assert max(ratios) == pytest.approx(min(ratios))  # exponential: constant ratio per step
    assert ratios[0] == pytest.approx(10 ** (1 / (n - 1 - 250)))


def test_warmup_probability_schedule():
    n = 400
    ps = [warmup_probability(s, n) for s in range(n)]
    assert ps[0] == 1.0 and ps[50] == pytest.approx(0.5)
    assert all(p == 0 for p in ps[100:])  # 0 after the first 25%
    diffs = np.diff(ps[:101])
    np.testing.assert_allclose(diffs, -0.01)  # linear
    assert warmup_probability(0, n, 0.0) == 0.0  # warmup disabled


def test_weight_learning_rate_schedule():
    n, peak = 1000, 0.1
    lrs = [weight_learning_rate(s, n, peak) for s in range(n)]
    assert lrs[0] == pytest.approx(peak / 25) and lrs[24] == pytest.approx(peak)
    assert lrs[25] == pytest.approx(peak)
    assert lrs[-1] < 1e-3 * peak
    assert all(b <= a for a, b in zip(lrs[25:], lrs[26:]))
    assert weight_learning_rate(25 + 487, n, peak) == pytest.approx(peak * 0.5 * (1 + math.cos(math.pi * 487 / 975)))


def test_baseline_is_zero_debiased_ema():
    b = EMABaseline(0.95)
    assert b.update(1.0) == pytest.approx(1.0)  # debiased: the first value itself
    num, den = 0.05 * 1.0, 0.05
    num, den = 0.95 * num + 0.05 * 3.0, 0.95 * den + 0.05
    assert b.update(3.0) == pytest.approx(num / den)
    for _ in range(500):
        v = b.update(2.0)
    assert v == pytest.approx(2.0)
