"""The `gpu` device without a GPU: device context, TF32, pipelined timing, clock helpers, the
memory-bounded prepared cache and one process per GPU shard (a recording stand-in for torch.cuda
where CUDA itself is needed)."""
from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest

from latbench.devices.base import Device, Sample
from latbench.devices.gpu import GpuDevice
from latbench.measure.protocol import Item, Protocol, _PreparedCache

SCRIPTS = Path(__file__).resolve().parents[1] / "device_scripts" / "gpu"


class RecordingCuda:
    """torch.cuda as far as GpuDevice.measure uses it; records which device is current at each call.
    Every module call advances a simulated clock by 2 ms."""

    def __init__(self):
        self.current = 0
        self.clock = 0.0
        self.log = []
        outer = self

        class Event:
            def __init__(self, enable_timing=False):
                outer.log.append(("event", outer.current))
                self.t = None

            def record(self):
                outer.log.append(("record", outer.current))
                self.t = outer.clock

            def synchronize(self):
                outer.log.append(("event_sync", outer.current))

            def elapsed_time(self, end):
                return end.t - self.t

        self.Event = Event

    @contextlib.contextmanager
    def device(self, index):
        old, self.current = self.current, index
        try:
            yield
        finally:
            self.current = old

    def synchronize(self, index=None):
        self.log.append(("sync", self.current if index is None else index))


@pytest.fixture
def fake_cuda(monkeypatch):
    cuda = RecordingCuda()
    fake_torch = types.SimpleNamespace(cuda=cuda, inference_mode=contextlib.nullcontext)
    monkeypatch.setitem(sys.modules, "torch", fake_torch)
    return cuda


def _module(cuda):
    def run(*inputs):
        cuda.log.append(("module", cuda.current))
        cuda.clock += 2.0
    return run


@pytest.mark.parametrize("timing", ["sync", "pipelined"])
def test_measuring_gpu1_runs_in_gpu1s_context(fake_cuda, timing):
    dev = GpuDevice(1, timing=timing, pipeline_runs=5)
    sample = dev.measure((_module(fake_cuda), ["x"]), runs=10, warmup=3)
    devices_used = {d for what, d in fake_cuda.log}
    assert devices_used == {1}, fake_cuda.log  # events, records, synchronize and the model: all on GPU 1
    assert fake_cuda.current == 0  # the context is left afterwards
    if timing == "sync":
        assert sample.samples_ms == [2.0] * 10 and sample.runs_per_sample == 1
        assert sum(1 for what, _ in fake_cuda.log if what == "record") == 20  # two events per batch
    else:  # 5 batches between one pair of events, per-batch time = elapsed / 5
        assert sample.samples_ms == [2.0, 2.0] and sample.runs_per_sample == 5
        assert sum(1 for what, _ in fake_cuda.log if what == "record") == 4


def test_node_profile_runs_in_the_gpus_context(fake_cuda, monkeypatch):
    import latbench.devices.node_profile as node_profile

    seen = []
    monkeypatch.setattr(node_profile, "torch_module_profile",
                        lambda module, inputs, cuda: seen.append(fake_cuda.current) or [[]])
    dev = GpuDevice(2)
    monkeypatch.setattr(dev, "prepare", lambda target: ("module", ["x"]))
    assert dev.node_profile("arch") == [[]]
    assert seen == [2]


@pytest.fixture
def tf32_restored():
    """Put torch's TF32 flags back as they were after the test."""
    torch = pytest.importorskip("torch")
    old = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32, torch.get_float32_matmul_precision())
    yield torch
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old[:2]
    torch.set_float32_matmul_precision(old[2])


def _pretend_cuda(monkeypatch, torch, tmp_path):
    props = types.SimpleNamespace(name="Pretend GPU", total_memory=8 << 30)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda i: props)
    monkeypatch.setattr(torch.backends.cudnn, "version", lambda: 90100)
    torch.backends.cuda.matmul.allow_tf32 = True  # what Ampere-era defaults can be
    torch.backends.cudnn.allow_tf32 = True
    monkeypatch.setenv("LATBENCH_GPU_STATE_DIR", str(tmp_path / "gpu-state"))


def test_fp32_turns_tf32_off_and_the_fingerprint_records_it(monkeypatch, tmp_path, tf32_restored):
    torch = tf32_restored
    _pretend_cuda(monkeypatch, torch, tmp_path)
    fp = GpuDevice(1).fingerprint()
    assert fp["precision"] == "fp32"
    assert fp["cuda_matmul_allow_tf32"] is False and fp["cudnn_allow_tf32"] is False
    assert torch.backends.cudnn.allow_tf32 is False and torch.backends.cuda.matmul.allow_tf32 is False
    assert fp["timing"] == "sync" and "pipeline_runs" not in fp and "clocks" not in fp
    fp2 = GpuDevice(1, timing="pipelined", pipeline_runs=8).fingerprint()
    assert (fp2["timing"], fp2["pipeline_runs"]) == ("pipelined", 8)
    assert GpuDevice(1, batch=4).prepared_cache_bytes == (8 << 30) // 4


def _fake_smi(tmp_path):
    smi = tmp_path / "nvidia-smi"
    log = tmp_path / "smi.log"
    smi.write_text(f'#!/bin/sh\necho "$*" >> "{log}"\n'
                   'case "$*" in *--query-gpu=clocks.default_applications.graphics*) echo "1350" ;; esac\n')
    smi.chmod(0o755)
    return smi, log


def test_clock_helpers_lock_reset_and_are_recorded(monkeypatch, tmp_path, tf32_restored):
    torch = tf32_restored
    _pretend_cuda(monkeypatch, torch, tmp_path)
    smi, log = _fake_smi(tmp_path)
    env = dict(os.environ, NVIDIA_SMI=str(smi))
    res = subprocess.run(["sh", str(SCRIPTS / "lock_clocks.sh"), "1"], env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert log.read_text().splitlines() == ["-i 1 --query-gpu=clocks.default_applications.graphics "
                                            "--format=csv,noheader,nounits",
                                            "-i 1 -pm 1", "-i 1 --lock-gpu-clocks=1350,1350"]
    fp = GpuDevice(1).fingerprint()
    assert fp["clocks"] == {"graphics_mhz": 1350, "memory_mhz": None, "persistence": True}
    assert "clocks" not in GpuDevice(0).fingerprint()  # GPU 0 was not locked
    res = subprocess.run(["sh", str(SCRIPTS / "lock_clocks.sh"), "1", "1200", "5001"], env=env,
                         capture_output=True, text=True)
    assert res.returncode == 0 and "--lock-memory-clocks=5001,5001" in log.read_text()
    assert GpuDevice(1).fingerprint()["clocks"]["memory_mhz"] == 5001
    res = subprocess.run(["sh", str(SCRIPTS / "reset_clocks.sh"), "1"], env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert log.read_text().splitlines()[-3:] == ["-i 1 --reset-gpu-clocks", "-i 1 --reset-memory-clocks", "-i 1 -pm 0"]
    assert "clocks" not in GpuDevice(1).fingerprint()
    bad = subprocess.run(["sh", str(SCRIPTS / "lock_clocks.sh"), "x"], env=env, capture_output=True, text=True)
    assert bad.returncode == 2


class SizedDevice(Device):
    """Prepared models that say how many bytes they hold (as GpuDevice's do)."""

    def __init__(self, budget):
        self.prepared_cache_bytes = budget
        self.prepares = []

    def prepare(self, target):
        self.prepares.append(target)
        return {"key": target, "nbytes": int(target.split(":")[1])}

    @staticmethod
    def prepared_nbytes(prepared):
        return prepared["nbytes"]


def test_prepared_cache_is_bounded_by_bytes():
    dev = SizedDevice(budget=100)
    cache = _PreparedCache(dev)  # the count bound (512) would keep all of these
    items = [Item(f"m{i}:40", f"m{i}:40", "arch", {}) for i in range(4)]
    for it in items:
        cache.get(it)
    assert list(cache.data) == ["m2:40", "m3:40"] and cache.total == 80
    cache.get(items[3])  # still cached
    cache.get(items[0])  # was evicted: prepared again
    assert dev.prepares == ["m0:40", "m1:40", "m2:40", "m3:40", "m0:40"]
    huge = Item("big:500", "big:500", "arch", {})
    assert cache.get(huge)["nbytes"] == 500 and list(cache.data) == ["big:500"]  # the one in use stays


class PidDevice(Device):
    """Picklable device for process shards: records the process that measured each item."""

    name = "piddev"
    process_shards = True

    def __init__(self, index):
        self.index = index

    def fingerprint(self):
        return {"device": "piddev", "runtime": "none"}

    def prepare(self, target):
        return target

    def measure(self, prepared, runs, warmup, min_warmup_s=0.0):
        return Sample([1.0] * runs, conditions={"pid": os.getpid(), "index": self.index}, timed_s=0.001)


def test_process_shards_run_in_one_process_per_device(tmp_path):
    from latbench.measure.profiling import profile_items
    from latbench.measure.store import ProfileStore

    items = [Item(f"k{i}", f"k{i}", "op", {"space": "t"}) for i in range(6)]
    db = tmp_path / "p.db"
    out = profile_items([PidDevice(0), PidDevice(1)], items, db, Protocol(rounds=1, runs=3, min_round_s=0),
                        progress=False)
    assert out["measured"] == 6
    store = ProfileStore(db, PidDevice(0).fingerprint())
    conds = [json.loads(c) for (c,) in store.db.execute("SELECT conditions FROM rounds")]
    store.close()
    by_index = {}
    for c in conds:
        by_index.setdefault(c["index"], set()).add(c["pid"])
    assert set(by_index) == {0, 1}
    pids = set().union(*by_index.values())
    assert len(pids) == 2 and os.getpid() not in pids  # each shard in its own process
