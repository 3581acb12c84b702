"""The Android path against what real phones and binaries do: enclosing XNNPACK rows, older
profile headers, ignored flags, LiteRT's binary, disconnects, timeouts, locks, conditions,
other phones, the binary's ABI, per-node profiles for context tables (stand-in adb)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import warnings

import pytest

from latbench.devices.android import REMOTE_BINARY, REMOTE_DIR, AndroidDevice
from latbench.devices.benchmark_model_output import parse_benchmark_output
from latbench.errors import DeviceError
from test_android import SERIAL, TINY_ARCH, binary, elf_bytes, fake, fixture_text, tflite_cache, tiny_tflite  # noqa: F401

FAKE_DIR = os.path.join(os.path.dirname(__file__), "fake_adb")


@pytest.fixture(autouse=True)
def private_locks(tmp_path, monkeypatch):
    monkeypatch.setenv("LATBENCH_LOCK_DIR", str(tmp_path / "locks"))
    for var in ("ANDROID_SERIAL", "FAKE_ADB_DISCONNECT", "FAKE_ADB_BM_SLEEP_S", "FAKE_ADB_BM_FLAVOUR",
                "FAKE_ADB_BM_PROFILER", "FAKE_ADB_PROPS"):
        monkeypatch.delenv(var, raising=False)


def bm_runs(fake):
    return [a for a in fake.log() if "shell" in a and "benchmark_model --graph" in a[-1]]


# ====================================================================== parser
def test_older_subgraph_headers():
    from test_android import FAKE_DIR as fake_dir
    sys.path.insert(0, str(fake_dir))
    try:
        from fake_adb import stats_tables
    finally:
        sys.path.remove(str(fake_dir))
    node = lambda t, n, us: {"type": t, "name": n, "start_us": 0.0, "first_us": us, "sum_us": us * 10,  # noqa: E731
                             "times_called": 10}
    text = ("Running benchmark for at least 10 iterations\ncount=10 first=900 curr=880 min=870 max=900 avg=885 std=9\n"
            "Operator-wise Profiling Info for Regular Benchmark Runs:\n"
            "Primary graph profile:\n"
            + stats_tables([node("WHILE", "[while]:0", 600), node("CONV_2D", "[conv]:1", 200)], 10, False)
            + "Subgraph (index: 1) profile:\n"
            + stats_tables([node("ADD", "[add]:0", 50)], 10, False))
    r = parse_benchmark_output(text)
    assert [(n["node_type"], n["subgraph"]) for n in r["nodes"]] == [("WHILE", 0), ("CONV_2D", 0), ("ADD", 1)]
    assert [n["node_type"] for n in r["nodes_by_time"]] == ["WHILE", "CONV_2D", "ADD"]


def test_unconsumed_flags_and_litert_flavour_are_read():
    r = parse_benchmark_output(fixture_text("litert_unconsumed.txt"))
    assert r["unconsumed_flags"] == ["--use_xnnpack=true", "--enable_op_profiling=true"]
    assert r["flavour"] == "benchmark_litert_model" and r["count"] == 20
    assert r["avg_ms"] == pytest.approx(20.1186) and r["xnnpack_delegate_created"] is False
    r = parse_benchmark_output(fixture_text("new_litert_percentiles.txt"))
    assert r["unconsumed_flags"] == [] and r["flavour"] == "benchmark_model" and r["xnnpack_delegate_created"]
    # TF 2.x before log prefixes: the warning has none
    text = ("STARTING!\nUnconsumed cmdline flags: --allow_fp16\nRunning benchmark for at least 1 iterations\n"
            "count=1 curr=5000\n\nRunning benchmark for at least 5 iterations\n"
            "count=5 first=10 curr=9 min=9 max=10 avg=9.5 std=0\n")
    assert parse_benchmark_output(text)["unconsumed_flags"] == ["--allow_fp16"]


# ====================================================================== flags the binary ignored
def test_ignored_flags_and_litert_binary_are_errors(fake, binary, tiny_tflite, monkeypatch):
    monkeypatch.setenv("FAKE_ADB_BM_FLAVOUR", "litert")
    with AndroidDevice(benchmark_model=binary) as dev:
        with pytest.raises(DeviceError, match=r"benchmark_litert_model, which ignores --num_threads.*; it ignored --use_xnnpack=true"):
            dev.measure(dev.prepare(tiny_tflite), runs=3, warmup=1)
    with AndroidDevice(benchmark_model=binary, use_xnnpack=False) as dev:
        with pytest.raises(DeviceError, match="benchmark_litert_model, which ignores --num_threads"):
            dev.measure(dev.prepare(tiny_tflite), runs=3, warmup=1)


def test_op_profiling_without_a_table_is_an_error(fake, binary, tiny_tflite, monkeypatch):
    monkeypatch.setenv("FAKE_ADB_BM_PROFILER", "off")
    with AndroidDevice(benchmark_model=binary) as dev:
        prepared = dev.prepare(tiny_tflite)
        assert dev.measure(prepared, runs=3, warmup=1).runs_per_sample == 3  # timing alone is fine
        with pytest.raises(DeviceError, match="no op-profiling table"):
            dev.measure_op_profile(prepared, runs=3, warmup=1)


# ====================================================================== node profiles -> context tables
def test_node_profile_maps_xnnpack_rows_to_layers_once(fake, binary, tflite_cache, tiny_tflite):
    pytest.importorskip("latbench.build.tflite_convert")
    from latbench.arch import parse_arch
    from latbench.devices.tflite_nodes import map_rows, tflite_ops

    arch = parse_arch(TINY_ARCH)
    with AndroidDevice(benchmark_model=binary, cache_dir=tflite_cache) as dev:
        rounds = dev.node_profile(arch)
        assert len(rounds) == 1
        rows = rounds[0]
        assert all(r["name"].startswith("Delegate/") for r in rows)
        layers = {r["layer"] for r in rows}
        assert layers == set(range(len(TINY_ARCH["layers"])))  # every layer, nothing unmapped
        assert {r["part"] for r in rows if r["layer"] == 1} >= {"expand", "dw", "project"}
        dw = [r for r in rows if r["layer"] == 1 and r["part"] == "dw"]
        assert [r["op"] for r in dw] == ["DEPTHWISE_CONV_2D"]
        # the per-op rows add up to one inference: the enclosing row (1.01 x the run) is not added again
        prepared = dev.prepare(arch)
        parsed = dev._run(prepared, 5, 1, 0.0, op_profiling=True)
        enclosing = parsed["enclosing_nodes"][0]
        mapped = map_rows(parsed["nodes"], tflite_ops(prepared.local), arch)
        total = sum(r["ms"] for r in mapped)
        assert total == pytest.approx(enclosing["avg_ms"] * enclosing["times_called"] / 1.01, rel=0.03)


def test_node_profile_without_xnnpack_uses_tensor_names(fake, binary, tflite_cache, tiny_tflite):
    pytest.importorskip("latbench.build.tflite_convert")
    from latbench.arch import parse_arch

    arch = parse_arch(TINY_ARCH)
    with AndroidDevice(benchmark_model=binary, cache_dir=tflite_cache, use_xnnpack=False) as dev:
        rows = dev.node_profile(arch)[0]
    assert {r["op"] for r in rows} >= {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"}
    assert {r["layer"] for r in rows} == set(range(len(TINY_ARCH["layers"])))


def test_map_rows_aligns_delegate_rows_by_execution_order():
    from latbench.devices.tflite_nodes import map_rows

    ops = [{"index": 0, "kind": "PAD", "outputs": ["m/L0_pad/Pad"]},
           {"index": 1, "kind": "CONV_2D", "outputs": ["m/L0_conv/Relu6"]},
           {"index": 2, "kind": "DEPTHWISE_CONV_2D", "outputs": ["m/L1_dw_conv/Relu6"]},
           {"index": 3, "kind": "CONV_2D", "outputs": ["m/L1_project_conv/BiasAdd"]},
           {"index": 4, "kind": "MEAN", "outputs": ["m/L2_pool/Mean"]},
           {"index": 5, "kind": "FULLY_CONNECTED", "outputs": ["m/L3_fc/BiasAdd"]}]
    row = lambda t, i, ms, calls=1: {"node_type": t, "name": f"Delegate/{t}:{i}", "avg_ms": ms,  # noqa: E731
                                     "times_called": calls}
    rows = [row("Convolution (NHWC, F32) IGEMM", 0, 1.0),  # the PAD before it was fused into it
            row("Convolution (NHWC, F32) DWConv", 1, 0.5),
            row("Convolution (NHWC, F32) GEMM", 2, 0.25, calls=2),
            row("Copy (NC, X32)", 3, 0.01),  # no op ahead runs as a copy: charged to the row before
            row("Global Average Pooling (NWC, F32)", 4, 0.02),
            {"node_type": "FULLY_CONNECTED", "name": "[m/L3_fc/BiasAdd]:5", "avg_ms": 0.1, "times_called": 1}]
    out = map_rows(rows, ops)
    assert [(r["layer"], r["part"], r["op"]) for r in out] == [
        (0, "", "CONV_2D"), (1, "dw", "DEPTHWISE_CONV_2D"), (1, "project", "CONV_2D"), (1, "project", "CONV_2D"),
        (2, "", "MEAN"), (3, "", "FULLY_CONNECTED")]
    assert out[2]["ms"] == 0.5  # per-call time x calls per run


# ====================================================================== disconnects, timeouts
def test_mid_run_disconnect_waits_for_the_phone_and_repeats(fake, binary, tiny_tflite, monkeypatch):
    monkeypatch.setenv("FAKE_ADB_DISCONNECT", "1:1.5")  # the first run loses the link for 1.5 s
    with AndroidDevice(benchmark_model=binary) as dev:
        prepared = dev.prepare(tiny_tflite)
        with pytest.warns(UserWarning, match="reconnected after 'error: closed'; repeating"):
            sample = dev.measure(prepared, runs=4, warmup=1)
        assert sample.runs_per_sample == 4
    assert len(bm_runs(fake)) == 2
    assert ["-s", SERIAL, "wait-for-device"] in fake.log()


def test_phone_that_stays_away_is_a_clear_error(fake, binary, tiny_tflite, monkeypatch):
    monkeypatch.setenv("FAKE_ADB_DISCONNECT", "1:60")
    with AndroidDevice(benchmark_model=binary, reconnect_timeout_s=1.0) as dev:
        prepared = dev.prepare(tiny_tflite)
        with pytest.raises(DeviceError, match=r"disconnected during .* did not come back within 1 s"):
            dev.measure(prepared, runs=3, warmup=1)
        dev._pushed.clear()  # the phone is gone: nothing to clean up


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as fh:
            return "\nState:\tZ" not in fh.read()
    except OSError:
        return False


def test_timed_out_run_is_killed_on_the_phone(fake, binary, tiny_tflite, monkeypatch):
    with AndroidDevice(benchmark_model=binary, timeout=3.0) as dev:
        prepared = dev.prepare(tiny_tflite)
        dev.fingerprint()  # setup done before the slow run
        monkeypatch.setenv("FAKE_ADB_BM_SLEEP_S", "60")
        with pytest.raises(DeviceError, match=r"timed out after 3 s \(its process on the phone was killed\)"):
            dev.measure(prepared, runs=3, warmup=1)
        monkeypatch.delenv("FAKE_ADB_BM_SLEEP_S")
        pid = int(fake.path(f"{REMOTE_DIR}/run.pid").read_text())
        deadline = time.time() + 10
        while _alive(pid) and time.time() < deadline:
            time.sleep(0.1)
        assert not _alive(pid)
        assert any(a[-1] == f"kill {pid}" for a in fake.log())


# ====================================================================== serial, lock
def test_android_serial_picks_the_phone(fake, binary, monkeypatch):
    monkeypatch.setenv("FAKE_ADB_SERIAL", "AAA111,BBB222")
    ok, why = AndroidDevice(benchmark_model=binary).available()
    assert not ok and "several Android devices" in why
    monkeypatch.setenv("ANDROID_SERIAL", "BBB222")
    dev = AndroidDevice(benchmark_model=binary)
    assert dev.available() == (True, "") and dev.serial == "BBB222"
    dev.fingerprint()
    dev.close()
    assert fake.log()[-1][:2] == ["-s", "BBB222"]


def test_a_phone_in_use_by_another_process_is_refused(fake, binary, tmp_path):
    code = ("import sys, time; sys.path.insert(0, sys.argv[1]);"
            "from latbench.devices.android_host import PhoneLock; PhoneLock(sys.argv[2]).acquire();"
            "print('locked', flush=True); time.sleep(60)")
    holder = subprocess.Popen([sys.executable, "-c", code, os.getcwd(), SERIAL], stdout=subprocess.PIPE, text=True,
                              env=dict(os.environ))
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(DeviceError, match=rf"phone {SERIAL} is in use by another latbench process \(pid {holder.pid}"):
            AndroidDevice(benchmark_model=binary).fingerprint()
        other = AndroidDevice(benchmark_model=binary, serial="OTHER1")  # another phone is not blocked
        assert "in use" not in other.available()[1]
    finally:
        holder.kill()
        holder.wait()
    a = AndroidDevice(benchmark_model=binary)
    b = AndroidDevice(benchmark_model=binary)  # two devices of this process share the phone's lock
    assert a.fingerprint() == b.fingerprint()
    a.close()
    b.close()


# ====================================================================== conditions
def test_setup_cooldown_and_frequency_used_are_recorded(fake, binary, tiny_tflite, monkeypatch):
    monkeypatch.setenv("FAKE_ADB_UID", "0")  # root: setup.sh sets the governor
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # root and readable thermal zones: no warning
        with AndroidDevice(benchmark_model=binary) as dev:
            sample = dev.measure(dev.prepare(tiny_tflite), runs=5, warmup=1)
    c = sample.conditions
    assert c["setup"]["root"] is True and "set cpu3.governor=performance (was schedutil)" in c["setup"]["actions"]
    assert c["before"]["governor"] == "performance" and dev.fingerprint()["governor"] == "performance"
    assert c["cooldown"]["cool"] is True and c["cooldown"]["max_temp_c"] == 38 and c["cooldown"]["limit_c"] == 45
    assert c["freq_used_khz"] == 2150400 and set(c["time_at_freq_s"]) == {"2150400"}
    assert fake.path("/sys/devices/system/cpu/cpu3/cpufreq/scaling_governor").read_text().strip() == "performance"


def test_not_root_and_hot_phone_warn_once(fake, binary, tiny_tflite, monkeypatch):
    with AndroidDevice(benchmark_model=binary, cooldown_c=30, cooldown_timeout_s=1) as dev:
        prepared = dev.prepare(tiny_tflite)
        with pytest.warns(UserWarning) as record:
            s1 = dev.measure(prepared, runs=3, warmup=1)
            dev.measure(prepared, runs=3, warmup=1)
    messages = [str(w.message) for w in record]
    assert sum("not root" in m for m in messages) == 1
    assert sum("after 1 s of cooldown" in m for m in messages) == 1
    assert s1.conditions["setup"]["root"] is False and s1.conditions["cooldown"]["cool"] is False


# ====================================================================== other phones, ABI, listing
def test_pixel1_checks_the_phone_and_android_gets_its_own_settings(fake, binary, monkeypatch):
    from latbench.devices import get_device

    monkeypatch.setenv("FAKE_ADB_PROPS", json.dumps({"ro.product.device": "sunfish", "ro.product.model": "Pixel 4a"}))
    ok, why = AndroidDevice(benchmark_model=binary).available()
    assert not ok and "is a 'Pixel 4a' (ro.product.device=sunfish), not a Pixel 1" in why
    dev = get_device("android", benchmark_model=str(binary))
    assert dev.available() == (True, "")
    assert dev.label == "pixel-4a" and dev.cpu_mask == "8"  # auto: the fastest core, not the Pixel 1 default
    fp = dev.fingerprint()
    assert fp["device"] == "android" and fp["model"] == "Pixel 4a"
    dev.close()
    dev = get_device("android", benchmark_model=str(binary), cpu_mask="c", threads=2, xnnpack=False)
    assert (dev.cpu_mask, dev.threads, dev.use_xnnpack) == ("c", 2, False)
    from latbench.errors import BadInput
    with pytest.raises(BadInput, match="--cpu-mask: 'zz' is not a taskset hex mask"):
        get_device("android", cpu_mask="zz")
    with pytest.raises(BadInput, match="only for the pixel1 and android devices, not cpu"):
        get_device("cpu", threads=2)
    with pytest.raises(BadInput, match="--gpu-timing: only for the gpu device"):
        get_device("android", gpu_timing="pipelined")


def test_binary_abi_is_checked_before_the_first_run(fake, tmp_path):
    wrong = tmp_path / "benchmark_model_x86_64"
    wrong.write_bytes(elf_bytes(machine=62))
    with pytest.raises(DeviceError, match=r"built for x86_64, but phone FA6AN0301234 runs arm64-v8a"):
        AndroidDevice(benchmark_model=wrong).fingerprint()
    assert not any(a[-1] == REMOTE_BINARY for a in fake.log() if "push" in a)
    arm32 = tmp_path / "benchmark_model_arm"
    arm32.write_bytes(elf_bytes(machine=40, ei_class=1))  # runs on an arm64 phone (abilist)
    dev = AndroidDevice(benchmark_model=arm32)
    dev.fingerprint()
    dev.close()
    text = tmp_path / "script.sh"
    text.write_text("#!/bin/sh\n")
    with pytest.raises(DeviceError, match="not an ELF executable"):
        AndroidDevice(benchmark_model=text).fingerprint()


def test_devices_lists_phones_without_pushing(fake, cli, monkeypatch):
    monkeypatch.setenv("FAKE_ADB_SERIAL", "AAA111,BBB222")
    res = cli("devices", "--json", env=dict(os.environ))
    assert res.returncode == 0, res.stderr
    row = next(r for r in json.loads(res.stdout) if r["device"] == "pixel1")
    assert [(p["serial"], p["state"], p["model"], p["android"], p["abi"]) for p in row["phones"]] == [
        ("AAA111", "device", "Pixel", "10", "arm64-v8a"), ("BBB222", "device", "Pixel", "10", "arm64-v8a")]
    assert not [a for a in fake.log() if "push" in a]
    text = cli("devices", env=dict(os.environ)).stdout
    assert "AAA111" in text and "Android 10" in text


def test_unreadable_thermal_zones_warn_once(fake, binary, tiny_tflite):
    import shutil

    from latbench.devices.adb import Adb

    Adb(SERIAL).shell(["echo", "init"])  # the fake phone's sysfs exists from the first command
    shutil.rmtree(fake.path("/sys/class/thermal"))
    with AndroidDevice(benchmark_model=binary) as dev:
        prepared = dev.prepare(tiny_tflite)
        with pytest.warns(UserWarning) as record:
            s = dev.measure(prepared, runs=3, warmup=1)
            dev.measure(prepared, runs=3, warmup=1)
    assert sum("no readable thermal zone" in str(w.message) for w in record) == 1
    assert s.conditions["before"]["max_temp_c"] is None and s.conditions["cooldown"]["max_temp_c"] is None
