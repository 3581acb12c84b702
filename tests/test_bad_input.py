"""Bad input is found before any work starts: one line on stderr, exit 2, nothing written, nothing
measured or trained (issue 29's twelve cases, plus cached models checked by their digest).

Most cases run the real CLI (tests/conftest.py `cli`); store races and locks run the library in
several processes, as two users would.
"""
from __future__ import annotations

import itertools
import json
import multiprocessing
import os
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from latbench.errors import BadInput
from latbench.measure.store import ProfileStore

REPO = Path(__file__).resolve().parents[1]
LUTS = REPO / "lut_tables"
ARCHS = REPO / "latbench" / "archs"
UNWRITABLE = "/proc/nope/out.json"  # a folder that cannot exist, even for root


def one_line_error(res, *needles, limit: int = 400):
    assert res.returncode == 2, (res.returncode, res.stdout[-500:], res.stderr[-2000:])
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr[-2000:]
    assert lines[0].startswith("latbench: error: ") and "Traceback" not in res.stderr
    assert len(lines[0]) <= limit, len(lines[0])
    for n in needles:
        assert n in lines[0], lines[0]
    assert res.stdout == ""
    return lines[0]


def tables(db) -> set:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    finally:
        con.close()


def make_store(db, fp=None, rounds=()):
    """A latbench store with one fingerprint (and optional (key, ms) rounds)."""
    from latbench.devices.base import Sample

    store = ProfileStore(db, fp or {"device": "cpu", "runtime": "ort", "model": "test"})
    for key, ms in rounds:
        store.register(key, "op", {"space": "proxylessnas", "granularity": "block"})
        store.add_round(key, 0, Sample([ms] * 3, timed_s=ms * 3e-3))
    store.close()
    return db


# ====================================================================== 1. unreadable JSON
def test_non_utf8_and_deeply_nested_json(cli, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_bytes(b'\xff\xfe{"format": "latbench-arch/1"}')
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    one_line_error(cli("macs", bad), str(bad), "not UTF-8")
    one_line_error(cli("macs", deep), str(deep), "nested too deeply")
    one_line_error(cli("predict", "mobilenetv2", "--lut", deep), str(deep), "nested too deeply")
    db = make_store(tmp_path / "store.db")  # a real SQLite file passed as a table
    one_line_error(cli("predict", "mobilenetv2", "--lut", db), str(db), "not UTF-8")
    out = tmp_path / "out.json"
    one_line_error(cli("build-lut", "--db", db, "--method", "fitted", "--prior-lut", bad, "-o", out),
                   str(bad), "not UTF-8")
    assert not out.exists()
    one_line_error(cli("import-lut", "tunas", "--space", "proxylessnas", "--data", bad, "-o", out),
                   "--data", str(bad), "not UTF-8")
    one_line_error(cli("import-lut", "tunas", "--space", "proxylessnas", "--data", deep, "-o", out),
                   "--data", str(deep), "nested too deeply")
    assert not out.exists()


# ====================================================================== 2. LUT contents
def _isolated_table() -> dict:
    return json.loads((LUTS / "cpu-ort-proxylessnas-isolated.json").read_text())


def _tunas_table() -> dict:
    return json.loads((LUTS / "pixel1-tunas-proxylessnas.json").read_text())


def _first(d):
    return next(iter(d["entries"]))


LUT_CASES = {
    "ms NaN": (_isolated_table, lambda d: d["entries"][_first(d)].update(ms=float("nan")), ".ms: must be a finite"),
    "ms +inf": (_isolated_table, lambda d: d["entries"][_first(d)].update(ms=float("inf")), ".ms: must be a finite"),
    "ms -inf": (_isolated_table, lambda d: d["entries"][_first(d)].update(ms=float("-inf")), ".ms: must be a finite"),
    "ms negative": (_isolated_table, lambda d: d["entries"][_first(d)].update(ms=-5.0), "≥ 0, got -5.0"),
    "base NaN": (_isolated_table, lambda d: d.update(base_ms=float("nan")), "base_ms: must be a finite"),
    "base inf": (_isolated_table, lambda d: d.update(base_ms=float("inf")), "base_ms: must be a finite"),
    "isolated base negative": (_isolated_table, lambda d: d.update(base_ms=-5.0), "base_ms: -5 < 0"),
    "garbage key": (_isolated_table, lambda d: d["entries"].update({"hello world": {"ms": 1.0}}),
                    "unknown op kind 'hello world'"),
    "unknown field": (_isolated_table, lambda d: d.update(colour="blue"), "unknown field 'colour'"),
    "units": (_isolated_table, lambda d: d.update(units="us"), "units: latencies are in ms"),
    "tunas no space": (_tunas_table, lambda d: d.update(spaces=[]), "must name exactly one space"),
    "tunas unknown space": (_tunas_table, lambda d: d.update(spaces=["nope"]), "unknown space 'nope'"),
    "block unknown space": (_isolated_table, lambda d: d.update(spaces=["nope"]), "unknown space 'nope'"),
    "tunas garbage key": (_tunas_table, lambda d: d["entries"].update({"blah": {"ms": 1.0}}),
                          "'blah' is not a tunas-layer key"),
}


@pytest.mark.parametrize("case", list(LUT_CASES))
def test_bad_lut_contents_are_refused_naming_the_file(case, cli, tmp_path):
    make, mutate, needle = LUT_CASES[case]
    data = make()
    mutate(data)
    path = tmp_path / "t.json"
    path.write_text(json.dumps(data))  # NaN / Infinity as Python's json writes them
    one_line_error(cli("predict", "proxylessnas-mobile", "--lut", path), str(path), needle)


def test_lut_checks_in_library_and_search(cli, tmp_path):
    from latbench.lut import LatencyTable

    # fitted, context and imported tables legitimately have a negative base (a fitted intercept)
    for name in ("cpu-ort-proxylessnas-fitted", "cpu-ort-proxylessnas-context", "pixel1-tunas-mobilenetv3-like"):
        data = json.loads((LUTS / f"{name}.json").read_text())
        assert data["base_ms"] < 0 and LatencyTable.from_dict(data, name).base_ms == data["base_ms"]
    data = _tunas_table()
    data["entries"][_first(data)]["ms"] = float("nan")
    path = tmp_path / "nan.json"
    path.write_text(json.dumps(data))
    out = tmp_path / "search"
    one_line_error(cli("search", "--target-ms", "84", "--lut", path, "--out", out), str(path), "finite")
    assert not out.exists()


# ====================================================================== 3. stores
def _unrelated_db(path):
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE people (name TEXT, age INTEGER)")
    con.execute("INSERT INTO people VALUES ('ada', 36)")
    con.commit()
    con.close()
    return path


def test_unrelated_sqlite_file_is_never_touched(cli, tmp_path):
    db = _unrelated_db(tmp_path / "unrelated.db")
    before = db.read_bytes()
    one_line_error(cli("profile", "--device", "cpu", "--space", "proxylessnas", "--limit", "1", "--rounds", "1",
                       "--db", db), str(db), "not a latbench profile store", "people")
    one_line_error(cli("build-lut", "--db", db, "-o", tmp_path / "o.json"), str(db), "not a latbench profile store")
    assert db.read_bytes() == before and tables(db) == {"people"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["unrelated.db"]  # no lock, WAL or output files
    # another application's SQLite file (its own application_id) is refused too
    con = sqlite3.connect(tmp_path / "app.db")
    con.execute("PRAGMA application_id=1234")
    con.commit()
    con.close()
    with pytest.raises(BadInput, match="another application's SQLite file"):
        ProfileStore(tmp_path / "app.db", {"device": "cpu"})


def test_store_with_clashing_table_or_corrupt_row(cli, tmp_path):
    clash = tmp_path / "clash.db"
    con = sqlite3.connect(clash)  # latbench's fingerprints table, but an `items` table of someone else's
    con.execute("CREATE TABLE fingerprints (id TEXT PRIMARY KEY, json TEXT NOT NULL, created REAL NOT NULL)")
    con.execute("CREATE TABLE items (a, b)")
    con.commit()
    con.close()
    one_line_error(cli("build-lut", "--db", clash, "-o", tmp_path / "o.json"), str(clash), "its table items has columns a, b")
    assert tables(clash) == {"fingerprints", "items"}

    corrupt = make_store(tmp_path / "corrupt.db")
    con = sqlite3.connect(corrupt)
    con.execute("UPDATE fingerprints SET json = '{not json'")
    con.commit()
    con.close()
    one_line_error(cli("build-lut", "--db", corrupt, "-o", tmp_path / "o.json"), str(corrupt), "corrupt row")
    assert not (tmp_path / "o.json").exists()


def test_unopenable_store_path(cli, tmp_path):
    res = cli("profile", "--device", "cpu", "--space", "proxylessnas", "--limit", "1", "--db", "/proc/nope/foo.db")
    line = one_line_error(res, "/proc/nope/foo.db", "cannot create the profile store")
    assert "not a latbench profile store" not in line
    folder = tmp_path / "dir.db"
    folder.mkdir()
    with pytest.raises(BadInput, match="is a folder"):
        ProfileStore(folder)


def test_store_from_before_the_marker_still_opens(tmp_path):
    from latbench.measure.store import SCHEMA
    from latbench.measure.store_file import APPLICATION_ID

    db = tmp_path / "old.db"
    con = sqlite3.connect(db)  # what older latbench wrote: the tables, no application_id, no node_profiles
    con.executescript(SCHEMA.split("CREATE TABLE IF NOT EXISTS node_profiles")[0])
    con.execute("INSERT INTO fingerprints VALUES ('abc', '{\"device\": \"cpu\"}', 0)")
    con.commit()
    con.close()
    store = ProfileStore(db)
    assert store.fp == "abc" and store.fingerprint == {"device": "cpu"} and store.node_profiles("x") == []
    store.close()
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    con.close()


# ====================================================================== 4. unwritable outputs
def test_unwritable_outputs_are_found_first(cli, tmp_path):
    db = make_store(tmp_path / "s.db", rounds=[("pool:r=1:c=8", 0.01)])
    one_line_error(cli("build-lut", "--db", db, "-o", UNWRITABLE), "-o", UNWRITABLE, "cannot write")
    one_line_error(cli("import-lut", "tunas", "--space", "proxylessnas", "-o", UNWRITABLE), UNWRITABLE, "cannot write")
    one_line_error(cli("sample", "--space", "proxylessnas", "--seed", "1", "-o", UNWRITABLE), UNWRITABLE, "cannot write")
    assert [p.name for p in tmp_path.iterdir()] == ["s.db"]


def test_check_writable_leaves_nothing(tmp_path):
    from latbench.fileio import check_writable

    check_writable(tmp_path / "a" / "b" / "c.json", "-o")  # folders that atomic_write would create
    check_writable(tmp_path / "new", "--out", folder=True)
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "f").write_text("x")
    with pytest.raises(BadInput, match="is a file, not a folder"):
        check_writable(tmp_path / "f", "--out", folder=True)
    with pytest.raises(BadInput, match="not a folder"):
        check_writable(tmp_path / "f" / "x.json", "-o")


# ====================================================================== 5./6. search options
@pytest.mark.parametrize("args,needle", [
    (("--target-ms", "inf"), "--target-ms: must be a finite number"),
    (("--target-ms", "1e9"), "1e+09 ms is out of reach: pixel1-tunas-proxylessnas prices the archs of "
                             "proxylessnas at 30.94–219.09 ms"),
    (("--target-ms", "1e-9"), "out of reach"),
    (("--target-ms", "84", "--beta", "nan"), "--beta: must be a finite number"),
    (("--target-ms", "84", "--out", UNWRITABLE), "--out: /proc/nope/out.json: cannot write"),
])
def test_search_options_checked_before_the_search(args, needle, cli, tmp_path):
    args = args if "--out" in args else args + ("--out", str(tmp_path / "run"))
    one_line_error(cli("search", *args, "--steps", "2"), needle)
    assert list(tmp_path.iterdir()) == []


def test_search_out_an_existing_file(cli, tmp_path):
    f = tmp_path / "result"
    f.write_text("keep me")
    one_line_error(cli("search", "--target-ms", "84", "--out", f), str(f), "is a file, not a folder")
    assert f.read_text() == "keep me"


class _FakeModel:
    """A LatencyModel's factor arrays (what latency_range reads), for exhaustive comparison."""

    def __init__(self, sizes, factors, base):
        self.sizes = np.array(sizes)
        self.base_ms, self.const_ms = base, 0.25
        self.factors = [(np.array(pos), None, flat, [sizes[d] for d in pos]) for pos, flat in factors]

    def latency(self, idx):
        total = self.base_ms + self.const_ms
        for pos, _, flat, dims in self.factors:
            total += flat.reshape(dims)[tuple(idx[d] for d in pos)]
        return total


@pytest.mark.parametrize("seed", range(5))
def test_latency_range_is_exact(seed):
    from latbench.lut.latency_range import latency_range

    rng = np.random.default_rng(seed)
    sizes = [int(s) for s in rng.integers(2, 4, size=7)]
    factors = []
    for _ in range(8):  # overlapping factors: per-factor sums would only bound the range
        pos = sorted(rng.choice(7, size=int(rng.integers(1, 4)), replace=False).tolist())
        factors.append((pos, rng.normal(size=int(np.prod([sizes[d] for d in pos])))))
    lm = _FakeModel(sizes, factors, base=1.5)
    every = [lm.latency(idx) for idx in itertools.product(*[range(s) for s in sizes])]
    lo, hi, exact = latency_range(lm)
    assert exact and lo == pytest.approx(min(every), abs=1e-12) and hi == pytest.approx(max(every), abs=1e-12)


def test_latency_range_contains_every_sampled_arch():
    from latbench.lut.files import load_table
    from latbench.lut.latency_model import LatencyModel
    from latbench.lut.latency_range import latency_range
    from latbench.spaces import get_space

    space = get_space("mobilenetv3-like")
    lm = LatencyModel(space, load_table("pixel1-tunas-mobilenetv3-like"))
    lo, hi, exact = latency_range(lm)
    idx = (np.random.default_rng(0).random((20000, space.num_decisions)) * np.array(space.sizes)).astype(np.int64)
    lat = lm.latency(idx)
    assert exact and lo <= lat.min() and lat.max() <= hi
    per_factor_lo = lm.base_ms + lm.const_ms + sum(f[2].min() for f in lm.factors)
    assert per_factor_lo < lo - 100  # the naive bound is far looser here (shared width decisions)


# ====================================================================== 7. validate prices first
def test_validate_prices_every_arch_before_measuring(cli, tmp_path):
    out = tmp_path / "v"
    res = cli("validate", "--archs", "3", "--device", "cpu", "--runtime", "ort", "--lut", "pixel1-tunas-proxylessnas",
              "--space", "proxylessnas-enlarged", "--out", out)
    one_line_error(res, "is not an option of space proxylessnas")
    assert not out.exists() and list(tmp_path.iterdir()) == []  # no measurements.db, no report


# ====================================================================== 8. errors name the file, cut values
def test_arch_errors_name_the_file_and_cut_echoed_values(cli, tmp_path):
    arch = json.loads((ARCHS / "mobilenetv2.json").read_text())
    arch["name"] = "n" * 5_000_000
    path = tmp_path / "big-name.json"
    path.write_text(json.dumps(arch))
    line = one_line_error(cli("predict", path, "--lut", "pixel1-tunas-proxylessnas"), str(path))
    assert "nnnnnnnnnn" not in line
    arch = json.loads((ARCHS / "mobilenetv2.json").read_text())
    arch["layers"][0]["act"] = "x" * 5_000_000
    path.write_text(json.dumps(arch))
    one_line_error(cli("macs", path), str(path), "unknown activation 'xxx")
    arch = json.loads((ARCHS / "mobilenetv2.json").read_text())
    arch["y" * 1_000_000] = 1
    path.write_text(json.dumps(arch))
    one_line_error(cli("macs", path), str(path), "unknown field 'yyy")


# ====================================================================== 9. fingerprint race
def _enter(db, model, barrier, results):
    barrier.wait()
    try:
        ProfileStore(db, {"device": "cpu", "runtime": "ort", "model": model}).close()
        results.put("in")
    except BadInput as exc:
        results.put("refused" if "another device fingerprint" in str(exc) else str(exc))


def test_fingerprint_check_and_insert_are_one_transaction(tmp_path):
    ctx = multiprocessing.get_context("fork")
    for trial in range(12):
        db = tmp_path / f"race{trial}.db"
        make_store(db, {"device": "cpu", "runtime": "ort", "model": "seed"})  # an existing store, as in use
        con = sqlite3.connect(db)
        con.execute("DELETE FROM fingerprints")
        con.commit()
        con.close()
        barrier, results = ctx.Barrier(3), ctx.Queue()
        procs = [ctx.Process(target=_enter, args=(db, m, barrier, results)) for m in ("A", "B", "C")]
        for p in procs:
            p.start()
        for p in procs:
            p.join(120)
        got = sorted(results.get(timeout=5) for _ in procs)
        assert got == ["in", "refused", "refused"], (trial, got)
        con = sqlite3.connect(db)
        assert con.execute("SELECT COUNT(*) FROM fingerprints").fetchone()[0] == 1
        con.close()


# ====================================================================== 10. one writer per store
def test_second_profile_on_a_store_stops_before_measuring(cli, tmp_path):
    from latbench.devices import open_device

    db = tmp_path / "p.db"
    fp = open_device("cpu", "ort", check=False).fingerprint()
    holder = ProfileStore(db, fp, lock=True)  # a running `profile`
    try:
        res = cli("profile", "--device", "cpu", "--runtime", "ort", "--space", "proxylessnas", "--limit", "1",
                  "--rounds", "1", "--runs", "2", "--db", db)
        one_line_error(res, str(db), f"another latbench process (pid {os.getpid()})", "use another --db")
        assert holder.rounds_done() == {} and holder.items() == {}
        with pytest.raises(BadInput, match="another latbench process"):
            ProfileStore(db, fp, lock=True)
    finally:
        holder.close()
    assert not Path(f"{db}.lock").exists()
    ProfileStore(db, fp, lock=True).close()  # free again once the holder closed


# ====================================================================== 11. resume line, this run's work
def test_resumed_profile_says_so_and_counts_this_run(tmp_path, capsys):
    from latbench.devices.base import Device, Sample
    from latbench.measure.profiling import profile_items
    from latbench.measure.protocol import Item, Protocol

    class Scripted(Device):
        name = "scripted"

        def fingerprint(self):
            return {"device": "scripted", "runtime": "none"}

        def available(self):
            return True, ""

        def prepare(self, target):
            return target

        def measure(self, prepared, runs, warmup, min_warmup_s=0.0):
            return Sample([1.0] * runs, timed_s=1.0)  # one timed second per round

        def conditions(self):
            return {}

    items = [Item(f"k{i}", f"k{i}", "op", {"space": "t"}) for i in range(5)]
    db = tmp_path / "p.db"
    first = profile_items([Scripted()], items[:3], db, Protocol(rounds=2, runs=2, extra_rounds=0), progress=False)
    assert "resuming" not in capsys.readouterr().err
    assert first["measured_this_run"] == 3 and first["timed_s"] == pytest.approx(6.0)
    again = profile_items([Scripted()], items, db, Protocol(rounds=2, runs=2, extra_rounds=0), progress=False)
    assert "latbench: resuming: 3 of 5 items already measured" in capsys.readouterr().err
    assert again["already_measured"] == 3 and again["measured_this_run"] == 2 and again["measured"] == 5
    assert again["timed_s"] == pytest.approx(4.0) and again["store_timed_s"] == pytest.approx(10.0)


# ====================================================================== 12. sanity bounds
def _arch_file(tmp_path, edit, name="a.json"):
    from latbench.spaces import get_space

    space = get_space("proxylessnas")
    arch = space.decode(space.sample(1)).to_dict()  # records its space and indices
    edit(arch)
    path = tmp_path / name
    path.write_text(json.dumps(arch))
    return path


def test_huge_shapes_are_refused_before_measuring(cli, tmp_path):
    wide = _arch_file(tmp_path, lambda a: a["layers"][0].update(out=10 ** 9), "wide.json")
    big = _arch_file(tmp_path, lambda a: a.update(resolution=100_000), "big.json")
    one_line_error(cli("measure", wide, "--device", "cpu"), str(wide), "layers[0]", "over the limit")
    one_line_error(cli("measure", big, "--device", "cpu"), str(big), "input 1x3x100000x100000")
    one_line_error(cli("measure", "mobilenetv2", "--device", "cpu", "--max-elements", "1000"), "over the limit 1e+03")
    one_line_error(cli("measure", "mobilenetv2", "--device", "cpu", env={"LATBENCH_MAX_ELEMENTS": "1000"}),
                   "LATBENCH_MAX_ELEMENTS")
    from latbench.arch import check_size, load_arch

    check_size(load_arch(wide), limit=10 ** 14)  # the option raises the limit
    with pytest.raises(BadInput, match="over the limit"):
        from latbench.build.torch_model import build_torch

        build_torch(load_arch(wide))  # library users get the same check before any allocation


def test_far_outside_prediction_is_flagged(cli, tmp_path):
    wide = _arch_file(tmp_path, lambda a: a["layers"][0].update(out=10 ** 9), "wide.json")
    res = cli("predict", wide, "--lut", "cpu-ort-proxylessnas-isolated", "--json")
    assert res.returncode == 0, res.stderr
    warn = [l for l in res.stderr.splitlines() if l.startswith("latbench: warning:")]
    assert len(warn) == 1 and "far outside" in warn[0] and "10x the table's largest entry" in warn[0]
    assert json.loads(res.stdout)["far_outside_table"]
    res = cli("predict", "proxylessnas-mobile", "--lut", "cpu-ort-proxylessnas-isolated", "--json")
    assert "warning" not in res.stderr and json.loads(res.stdout)["far_outside_table"] == []


def test_inconsistent_indices_are_an_error(cli, tmp_path):
    short = _arch_file(tmp_path, lambda a: a.update(indices=a["indices"][:-1]), "short.json")
    wrong = _arch_file(tmp_path, lambda a: a["indices"].__setitem__(0, 99), "wrong.json")
    one_line_error(cli("macs", short), str(short), "indices: space proxylessnas has 73 decisions, got 72")
    one_line_error(cli("predict", wrong, "--lut", "pixel1-tunas-proxylessnas"), str(wrong), "indices[0]", "index 99")
    from latbench.arch import load_arch
    from latbench.spaces import get_space

    with pytest.raises(BadInput, match="indices"):
        get_space("proxylessnas").encode(load_arch(short))


def test_options_that_do_not_apply_to_the_device(cli, tmp_path):
    db = tmp_path / "p.db"
    one_line_error(cli("profile", "--device", "cpu", "--space", "proxylessnas", "--gpus", "0,1", "--db", db),
                   "--gpus", "does not apply to --device cpu")
    one_line_error(cli("profile", "--device", "cpu", "--space", "proxylessnas", "--serial", "A1", "--db", db),
                   "--serial", "does not apply to --device cpu")
    one_line_error(cli("measure", "mobilenetv2", "--device", "cpu", "--serial", "A1"), "--serial")
    assert list(tmp_path.iterdir()) == []


# ====================================================================== cached models
def test_cached_model_with_a_wrong_digest_is_rebuilt(tmp_path):
    from latbench.build.cache import cached_file, digest_path

    calls = []

    def write(tmp):
        calls.append(1)
        tmp.write_bytes(b"model bytes")

    path = tmp_path / "net-abc.onnx"
    cached_file(path, write)
    assert calls == [1] and digest_path(path).exists()
    cached_file(path, write)
    assert calls == [1]  # a hit
    path.write_bytes(b"model bytes, truncated or edited")
    cached_file(path, write)
    assert calls == [1, 1] and path.read_bytes() == b"model bytes"
    digest_path(path).unlink()  # a file cached before digests existed (or its digest lost)
    cached_file(path, write)
    assert calls == [1, 1, 1] and digest_path(path).exists()


def test_cached_onnx_model_rebuilt_on_mismatch(tmp_path):
    pytest.importorskip("onnx")
    from latbench.build.onnx_export import to_onnx

    path = to_onnx("pool:r=7:c=16", cache_dir=tmp_path)
    good = path.read_bytes()
    path.write_bytes(good[: len(good) // 2])
    assert to_onnx("pool:r=7:c=16", cache_dir=tmp_path) == path and path.read_bytes() == good
