"""TuNAS's controller on the tfnas space (search/tunas/staged.py): plans, single-path training,
and a search on a real table whose result the table prices."""
import json

import numpy as np
import pytest
import torch

from latbench.arch import parse_arch
from latbench.errors import BadInput
from latbench.lut import LatencyTable
from latbench.spaces import get_space
from latbench.spaces.tfnas import TFNASSpace
from search.registry import make_config
from search.tunas.optim import conv_kernels
from search.tunas.staged import StagedSupernet

from test_search_tfnas import TinyTFNAS, table_for


def _net(space, width=0.25):
    torch.manual_seed(0)
    return StagedSupernet(space, num_classes=4, width=width, resolution=16)


def test_plan_picks_ops_and_one_hot_depths_and_averages_under_warmup():
    space = TinyTFNAS()
    pl = _net(space).planner
    idx = [1, 2, 0, 1, 2, 0, 0, 2]  # 6 blocks, then depth indices of the 2- and 3-block stages
    assert pl.sizes == [3] * 6 + [2, 3] and pl.filter_decisions == [] and pl.op_decisions == list(range(8))
    p = pl.plan(idx)
    assert p.ops == (1, 2, 0, 1, 2, 0)
    assert p.depth_w == (0, 2)
    w = pl.plan(idx, op_warm=[0, 7])
    assert torch.allclose(w.ops[0], torch.full((3,), 1 / 3)) and w.ops[1] == 2
    assert torch.allclose(w.depth_w[1], torch.full((3,), 1 / 3)) and w.depth_w[0] == 0


def test_a_sampled_path_runs_and_trains_the_chosen_op_of_every_kept_block_only():
    space = TinyTFNAS()
    net = _net(space)
    idx = [0, 1, 2, 2, 1, 0, 0, 1]  # stage 1 keeps 1 of 2 blocks, stage 2 keeps 2 of 3
    x = torch.randn(8, 3, 16, 16)
    net(x, net.planner.plan(idx)).sum().backward()
    trained = [[j for j, op in enumerate(b.ops) if any(p.grad is not None for p in op.parameters())]
               for b in net.net.blocks]
    assert trained == [[0], [], [2], [2], [], [0]]
    # the same as the sink-connected stage with one-hot depth weights (TF-NAS's evaluation)
    one_hot = [torch.nn.functional.one_hot(torch.tensor(d), n).float() for d, n in ((0, 2), (1, 3))]
    with torch.no_grad():
        a = net(x, net.planner.plan(idx))
        b = net.net(x, [(tuple(idx[:6]), one_hot)])[0]
    assert torch.allclose(a, b, atol=1e-6)


def test_weight_decay_on_conv_kernels_covers_the_staged_supernet():
    net = _net(TinyTFNAS())
    kernels = conv_kernels(net)
    four_d = [p for p in net.parameters() if p.dim() == 4]
    assert len(kernels) == len(four_d) > 0
    assert id(net.net.classifier.weight) not in kernels


def test_space_check():
    make_config("tunas", space="tfnas").check_space(TFNASSpace())
    with pytest.raises(BadInput, match="--space: tfnas-mbv2: the TuNAS supernet is built from TuNAS spaces"):
        make_config("tunas").check_space(get_space("tfnas-mbv2"))
    with pytest.raises(BadInput, match="--kernel-sharing: the tfnas supernet keeps every op separate"):
        make_config("tunas", kernel_sharing=True).check_space(TFNASSpace())


def test_tunas_search_on_the_tfnas_space_through_cli(cli, tmp_path):
    space = TFNASSpace()
    table = table_for(space)
    lut = tmp_path / "synthetic-tfnas.json"
    table.save(lut)
    out = tmp_path / "run"
    r = cli("search", "--algo", "tunas", "--space", "tfnas", "--lut", lut, "--target-ms", "150",
            "--steps", "8", "--width", "0.125", "--resolution", "16", "--batch-size", "16", "--quiet",
            "--out", out, "--json")
    assert r.returncode == 0, r.stderr
    result = json.loads((out / "result.json").read_text())
    arch = parse_arch(result["arch"], "result.json")
    pred = LatencyTable.load(lut).predict(arch).latency_ms
    assert pred == pytest.approx(result["latency_ms"], rel=1e-12)
    assert result["argmax_latency_ms"] == pytest.approx(pred, rel=1e-9)
    idx = [int(i) for i in result["indices"].split(":")]
    assert len(idx) == space.num_decisions and space.decode(idx).layers == arch.layers
    assert result["proxy"]["supernet"].startswith("tfnas")
    assert len(result["trajectory"]) == 8 and 0.0 <= result["proxy_accuracy"] <= 1.0
    assert np.isfinite(result["expected_latency_ms"])
