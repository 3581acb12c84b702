"""The `cpu` device with its real runtimes (ONNX Runtime, PyTorch, LiteRT), the `gpu` device where
CUDA exists, and `latbench devices` / `latbench measure` on this machine.

Targets are tiny (a 6-layer arch at resolution 32, two small ops) so every runtime builds and
measures them in well under a second; converted models go to a private LATBENCH_CACHE.
"""
from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path

import pytest

from latbench.arch import parse_arch
from latbench.errors import BadInput
from latbench.ops import make_op

HERE = Path(__file__).resolve().parent
FAKE_DIR = HERE / "fake_adb"

TINY_DICT = {"format": "latbench-arch/1", "name": "tiny-cpu", "resolution": 32, "in_channels": 3, "layers": [
    {"type": "conv", "out": 16, "kernel": 3, "stride": 2, "act": "relu"},
    {"type": "mbconv", "expand": 3, "out": 24, "kernel": 3, "stride": 2, "act": "relu6"},
    {"type": "mbconv", "expand": 3, "out": 24, "kernel": 5, "stride": 1, "se": 8, "act": "swish"},
    {"type": "conv", "out": 64, "kernel": 1, "act": "relu"},
    {"type": "pool"},
    {"type": "fc", "out": 10}]}
TINY = parse_arch(TINY_DICT)
OPS = [make_op("conv", r=16, i=8, o=16, k=3, s=1, g=1, act="relu", bn=1),
       make_op("mbconv", r=8, i=16, o=16, m=48, k=3, s=1, se=0, gate="sigmoid", act="relu6", res=1)]
RUNTIMES = ("ort", "torch", "tflite")


@pytest.fixture(scope="module", autouse=True)
def model_cache(tmp_path_factory):
    """A private model cache for this module (restored afterwards), torch's thread count and
    subnormal handling restored."""
    cache = tmp_path_factory.mktemp("model-cache")
    old = os.environ.get("LATBENCH_CACHE")
    os.environ["LATBENCH_CACHE"] = str(cache)
    import torch  # CpuDevice("torch") sets 1 thread process-wide: give later test modules theirs back

    threads = torch.get_num_threads()
    yield cache
    if old is None:
        os.environ.pop("LATBENCH_CACHE", None)
    else:
        os.environ["LATBENCH_CACHE"] = old
    torch.set_num_threads(threads)
    torch.set_flush_denormal(False)


def cpu(runtime, **kw):
    from latbench.devices.cpu import CpuDevice
    return CpuDevice(runtime, **kw)


def _positive_finite(xs):
    return len(xs) > 0 and all(isinstance(x, float) and math.isfinite(x) and x > 0 for x in xs)


# ====================================================================== cpu: every runtime
@pytest.mark.parametrize("runtime", RUNTIMES)
def test_cpu_runtime_fingerprint_measure_and_pinning(runtime):
    dev = cpu(runtime)
    ok, why = dev.available()
    assert ok, why
    fp = dev.fingerprint()
    assert fp["device"] == "cpu" and fp["runtime"] == runtime
    assert fp["model"] and isinstance(fp["model"], str)
    assert fp["runtime_version"] and isinstance(fp["runtime_version"], str)
    assert fp["threads"] == 1 and fp["batch"] == 1
    # eager torch allocates per run: its heap settings are a measurement condition (allocator.py)
    assert ("heap" in fp) == (runtime == "torch")
    if runtime == "torch" and sys.platform.startswith("linux"):
        assert fp["heap"].startswith("glibc mmap_threshold=32MiB")
    # and so is how it treats subnormal floats (denormals.py)
    assert ("denormals" in fp) == (runtime == "torch")
    if runtime == "torch":
        assert fp["denormals"] == "flushed to zero (FTZ+DAZ)"
    json.dumps(fp)  # stored as JSON in profile stores

    original = os.sched_getaffinity(0)
    seen = []
    try:
        for target in [TINY] + OPS:
            run = dev.prepare(target)

            def probe(run=run):  # what the timing loop calls: record the affinity it runs under
                seen.append(frozenset(os.sched_getaffinity(0)))
                return run()

            sample = dev.measure(probe, runs=5, warmup=2)
            assert len(sample.samples_ms) == 5 and _positive_finite(sample.samples_ms), sample.samples_ms
            assert sample.runs_per_sample == 1
            assert 0 < sample.timed_s < 10
            assert sample.timed_s * 1e3 >= 0.9 * sum(sample.samples_ms)  # the timed runs are inside timed_s
    finally:
        dev.close()
    assert len(seen) == 3 * 7
    assert set(seen) == {frozenset({dev.core})}  # one core during every warm-up and timed run
    assert os.sched_getaffinity(0) == original  # restored by close()
    dev.close()  # idempotent
    assert os.sched_getaffinity(0) == original


def test_cpu_pins_the_requested_core_and_conditions():
    cores = sorted(os.sched_getaffinity(0))
    dev = cpu("ort", core=cores[0])
    original = os.sched_getaffinity(0)
    try:
        run = dev.prepare(OPS[0])
        assert os.sched_getaffinity(0) == {cores[0]}
        run()
        cond = dev.conditions()
        assert "loadavg1" in cond and "freq_khz" in cond
    finally:
        dev.close()
    assert os.sched_getaffinity(0) == original


def test_cpu_bad_runtime_and_core():
    with pytest.raises(BadInput, match="--runtime"):
        cpu("tensorrt")
    from latbench.devices import get_device
    with pytest.raises(BadInput, match="--runtime"):
        get_device("cpu", "onnx")
    with pytest.raises(BadInput, match="--core"):
        cpu("ort", core=10_000)
    with pytest.raises(BadInput, match="--device"):
        get_device("tpu")


def test_protocol_on_cpu_gives_stats(tmp_path):
    """The DESIGN §5 protocol end to end on a real runtime (interleaved rounds into a store)."""
    from latbench.measure.protocol import Item, Protocol, run_items
    from latbench.measure.store import ProfileStore

    dev = cpu("ort")
    items = [Item(op.key, op, "op", {"space": "t"}) for op in OPS]
    store = ProfileStore(tmp_path / "p.db", dev.fingerprint())
    try:
        run_items(dev, items, store, Protocol(rounds=2, runs=4, warmup=1, extra_rounds=0), progress=False)
    finally:
        dev.close()
    res = store.results()
    assert set(res) == {op.key for op in OPS}
    for r in res.values():
        assert r["ms"] > 0 and r["n"] >= 8 and r["p10"] <= r["ms"] <= r["p90"]
    assert store.timed_seconds() > 0
    assert all(n == 2 for n in store.rounds_done().values())


def test_time_callable_sizes_runs_from_the_warmup():
    import time as _time

    from latbench.devices.timing import time_callable

    calls = []

    def run():
        calls.append(1)
        _time.sleep(0.001)

    s = time_callable(run, runs=5, warmup=3)
    assert len(s.samples_ms) == 5 and len(calls) == 8  # no sizing asked: exactly `runs`
    calls.clear()
    s = time_callable(run, runs=5, warmup=3, min_timed_s=0.03)
    assert 10 <= len(s.samples_ms) <= 30  # ~1 ms calls: about 30 ms worth, never fewer than `runs`
    assert all(x >= 1.0 for x in s.samples_ms)
    s = time_callable(run, runs=5, warmup=3, min_timed_s=1.0, max_runs=12)
    assert len(s.samples_ms) == 12  # capped
    s = time_callable(lambda: _time.sleep(0.004), runs=5, warmup=2, min_timed_s=0.005)
    assert len(s.samples_ms) == 5  # slow calls: `runs` already lasts long enough


def test_first_round_of_a_fast_op_is_sized_on_cpu(tmp_path):
    """The protocol sizes every round of a fast op to last min_round_s: later rounds from the previous
    round's median, the first from the warm-up's speed (devices with supports_min_timed_s)."""
    from latbench.measure.protocol import Item, Protocol, run_items
    from latbench.measure.store import ProfileStore

    dev = cpu("ort")
    assert dev.supports_min_timed_s
    op = OPS[0]  # ~0.03 ms
    store = ProfileStore(tmp_path / "p.db", dev.fingerprint())
    try:
        run_items(dev, [Item(op.key, op, "op", {})], store,
                  Protocol(rounds=2, runs=5, warmup=6, min_warmup_s=0.001, min_round_s=0.005, extra_rounds=0),
                  progress=False)
    finally:
        dev.close()
    rows = store.db.execute("SELECT round, samples, timed_s FROM rounds ORDER BY round").fetchall()
    assert [r[0] for r in rows] == [0, 1]
    for _, samples, timed_s in rows:
        n = len(json.loads(samples))
        assert 5 < n <= 500, n  # more than `runs`, at most 100 x runs
        assert timed_s >= 0.3 * 0.005 or n == 500  # sized to about min_round_s


# ====================================================================== per-node profiles
def _mapped(rows, arch):
    n_layers = len(arch.layers)
    layers = {r["layer"] for r in rows if r["layer"] is not None}
    assert layers <= set(range(n_layers)), layers
    total = sum(r["ms"] for r in rows)
    mapped = sum(r["ms"] for r in rows if r["layer"] is not None)
    assert total > 0 and all(r["ms"] >= 0 for r in rows)
    return layers, mapped / total


def test_ort_node_profile_maps_to_layers():
    dev = cpu("ort")
    try:
        rounds = dev.node_profile(TINY)
    finally:
        dev.close()
    assert rounds and all(isinstance(r, list) and r for r in rounds)
    rows = rounds[0]
    assert all({"name", "layer", "part", "ms"} <= set(r) for r in rows)
    layers, share = _mapped(rows, TINY)
    # every compute layer shows up (ORT may fuse the pool into the next node, so allow one missing)
    assert len(layers) >= len(TINY.layers) - 1, layers
    assert share >= 0.6, share  # most of the time is inside nodes that map to a layer (not re-layouts)
    parts = {r["part"] for r in rows if r["layer"] in (1, 2)}
    assert {"expand", "dw", "project"} <= parts
    assert {r["part"] for r in rows if r["layer"] == 2} >= {"se"}


def test_torch_node_profile_maps_to_layers():
    dev = cpu("torch")
    try:
        rounds = dev.node_profile(TINY)
    finally:
        dev.close()
    rows = rounds[0]
    layers, share = _mapped(rows, TINY)
    assert layers == set(range(len(TINY.layers)))
    assert share == pytest.approx(1.0)  # module hooks only exist on L{i} modules
    assert {r["part"] for r in rows if r["layer"] == 2} >= {"expand", "dw", "se", "project", "add"}


def test_torch_node_profile_rows_are_disjoint():
    """Rows are whole layers (their own time outside the parts) and parts: no nested module twice."""
    dev = cpu("torch")
    try:
        rows = dev.node_profile(TINY)[0]
    finally:
        dev.close()
    names = [r["name"] for r in rows]
    assert all(n.count(".") <= 1 for n in names), names
    assert all(r["ms"] >= 0 for r in rows)
    parts = {r["part"] for r in rows if r["layer"] == 2}
    assert parts >= {"expand", "dw", "se", "project", "add"}


def test_tflite_has_no_node_profiler():
    dev = cpu("tflite")
    try:
        assert dev.node_profile(TINY) is None
    finally:
        dev.close()


# ====================================================================== CLI: measure, devices
def test_cli_measure_tiny_arch(cli, tmp_path, model_cache):
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(TINY_DICT))
    res = cli("measure", path, "--device", "cpu", "--runtime", "ort", "--json", "--rounds", "2", "--runs", "5",
              env={"LATBENCH_CACHE": str(model_cache)})
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    assert data["latency_ms"] > 0 and math.isfinite(data["latency_ms"])
    assert data["mad_ms"] >= 0
    assert data["count"] >= 10  # 2 rounds x at least 5 runs
    assert data["fingerprint"]["device"] == "cpu" and data["fingerprint"]["runtime"] == "ort"
    assert data["fingerprint"]["threads"] == 1 and data["fingerprint"]["batch"] == 1
    assert data["protocol"]["rounds"] == 2 and data["protocol"]["runs"] == 5


def test_cli_measure_bad_runtime(cli, tmp_path):
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(TINY_DICT))
    res = cli("measure", path, "--device", "cpu", "--runtime", "tensorrt", "--json")
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "--runtime" in lines[0] and "Traceback" not in res.stderr


def _devices(cli, env):
    res = cli("devices", "--json", env=env)
    assert res.returncode == 0, res.stderr
    return {(r["device"], r["runtime"]): r for r in json.loads(res.stdout)}


def _env_without_adb(tmp_path, path_dirs):
    """PATH = only `path_dirs` (no adb anywhere), a private config, no benchmark_model configured."""
    return {"PATH": os.pathsep.join(str(d) for d in path_dirs), "ADB": "",
            "XDG_CONFIG_HOME": str(tmp_path / "config"), "LATBENCH_BENCHMARK_MODEL": ""}


def test_cli_devices_lists_what_can_measure_here(cli, tmp_path):
    bin_dir = tmp_path / "bin"  # an empty dir: PATH without adb
    bin_dir.mkdir()
    rows = _devices(cli, _env_without_adb(tmp_path, [bin_dir]))
    for rt in RUNTIMES:
        r = rows[("cpu", rt)]
        assert r["available"] is True and r["why"] == ""
        assert r["fingerprint"]["runtime"] == rt and r["fingerprint"]["threads"] == 1
    gpu = rows[("gpu", "torch")]
    from latbench.devices.gpu import GpuDevice
    if not GpuDevice(0).available()[0]:
        assert gpu["available"] is False and "CUDA" in gpu["why"] and gpu["fingerprint"] is None
    px = rows[("pixel1", "tflite")]
    assert px["available"] is False and "adb not found" in px["why"] and px["fingerprint"] is None


def test_cli_devices_pixel1_without_benchmark_model(cli, tmp_path):
    """adb (the stand-in) finds the phone, but no benchmark_model binary is configured: say how to get it."""
    wrapper = FAKE_DIR / "adb"
    if not os.access(wrapper, os.X_OK):
        wrapper.chmod(wrapper.stat().st_mode | 0o111)
    env = _env_without_adb(tmp_path, [FAKE_DIR, Path(sys.executable).parent, "/usr/bin", "/bin"])
    env.update(FAKE_ADB_ROOT=str(tmp_path / "phone"), LATBENCH_FAKE_ADB_PYTHON=sys.executable,
               FAKE_ADB_STATE="device", FAKE_ADB_SERIAL="FA6AN0301234")
    px = _devices(cli, env)[("pixel1", "tflite")]
    assert px["available"] is False and px["fingerprint"] is None
    why = px["why"]
    assert "benchmark_model" in why and "android_aarch64" in why
    assert "--benchmark-model" in why and "LATBENCH_BENCHMARK_MODEL" in why  # how to configure it once
    assert "bazel build" in why or "http" in why  # where to get it


# ====================================================================== gpu (CUDA machines only)
def _gpu_or_skip():
    from latbench.devices.gpu import GpuDevice

    dev = GpuDevice(0, batch=4)
    ok, why = dev.available()
    if not ok:
        pytest.skip(f"no usable GPU: {why}")
    return dev


@pytest.mark.gpu
def test_gpu_fingerprint_and_measure_tiny_arch():
    dev = _gpu_or_skip()
    fp = dev.fingerprint()
    assert fp["device"] == "gpu" and fp["runtime"] == "torch" and fp["batch"] == 4
    assert fp["model"] and fp["precision"] == "fp32" and fp["cudnn_benchmark"] is True
    prepared = dev.prepare(TINY)
    sample = dev.measure(prepared, runs=10, warmup=3)
    assert len(sample.samples_ms) == 10 and _positive_finite(sample.samples_ms)
    assert sample.timed_s > 0
    sample = dev.measure(dev.prepare(OPS[1]), runs=5, warmup=2)
    assert _positive_finite(sample.samples_ms)
    dev.close()


@pytest.mark.gpu
def test_gpu_node_profile_maps_to_layers():
    dev = _gpu_or_skip()
    rows = dev.node_profile(TINY)[0]
    layers, share = _mapped(rows, TINY)
    assert layers == set(range(len(TINY.layers)))
    assert share == pytest.approx(1.0)


@pytest.mark.gpu
def test_gpu_cli_measure(cli, tmp_path):
    _gpu_or_skip()
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(TINY_DICT))
    res = cli("measure", path, "--device", "gpu", "--batch", "4", "--json", "--rounds", "2", "--runs", "5")
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    assert data["latency_ms"] > 0 and data["count"] >= 10
    assert data["fingerprint"]["device"] == "gpu" and data["fingerprint"]["batch"] == 4
