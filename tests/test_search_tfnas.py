"""TF-NAS search (search/tfnas): bi-sampling, architecture steps, sink-connecting, elastic-width
pricing, elasticity scaling, and a tiny end-to-end run through the CLI.

The LUTs are synthetic (ms = 1e-6 MACs + 1e-5 output elements + 1e-3 per op, from
latbench.ops.op_features) over every op of the space at the nominal widths and at the elastic
width grid (2, 2.5, ..., 4 x C_in for e3 ops; 4, 5, ..., 8 x C_in for e6 ops), so distinct
widths get distinct costs and widths between grid points are interpolated.
"""
import itertools
import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

torch = pytest.importorskip("torch")

from latbench.arch import parse_arch  # noqa: E402
from latbench.lut import LatencyTable, make_lut  # noqa: E402
from latbench.ops import op_features  # noqa: E402
from latbench.spaces.tfnas import Stage, TFNASMBV2Space, TFNASSpace  # noqa: E402
from latbench.spaces.tfnas_elastic import TFNASElasticSpace  # noqa: E402
from search.context import SearchContext  # noqa: E402
from search.data import ProxyData  # noqa: E402
from search.distributed import DistInfo  # noqa: E402
from search.tfnas.arch_params import ArchParams, temperature  # noqa: E402
from search.tfnas.config import PROXY_LAMBDA, TFNASConfig  # noqa: E402
from search.tfnas.elasticity import fit_widths  # noqa: E402
from search.tfnas.run import TFNASSearch  # noqa: E402
from search.tfnas.supernet import ElasticOp  # noqa: E402
from search.tfnas.widths import BlockPricer, ElasticView, ElasticWidths, block_op_list, block_ops  # noqa: E402

GRID = (0.5, 0.625, 0.75, 0.875, 1.0)


class TinyTFNAS(TFNASSpace):
    """Three stages (2, 3, 1 blocks), three ops: 3**6 * 2 * 3 = 4374 archs, small enough to enumerate."""

    name = "tfnas-tiny"
    STAGES = (Stage(24, 2, 2, "relu"), Stage(40, 3, 2, "swish"), Stage(80, 1, 2, "swish"))
    OPS = ("k3_e3", "k5_e6_se", "k3_e6")


def _ms(op) -> float:
    f = op_features(op)
    return 1e-6 * f["macs"] + 1e-5 * f["out"] + 0.001


def synthetic_table(space, granularity="block") -> LatencyTable:
    ops = {op.key: op for op in space.ops(granularity)}
    for row in block_ops(space):
        for o in row:
            for frac in GRID:
                for op in block_op_list(o, int(round(o.max_mid * frac)), granularity):
                    ops[op.key] = op
    entries = {k: {"ms": _ms(op)} for k, op in ops.items()}
    return LatencyTable.from_dict(make_lut(device={"name": "synthetic"}, runtime="none", batch=1,
                                           granularity=granularity, method="fitted", spaces=[space.name],
                                           base_ms=0.25, entries=entries, provenance_info={"note": "synthetic"}))


_TABLES = {}


def table_for(space, granularity="block"):
    key = (space.name, granularity)
    if key not in _TABLES:
        _TABLES[key] = synthetic_table(space, granularity)
    return _TABLES[key]


def tiny_context(space=None, steps=8, **tfnas):
    torch.set_num_threads(1)  # the results below depend on the float reduction order: fix it
    space = space or TinyTFNAS()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((48, 3, 16, 16)).astype(np.float32)
    y = (np.arange(48) % 4).astype(np.int64)
    data = ProxyData(x[:32], y[:32], x[32:], y[32:], 4, "random")
    cfg = TFNASConfig(target_ms=20.0, space=space.name, algo="tfnas", steps=steps, seed=3, batch_size=8,
                      width=0.25, resolution=16, progress=False, **tfnas)

    class _LM:  # the search reads only the table of ctx.lm
        table = table_for(space)

    return SearchContext(cfg, space, _LM(), "synthetic", data, DistInfo())


def random_widths(ops, rng) -> ElasticWidths:
    return ElasticWidths(ops, [[int(rng.integers(o.min_mid, o.max_mid + 1)) for o in row] for row in ops])


# ---------------------------------------------------------------------- bi-sampling
def _ops_with_grad(block):
    return [j for j, op in enumerate(block.ops) if any(p.grad is not None for p in op.parameters())]


def test_weight_step_trains_exactly_two_ops_per_block():
    s = TFNASSearch(tiny_context(warmup=0.0))
    before = [p.detach().clone() for p in s.arch.parameters()]
    for step in range(3):
        _, chosen = s.weight_step(step)
        assert len(chosen) == 2
        for pos, block in enumerate(s.net.blocks):
            got = _ops_with_grad(block)
            assert got == sorted({chosen[0][pos], chosen[1][pos]}) and len(got) == 2, (step, pos)
    # the architecture is not trained by weight steps
    assert all(p.grad is None for p in s.arch.parameters())
    assert all(torch.equal(a, b) for a, b in zip(before, s.arch.parameters()))


def test_warmup_trains_one_sampled_op_per_block():
    s = TFNASSearch(tiny_context(steps=10, warmup=0.5))
    _, chosen = s.weight_step(0)
    assert len(chosen) == 1
    for pos, block in enumerate(s.net.blocks):
        assert _ops_with_grad(block) == [chosen[0][pos]]


def test_bi_sample_distribution():
    """First op ~ softmax(alpha) (Gumbel-max), second uniform over the other ops."""
    arch = ArchParams([4, 4], [])
    with torch.no_grad():
        arch.alphas[0].copy_(torch.log_softmax(torch.tensor([0.0, 0.0, 8.0, 0.0]), 0))  # op 2 ~ 0.999
        arch.alphas[1].copy_(torch.log_softmax(torch.log(torch.tensor([0.1, 0.2, 0.3, 0.4])), 0))
    g = torch.Generator().manual_seed(0)
    n = 6000
    first = np.zeros((2, 4))
    second = np.zeros((2, 4))
    for _ in range(n):
        a, b = arch.bi_sample(g)
        for blk in range(2):
            assert a[blk] != b[blk]
            first[blk, a[blk]] += 1
            second[blk, b[blk]] += 1
    assert first[0, 2] > 0.99 * n
    np.testing.assert_allclose(second[0][[0, 1, 3]] / n, [1 / 3] * 3, atol=0.03)
    np.testing.assert_allclose(first[1] / n, [0.1, 0.2, 0.3, 0.4], atol=0.02)
    # second | first uniform over the other three: overall P(j) = sum_{i != j} p_i / 3
    p = np.array([0.1, 0.2, 0.3, 0.4])
    np.testing.assert_allclose(second[1] / n, (1 - p) / 3, atol=0.02)


def test_arch_step_updates_only_alpha_beta_and_keeps_log_probabilities():
    s = TFNASSearch(tiny_context(warmup=0.0))
    weights = [p.detach().clone() for p in s.net.parameters()]
    alphas = [a.detach().clone() for a in s.arch.alphas]
    betas = [b.detach().clone() for b in s.arch.betas]
    out = s.arch_step(5.0)
    assert out["expected_latency_ms"] > 0 and out["latency_loss"] >= 0
    assert all(torch.equal(a, b) for a, b in zip(weights, s.net.parameters()))
    assert all(p.grad is None for p in s.net.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(alphas, s.arch.alphas))
    assert any(not torch.equal(a, b) for a, b in zip(betas, s.arch.betas))
    for a in s.arch.alphas:
        assert float(torch.logsumexp(a.detach(), 0)) == pytest.approx(0.0, abs=1e-6)


def test_latency_term_pulls_toward_target():
    """With lambda large and the expected latency above T, the step lowers the expected latency."""
    s = TFNASSearch(tiny_context(warmup=0.0, lambda_lat=50.0, latency_weights="softmax"))
    probs = lambda: [p.detach().double() for p in s.arch.op_probs() + s.arch.depth_probs()]  # noqa: E731
    e0 = float(s.lm.expected_latency(probs()))
    s.cfg.target_ms = 0.5 * e0
    for _ in range(5):
        s.arch_step(1.0)
    assert float(s.lm.expected_latency(probs())) < e0


@pytest.mark.parametrize("kind", ["expected", "derived"])
def test_latency_target_prices_the_expected_or_the_derived_arch(kind):
    """LAT in the loss: the expected latency (TF-NAS) or the derived arch's latency at the current
    widths; with T between the two, the two pull the expected latency in opposite directions."""
    s = TFNASSearch(tiny_context(warmup=0.0, lambda_lat=50.0, latency_weights="softmax", latency_target=kind))
    probs = lambda: [p.detach().double() for p in s.arch.op_probs() + s.arch.depth_probs()]  # noqa: E731
    e0 = float(s.lm.expected_latency(probs()))
    d0 = s.pricer.latency(s.derived(), s.widths.mids)
    assert abs(d0 / e0 - 1) > 0.05
    s.cfg.target_ms = target = 0.5 * (e0 + d0)
    out = s.arch_step(1.0)
    priced = d0 if kind == "derived" else e0
    assert out["expected_latency_ms"] == pytest.approx(e0, rel=1e-9)
    assert out["loss_latency_ms"] == pytest.approx(priced, rel=1e-9)
    assert out["latency_loss"] == pytest.approx(50.0 * abs(priced / target - 1), rel=1e-6)
    for _ in range(4):
        s.arch_step(1.0)
    assert (float(s.lm.expected_latency(probs())) > e0) == (priced < target)


def test_temperature_schedule():
    assert temperature(0, 10, 5) == 5.0
    assert temperature(14, 10, 5) == 5.0
    assert temperature(15, 10, 5) == pytest.approx(5.0 * 0.96)
    assert temperature(32, 10, 5) == pytest.approx(5.0 * 0.96 ** 4)


# ---------------------------------------------------------------------- sink-connecting
def test_depth_probabilities_sum_to_one():
    arch = ArchParams([8] * 3, [2, 3, 4])
    with torch.no_grad():
        for b in arch.betas:
            b.copy_(torch.randn(b.shape))
    for p in arch.depth_probs():
        assert float(p.detach().sum()) == pytest.approx(1.0, abs=1e-6)
    s = TFNASSearch(tiny_context(warmup=0.0))
    s.arch_step(5.0)
    for p in s.arch.depth_probs():
        assert float(p.detach().sum()) == pytest.approx(1.0, abs=1e-6) and (p > 0).all()


def test_stage_output_is_depth_weighted_sum_of_block_outputs():
    s = TFNASSearch(tiny_context())
    net = s.net
    x = torch.randn(4, net.blocks[0].ops[0].cin, 8, 8)
    ops = [1] * len(net.blocks)
    si = 1  # three blocks: depth 1, 2, 3
    with torch.no_grad():
        by_depth = [net.stage_forward(x, si, ops, torch.eye(3)[d]) for d in range(3)]
        w = torch.tensor([0.2, 0.5, 0.3])
        mixed = net.stage_forward(x, si, ops, w)
        # output after d blocks, computed directly
        h = x
        direct = []
        for pos in net.stage_blocks[si]:
            h = net.blocks[pos](h, 1)
            direct.append(h)
    for d in range(3):
        torch.testing.assert_close(by_depth[d], direct[d])
    torch.testing.assert_close(mixed, sum(wi * o for wi, o in zip(w, direct)))


def _enumerated_expectation(view, table, probs):
    total = 0.0
    for idx in itertools.product(*[range(len(c)) for c in view.choices]):
        w = np.prod([probs[d][i] for d, i in enumerate(idx)])
        total += w * table.predict(view.decode(list(idx))).latency_ms
    return total


def test_expected_latency_equals_enumerated_sum_on_tiny_space():
    space = TinyTFNAS()
    table = table_for(space)
    rng = np.random.default_rng(5)
    view = ElasticView(space, random_widths(block_ops(space), rng))
    lm = view.latency_model(table)
    assert view.sizes == [3] * 6 + [2, 3]
    for seed in (0, 1):
        g = torch.Generator().manual_seed(seed)
        probs = [torch.softmax(2 * torch.randn(n, generator=g, dtype=torch.float64), 0) for n in view.sizes]
        got = float(lm.expected_latency(probs))
        want = _enumerated_expectation(view, table, [p.numpy() for p in probs])
        assert got == pytest.approx(want, rel=1e-9)


# ---------------------------------------------------------------------- pricing of elastic widths
@pytest.mark.parametrize("space", [TFNASSpace(), TFNASMBV2Space(), TFNASElasticSpace()],
                         ids=["tfnas", "tfnas-mbv2", "tfnas-elastic"])
def test_recompiled_model_equals_predict_at_elastic_widths(space):
    table = table_for(space)
    ops = block_ops(space)
    rng = np.random.default_rng(11)
    for trial in range(3):
        widths = random_widths(ops, rng)
        view = ElasticView(space, widths)
        lm = view.latency_model(table)
        pricer = BlockPricer(view, table)
        for _ in range(20):
            idx = [int(rng.integers(n)) for n in view.sizes]
            arch = view.decode(idx)
            want = table.predict(arch).latency_ms
            assert lm.latency(idx) == pytest.approx(want, rel=1e-12)
            assert pricer.latency(idx, widths.mids) == pytest.approx(want, rel=1e-12)
            mids = [s.mid for s in arch.shapes()[2:-3]]
            assert mids == [widths.mids[pos][idx[pos]] for pos in view.kept_blocks(idx)]


def test_nominal_widths_price_like_the_space():
    """At the initial widths the view is the `tfnas` space itself: same latencies as its LatencyModel."""
    from latbench.lut.latency_model import LatencyModel

    space = TFNASSpace()
    table = table_for(space)
    view = ElasticView(space, ElasticWidths(block_ops(space)))
    rng = np.random.default_rng(2)
    idx = np.array([space.sample(rng) for _ in range(50)])
    np.testing.assert_allclose(view.latency_model(table).latency(idx), LatencyModel(space, table).latency(idx),
                               rtol=1e-12)


def test_elastic_bounds_follow_tfnas_masks():
    ops = block_ops(TFNASSpace())
    o = ops[0]  # stage 1 block 1: C_in 16
    assert [(x.nominal_mid, x.min_mid, x.max_mid) for x in o[:2]] == [(48, 32, 64), (96, 64, 128)]
    assert [x.se for x in o[4:6]] == [16, 32]  # SE width tied to C_in, not to the elastic mid


# ---------------------------------------------------------------------- elasticity scaling
def _fit(space, target, seed=0):
    table = table_for(space)
    ops = block_ops(space)
    widths = ElasticWidths(ops)
    view = ElasticView(space, widths)
    pricer = BlockPricer(view, table)
    rng = np.random.default_rng(seed)
    idx = [int(rng.integers(n)) for n in view.sizes]
    kept = set(view.kept_blocks(idx))
    stages = [[pos for pos, (s, _) in enumerate(space.blocks) if s == si and pos in kept]
              for si in range(len(space.STAGES))]
    mids, lat, action = fit_widths(idx, stages, widths, ops, pricer.latency, target)
    lo = pricer.latency(idx, [[o.min_mid for o in row] for row in ops])
    hi = pricer.latency(idx, [[o.max_mid for o in row] for row in ops])
    return idx, ops, widths, mids, lat, action, lo, hi, pricer


@pytest.mark.parametrize("frac", [0.1, 0.35, 0.6, 0.9])
@pytest.mark.parametrize("seed", [0, 1])
def test_elasticity_lands_at_or_just_below_target(frac, seed):
    space = TFNASSpace()
    idx, ops, widths, _, _, _, lo, hi, pricer = _fit(space, 1.0, seed)
    target = lo + frac * (hi - lo)
    idx, ops, widths, mids, lat, action, lo, hi, pricer = _fit(space, target, seed)
    assert lat == pytest.approx(pricer.latency(idx, mids), rel=1e-12)
    assert lat <= target
    assert lat >= target * (1 - 0.005)  # fine steps of the last passes close the gap
    assert action == ("shrink" if pricer.latency(idx, widths.mids) > target else "expand")
    for row, mrow, orig in zip(ops, mids, widths.mids):
        for o, m in zip(row, mrow):
            assert o.max_mid // 2 <= m <= o.max_mid
    # only the derived ops' widths moved
    for pos, (mrow, orig) in enumerate(zip(mids, widths.mids)):
        for j, (m, w) in enumerate(zip(mrow, orig)):
            if j != idx[pos]:
                assert m == w


def test_elasticity_stops_at_the_bounds():
    space = TFNASSpace()
    idx, ops, widths, _, _, _, lo, hi, pricer = _fit(space, 1.0)
    _, _, _, mids, lat, action, *_ = _fit(space, 0.5 * lo)  # unreachable: everything at max/2
    assert action == "shrink" and lat == pytest.approx(lo)
    kept = ElasticView(space, widths).kept_blocks(idx)
    assert all(mids[pos][idx[pos]] == ops[pos][idx[pos]].min_mid for pos in kept)
    _, _, _, mids, lat, action, *_ = _fit(space, 2.0 * hi)  # everything at max
    assert action == "expand" and lat == pytest.approx(hi)


def test_select_keeps_channels_with_largest_depthwise_l1():
    op = ElasticOp(cin=8, max_mid=12, cout=8, kernel=3, stride=1, act="relu", se_hidden=4)
    norms = torch.tensor([5., 1., 9., 3., 7., 2., 8., 0.5, 6., 4., 10., 11.])
    with torch.no_grad():
        op.dw.copy_(norms.view(12, 1, 1, 1).expand(12, 1, 3, 3) / 9.0)
    op.select(5)
    assert op.keep.tolist() == [2, 4, 6, 10, 11]
    y = op(torch.randn(2, 8, 6, 6))
    assert y.shape == (2, 8, 6, 6)
    y.sum().backward()
    grad_rows = (op.dw.grad.abs().sum(dim=(1, 2, 3)) > 0).nonzero().flatten().tolist()
    assert grad_rows == [2, 4, 6, 10, 11]  # dropped channels keep their weights untouched


def test_elasticity_step_updates_supernet_and_model():
    s = TFNASSearch(tiny_context(warmup=0.0))
    s.cfg.target_ms = 0.9 * s.pricer.latency(s.derived(), s.widths.mids)
    entry = s.elasticity(0)
    assert entry["action"] == "shrink" and entry["after_ms"] <= s.cfg.target_ms
    idx = s.derived()
    want = s.table.predict(s.view.decode(idx)).latency_ms
    assert s.lm.latency(idx) == pytest.approx(want, rel=1e-12) and entry["after_ms"] == pytest.approx(want)
    for pos, block in enumerate(s.net.blocks):
        for j, op in enumerate(block.ops):
            assert op.active == s.net.proxy_active(s.widths, pos, j, op.max_mid)


def test_bad_tfnas_option():
    from latbench.errors import BadInput

    from search.registry import make_config

    with pytest.raises(BadInput, match="--lamda: not an option of --algo tfnas"):
        make_config("tfnas", lamda=1)
    with pytest.raises(BadInput, match="latency_weights"):
        make_config("tfnas", latency_weights="mean").check()


def test_presets_fill_lambda_and_options_override():
    from latbench.errors import BadInput

    from search.registry import make_config
    from search.tfnas.config import PRESETS, PROXY_LAMBDA

    proxy = make_config("tfnas")
    assert proxy.preset == "proxy" and proxy.lambda_lat == PROXY_LAMBDA and proxy.latency_target == "derived"
    assert proxy.sources() == {"lambda_lat": "preset", "latency_target": "preset"}
    paper = make_config("tfnas", preset="paper")
    assert paper.lambda_lat == 0.1 == PRESETS["paper"]["lambda_lat"]  # TF-NAS's objective
    assert paper.latency_target == "expected"
    given = make_config("tfnas", preset="paper", lambda_lat=0.5)
    assert given.lambda_lat == 0.5 and given.sources() == {"lambda_lat": "option", "latency_target": "preset"}
    assert "lambda_lat = 0.5 [option]" in given.settings_text()
    with pytest.raises(BadInput, match="--preset: expected one of proxy, paper, got 'fast'"):
        make_config("tfnas", preset="fast")


# ---------------------------------------------------------------------- end to end
def test_tiny_search_through_cli(cli, tmp_path):
    space = TFNASSpace()
    table = table_for(space)
    lut = tmp_path / "synthetic-tfnas.json"
    table.save(lut)
    target = 200.0
    out = tmp_path / "run"
    r = cli("search", "--algo", "tfnas", "--space", "tfnas", "--lut", lut, "--target-ms", str(target),
            "--steps", "12", "--width", "0.125", "--resolution", "16", "--batch-size", "16", "--quiet",
            "--out", out, "--json")
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    result = json.loads((out / "result.json").read_text())
    assert (out / "trajectory.png").stat().st_size > 1000
    arch = parse_arch(result["arch"], "result.json")
    assert table.predict(arch).latency_ms == pytest.approx(result["latency_ms"], rel=1e-12)
    assert summary["latency_ms"] == pytest.approx(result["latency_ms"])
    # elasticity ran at the last step: at most T, within 0.5 %
    assert result["latency_ms"] <= target and result["relative_error"] <= 0.005
    assert result["elasticity"][-1]["step"] == 11
    # the arch: argmax ops and depths, the current widths
    shapes = [s for s in arch.shapes() if s.type == "mbconv"][1:]
    assert [s.mid for s in shapes] == result["mids"]
    assert sum(result["depths"]) == len(shapes)
    for m, (lo, hi) in zip(result["mids"], result["mid_bounds"]):
        assert lo <= m <= hi
    traj = result["trajectory"]
    assert [t["step"] for t in traj] == list(range(12))
    assert {"temperature", "train_loss", "derived_latency_ms", "depth_probs"} <= set(traj[0])
    assert any(t.get("expected_latency_ms") for t in traj) and any(t.get("latency_loss") is not None for t in traj)
    assert len(traj[0]["depth_probs"]) == len(space.depth_stages)
    assert result["schedule"]["warmup_steps"] == 1
    assert result["preset"] == "proxy" and result["config"]["lambda_lat"] == PROXY_LAMBDA
    assert "tfnas settings: preset proxy; lambda_lat = " in r.stderr


def test_tfnas_mbv2_search_lands_at_or_below_target():
    # TF-NAS's own objective: in 4 steps from uniform α the proxy preset's derived pricing can flip
    # every argmax at once; this test is about the mbv2 widths, not the preset
    ctx = tiny_context(TFNASMBV2Space(), steps=4, warmup=0.0, preset="paper")
    ctx.cfg.target_ms = 170.0
    r = TFNASSearch(ctx).run()
    arch = parse_arch(r["arch"], "result")
    assert table_for(TFNASMBV2Space()).predict(arch).latency_ms == pytest.approx(r["latency_ms"], rel=1e-12)
    assert r["latency_ms"] <= 170.0 and r["relative_error"] <= 0.005
    assert all(s.layer["se"] == 0 for s in arch.shapes() if s.type == "mbconv")
    for m, (lo, hi) in zip(r["mids"], r["mid_bounds"]):
        assert lo <= m <= hi
