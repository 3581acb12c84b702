"""Measurement protocol and profile store: statistics, rounds, resume, fingerprints, re-measuring."""
import pytest

from latbench.devices.base import Device, Sample
from latbench.errors import BadInput
from latbench.measure.protocol import Item, Protocol, run_items, shard
from latbench.stats import summarize
from latbench.measure.store import ProfileStore


class ScriptedDevice(Device):
    """Unit-test double for protocol logic: returns given per-key latencies (no runtime involved)."""

    name = "scripted"

    def __init__(self, latency, noisy=(), fp=None):
        self.latency, self.noisy, self.calls, self.prepared = latency, set(noisy), [], []
        self.fp = fp or {"device": "scripted", "runtime": "none"}

    def fingerprint(self):
        return self.fp

    def available(self):
        return True, ""

    def prepare(self, target):
        self.prepared.append(target)
        return target

    def measure(self, prepared, runs, warmup, min_warmup_s=0.0):
        self.calls.append(prepared)
        base = self.latency[prepared]
        if prepared in self.noisy:
            vals = [base * (1 + 0.5 * (i % 2)) for i in range(runs)]  # CV far above 5%
        else:
            vals = [base] * runs
        return Sample(vals, timed_s=sum(vals) / 1e3)

    def conditions(self):
        return {"temp_c_max": 40.0}


def items_for(latency):
    return [Item(k, k, "op", {"space": "t"}) for k in latency]


def test_summarize_robust():
    s = summarize([1.0, 1.0, 1.0, 1.0, 100.0])
    assert s["ms"] == 1.0 and s["mad"] == 0.0 and s["cv"] == 0.0 and s["n"] == 5
    s = summarize([1, 2, 3, 4, 5], weights=[10] * 5)
    assert s["ms"] == 3 and s["n"] == 50 and s["mad"] == 1.0
    assert s["p10"] == pytest.approx(1.4) and s["p90"] == pytest.approx(4.6)
    assert s["cv"] == pytest.approx(100 * 1.4826 / 3)


def test_rounds_are_interleaved_and_shuffled(tmp_path):
    lat = {f"k{i}": 1.0 + i for i in range(8)}
    dev = ScriptedDevice(lat)
    store = ProfileStore(tmp_path / "p.db", dev.fingerprint())
    run_items(dev, items_for(lat), store, Protocol(rounds=3, runs=4, min_round_s=0), progress=False)
    calls = dev.calls
    assert len(calls) == 24
    rounds = [calls[0:8], calls[8:16], calls[16:24]]
    assert all(sorted(r) == sorted(lat) for r in rounds)  # every item once per round
    assert rounds[0] != rounds[1] or rounds[1] != rounds[2]  # orders are reshuffled
    res = store.results()
    assert {k: v["ms"] for k, v in res.items()} == lat
    assert all(v["n"] == 12 for v in res.values())
    assert len(dev.prepared) == 8  # prepared once, reused across rounds


def test_resume_continues_and_keeps_rows(tmp_path):
    lat = {f"k{i}": 2.0 for i in range(5)}
    db = tmp_path / "p.db"
    dev = ScriptedDevice(lat)
    store = ProfileStore(db, dev.fingerprint())
    run_items(dev, items_for(lat), store, Protocol(rounds=1, runs=2), progress=False)
    store.close()
    dev2 = ScriptedDevice(lat)
    store = ProfileStore(db, dev2.fingerprint())
    run_items(dev2, items_for(lat), store, Protocol(rounds=3, runs=2), progress=False)
    assert len(dev2.calls) == 10  # only the two missing rounds per item
    assert set(store.rounds_done().values()) == {3}
    dev3 = ScriptedDevice(lat)
    run_items(dev3, items_for(lat), store, Protocol(rounds=3, runs=2), progress=False)
    assert dev3.calls == []  # nothing left to do


def test_resuming_after_a_long_gap_warns_once(tmp_path, capsys):
    import time

    from latbench.measure.profiling import RESUME_GAP_S, profile_items, stale_resume_warning

    lat = {f"k{i}": 2.0 for i in range(4)}
    db = tmp_path / "p.db"
    profile_items([ScriptedDevice(lat)], items_for(lat), db, Protocol(rounds=1, runs=2), progress=False)
    store = ProfileStore(db, ScriptedDevice(lat).fingerprint())
    now = time.time()
    assert stale_resume_warning(store, items_for(lat), Protocol(rounds=3), now) is None  # just measured
    assert stale_resume_warning(store, items_for(lat), Protocol(rounds=1), now + 2 * RESUME_GAP_S) is None  # done
    line = stale_resume_warning(store, items_for(lat), Protocol(rounds=3), now + 2 * RESUME_GAP_S)
    assert "adding rounds to 4 items last measured 2.0 h ago" in line and str(db) in line and "\n" not in line
    with store.db:  # the rounds were measured three hours ago
        store.db.execute("UPDATE rounds SET ts = ts - ?", (3 * RESUME_GAP_S,))
    store.close()
    capsys.readouterr()
    profile_items([ScriptedDevice(lat)], items_for(lat), db, Protocol(rounds=2, runs=2), progress=False)
    err = capsys.readouterr().err
    assert err.count("latbench: warning:") == 1 and "3.0 h ago" in err
    profile_items([ScriptedDevice(lat)], items_for(lat), db, Protocol(rounds=3, runs=2), progress=False)
    assert "warning" not in capsys.readouterr().err  # the last rounds are fresh again


def test_noisy_items_are_remeasured(tmp_path):
    lat = {"quiet": 1.0, "noisy": 1.0}
    dev = ScriptedDevice(lat, noisy={"noisy"})
    store = ProfileStore(tmp_path / "p.db", dev.fingerprint())
    run_items(dev, items_for(lat), store, Protocol(rounds=3, runs=4, max_cv=5.0, extra_rounds=2), progress=False)
    done = store.rounds_done()
    assert done["quiet"] == 3 and done["noisy"] == 5  # capped at rounds + extra_rounds
    cond = store.db.execute("SELECT conditions FROM rounds LIMIT 1").fetchone()[0]
    assert '"before"' in cond and '"after"' in cond


def test_store_refuses_other_fingerprint(tmp_path):
    db = tmp_path / "p.db"
    ProfileStore(db, {"device": "cpu", "runtime": "ort", "model": "A"}).close()
    with pytest.raises(BadInput, match="another device fingerprint") as err:
        ProfileStore(db, {"device": "cpu", "runtime": "torch", "model": "A"})
    assert "different in runtime." in str(err.value)  # says what changed (e.g. torch's `heap` setting)
    assert ProfileStore(db).fingerprint["runtime"] == "ort"


def test_store_rejects_non_sqlite(tmp_path):
    bad = tmp_path / "x.db"
    bad.write_text("this is not sqlite " * 100)
    with pytest.raises(BadInput, match="not a latbench profile store"):
        ProfileStore(bad, {"device": "cpu"})


def test_shards_are_disjoint_and_complete():
    items = items_for({f"k{i}": 1.0 for i in range(11)})
    parts = [shard(items, i, 3) for i in range(3)]
    keys = [it.key for p in parts for it in p]
    assert sorted(keys) == sorted(it.key for it in items) and len(set(keys)) == 11


def test_fast_items_get_more_runs_in_later_rounds(tmp_path):
    lat = {"fast": 0.1, "slow": 50.0}
    dev = ScriptedDevice(lat)
    store = ProfileStore(tmp_path / "p.db", dev.fingerprint())
    run_items(dev, items_for(lat), store, Protocol(rounds=2, runs=5, min_round_s=0.03), progress=False)
    n = {k: v["n"] for k, v in store.results().items()}
    assert n["slow"] == 10  # 5 + 5: one round already lasts 250 ms
    assert n["fast"] == 5 + 300  # second round sized to 30 ms / 0.1 ms


def test_drop_rounds_forgets_one_kind_and_resume_remeasures_it(tmp_path):
    lat = {"a1": 1.0, "a2": 1.0, "o1": 1.0}
    dev = ScriptedDevice(lat)
    store = ProfileStore(tmp_path / "p.db", dev.fingerprint())
    items = [Item(k, k, "arch" if k.startswith("a") else "op", {}) for k in lat]
    run_items(dev, items, store, Protocol(rounds=2, runs=2), progress=False)
    store.add_node_profile("a1", 0, [{"name": "n", "ms": 1.0}])
    assert store.drop_rounds("arch") == 4
    assert store.rounds_done() == {"o1": 2}
    assert store.node_profiles("a1") and set(store.items()) == set(lat)  # items and node profiles stay
    dev2 = ScriptedDevice(lat)
    run_items(dev2, items, store, Protocol(rounds=2, runs=2), progress=False)
    assert sorted(c for c in dev2.calls) == ["a1", "a1", "a2", "a2"]


def test_an_op_registered_again_belongs_to_every_granularity_and_space(tmp_path):
    from latbench.measure.store import tags_of

    store = ProfileStore(tmp_path / "p.db", {"device": "scripted"})
    store.register("stem", "op", {"space": "A", "granularity": "block"})
    store.register("stem", "op", {"space": "A", "granularity": "layer"})
    store.register("stem", "op", {"space": "B", "granularity": "layer"})
    store.register("only-a", "op", {"space": "A", "granularity": "block"})
    store.register("only-a", "op", {"space": "A", "granularity": "block"})
    meta = store.items("op")
    assert tags_of(meta["stem"], "granularity") == {"block", "layer"} and tags_of(meta["stem"], "space") == {"A", "B"}
    assert meta["stem"]["granularity"] == "block"  # the first registration's fields stay (older readers)
    assert meta["only-a"] == {"kind": "op", "space": "A", "granularity": "block"}  # nothing added when nothing new
