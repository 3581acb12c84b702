"""NetAdaptV2's three techniques in isolation: ordered dropout, channel-level bypass, MCD."""
import itertools

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from latbench.cbc import cbc_width  # noqa: E402
from search.netadaptv2.mcd import coordinate_descent  # noqa: E402
from search.netadaptv2.metric import FunctionMetric  # noqa: E402
from search.netadaptv2.supernet import ODConv, balanced_indices, bypass_merge, ordered_dropout  # noqa: E402


# ---------------------------------------------------------------------- ordered dropout
def test_ordered_dropout_zeroes_exactly_the_last_channels_per_image():
    y = torch.rand(5, 8, 3, 3) + 0.1  # no zeros of its own
    width = torch.tensor([0, 3, 8, 1, 5])
    out = ordered_dropout(y, width)
    for b, w in enumerate(width.tolist()):
        assert torch.equal(out[b, :w], y[b, :w]) and not out[b, w:].any()


def test_od_conv_trains_each_width_from_its_own_images():
    torch.manual_seed(0)
    conv = ODConv(6, 8, 3, 1, "relu", bypass=False)
    x = torch.randn(4, 6, 5, 5)
    width = torch.tensor([2, 6, 0, 4])
    out = conv(x, width)
    assert all(not out[b, w:].any() and (w == 0 or out[b, :w].abs().sum() > 0) for b, w in enumerate(width.tolist()))
    out.square().sum().backward()
    g = conv.weight.grad.abs().sum((1, 2, 3))
    # filter j learns from the images whose width keeps it (j < width): filters 0..5 do, 6 and 7 never
    assert (g[:6] > 0).all() and (g[6:] == 0).all()
    # a single image of width 2 trains exactly filters 0 and 1
    conv.zero_grad()
    conv(x[:1], width[:1]).square().sum().backward()
    g = conv.weight.grad.abs().sum((1, 2, 3))
    assert (g[:2] > 0).all() and (g[2:] == 0).all()


def test_every_width_sampled_equally_often_per_layer():
    rng = np.random.default_rng(0)
    sizes = [9, 9, 2, 3]
    idx = balanced_indices(sizes, 64, rng)
    assert idx.shape == (64, 4)
    for d, n in enumerate(sizes):
        counts = np.bincount(idx[:, d], minlength=n)
        assert counts.min() >= 64 // n and counts.max() <= -(-64 // n)
    # columns are shuffled independently: images do not share one arch
    assert len({tuple(r) for r in idx}) > 32


# ---------------------------------------------------------------------- channel-level bypass
@pytest.mark.parametrize("case, c, filters, t", [(1, 4, 4, 4), (2, 4, 6, 6), (3, 4, 2, 2), (4, 4, 4, 2)])
def test_cbc_output_channels_follow_fig3(case, c, filters, t):
    """Fig. 3: C input channels, `filters` initial filters, T; remove filters one at a time."""
    x = torch.rand(1, c, 3, 3) + 1.0
    y = -(torch.rand(1, filters, 3, 3) + 1.0)  # conv outputs negative, inputs positive: the source shows
    for m in range(filters, -1, -1):
        out = bypass_merge(y, x, torch.tensor([m]), t)
        live = [j for j in range(out.shape[1]) if out[0, j].any()]
        z = cbc_width(c, t, m)
        assert live == list(range(z)), (case, m)
        assert (out[0, :m] < 0).all() and torch.equal(out[0, m:z], x[0, m:z])  # filters first, then inputs m..z-1
    if case == 1:
        assert cbc_width(c, t, 0) == c  # all filters removed: every input bypassed, as removing the layer
    if case == 4:
        assert [cbc_width(c, t, m) for m in (4, 3, 2, 1, 0)] == [4, 3, 2, 2, 2]  # a bottleneck forms


def test_cbc_complementary_path_trains_the_bypass_and_strides():
    x = torch.randn(2, 4, 6, 6, requires_grad=True)
    y = torch.randn(2, 4, 3, 3, requires_grad=True)
    out = bypass_merge(y, x, torch.tensor([1, 4]), None, stride=2)
    assert torch.equal(out[0, 1:], x[0, 1:, ::2, ::2]) and torch.equal(out[1], y[1])
    out.sum().backward()
    # image 0: input channels 1..3 reach the output (complementary OD), image 1: none
    assert x.grad[0, 1:, ::2, ::2].eq(1).all() and not x.grad[0, 0].any() and not x.grad[1].any()
    assert y.grad[0, 0].eq(1).all() and not y.grad[0, 1:].any() and y.grad[1].eq(1).all()


# ---------------------------------------------------------------------- MCD
def tiny_problem():
    """4 layers with 5 widths each; latency additive and convex in width, accuracy concave."""
    sizes = [5, 5, 5, 5]
    cost = np.array([[0, 2, 4, 7, 10], [0, 1, 3, 5, 8], [0, 3, 5, 6, 9], [0, 2, 3, 6, 7]], float) + 1
    gain = np.array([[0, 5, 8, 10, 11], [0, 4, 7, 9, 10], [0, 6, 9, 11, 12], [0, 3, 6, 8, 9]], float)
    metric = FunctionMetric(lambda idx: float(sum(cost[d, i] for d, i in enumerate(idx))))
    score = lambda idx: float(sum(gain[d, i] for d, i in enumerate(idx)))  # noqa: E731
    return sizes, metric, score


@pytest.mark.parametrize("target", [18.0, 24.0, 27.0])
@pytest.mark.parametrize("scd", [False, True])
def test_mcd_finds_the_enumerated_best_within_budget(scd, target):
    sizes, metric, score = tiny_problem()
    archs = list(itertools.product(*[range(n) for n in sizes]))
    ok = [a for a in archs if 0.99 * target <= metric(a) <= target]
    best = max(score(a) for a in ok)
    out = coordinate_descent(sizes, metric, score, target, samples=12, layers=2, initial_reduction=0.05, decay=0.98,
                             band=0.01, scd=scd, seed=3)
    assert 0.99 * target <= out["metric"] <= target
    assert out["score"] == best
    assert out["evaluated"] < len(archs)  # fewer samples scored than enumerating the space
    lats = [t["metric"] for t in out["trajectory"]]
    assert all(a >= b for a, b in zip(lats, lats[1:]))  # every iteration shrinks


def test_resource_reduction_schedule_and_stop():
    sizes, metric, score = tiny_problem()
    out = coordinate_descent(sizes, metric, score, 20.0, samples=8, layers=2, initial_reduction=0.1, decay=0.5,
                             seed=1)
    initial = out["initial_metric"]
    for t, prev in zip(out["trajectory"][1:], out["trajectory"]):
        want = max(20.0, prev["metric"] - 0.1 * initial * 0.5 ** (t["iteration"] - 1))
        assert t["constraint"] == pytest.approx(want) and t["metric"] <= t["constraint"]
    assert out["metric"] <= 20.0 and out["trajectory"][-2]["metric"] > 20.0  # stops at the first arch <= T
