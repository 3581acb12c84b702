"""`latbench profile` end to end: ops and whole archs into a resumable SQLite store, reruns, kill -9
and resume, refusing other fingerprints, bad input, and parallel shards over two (stand-in) phones.

Everything runs the real CLI in a subprocess (tests/conftest.py `cli`), on the `cpu` device with
ONNX Runtime, or on `pixel1` through the stand-in adb of tests/fake_adb with two serials attached.
"""
from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
FAKE_DIR = HERE / "fake_adb"
BASE = ("profile", "--device", "cpu", "--runtime", "ort", "--space", "proxylessnas")


def ro(db):
    """A read-only connection (never takes the writer's lock, never creates a file)."""
    return sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)


def rows_of(db) -> dict:
    """{(key, round): ts} of every stored round."""
    con = ro(db)
    try:
        return {(k, r): ts for k, r, ts in con.execute("SELECT key, round, ts FROM rounds")}
    finally:
        con.close()


def one_line_error(res, *needles):
    assert res.returncode == 2, (res.returncode, res.stdout, res.stderr)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert "Traceback" not in res.stderr
    for n in needles:
        assert n in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("profile-cache")


@pytest.fixture(scope="module")
def ort_db(tmp_path_factory, cache):
    """6 ops (+ the overhead probe) of proxylessnas profiled on cpu/ort: (db, the --json output)."""
    from conftest import run_cli  # the `cli` fixture is function-scoped

    db = tmp_path_factory.mktemp("ort") / "cpu-ort.db"
    res = run_cli(*BASE, "--limit", "6", "--rounds", "2", "--runs", "3", "--db", db, "--json",
                  env={"LATBENCH_CACHE": str(cache)})
    assert res.returncode == 0, res.stderr
    return db, json.loads(res.stdout)


# ====================================================================== cpu / ort
def test_profile_ops_end_to_end(ort_db):
    db, out = ort_db
    assert out["items"] == 7 and out["measured"] == 7  # 6 ops + the overhead probe
    assert out["fingerprint"]["device"] == "cpu" and out["fingerprint"]["runtime"] == "ort"
    assert out["space"] == "proxylessnas" and out["granularity"] == "block"
    assert out["db"] == str(db) and out["timed_s"] > 0 and out["wall_s"] >= out["timed_s"]

    from latbench.lut.build import PROBE_KEY
    from latbench.spaces import get_space
    from latbench.measure.store import ProfileStore

    store = ProfileStore(db)
    try:
        assert store.fp == out["fingerprint_id"] and store.fingerprint == out["fingerprint"]
        items = store.items()
        expected = {PROBE_KEY} | {op.key for op in get_space("proxylessnas").ops("block")[:6]}
        assert set(items) == expected
        assert items[PROBE_KEY]["kind"] == "probe"
        done = store.rounds_done()
        assert set(done) == expected and all(2 <= n <= 4 for n in done.values())  # 2 (+ ≤ 2 re-measures)
        res = store.results()
        for key, r in res.items():
            assert r["ms"] > 0 and r["n"] >= 6 and r["p10"] <= r["ms"] <= r["p90"], (key, r)
        for (cond,) in store.db.execute("SELECT conditions FROM rounds"):
            c = json.loads(cond)
            assert "before" in c and "after" in c and "loadavg1" in c["before"]
        assert store.timed_seconds() == pytest.approx(out["timed_s"])
    finally:
        store.close()


def test_profile_rerun_is_a_no_op(cli, ort_db, cache):
    db, out = ort_db
    before = rows_of(db)
    res = cli(*BASE, "--limit", "6", "--rounds", "2", "--runs", "3", "--db", db, "--json",
              env={"LATBENCH_CACHE": str(cache)})
    assert res.returncode == 0, res.stderr
    again = json.loads(res.stdout)
    assert again["measured"] == 7 and again["fingerprint_id"] == out["fingerprint_id"]
    assert rows_of(db) == before  # same rows, same timestamps: nothing re-measured
    assert again["measured_this_run"] == 0 and again["timed_s"] == 0  # the summary counts this run's work
    assert again["already_measured"] == 7 and again["store_timed_s"] == pytest.approx(out["timed_s"])
    assert "latbench: resuming: 7 of 7 items already measured" in res.stderr


def test_profile_refuses_to_mix_fingerprints(cli, ort_db, cache):
    db, _ = ort_db
    before = rows_of(db)
    res = cli("profile", "--device", "cpu", "--runtime", "torch", "--space", "proxylessnas", "--limit", "6",
              "--rounds", "1", "--runs", "2", "--db", db, "--json", env={"LATBENCH_CACHE": str(cache)})
    one_line_error(res, str(db), "another device fingerprint")
    assert res.stdout == ""
    assert rows_of(db) == before
    con = ro(db)
    try:
        assert con.execute("SELECT COUNT(*) FROM fingerprints").fetchone()[0] == 1
    finally:
        con.close()


def test_profile_bad_input(cli, tmp_path):
    res = cli(*BASE[:5], "--space", "nosuchspace", "--db", tmp_path / "x.db", "--json")
    one_line_error(res, "nosuchspace")
    assert not (tmp_path / "x.db").exists()
    junk = tmp_path / "notes.db"
    junk.write_text("these are my notes, not a database\n" * 100)
    res = cli(*BASE, "--limit", "1", "--rounds", "1", "--runs", "1", "--db", junk, "--json")
    one_line_error(res, str(junk), "not a latbench profile store")
    assert junk.read_text().startswith("these are my notes")  # untouched
    res = cli(*BASE, "--granularity", "op", "--db", tmp_path / "y.db")
    assert res.returncode == 2 and "Traceback" not in res.stderr


def test_profile_extremes_bad_input(cli, tmp_path, ort_db):
    res = cli(*BASE, "--extremes", "2", "--db", tmp_path / "x.db")
    one_line_error(res, "--extremes", "only with --archs")
    missing = tmp_path / "none.db"
    res = cli(*BASE, "--archs", "2", "--extremes", "1", "--db", missing)
    one_line_error(res, "--extremes", str(missing), "profile the ops")
    assert not missing.exists()  # nothing created
    res = cli(*BASE, "--archs", "2", "--extremes", "1", "--granularity", "layer", "--db", ort_db[0])
    one_line_error(res, str(ort_db[0]), "no layer-granularity op measurements")  # only block ops stored
    assert not [k for k, _ in rows_of(ort_db[0]) if k.startswith("arch:")]  # nothing measured


def test_profile_kill_9_and_resume(cli, tmp_path):
    """kill -9 mid-run loses at most the round in flight; the rerun measures only what is missing."""
    db = tmp_path / "killed.db"
    env = dict(os.environ, LATBENCH_CACHE=str(tmp_path / "fresh-cache"))  # cold cache: every op exported
    args = [*BASE, "--limit", "25", "--rounds", "3", "--db", str(db), "--json"]
    err = open(tmp_path / "stderr.txt", "w")
    proc = subprocess.Popen([sys.executable, "-m", "latbench", *args], cwd=str(REPO), env=env,
                            stdout=subprocess.DEVNULL, stderr=err)
    try:
        deadline = time.monotonic() + 90
        stored = 0
        while time.monotonic() < deadline and proc.poll() is None:
            if db.exists():
                try:
                    con = ro(db)
                    try:
                        stored = con.execute("SELECT COUNT(*) FROM rounds").fetchone()[0]
                    finally:
                        con.close()
                except sqlite3.OperationalError:
                    stored = 0  # tables not created yet
            if stored >= 5:
                break
            time.sleep(0.05)
        assert proc.poll() is None, "profile finished before it could be killed: make it slower"
        assert stored >= 5, "no rounds stored in time"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        err.close()
    assert proc.returncode == -signal.SIGKILL
    t_kill = time.time()
    before = rows_of(db)  # everything committed before the kill
    assert len(before) >= 5

    res = cli(*args, env={"LATBENCH_CACHE": env["LATBENCH_CACHE"]})
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["items"] == 26 and out["measured"] == 26
    after = rows_of(db)

    # rows stored before the kill are all still there, unchanged (same timestamps)
    assert all(after.get(k) == ts for k, ts in before.items())
    # the rerun measured only what was missing: rows written after the kill = total - before
    new = [k for k, ts in after.items() if ts > t_kill]
    assert len(new) == len(after) - len(before)
    assert not set(new) & set(before)
    # every item has its 3 planned rounds (plus at most 2 re-measures of noisy items), numbered 0..n-1
    per_key = {}
    for key, rnd in after:
        per_key.setdefault(key, []).append(rnd)
    con = ro(db)
    try:
        items = [k for (k,) in con.execute("SELECT key FROM items")]
    finally:
        con.close()
    assert len(items) == 26 and set(per_key) == set(items)
    for key, rounds in per_key.items():
        assert 3 <= len(rounds) <= 5, (key, rounds)
        assert sorted(rounds) == list(range(len(rounds))), (key, rounds)


def test_profile_whole_archs_with_node_profiles(cli, tmp_path, cache):
    db = tmp_path / "archs.db"
    res = cli(*BASE, "--archs", "4", "--seed", "3", "--rounds", "1", "--runs", "2", "--warmup", "1", "--db", db,
              "--json", env={"LATBENCH_CACHE": str(cache)})
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["items"] == 4 and out["measured"] == 4

    from latbench.arch import parse_arch
    from latbench.measure.store import ProfileStore

    store = ProfileStore(db)
    try:
        items = store.items("arch")
        assert len(items) == 4 and all(k.startswith("arch:proxylessnas:") for k in items)
        assert all(meta["role"] == "train" for meta in items.values())
        assert set(store.rounds_done()) == set(items)
        for key, meta in items.items():
            arch = parse_arch(meta["arch"])
            profiles = store.node_profiles(key)
            assert profiles, key
            rows = profiles[0]
            layers = {r["layer"] for r in rows if r["layer"] is not None}
            assert layers <= set(range(len(arch.layers)))
            assert len(layers) >= len(arch.layers) // 2  # the runtime's nodes map back to the arch's layers
            total = sum(r["ms"] for r in rows)
            assert total > 0
            assert sum(r["ms"] for r in rows if r["layer"] is not None) >= 0.6 * total
    finally:
        store.close()


# ====================================================================== parallel shards on two phones
SERIALS = ("FA6AN0301111", "HT7B1B345678")


@pytest.fixture
def two_phones(tmp_path):
    wrapper = FAKE_DIR / "adb"
    if not os.access(wrapper, os.X_OK):
        wrapper.chmod(wrapper.stat().st_mode | 0o111)
    root = tmp_path / "phones"
    env = {"PATH": str(FAKE_DIR) + os.pathsep + os.environ.get("PATH", ""), "ADB": "",
           "FAKE_ADB_ROOT": str(root), "FAKE_ADB_SERIAL": ",".join(SERIALS), "FAKE_ADB_STATE": "device",
           "LATBENCH_FAKE_ADB_PYTHON": sys.executable, "XDG_CONFIG_HOME": str(tmp_path / "config"),
           "LATBENCH_BENCHMARK_MODEL": "", "FAKE_ADB_FLAKY": "", "FAKE_ADB_DELAY_S": "",
           "FAKE_ADB_BM_FORMAT": "new", "LATBENCH_LOCK_DIR": str(tmp_path / "locks")}
    return root, env


def aarch64_binary(tmp_path):
    """A stand-in android_aarch64 benchmark_model: an ELF header for AArch64 (never executed)."""
    binary = tmp_path / "android_aarch64_benchmark_model"
    ident = b"\x7fELF" + bytes([2, 1, 1]) + bytes(9)
    binary.write_bytes(ident + (2).to_bytes(2, "little") + (183).to_bytes(2, "little") + bytes(range(256)) * 8)
    return binary


def _adb(env, *args):
    return subprocess.run([str(FAKE_DIR / "adb"), *args], capture_output=True, text=True,
                          env=dict(os.environ, **env), timeout=60)


def test_fake_adb_several_serials(two_phones, tmp_path):
    root, env = two_phones
    from latbench.devices.adb import parse_devices

    res = _adb(env, "devices")
    assert parse_devices(res.stdout) == [(s, "device") for s in SERIALS]
    res = _adb(env, "shell", "echo", "hi")
    assert res.returncode != 0 and "more than one device" in res.stderr
    res = _adb(env, "-s", "NOPE", "shell", "echo", "hi")
    assert res.returncode != 0 and "'NOPE' not found" in res.stderr
    local = tmp_path / "f.txt"
    local.write_text("x")
    assert _adb(env, "-s", SERIALS[0], "push", str(local), "/data/local/tmp/f.txt").returncode == 0
    assert (root / SERIALS[0] / "data/local/tmp/f.txt").read_text() == "x"  # each phone has its own files
    assert _adb(env, "-s", SERIALS[1], "shell", "cat /data/local/tmp/f.txt").returncode != 0
    assert _adb(env, "-s", SERIALS[1], "shell", "getprop ro.product.model").stdout == "Pixel\n"
    log = [json.loads(l) for l in (root / ".host" / "adb_log.jsonl").read_text().splitlines()]
    assert log[0] == ["devices"] and ["-s", SERIALS[1], "shell", "getprop ro.product.model"] in log


def test_profile_parallel_shards_on_two_phones(cli, two_phones, tmp_path):
    root, env = two_phones
    binary = aarch64_binary(tmp_path)
    db = tmp_path / "pixel1.db"
    env["LATBENCH_CACHE"] = str(tmp_path / "tflite-cache")
    res = cli("profile", "--device", "pixel1", "--serial", SERIALS[0], "--serial", SERIALS[1],
              "--space", "proxylessnas", "--limit", "6", "--rounds", "1", "--runs", "3",
              "--benchmark-model", binary, "--db", db, "--json", env=env)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["items"] == 7 and out["measured"] == 7

    # which graphs did each phone run with benchmark_model?
    log = [json.loads(l) for l in (root / ".host" / "adb_log.jsonl").read_text().splitlines()]
    graphs = {s: set() for s in SERIALS}
    for argv in log:
        if len(argv) >= 4 and argv[0] == "-s" and argv[2] == "shell" and "benchmark_model" in argv[3]:
            words = argv[3].split()
            graphs[argv[1]].update(w.split("=", 1)[1] for w in words if w.startswith("--graph="))
    a, b = graphs[SERIALS[0]], graphs[SERIALS[1]]
    assert a and b, graphs  # both phones measured
    assert not a & b  # disjoint shards
    assert len(a | b) == 7  # together: every item (6 ops + probe), each a different model file
    converted = list((tmp_path / "tflite-cache" / "tflite").glob("*.tflite"))
    assert len(converted) == 7
    for s in SERIALS:  # each phone got the binary; pushed models were removed when done
        assert (root / s / "data/local/tmp/latbench/benchmark_model").is_file()
        assert not list((root / s / "data/local/tmp/latbench/models").glob("*.tflite"))

    from latbench.measure.store import ProfileStore

    store = ProfileStore(db)
    try:
        assert len(store.fingerprints()) == 1  # two phones of one model share one fingerprint
        fp = store.fingerprint
        assert fp["device"] == "pixel1" and fp["model"] == "Pixel"
        assert not any(s in json.dumps(fp) for s in SERIALS)  # nothing serial-specific
        done = store.rounds_done()
        assert len(done) == 7 and all(n >= 1 for n in done.values())
        for key, r in store.results().items():
            assert r["ms"] > 0 and r["n"] >= 3, (key, r)
    finally:
        store.close()


def test_context_table_from_a_phone(cli, two_phones, tmp_path):
    """profile --archs on a phone stores per-node profiles (XNNPACK rows mapped back to layers), so
    build-lut --method context works there as on the cpu."""
    root, env = two_phones
    env["LATBENCH_CACHE"] = str(tmp_path / "tflite-cache")
    db = tmp_path / "pixel1-archs.db"
    res = cli("profile", "--device", "pixel1", "--serial", SERIALS[0], "--space", "proxylessnas", "--archs", "2",
              "--rounds", "1", "--runs", "3", "--warmup", "1", "--benchmark-model", aarch64_binary(tmp_path),
              "--db", db, "--json", env=env)
    assert res.returncode == 0, res.stderr

    from latbench.arch import parse_arch
    from latbench.measure.store import ProfileStore

    store = ProfileStore(db)
    try:
        items = store.items("arch")
        assert len(items) == 2
        for key, meta in items.items():
            arch = parse_arch(meta["arch"])
            rows = store.node_profiles(key)[0]
            assert all(r["name"].startswith("Delegate/") for r in rows)
            layers = {r["layer"] for r in rows if r["layer"] is not None}
            assert layers == set(range(len(arch.layers)))  # every layer of the network is timed
            unmapped = sum(r["ms"] for r in rows if r["layer"] is None)
            assert unmapped <= 0.05 * sum(r["ms"] for r in rows)
    finally:
        store.close()
    out = tmp_path / "context.json"
    res = cli("build-lut", "--db", db, "--method", "context", "-o", out, "--json", env=env)
    assert res.returncode == 0, res.stderr
    table = json.loads(out.read_text())
    assert table["method"] == "context" and len(table["entries"]) > 10
