"""Paired timing: blocks of an item's runs between runs of a fixed reference, scaled to the
reference's calibrated speed, so a host whose speed jumps gives stable numbers."""
import json
import math

import pytest

from latbench.devices import get_device, timing
from latbench.devices.timing import Reference, time_callable, time_paired
from latbench.errors import BadInput


class FakeHost:
    """A clock where each call costs `work` units times the host's current slowness, which jumps
    between 1x and 1.6x every `period` calls (other tenants coming and going)."""

    def __init__(self, period=40):
        self.ns, self.calls, self.period = 0, 0, period

    def slowness(self):
        return 1.6 if (self.calls // self.period) % 2 else 1.0

    def work(self, units):
        def run():
            self.calls += 1
            self.ns += int(units * 1000 * self.slowness())
        return run

    def perf_counter_ns(self):
        return self.ns

    def perf_counter(self):
        return self.ns / 1e9


@pytest.fixture
def host(monkeypatch):
    h = FakeHost()
    monkeypatch.setattr(timing.time, "perf_counter_ns", h.perf_counter_ns)
    monkeypatch.setattr(timing.time, "perf_counter", h.perf_counter)
    return h


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2]


def test_paired_samples_are_item_over_reference_times_calibrated_ms(host):
    ref = Reference(host.work(400), ms=0.4)  # calibrated at the fast speed: 400 units = 0.4 ms
    s = time_paired(host.work(50), ref, runs=300, warmup=5, block_s=0.0005)
    # blocks of k = 10 calls (0.5 ms / 0.05 ms); the host's slowness cancels within each block
    assert s.runs_per_sample == 10 and len(s.samples_ms) == 30
    assert median(s.samples_ms) == pytest.approx(0.05, rel=1e-9)
    assert sum(abs(x - 0.05) < 1e-9 for x in s.samples_ms) >= 20  # all but blocks next to a jump
    assert s.timed_s == pytest.approx(sum(x for x in s.samples_ms) * 10 / 1e3, rel=0.5)  # item time only


def test_plain_timing_on_the_same_host_sees_the_jumps(host):
    s = time_callable(host.work(50), runs=200, warmup=5)
    assert min(s.samples_ms) == pytest.approx(0.05) and max(s.samples_ms) == pytest.approx(0.08)


def test_paired_timing_sizes_blocks_and_rounds(host):
    ref = Reference(host.work(400), ms=0.4)
    slow = time_paired(host.work(3000), ref, runs=8, warmup=2, block_s=0.001)
    assert slow.runs_per_sample == 1 and len(slow.samples_ms) == 8  # whole networks: a block is one call
    assert len(time_paired(host.work(3000), ref, runs=2, warmup=2).samples_ms) == 5  # at least min_blocks
    host.calls = 0  # start in a fast phase: the warm-up sizes the blocks
    sized = time_paired(host.work(100), ref, runs=4, warmup=2, min_timed_s=0.01, block_s=0.001)
    assert sized.runs_per_sample == 10 and len(sized.samples_ms) == 10  # 100 calls last 10 ms: 10 blocks of 1 ms
    host.calls = 0
    fast = time_paired(host.work(20), ref, runs=1000, warmup=2, block_s=0.001)
    assert fast.runs_per_sample == 50 and len(fast.samples_ms) == 20  # `runs` counts calls, not blocks


def test_reference_scale_is_geometric_mean_of_neighbours():
    ref = Reference(lambda: None, ms=2.0)
    assert ref.scale(4.0, 1.0) == pytest.approx(1.0)
    assert ref.scale(2.0, 2.0) == pytest.approx(1.0)
    assert ref.scale(1.0, 1.0) == pytest.approx(2.0)


def test_paired_cpu_device_calibrates_once_and_fingerprints_the_scale(tmp_path, monkeypatch):
    monkeypatch.setenv("LATBENCH_CACHE", str(tmp_path))
    from latbench.devices.calibration import REFERENCE_KEY

    dev = get_device("cpu", "ort", timing="paired")
    try:
        fp = dev.fingerprint()
    finally:
        dev.close()
    assert fp["timing"] == "paired" and fp["reference"] == REFERENCE_KEY and fp["reference_ms"] > 0
    files = list((tmp_path / "calibration").glob("*.json"))
    assert len(files) == 1
    record = json.loads(files[0].read_text())
    assert record["ms"] == fp["reference_ms"] and record["reference"] == REFERENCE_KEY
    # a second device (another process, another shard) reads the same calibration
    record["ms"] = 1.234
    files[0].write_text(json.dumps(record))
    dev2 = get_device("cpu", "ort", timing="paired")
    fp2 = dev2.fingerprint()
    assert fp2["reference_ms"] == 1.234
    # and measures on that scale: a sample is block time x 1.234 / reference time
    s = dev2.measure(dev2.prepare(REFERENCE_KEY), runs=20, warmup=3)
    dev2.close()
    assert s.samples_ms and 0.8 < median(s.samples_ms) / 1.234 < 1.25  # the reference measured against itself
    # plain timing has no scale in its fingerprint: stores of the two never mix
    plain = get_device("cpu", "ort").fingerprint()
    assert "timing" not in plain and plain != fp


def test_bad_calibration_file_is_a_one_line_error(tmp_path, monkeypatch):
    monkeypatch.setenv("LATBENCH_CACHE", str(tmp_path))
    dev = get_device("cpu", "ort", timing="paired")
    dev.fingerprint()
    path = next((tmp_path / "calibration").glob("*.json"))
    path.write_text("{not json")
    dev2 = get_device("cpu", "ort", timing="paired")
    with pytest.raises(BadInput, match=r"calibration.*\.json: bad calibration file.*delete it"):
        dev2.fingerprint()
    dev.close()
    dev2.close()


def test_paired_timing_is_refused_off_cpu():
    with pytest.raises(BadInput, match="--timing"):
        get_device("gpu", timing="paired")
    with pytest.raises(BadInput, match="--timing: expected plain or paired"):
        get_device("cpu", "ort", timing="fast")


def test_node_profile_times_are_scaled_per_run(tmp_path, monkeypatch):
    """A reference that seems 1000x slower than calibrated scales every node time by 1/1000."""
    monkeypatch.setenv("LATBENCH_CACHE", str(tmp_path))
    from latbench.build.onnx_export import to_onnx
    from latbench.devices.node_profile import ort_node_profile
    from latbench.references import resolve_arch

    path = to_onnx(resolve_arch("mobilenetv2"))
    ticks = []

    class SlowRef(Reference):
        def time_once(self):
            ticks.append(1)
            return 1000.0

    plain = sum(n["ms"] for n in ort_node_profile(path, runs=4, warmup=1)[0])
    scaled = sum(n["ms"] for n in ort_node_profile(path, runs=4, warmup=1, reference=SlowRef(lambda: None, 1.0))[0])
    assert len(ticks) == 5  # before the first run and after each
    assert 1e-4 < scaled / plain < 1e-2 and math.isfinite(scaled)


class ColdHost(FakeHost):
    """FakeHost where the first call after another workload ran costs 2 ms more (cold caches)."""

    def __init__(self):
        super().__init__(period=10**9)  # no speed jumps: only the cache effect
        self.last = None

    def work(self, units):
        def run():
            self.calls += 1
            cold = self.last is not run
            self.last = run
            self.ns += int(units * 1000) + (2_000_000 if cold else 0)
        return run


def test_paired_timing_times_item_and_reference_warm(monkeypatch):
    """Alternating item and reference evicts each from the caches; both are run once untimed before
    being timed, so paired samples equal the warm (plain) ratio instead of a cold-start artefact."""
    h = ColdHost()
    monkeypatch.setattr(timing.time, "perf_counter_ns", h.perf_counter_ns)
    monkeypatch.setattr(timing.time, "perf_counter", h.perf_counter)
    ref = Reference(h.work(400), ms=0.4)
    s = time_paired(h.work(5000), ref, runs=10, warmup=2)  # a whole network: one call per block
    assert s.runs_per_sample == 1 and all(x == pytest.approx(5.0) for x in s.samples_ms)
    assert ref.time_once() == pytest.approx(0.4)


def test_no_warmup_asked_means_no_warmup_call(host):
    calls = []
    run = host.work(50)
    s = time_callable(lambda: (calls.append(1), run()), runs=5, warmup=0)
    assert len(calls) == 5 and len(s.samples_ms) == 5  # `--warmup 0` times every call it makes
