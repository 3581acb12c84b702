"""Channel masking, operation collapsing, warmups, rematerialisation and the supernet per space."""
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from latbench.spaces import get_space  # noqa: E402
from search.tunas.layers import SharedBatchNorm, SharedConv2d, SharedDepthwise, channel_mask  # noqa: E402
from search.proxy import proxy_strides
from search.tunas.supernet import Supernet  # noqa: E402

torch.set_num_threads(1)


def test_masked_wide_conv_equals_narrow_conv():
    torch.manual_seed(0)
    wide = SharedConv2d(16, 32, 3)
    x = torch.randn(2, 10, 9, 9)
    y = wide(x, cout=20)
    narrow = nn.Conv2d(10, 20, 3, padding=1, bias=False)
    with torch.no_grad():
        narrow.weight.copy_(wide.weight[:20, :10])
    assert y.shape == (2, 20, 9, 9)
    assert torch.allclose(y, narrow(x), atol=1e-6)
    # the same as TuNAS's explicit masks: zero input channels >= 10, keep the first 20 outputs
    x_full = torch.cat([x, torch.randn(2, 6, 9, 9)], 1) * channel_mask(10, 16)[None, :, None, None]
    y_full = F.conv2d(x_full, wide.weight, None, 1, 1) * channel_mask(20, 32)[None, :, None, None]
    assert torch.allclose(y_full[:, :20], y, atol=1e-6)
    assert torch.count_nonzero(y_full[:, 20:]) == 0


def test_masked_conv_with_bias_and_stride():
    torch.manual_seed(1)
    wide = SharedConv2d(8, 12, 3, stride=2, bias=True)
    x = torch.randn(3, 5, 8, 8)
    narrow = nn.Conv2d(5, 7, 3, stride=2, padding=1)
    with torch.no_grad():
        narrow.weight.copy_(wide.weight[:7, :5])
        wide.bias.normal_()
        narrow.bias.copy_(wide.bias[:7])
    assert torch.allclose(wide(x, 7), narrow(x), atol=1e-6)


@pytest.mark.parametrize("stride", [1, 2])
def test_depthwise_5x5_masked_to_centre_equals_3x3(stride):
    torch.manual_seed(2)
    dw = SharedDepthwise(12, 5, stride)
    x = torch.randn(2, 12, 10, 10)
    ref = nn.Conv2d(12, 12, 3, stride=stride, padding=1, groups=12, bias=False)
    with torch.no_grad():
        ref.weight.copy_(dw.weight[:, :, 1:4, 1:4])
    assert torch.allclose(dw(x, kernel=3), ref(x), atol=1e-6)
    # and the centre cut equals zeroing the 5x5 kernel's border (a 5x5 conv with a masked kernel)
    border = torch.zeros(5, 5)
    border[1:4, 1:4] = 1
    masked = F.conv2d(x, dw.weight * border, None, stride, 2, 1, 12)
    assert torch.allclose(dw(x, kernel=3), masked, atol=1e-6)
    # fewer channels: the first 7 depthwise filters
    ref7 = F.conv2d(x[:, :7], dw.weight[:7, :, 1:4, 1:4], None, stride, 1, 1, 7)
    assert torch.allclose(dw(x[:, :7], kernel=3), ref7, atol=1e-6)


def test_shared_batchnorm_equals_narrow_batchnorm():
    torch.manual_seed(3)
    bn = SharedBatchNorm(16)
    with torch.no_grad():
        bn.weight.normal_()
        bn.bias.normal_()
    x = torch.randn(4, 6, 5, 5)
    ref = nn.BatchNorm2d(6, eps=bn.eps).train()
    with torch.no_grad():
        ref.weight.copy_(bn.weight[:6])
        ref.bias.copy_(bn.bias[:6])
    assert torch.allclose(bn(x), ref(x), atol=1e-5)


def test_proxy_strides_drop_the_last_strides():
    assert proxy_strides([2, 1, 2, 2, 2, 1, 2, 1], 32, 2) == [2, 1, 2, 2, 2, 1, 1, 1]
    assert proxy_strides([2, 1, 2, 2, 2, 1, 2, 1], 32, 1) == [2, 1, 2, 2, 2, 1, 2, 1]
    assert proxy_strides([2, 2, 2], 8, 4) == [2, 1, 1]


@pytest.mark.parametrize("name", ["proxylessnas", "proxylessnas-enlarged", "mobilenetv3-like"])
def test_supernet_forward_backward_every_space(name):
    space = get_space(name)
    torch.manual_seed(0)
    net = Supernet(space, 10, width=0.125, resolution=16)
    pl = net.planner
    x = torch.randn(4, 3, 16, 16)
    for seed in range(2):
        plan = pl.plan(space.sample(seed))
        out = net(x, plan)
        assert out.shape == (4, 10)
        out.sum().backward()
    warm = pl.plan(space.sample(5), pl.op_decisions, pl.filter_decisions)
    assert any(p is not None and p.averaged for p in warm)
    assert net(x, warm).shape == (4, 10)


def test_filter_and_op_warmup_plans():
    space = get_space("proxylessnas-enlarged")
    pl = Supernet(space, 10).planner
    idx = [0] * space.num_decisions
    small = pl.plan(idx)
    full = pl.plan(idx, filter_warm=pl.filter_decisions)
    big = pl.plan(pl.max_indices)
    for a, b, c in zip(small, full, big):
        if a is not None:
            assert (b.cout, b.mid) == (c.cout, c.mid)  # filter warmup: every width at its largest
            assert a.cout <= b.cout and a.mid <= b.mid
    ops = pl.plan(idx, op_warm=pl.op_decisions)
    bnecks = [p for p, s in zip(ops, pl.specs) if p is not None and s.kind == "bneck"]
    assert all(p.kernels == (3, 5, 7) for p in bnecks)  # op warmup: all kernels averaged
    assert any(p.skip_avg for p in bnecks)


def test_rematerialisation_gives_the_same_outputs_and_gradients():
    space = get_space("mobilenetv3-like")
    results = []
    for remat in (False, True):
        torch.manual_seed(0)
        net = Supernet(space, 10, width=0.125, resolution=16, remat=remat)
        pl = net.planner
        plan = pl.plan(space.sample(1), pl.op_decisions, pl.filter_decisions)
        x = torch.randn(4, 3, 16, 16, generator=torch.Generator().manual_seed(1))
        out = net(x, plan)
        out.square().sum().backward()
        results.append((out.detach(), {n: p.grad.clone() for n, p in net.named_parameters() if p.grad is not None}))
    (o1, g1), (o2, g2) = results
    assert torch.allclose(o1, o2, atol=1e-5)
    assert g1.keys() == g2.keys()
    for n in g1:
        assert torch.allclose(g1[n], g2[n], atol=1e-4, rtol=1e-3), n


def test_skipped_layer_is_identity_and_untrained():
    space = get_space("proxylessnas")
    torch.manual_seed(0)
    net = Supernet(space, 10, width=0.125, resolution=16)
    pl = net.planner
    idx = list(pl.max_indices)
    op = next(d for d, f in enumerate(pl.fields) if f == "op" and "skip" in pl.options[d])
    idx[op] = pl.options[op].index("skip")
    plan = pl.plan(idx)
    layer = next(i for i, s in enumerate(pl.specs) if dict(s.decisions).get("op") == op)
    assert not plan[layer].present
    net(torch.randn(2, 3, 16, 16), plan).sum().backward()
    assert all(p.grad is None for p in net.layers[str(layer)].parameters())


def test_plan_group_runs_one_arch_per_chunk_of_the_batch():
    """Several TuNAS shards in one call: chunk i of the batch goes through arch i, nothing else."""
    from search.tunas.supernet import PlanGroup

    space = get_space("proxylessnas")
    torch.manual_seed(0)
    net = Supernet(space, 10, width=0.125, resolution=16)
    pl = net.planner
    plans = [pl.plan(space.sample(s)) for s in range(3)]
    x = torch.randn(7, 3, 16, 16)  # 3 + 2 + 2 images
    together = net(x, PlanGroup(plans))
    apart = torch.cat([net(x[:3], plans[0]), net(x[3:5], plans[1]), net(x[5:], plans[2])])
    assert torch.allclose(together, apart, atol=1e-6)
    assert not torch.allclose(net(x, plans[0])[3:5], apart[3:5], atol=1e-4)  # the archs really differ


def _bneck(net):
    pl = net.planner
    i = next(i for i, s in enumerate(pl.specs) if s.kind == "bneck" and "kernel" in dict(s.decisions))
    return i, net.layers[str(i)], dict(pl.specs[i].decisions)["kernel"]


def test_each_kernel_size_has_its_own_depthwise_and_bn_and_shares_the_1x1s():
    """TuNAS's operation collapsing: the 1x1 expand/project are shared across kernel sizes, the
    depthwise conv and its BN are not; training one kernel size leaves the others' weights alone."""
    space = get_space("proxylessnas")
    torch.manual_seed(0)
    net = Supernet(space, 10, width=0.125, resolution=16)
    i, layer, k_dec = _bneck(net)
    assert sorted(layer.dw.ops) == ["3", "5", "7"]
    assert [layer.dw.ops[k].conv.weight.shape[-1] for k in ("3", "5", "7")] == [3, 5, 7]
    x = torch.randn(4, 3, 16, 16)
    grads = {}
    for option in (0, 2):
        net.zero_grad(set_to_none=True)
        idx = list(net.planner.max_indices)
        idx[k_dec] = option
        net(x, net.planner.plan(idx)).sum().backward()
        grads[option] = {n for n, p in layer.named_parameters() if p.grad is not None}
    k_first, k_last = (str(net.planner.options[k_dec][o]) for o in (0, 2))
    assert f"dw.ops.{k_first}.conv.weight" in grads[0] and f"dw.ops.{k_last}.conv.weight" not in grads[0]
    assert f"dw.ops.{k_first}.bn.weight" in grads[0] and f"dw.ops.{k_last}.bn.weight" in grads[2]
    assert f"dw.ops.{k_first}.conv.weight" not in grads[2]
    assert {"expand.weight", "project.weight", "bn_e.weight", "bn_p.weight"} <= grads[0] & grads[2]


def test_kernel_sharing_option_cuts_every_size_from_one_weight():
    space = get_space("proxylessnas")
    torch.manual_seed(0)
    shared = Supernet(space, 10, width=0.125, resolution=16, kernel_sharing=True)
    separate = Supernet(space, 10, width=0.125, resolution=16)
    _, layer, _ = _bneck(shared)
    assert list(layer.dw.ops) == ["7"]
    assert sum(p.numel() for p in shared.parameters()) < sum(p.numel() for p in separate.parameters())
    h = torch.randn(2, layer.dw.ops["7"].conv.weight.shape[0], 8, 8)
    w = layer.dw.ops["7"].conv.weight
    stride = layer.dw.ops["7"].conv.stride
    ref = layer.dw.ops["7"].bn(F.conv2d(h, w[:, :, 2:5, 2:5], None, stride, 1, 1, h.shape[1]))
    assert torch.allclose(layer.dw(h, 3), ref, atol=1e-5)
    assert shared.describe()["kernel_sharing"] is True and separate.describe()["kernel_sharing"] is False
