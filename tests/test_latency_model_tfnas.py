"""LatencyModel on the TF-NAS spaces: `cost_factors` of `tfnas` and `tfnas-mbv2` (latbench/spaces/tfnas.py).

The LUTs here are synthetic: every op of the space (space.ops(granularity)) with
ms = 1e-6 * MACs + 1e-5 * output elements + 1e-3, from latbench.ops.op_features. The numbers mean
nothing; distinct ops get distinct costs, so any misplaced, missing or extra op shows up in the
exactness checks below.
"""
import itertools
from collections import Counter

import numpy as np
import pytest

from latbench.lut.latency_model import LatencyModel
from latbench.lut import LatencyTable, make_lut
from latbench.ops import decompose, op_features
from latbench.spaces.tfnas import TFNASMBV2Space, TFNASSpace

torch = pytest.importorskip("torch")

SPACES = [TFNASSpace(), TFNASMBV2Space()]
GRANULARITIES = ("block", "layer")
CASES = [(s, g) for s in SPACES for g in GRANULARITIES]
IDS = [f"{s.name}-{g}" for s, g in CASES]
BASE_MS = 0.25
N_RANDOM = 200


def _synthetic_ms(op) -> float:
    f = op_features(op)
    return 1e-6 * f["macs"] + 1e-5 * f["out"] + 0.001


def _synthetic_lut(space, granularity) -> dict:
    entries = {op.key: {"ms": _synthetic_ms(op)} for op in space.ops(granularity)}
    return make_lut(device={"name": "synthetic"}, runtime="none", batch=1, granularity=granularity,
                    method="fitted", spaces=[space.name], base_ms=BASE_MS, entries=entries,
                    provenance_info={"note": "synthetic table for an exactness test"})


_MODELS = {}


def _model(space, granularity):
    key = (space.name, granularity)
    if key not in _MODELS:
        table = LatencyTable.from_dict(_synthetic_lut(space, granularity))
        _MODELS[key] = (table, LatencyModel(space, table))
    return _MODELS[key]


def _samples(space, n=N_RANDOM, seed=1234):
    rng = np.random.default_rng(seed)
    return [space.sample(rng) for _ in range(n)]


def _own_decisions(space, pos):
    """Positions of block `pos`'s own decisions (op; op and width in tfnas-mbv2)."""
    return tuple(sorted(space._block_candidates(pos)[0]))


# ---------------------------------------------------------------------- factor structure
@pytest.mark.parametrize("space,granularity", CASES, ids=IDS)
def test_factor_layout(space, granularity):
    factors = space.cost_factors(granularity)
    assert len(factors) == 1 + space.num_blocks
    assert factors[0].decisions == ()
    for pos, ((si, b), f) in enumerate(zip(space.blocks, factors[1:])):
        want = _own_decisions(space, pos)
        if b > 0:
            want += (space.depth_decision(si),)
        assert f.decisions == want, f.name
    # every decision is used by some factor
    used = {d for f in factors for d in f.decisions}
    assert used == set(range(space.num_decisions))


@pytest.mark.parametrize("space,granularity", CASES, ids=IDS)
def test_factor_ops_partition_decompose(space, granularity):
    """The multiset of op keys over all factors equals the decoded arch's, for every sampled arch."""
    factors = space.cost_factors(granularity)
    archs = _samples(space, 100, seed=7)
    # plus the extremes: minimum and maximum depth with every option
    sizes = space.sizes
    for lo in (True, False):
        for j in range(max(sizes)):
            idx = [min(j, n - 1) for n in sizes]
            for si in space.depth_stages:
                pos = space.depth_decision(si)
                idx[pos] = 0 if lo else sizes[pos] - 1
            archs.append(idx)
    for idx in archs:
        got = Counter(op.key for f in factors for op in f.ops(tuple(idx[d] for d in f.decisions)))
        want = Counter(u.op.key for u in decompose(space.decode(idx), granularity))
        assert got == want, idx


def test_bad_granularity():
    from latbench.errors import BadInput

    with pytest.raises(BadInput):
        TFNASSpace().cost_factors("stage")


# ---------------------------------------------------------------------- latency == predict
@pytest.mark.parametrize("space,granularity", CASES, ids=IDS)
def test_latency_equals_predict(space, granularity):
    table, model = _model(space, granularity)
    idx = _samples(space)
    got = model.latency(idx)
    want = np.array([table.predict(space.decode(i)).latency_ms for i in idx])
    assert not any(table.predict(space.decode(i)).estimated for i in idx[:5])  # every key is in the table
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=0)
    assert model.latency(idx[0]) == pytest.approx(want[0], rel=1e-9)


# ---------------------------------------------------------------------- expected latency
def _one_hot(space, idx):
    return [torch.nn.functional.one_hot(torch.tensor(i), n).to(torch.float64) for i, n in zip(idx, space.sizes)]


@pytest.mark.parametrize("space,granularity", CASES, ids=IDS)
def test_expected_latency_one_hot(space, granularity):
    table, model = _model(space, granularity)
    for idx in _samples(space, 20, seed=99):
        got = float(model.expected_latency(_one_hot(space, idx)))
        assert got == pytest.approx(table.predict(space.decode(idx)).latency_ms, rel=1e-9)


def _block_costs(space, table):
    """costs[pos][option] = predicted ms of searchable block `pos` with per-block option `option`,
    read off `table.predict` of full-depth archs (every block at the same option) by layer index.
    Also the ms of everything else (stem, fixed block, head, pool, fc; base excluded)."""
    full = [0] * space.num_decisions
    for si in space.depth_stages:
        pos = space.depth_decision(si)
        full[pos] = space.sizes[pos] - 1
    cands = [list(space._block_candidates(pos)) for pos in range(space.num_blocks)]
    n_opt = len(cands[0])
    costs = np.zeros((space.num_blocks, n_opt))
    rest = None
    for j in range(n_opt):
        idx = list(full)
        for c in cands:
            for p, v in c[j].items():
                idx[p] = v
        per_layer = Counter()
        for layer, _, _, ms, _ in table.predict(space.decode(idx)).per_op:
            per_layer[layer] += ms
        for pos in range(space.num_blocks):
            costs[pos, j] = per_layer[2 + pos]  # layers: stem, fixed block, then the blocks
        r = sum(ms for layer, ms in per_layer.items() if not 2 <= layer < 2 + space.num_blocks)
        assert rest is None or rest == pytest.approx(r, rel=1e-12)
        rest = r
    return cands, costs, rest


def _option_probs(space, cands, pos, probs):
    """P(block `pos` takes per-block option j) = product of its own decisions' probabilities."""
    return np.array([np.prod([probs[p][v] for p, v in c.items()]) for c in cands[pos]])


def _brute_force_expectation(space, table, probs):
    """E[predicted latency] by enumerating, stage by stage, the joint distribution of the stage's
    block options and its depth (stages are independent and add), with per-block costs from predict."""
    cands, costs, rest = _block_costs(space, table)
    total = table.base_ms + rest
    for si, st in enumerate(space.STAGES):
        positions = [pos for pos, (s, _) in enumerate(space.blocks) if s == si]
        opt_p = [_option_probs(space, cands, pos, probs) for pos in positions]
        dpos = space.depth_decision(si)
        depth_p = {1: 1.0} if dpos is None else dict(zip(space.choices[dpos].options, probs[dpos]))
        stage = 0.0
        for depth, pd in depth_p.items():
            kept = positions[:depth]
            # the joint over the kept blocks' options, as one broadcast grid
            grid_p = np.ones([1] * len(kept))
            grid_c = np.zeros([1] * len(kept))
            for axis, pos in enumerate(kept):
                shape = [1] * len(kept)
                shape[axis] = -1
                grid_p = grid_p * opt_p[positions.index(pos)].reshape(shape)
                grid_c = grid_c + costs[pos].reshape(shape)
            stage += pd * float((grid_p * grid_c).sum())
        total += stage
    return total


def _random_logits(space, seed):
    g = torch.Generator().manual_seed(seed)
    return [(2 * torch.randn(n, generator=g, dtype=torch.float64)).requires_grad_() for n in space.sizes]


@pytest.mark.parametrize("space,granularity", CASES, ids=IDS)
def test_expected_latency_brute_force(space, granularity):
    table, model = _model(space, granularity)
    for seed in (0, 1, 2):
        logits = _random_logits(space, seed)
        probs = [torch.softmax(l, 0) for l in logits]
        got = model.expected_latency(probs)
        assert got.requires_grad
        want = _brute_force_expectation(space, table, [p.detach().numpy() for p in probs])
        assert float(got.detach()) == pytest.approx(want, rel=1e-9)


def test_brute_force_enumerates_small_stage_exactly():
    """Cross-check of the brute force itself: for `tfnas` stage 2 (3 blocks, 8 ops, 3 depths), the
    expectation over all 8**3 * 3 full stage assignments (other stages fixed, decoded and predicted
    one by one) equals the brute-force value's stage-2 part plus the fixed rest."""
    space = TFNASSpace()
    table, model = _model(space, "block")
    logits = _random_logits(space, 5)
    probs = [torch.softmax(l, 0).detach().numpy() for l in logits]
    si = 1
    positions = [pos for pos, (s, _) in enumerate(space.blocks) if s == si]
    dpos = space.depth_decision(si)
    # point-mass every other decision at its argmax
    point = [int(np.argmax(p)) for p in probs]
    sharp = [np.eye(len(p))[i] for p, i in zip(probs, point)]
    for pos in positions + [dpos]:
        sharp[pos] = probs[pos]
    want = 0.0
    for ops in itertools.product(range(len(space.OPS)), repeat=len(positions)):
        for d in range(space.sizes[dpos]):
            idx = list(point)
            for pos, o in zip(positions, ops):
                idx[pos] = o
            idx[dpos] = d
            w = probs[dpos][d] * np.prod([probs[pos][o] for pos, o in zip(positions, ops)])
            want += w * table.predict(space.decode(idx)).latency_ms
    assert _brute_force_expectation(space, table, sharp) == pytest.approx(want, rel=1e-9)
    got = float(model.expected_latency([torch.tensor(p) for p in sharp]))
    assert got == pytest.approx(want, rel=1e-9)


@pytest.mark.parametrize("space,granularity", CASES, ids=IDS)
def test_expected_latency_gradients(space, granularity):
    table, model = _model(space, granularity)
    logits = _random_logits(space, 3)
    probs = [torch.softmax(l, 0) for l in logits]
    for p in probs:
        p.retain_grad()
    model.expected_latency(probs).backward()
    for pos, l in enumerate(logits):
        assert l.grad is not None and torch.isfinite(l.grad).all()
        assert l.grad.abs().max() > 0, space.choices[pos].name  # every decision changes the cost
    # d E / d p exactly, up to a constant per decision (E off the simplex is not unique, and the
    # softmax makes the logit gradient blind to it): an op decision's option j contributes
    # P(block kept) * its block cost ...
    cands, costs, _ = _block_costs(space, table)
    pn = [p.detach().numpy() for p in probs]
    kept = {}
    for pos, (si, b) in enumerate(space.blocks):
        dpos = space.depth_decision(si)
        kept[pos] = 1.0 if b == 0 else float(sum(pn[dpos][k] for k, d in enumerate(space.choices[dpos].options)
                                                 if d > b))
    for pos in range(space.num_blocks):
        for p in _own_decisions(space, pos):
            want = np.zeros(space.sizes[p])
            for c, cost in zip(cands[pos], costs[pos]):
                others = np.prod([pn[q][v] for q, v in c.items() if q != p])
                want[c[p]] += kept[pos] * others * cost
            _assert_same_up_to_shift(probs[p].grad.numpy(), want)
    # ... and a depth option d the expected cost of the stage's first d blocks
    for si in space.depth_stages:
        dpos = space.depth_decision(si)
        positions = [pos for pos, (s, _) in enumerate(space.blocks) if s == si]
        mean = [float(_option_probs(space, cands, pos, pn) @ costs[pos]) for pos in positions]
        want = [sum(mean[:d]) for d in space.choices[dpos].options]
        _assert_same_up_to_shift(probs[dpos].grad.numpy(), want)


def _assert_same_up_to_shift(got, want):
    got, want = np.asarray(got) - got[0], np.asarray(want) - want[0]
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9 * np.abs(want).max())
