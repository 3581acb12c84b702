"""Precision instead of counts (adaptive rounds), per-item CIs in the store, and worker processes."""
import json
import os

import pytest

from latbench.devices.base import Device, Sample
from latbench.measure.protocol import Item, Protocol, imprecise, run_items
from latbench.measure.store import ProfileStore
from latbench.stats import level_ci_pct


class RoundNoiseDevice(Device):
    """Item `key` has level `levels[key]`; its r-th round is off by `wobble[key]` × (+1, −1, +1, ...)."""

    name = "scripted"

    def __init__(self, levels, wobble):
        self.levels, self.wobble, self.count = levels, wobble, {}

    def fingerprint(self):
        return {"device": "scripted"}

    def prepare(self, target):
        return target

    def measure(self, prepared, runs, warmup, min_warmup_s=0.0):
        n = self.count.get(prepared, 0)
        self.count[prepared] = n + 1
        ms = self.levels[prepared] * (1 + self.wobble[prepared] * (1 if n % 2 == 0 else -1))
        return Sample([ms] * runs, timed_s=0.0)


def items(keys):
    return [Item(k, k, "op", {}) for k in keys]


def test_level_ci_known_values():
    # mean 1, s = 0.02, t(0.975, 2) = 4.3027: half-width 4.3027 · 0.02 / √3
    assert level_ci_pct([1.0, 1.02, 0.98]) == pytest.approx(100 * 4.302653 * 0.02 / 3 ** 0.5, rel=1e-6)
    assert level_ci_pct([2.0, 2.0]) == 0.0
    assert level_ci_pct([1.0]) is None


def quick(**kw):
    return Protocol(**{"rounds": 3, "runs": 2, "warmup": 0, "min_round_s": 0.0, "extra_rounds": 0, **kw})


def test_precision_adds_rounds_only_where_the_level_is_not_yet_known(tmp_path):
    dev = RoundNoiseDevice({"steady": 1.0, "noisy": 2.0, "wild": 3.0}, {"steady": 0.0, "noisy": 0.01, "wild": 0.2})
    store = ProfileStore(tmp_path / "p.db", dev.fingerprint())
    p = quick(precision=0.5, max_rounds=30)
    run_items(dev, items(["steady", "noisy", "wild"]), store, p, progress=False)
    res = store.results()
    assert res["steady"]["rounds"] == 3 and res["steady"]["ci95_pct"] == 0.0  # the fixed rounds are a minimum
    # ±1 % alternating rounds: CI = t·s/√n ≤ 0.5 % first at n = 19 (0.494 %); not before
    assert res["noisy"]["ci95_pct"] <= 0.5 and res["noisy"]["rounds"] == 19
    assert level_ci_pct(store.round_medians("noisy")[:18]) > 0.5
    assert res["wild"]["rounds"] == 30 and res["wild"]["ci95_pct"] > 0.5  # capped at max_rounds
    assert imprecise(items(["steady", "noisy", "wild"]), store, p, store.rounds_done()) == []


def test_precision_stops_when_the_budget_is_spent(tmp_path):
    dev = RoundNoiseDevice({"a": 1.0}, {"a": 0.2})
    store = ProfileStore(tmp_path / "p.db", dev.fingerprint())
    run_items(dev, items(["a"]), store, quick(precision=0.5, budget_s=1e-9), progress=False)
    assert store.results()["a"]["rounds"] == 3  # the fixed rounds, then no adaptive round starts


def test_without_precision_the_rounds_are_fixed(tmp_path):
    dev = RoundNoiseDevice({"a": 1.0}, {"a": 0.2})
    store = ProfileStore(tmp_path / "p.db", dev.fingerprint())
    run_items(dev, items(["a"]), store, quick(), progress=False)
    assert store.results()["a"]["rounds"] == 3 and store.results()["a"]["ci95_pct"] > 0.5


def test_worker_processes_share_each_items_rounds(tmp_path):
    """--workers 2 on the real ORT device: an item's 4 rounds run in both workers, none in this process."""
    from latbench.cli.options import make_device
    from latbench.ops import make_op

    dev = make_device("cpu", "ort", None, None, None, timing=None, workers=2)
    store = ProfileStore(tmp_path / "w.db", dev.fingerprint())
    op = make_op("pool", r=7, c=64)
    try:
        run_items(dev, [Item(op.key, op, "op", {})], store, Protocol(rounds=4, runs=3, warmup=1, min_round_s=0.0,
                                                                      extra_rounds=0), progress=False)
    finally:
        dev.close()
    conds = [json.loads(c) for (c,) in store.db.execute("SELECT conditions FROM rounds ORDER BY round")]
    assert sorted(c["worker"] for c in conds) == [0, 0, 1, 1]
    pids = {c["worker_pid"] for c in conds}
    assert len(pids) == 2 and os.getpid() not in pids
    assert store.results()[op.key]["ms"] > 0 and store.results()[op.key]["rounds"] == 4


def test_worker_errors_come_back_as_the_same_errors(tmp_path):
    """What the device refuses in a worker is refused the same way here (BadInput stays BadInput)."""
    from latbench.cli.options import make_device
    from latbench.errors import BadInput

    dev = make_device("cpu", "ort", None, None, None, timing=None, workers=2)
    try:
        with pytest.raises(BadInput, match="unknown op kind 'not-a-target'"):
            dev.measure(dev.prepare("not-a-target"), 2, 0)
    finally:
        dev.close()


def test_cli_precision_reports_the_ci(cli):
    r = cli("measure", "mobilenetv2", "--device", "cpu", "--rounds", "2", "--runs", "3", "--warmup", "1",
            "--precision", "50", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["rounds"] >= 2 and out["ci95_pct"] is not None
    assert out["ci95_pct"] <= 50 or out["rounds"] == 30
    assert out["protocol"]["precision"] == 50
