"""The Android path: benchmark_model output parsing, the adb wrapper, AndroidDevice, device scripts.

No phone is needed: a stand-in `adb` (tests/fake_adb) is put first on PATH. It speaks adb's
command line, keeps the phone's filesystem in a temp folder and runs pushed .tflite files with
LiteRT on this host, printing real benchmark_model output formats.
"""
from __future__ import annotations

import json
import math
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from latbench.devices.adb import Adb, AdbError, parse_devices
from latbench.devices.android import (REMOTE_BINARY, REMOTE_CONDITIONS, REMOTE_DIR, AndroidDevice,
                                      parse_conditions, temperature_c)
from latbench.devices.base import Sample
from latbench.devices.benchmark_model_output import parse_benchmark_output, parse_stat_line
from latbench.errors import DeviceError

HERE = Path(__file__).resolve().parent
FIX = HERE / "data" / "benchmark_model"
FAKE_DIR = HERE / "fake_adb"
SCRIPTS = HERE.parent / "device_scripts" / "android"
SERIAL = "FA6AN0301234"


def fixture_text(name: str) -> str:
    return (FIX / name).read_text()


# ====================================================================== parser: every format
def test_new_litert_output_with_percentiles():
    r = parse_benchmark_output(fixture_text("new_litert_percentiles.txt"))
    assert r["format"] == "new"
    assert r["count"] == 50
    assert r["avg_ms"] == pytest.approx(77.8124)
    assert r["std_ms"] == pytest.approx(0.912)
    assert (r["min_ms"], r["max_ms"]) == (pytest.approx(76.874), pytest.approx(81.933))
    assert (r["p5_ms"], r["median_ms"], r["p95_ms"]) == (pytest.approx(76.958), pytest.approx(77.62),
                                                         pytest.approx(79.87))
    assert r["first_ms"] == pytest.approx(78.412)
    assert r["init_ms"] == pytest.approx(48.213)
    assert r["first_inference_ms"] == pytest.approx(95.472)
    assert r["warmup_avg_ms"] == pytest.approx(79.8412)
    assert r["warmup"]["count"] == 12  # warmup_min_secs stretched 10 warm-up runs to 12
    assert r["warmup"]["median_ms"] == pytest.approx(78.24)
    assert r["requested_runs"] == 50
    assert r["nodes"] == [] and r["init_nodes"] == []


def test_count_is_read_not_num_runs():
    # TF 2.x: "at least 50 iterations and at least 1 seconds" ran 123 times; no percentiles yet
    r = parse_benchmark_output(fixture_text("new_tf2_min_secs.txt"))
    assert r["count"] == 123
    assert r["avg_ms"] == pytest.approx(8.13362)
    assert r["std_ms"] == pytest.approx(0.187)
    assert r["median_ms"] is None and r["p5_ms"] is None and r["p95_ms"] is None
    assert r["warmup"]["count"] == 61
    assert r["init_ms"] == pytest.approx(21.376)
    # --max_secs cut a slow model short: 8 runs of the 50 asked for
    r = parse_benchmark_output(fixture_text("new_scientific.txt"))
    assert r["requested_runs"] == 50
    assert r["count"] == 8


def test_scientific_notation_and_all_same_warmup():
    r = parse_benchmark_output(fixture_text("new_scientific.txt"))
    assert r["avg_ms"] == pytest.approx(1249.05)  # avg=1.24905e+06 us
    assert r["summary_inference_avg_ms"] == pytest.approx(1249.05)
    assert r["warmup_avg_ms"] == pytest.approx(1301.52)  # Warmup (avg): 1.30152e+06
    assert r["median_ms"] == pytest.approx(1243.98)
    assert r["init_ms"] == pytest.approx(312.874)
    w = r["warmup"]  # "count=1 curr=1301522 p5=.. median=.. p95=.."
    assert w["count"] == 1
    assert w["avg_ms"] == w["min_ms"] == w["max_ms"] == pytest.approx(1301.522)
    assert w["std_ms"] == 0.0


def test_old_no_stats_format():
    r = parse_benchmark_output(fixture_text("old_nostats.txt"))
    assert r["format"] == "old"
    assert r["count"] == 50
    assert r["avg_ms"] == pytest.approx(138.93)
    assert r["std_ms"] == pytest.approx(1.184)
    assert r["median_ms"] is None
    assert r["init_ms"] == pytest.approx(5.127)
    assert r["warmup_avg_ms"] == pytest.approx(152.304)
    assert r["warmup"]["count"] == 1
    assert r["requested_runs"] == 50  # "Num runs: [50]"


def test_old_profiling_tables_with_start_column():
    r = parse_benchmark_output(fixture_text("old_profiling_start.txt"))
    assert r["format"] == "old"
    # the inference line, not the profiler's "Timings (microseconds): count=50 ... avg=..." line
    assert r["count"] == 50
    assert r["avg_ms"] == pytest.approx(33.3976)
    assert r["warmup"]["count"] == 7
    assert r["init_nodes"] == []  # no init profile before 2020
    nodes = r["nodes"]
    assert len(nodes) == 12
    first = nodes[0]
    assert first["node_type"] == "CONV_2D"
    assert first["name"] == "[MobilenetV1/MobilenetV1/Conv2d_0/Relu6]"
    assert first["start_ms"] == 0.0
    assert first["avg_ms"] == pytest.approx(4.310)
    assert first["first_ms"] == pytest.approx(5.014)
    assert first["percent"] == pytest.approx(12.814)
    assert nodes[1]["start_ms"] == pytest.approx(4.310)
    assert nodes[-1]["node_type"] == "SOFTMAX" and nodes[-1]["cdf_percent"] == pytest.approx(100.0)
    assert sum(n["percent"] for n in nodes) == pytest.approx(100.0, abs=0.05)
    assert [n["name"] for n in r["nodes_by_time"]][0] == "[MobilenetV1/MobilenetV1/Conv2d_3_pointwise/Relu6]"
    assert len(r["nodes_by_time"]) == 10


def test_init_profile_kept_apart_from_regular_runs():
    r = parse_benchmark_output(fixture_text("tf2_op_profiling_start.txt"))
    assert r["count"] == 20 and r["avg_ms"] == pytest.approx(32.6113)
    assert [n["node_type"] for n in r["init_nodes"]] == ["AllocateTensors"]
    assert r["init_nodes"][0]["avg_ms"] == pytest.approx(1.892)
    assert len(r["nodes"]) == 10
    assert "AllocateTensors" not in {n["node_type"] for n in r["nodes"]}
    assert r["nodes"][0]["name"] == "[MobilenetV2/Conv/Relu6]" and r["nodes"][0]["start_ms"] == 0.0
    assert r["nodes"][0]["avg_ms"] == pytest.approx(7.237)
    assert r["nodes"][6]["node_type"] == "ADD"


def test_xnnpack_profile_without_start_column():
    r = parse_benchmark_output(fixture_text("new_op_profiling_xnnpack.txt"))
    assert r["count"] == 30 and r["median_ms"] == pytest.approx(25.617)
    assert [n["node_type"] for n in r["init_nodes"]] == ["ModifyGraphWithDelegate", "AllocateTensors"]
    nodes = r["nodes"]
    assert len(nodes) == 9
    assert all(n["start_ms"] is None for n in nodes)
    assert nodes[0]["node_type"] == "Convolution (NHWC, F32) IGEMM"
    assert nodes[0]["name"] == "Delegate/Convolution (NHWC, F32) IGEMM:0"
    assert nodes[0]["avg_ms"] == pytest.approx(6.921)
    dw = nodes[4]
    assert dw["node_type"] == "Convolution (NHWC, F32) DWConv" and dw["times_called"] == 3
    assert dw["avg_ms"] == pytest.approx(1.204)  # per call
    # the enclosing TfLiteXNNPackDelegate row times the same work as the Delegate/ rows: dropped,
    # so the rows add up to one inference (25.1 of 25.7 ms), not two (50.5 ms)
    assert [n["node_type"] for n in r["enclosing_nodes"]] == ["TfLiteXNNPackDelegate"]
    assert "TfLiteXNNPackDelegate" not in {n["node_type"] for n in nodes + r["nodes_by_time"]}
    per_inference = sum(n["avg_ms"] * n["times_called"] for n in nodes)
    assert per_inference == pytest.approx(25.124) and per_inference < r["avg_ms"]
    assert sum(n["percent"] for n in nodes) + r["enclosing_nodes"][0]["percent"] == pytest.approx(100.0, abs=0.05)
    assert {n["node_type"] for n in nodes}.isdisjoint({"ModifyGraphWithDelegate", "AllocateTensors"})


def test_space_aligned_tables_parse_like_tab_separated():
    tabbed = parse_benchmark_output(fixture_text("new_op_profiling_xnnpack.txt"))
    pasted = parse_benchmark_output(fixture_text("pasted_spaces.txt"))
    assert "\t" not in fixture_text("pasted_spaces.txt")
    assert pasted == tabbed


def test_log_prefixes_and_stat_line_forms():
    text = "\n".join([
        "2019-03-01 10:00:00.000001: I tensorflow/lite/tools/benchmark/benchmark_model.cc:99] Running benchmark for 2 iterations",
        "2019-03-01 10:00:00.000002: I tensorflow/lite/tools/benchmark/benchmark_model.cc:124] count=2 curr=5000(all same)",
        "11-25 10:00:00.123  4321  4321 I tflite  : Running benchmark for at least 20 iterations",
        "11-25 10:00:00.124  4321  4321 I tflite  : count=20 first=4100 curr=3900 min=3800 max=4100 avg=3950.5 std=70",
        "11-25 10:00:00.125  4321  4321 I tflite  : Average inference timings in us: Warmup: 5000, Init: 812, Inference: 3950.5",
    ])
    r = parse_benchmark_output(text)
    assert r["count"] == 20 and r["avg_ms"] == pytest.approx(3.9505)
    assert r["warmup"]["count"] == 2 and r["warmup"]["avg_ms"] == pytest.approx(5.0)
    assert r["init_ms"] == pytest.approx(0.812)
    s = parse_stat_line("curr=1500 count=3 min=1400 max=1600 avg=1500 std=81")  # 2017 field order
    assert s["count"] == 3 and s["avg_ms"] == pytest.approx(1.5)
    assert parse_stat_line("count=0")["count"] == 0
    assert parse_stat_line("Timings (microseconds): count=50 avg=3") is None


def test_subgraph_and_delegate_blocks():
    sys.path.insert(0, str(FAKE_DIR))
    try:
        from fake_adb import stats_tables
    finally:
        sys.path.remove(str(FAKE_DIR))
    node = lambda t, n, us: {"type": t, "name": n, "start_us": 0.0, "first_us": us, "sum_us": us * 10,  # noqa: E731
                             "times_called": 10}
    text = ("Running benchmark for at least 10 iterations\ncount=10 first=900 curr=880 min=870 max=900 avg=885 std=9\n"
            "INFO: Operator-wise Profiling Info for Regular Benchmark Runs:\n"
            "Primary graph (name: main) profile:\n"
            + stats_tables([node("WHILE", "[while]:0", 600), node("CONV_2D", "[conv]:1", 200)], 10, False)
            + "Subgraph (index: 1, name: body) profile:\n"
            + stats_tables([node("ADD", "[add]:0", 50)], 10, False)
            + "Delegate internal: \n"
            + stats_tables([node("Convolution (NHWC, F32) GEMM", "Delegate/GEMM:0", 150)], 10, False))
    r = parse_benchmark_output(text)
    assert [(n["node_type"], n["subgraph"]) for n in r["nodes"]] == [("WHILE", 0), ("CONV_2D", 0), ("ADD", 1)]
    assert [n["node_type"] for n in r["delegate_nodes"]] == ["Convolution (NHWC, F32) GEMM"]


@pytest.mark.parametrize("text, needle", [
    (fixture_text("failed_missing_model.txt"), "Could not open"),
    (fixture_text("failed_count0.txt"), "count=0"),
    ("", "no inference timings"),
    ("INFO: STARTING!\nSegmentation fault\n", "no inference timings"),
    # killed during the timed runs: the warm-up stats must not pass for the inference stats
    ("Running benchmark for at least 1 iterations\ncount=3 first=10 curr=9 min=9 max=10 avg=9.3 std=0\n\n"
     "Running benchmark for at least 50 iterations\n", "no inference timings"),
])
def test_unparsable_output_raises(text, needle):
    with pytest.raises(DeviceError, match=needle):
        parse_benchmark_output(text)


# ====================================================================== adb wrapper
def test_parse_devices():
    text = ("* daemon not running; starting now at tcp:5037\n* daemon started successfully\n"
            "List of devices attached\nFA6AN0301234\tdevice\nHT7B1B345678\tunauthorized\n"
            "emulator-5554\toffline\n0123456789ABCDEF       device product:sailfish model:Pixel device:sailfish "
            "transport_id:3\n9A1B2C\tno permissions (user in plugdev group; are your udev rules wrong?)\n\n")
    assert parse_devices(text) == [("FA6AN0301234", "device"), ("HT7B1B345678", "unauthorized"),
                                   ("emulator-5554", "offline"), ("0123456789ABCDEF", "device"),
                                   ("9A1B2C", "no permissions")]


@pytest.fixture
def fake(tmp_path, monkeypatch):
    """The stand-in adb first on PATH, a fresh fake phone, a private config dir."""
    wrapper = FAKE_DIR / "adb"
    if not os.access(wrapper, os.X_OK):
        wrapper.chmod(wrapper.stat().st_mode | 0o111)
    root = tmp_path / "phone"
    monkeypatch.setenv("PATH", str(FAKE_DIR) + os.pathsep + os.environ.get("PATH", ""))
    monkeypatch.setenv("FAKE_ADB_ROOT", str(root))
    monkeypatch.setenv("LATBENCH_FAKE_ADB_PYTHON", sys.executable)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    for var in ("ADB", "LATBENCH_BENCHMARK_MODEL", "FAKE_ADB_STATE", "FAKE_ADB_SERIAL", "FAKE_ADB_FLAKY",
                "FAKE_ADB_BM_FORMAT", "FAKE_ADB_UID", "FAKE_ADB_DELAY_S"):
        monkeypatch.delenv(var, raising=False)

    class Fake:
        pass

    f = Fake()
    f.root = root
    f.log = lambda: [json.loads(l) for l in (root / ".host" / "adb_log.jsonl").read_text().splitlines()]
    f.path = lambda remote: root / remote.lstrip("/")
    return f


def elf_bytes(machine: int = 183, ei_class: int = 2) -> bytes:
    """An ELF header (little endian, executable) for `machine` (183 AArch64, 62 x86-64, 40 ARM)."""
    ident = b"\x7fELF" + bytes([ei_class, 1, 1]) + bytes(9)
    return ident + (2).to_bytes(2, "little") + machine.to_bytes(2, "little") + bytes(range(256)) * 8


@pytest.fixture
def binary(tmp_path):
    """A stand-in for the android_aarch64 benchmark_model file (the fake phone never executes it)."""
    p = tmp_path / "android_aarch64_benchmark_model"
    p.write_bytes(elf_bytes())
    return p


def test_adb_argv_and_shell(fake, tmp_path):
    adb = Adb(SERIAL)
    assert adb.list_devices() == [(SERIAL, "device")]
    assert adb.shell(["echo", "hello world"]).stdout == "hello world\n"
    local = tmp_path / "f.txt"
    local.write_text("x")
    adb.push(local, "/data/local/tmp/latbench/f.txt")
    assert fake.path("/data/local/tmp/latbench/f.txt").read_text() == "x"
    assert adb.getprop("ro.product.model") == "Pixel"
    assert fake.log()[:3] == [["devices"], ["-s", SERIAL, "shell", "echo 'hello world'"],
                              ["-s", SERIAL, "push", str(local), "/data/local/tmp/latbench/f.txt"]]
    res = adb.shell("ls /nonexistent", check=False)
    assert res.returncode == 1 and "No such file" in res.stderr
    with pytest.raises(AdbError, match="exit 127"):
        adb.shell("frobnicate --now")


def test_adb_retries_transient_errors(fake, monkeypatch):
    monkeypatch.setenv("FAKE_ADB_FLAKY", "2")  # "error: closed" twice, then fine
    adb = Adb(SERIAL, retries=3, retry_delay=0.01)
    assert adb.shell(["echo", "ok"]).stdout == "ok\n"
    assert sum(1 for a in fake.log() if "shell" in a) == 3
    monkeypatch.setenv("FAKE_ADB_ROOT", str(fake.root.parent / "phone2"))
    monkeypatch.setenv("FAKE_ADB_FLAKY", "5")
    with pytest.raises(AdbError, match="closed"):
        Adb(SERIAL, retries=1, retry_delay=0.01).shell(["echo", "ok"])


def test_adb_timeout(fake, monkeypatch):
    monkeypatch.setenv("FAKE_ADB_DELAY_S", "5")
    with pytest.raises(AdbError, match="timed out") as exc:
        Adb(SERIAL, timeout=0.5).shell(["echo", "late"])
    assert exc.value.reason == "timeout"


@pytest.mark.parametrize("state, serial, reason, needle", [
    ("none", None, "no-device", "no Android device attached"),
    ("none", SERIAL, "no-device", "no Android device attached"),
    ("unauthorized", SERIAL, "unauthorized", "Allow USB debugging"),
    ("unauthorized", None, "unauthorized", "unauthorized"),
    ("offline", SERIAL, "offline", "offline"),
    ("device", "WRONG123", "no-device", "WRONG123"),
])
def test_adb_clear_errors(fake, monkeypatch, state, serial, reason, needle):
    monkeypatch.setenv("FAKE_ADB_STATE", state)
    adb = Adb(serial, retries=1, retry_delay=0.01)
    with pytest.raises(AdbError, match=needle) as exc:
        adb.resolve_serial()
    assert exc.value.reason == reason
    if serial:  # the device command itself fails with the same clear message
        with pytest.raises(AdbError) as exc:
            adb.shell(["echo", "x"])
        assert exc.value.reason == reason


def test_missing_adb(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no adb anywhere
    monkeypatch.delenv("ADB", raising=False)
    with pytest.raises(AdbError, match="adb not found") as exc:
        Adb().list_devices()
    assert exc.value.reason == "missing-adb"
    ok, why = AndroidDevice(benchmark_model=None).available()
    assert not ok and "adb not found on PATH" in why


# ====================================================================== AndroidDevice
def test_available_reasons(fake, monkeypatch, binary, tmp_path):
    monkeypatch.setenv("FAKE_ADB_STATE", "none")
    ok, why = AndroidDevice(benchmark_model=binary).available()
    assert not ok and "no Android device attached" in why
    monkeypatch.setenv("FAKE_ADB_STATE", "unauthorized")
    ok, why = AndroidDevice(benchmark_model=binary).available()
    assert not ok and "unauthorized" in why and "Allow USB debugging" in why
    monkeypatch.setenv("FAKE_ADB_STATE", "device")
    ok, why = AndroidDevice(serial="NOPE0000").available()
    assert not ok and "NOPE0000 is not attached" in why
    ok, why = AndroidDevice().available()  # attached, but no binary configured
    assert not ok
    assert "no benchmark_model binary configured" in why
    assert "//tensorflow/lite/tools/benchmark:benchmark_model" in why and "android_arm64" in why
    assert "android_aarch64_benchmark_model" in why and "LATBENCH_BENCHMARK_MODEL" in why
    ok, why = AndroidDevice(benchmark_model=tmp_path / "missing", remember=False).available()
    assert not ok and "does not exist" in why
    monkeypatch.setenv("LATBENCH_BENCHMARK_MODEL", str(binary))
    assert AndroidDevice().available() == (True, "")
    assert AndroidDevice(serial=SERIAL).available() == (True, "")


def test_benchmark_model_option_is_remembered(fake, binary):
    assert AndroidDevice().available()[0] is False
    assert AndroidDevice(benchmark_model=binary).available() == (True, "")
    cfg = json.loads((Path(os.environ["XDG_CONFIG_HOME"]) / "latbench" / "config.json").read_text())
    assert cfg["benchmark_model"] == str(binary.resolve())
    assert AndroidDevice().available() == (True, "")  # configured once


TINY_ARCH = {"format": "latbench-arch/1", "name": "tiny-android", "resolution": 48, "in_channels": 3,
             "layers": [{"type": "conv", "out": 16, "kernel": 3, "stride": 2},
                        {"type": "mbconv", "expand": 4, "out": 24, "kernel": 5, "stride": 1},
                        {"type": "conv", "out": 64, "kernel": 1},
                        {"type": "pool"}, {"type": "fc", "out": 10}]}


@pytest.fixture(scope="session")
def tflite_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("tflite-cache")


@pytest.fixture(scope="session")
def tiny_tflite(tflite_cache):
    """A small float32 .tflite: latbench's own converter if present, else Keras + TFLiteConverter."""
    try:
        from latbench.arch import parse_arch
        from latbench.build.tflite_convert import to_tflite
    except ImportError:
        to_tflite = None
    if to_tflite is not None:
        return Path(to_tflite(parse_arch(TINY_ARCH), cache_dir=tflite_cache))
    tf = pytest.importorskip("tensorflow")
    inp = tf.keras.Input((48, 48, 3), batch_size=1)
    x = tf.keras.layers.Conv2D(16, 3, strides=2, padding="same", activation="relu")(inp)
    x = tf.keras.layers.DepthwiseConv2D(5, padding="same", activation="relu")(x)
    x = tf.keras.layers.Conv2D(64, 1)(x)
    x = tf.keras.layers.GlobalAveragePooling2D()(x)
    x = tf.keras.layers.Dense(10)(x)
    path = tflite_cache / "tiny.tflite"
    path.write_bytes(tf.lite.TFLiteConverter.from_keras_model(tf.keras.Model(inp, x)).convert())
    return path


def test_measure_end_to_end(fake, binary, tiny_tflite):
    dev = AndroidDevice(benchmark_model=binary)
    assert dev.name == "pixel1" and dev.cpu_mask == "8"
    prepared = dev.prepare(tiny_tflite)
    assert prepared.remote.startswith(f"{REMOTE_DIR}/models/") and prepared.remote.endswith(".tflite")
    assert fake.path(prepared.remote).read_bytes() == tiny_tflite.read_bytes()
    assert dev.prepare(tiny_tflite).remote == prepared.remote  # pushed once

    sample = dev.measure(prepared, runs=15, warmup=3)
    assert isinstance(sample, Sample)
    assert len(sample.samples_ms) == 1 and 0.001 < sample.samples_ms[0] < 1000
    assert sample.runs_per_sample == 15  # the count= the tool printed
    assert sample.timed_s == pytest.approx(sample.samples_ms[0] * 15 / 1000)
    stats = sample.conditions["benchmark_model"]
    assert stats["count"] == 15 and stats["warmup_count"] == 3
    assert stats["min_ms"] <= stats["median_ms"] <= stats["max_ms"]
    before, after = sample.conditions["before"], sample.conditions["after"]
    for cond in (before, after):
        assert cond["governor"] == "schedutil"
        assert cond["cur_freq_khz"] == 2150400
        assert set(cond["cpus"]) == {"3"}
        assert cond["thermal"]["thermal_zone5"] == {"type": "pm8994_tz", "temp_c": 33.0, "raw": "33000"}
    assert before["max_temp_c"] == 38.0 and after["max_temp_c"] == 39.0  # the fake SoC warmed up

    # the binary went over once, executable, with its sha256 marker; the exact command line
    assert os.access(fake.path(REMOTE_BINARY), os.X_OK)
    assert fake.path(REMOTE_BINARY).read_bytes() == binary.read_bytes()
    runs = [a[-1] for a in fake.log() if a[:3] == ["-s", SERIAL, "shell"] and "benchmark_model --graph" in a[-1]]
    # the run records its PID first (a timed-out run is killed on the phone), then execs the binary
    assert runs == [f"echo $$ > {REMOTE_DIR}/run.pid && exec "
                    f"taskset 8 {REMOTE_BINARY} --graph={prepared.remote} --num_threads=1 --warmup_runs=3 "
                    "--warmup_min_secs=0 --num_runs=15 --min_secs=0 --use_xnnpack=true"]
    conds = [a for a in fake.log() if a[-1].startswith(f"sh {REMOTE_CONDITIONS}")]
    assert len(conds) == 3 and {c[-1] for c in conds} == {f"sh {REMOTE_CONDITIONS} 3"}  # setup check, before, after
    assert stats["flavour"] == "benchmark_model" and stats["xnnpack_delegate_created"] is True

    # op profile: per-node rows of the regular runs; with XNNPACK those are its own Delegate/ rows
    rows = dev.measure_op_profile(prepared, runs=5, warmup=1)
    assert {"Convolution (NHWC, F32) DWConv", "Fully Connected (NC, F32) GEMM"} <= {r["node_type"] for r in rows}
    assert all(r["name"].startswith("Delegate/") for r in rows)
    assert all(r["avg_ms"] >= 0 and r["times_called"] >= 1 for r in rows)
    assert 40 < sum(r["percent"] for r in rows) < 60  # the other half is the enclosing row, left out
    assert "AllocateTensors" not in {r["node_type"] for r in rows}

    dev.close()
    assert not fake.path(prepared.remote).exists()
    assert fake.path(REMOTE_BINARY).exists()  # kept on the phone for later runs


def test_measure_old_binary_format(fake, binary, tiny_tflite, monkeypatch):
    monkeypatch.setenv("FAKE_ADB_BM_FORMAT", "old")
    with AndroidDevice(benchmark_model=binary) as dev:  # TFLite 1.x knows no --use_xnnpack
        with pytest.raises(DeviceError, match=r"ignored --use_xnnpack=true .*pass --no-xnnpack"):
            dev.measure(dev.prepare(tiny_tflite), runs=3, warmup=1)
    with AndroidDevice(benchmark_model=binary, use_xnnpack=False) as dev:
        prepared = dev.prepare(tiny_tflite)
        sample = dev.measure(prepared, runs=6, warmup=1)
        assert sample.runs_per_sample == 6 and sample.samples_ms[0] > 0
        assert sample.conditions["benchmark_model"]["median_ms"] is None
        rows = dev.measure_op_profile(prepared, runs=3, warmup=1)
        assert rows and all(r["start_ms"] is not None for r in rows)
    assert not fake.path(prepared.remote).exists()


def test_prepare_arch_uses_to_tflite(fake, binary, tflite_cache, tiny_tflite):
    pytest.importorskip("latbench.build.tflite_convert")
    from latbench.arch import parse_arch

    with AndroidDevice(benchmark_model=binary, cache_dir=tflite_cache) as dev:
        prepared = dev.prepare(parse_arch(TINY_ARCH))  # cached by the session fixture: no conversion
        assert prepared.label == "tiny-android"
        assert fake.path(prepared.remote).read_bytes() == tiny_tflite.read_bytes()


def test_failed_run_raises(fake, binary, tmp_path):
    bad = tmp_path / "broken.tflite"
    bad.write_bytes(b"not a flatbuffer at all")
    dev = AndroidDevice(benchmark_model=binary)
    with pytest.raises(DeviceError, match="benchmark_model failed on broken.tflite"):
        dev.measure(dev.prepare(bad), runs=3, warmup=1)
    with pytest.raises(TypeError):
        dev.measure("not prepared", runs=3, warmup=1)
    dev.close()


def test_fingerprint(fake, binary):
    import hashlib

    dev = AndroidDevice(benchmark_model=binary)
    fp = dev.fingerprint()
    assert fp == {
        "device": "pixel1", "runtime": "tflite-benchmark_model", "model": "Pixel",
        "build": "google/sailfish/sailfish:10/QP1A.191005.007.A3/5972272:user/release-keys",
        "benchmark_model_sha256": hashlib.sha256(binary.read_bytes()).hexdigest(),
        "threads": 1, "cpu_mask": "8", "cores": [3], "governor": "schedutil", "use_xnnpack": True, "batch": 1,
    }
    assert SERIAL not in json.dumps(fp)  # two Pixel 1 units share a store
    pushes = lambda: sum(1 for a in fake.log() if a[2:3] == ["push"] and a[-1] == REMOTE_BINARY)  # noqa: E731
    assert pushes() == 1
    other = AndroidDevice(benchmark_model=binary, threads=2, cpu_mask="c")
    fp2 = other.fingerprint()
    assert pushes() == 1  # same sha on the phone: not pushed again
    assert (fp2["threads"], fp2["cpu_mask"], fp2["cores"]) == (2, "c", [2, 3])
    assert AndroidDevice(name="android", cpu_mask="auto", benchmark_model=binary).cpu_mask == "8"


def test_parse_conditions_units():
    text = ("cpu3.online=1\ncpu3.governor=performance\ncpu3.cur_freq_khz=2150400\ncpu3.min_freq_khz=NA\n"
            "thermal_zone0.type=tsens_tz_sensor0\nthermal_zone0.temp=41\nthermal_zone1.type=battery\n"
            "thermal_zone1.temp=305\nthermal_zone2.type=xo_therm\nthermal_zone2.temp=43500\n"
            "thermal_zone3.type=off\nthermal_zone3.temp=NA\n")
    c = parse_conditions(text, [3])
    assert c["governor"] == "performance" and c["cur_freq_khz"] == 2150400 and c["min_freq_khz"] is None
    assert c["thermal"]["thermal_zone1"]["temp_c"] == 30.5
    assert c["thermal"]["thermal_zone3"]["temp_c"] is None
    assert c["max_temp_c"] == 43.5
    assert temperature_c("36000") == 36.0 and temperature_c("36") == 36.0 and temperature_c("x") is None


# ====================================================================== device scripts
def _push_script(adb, name):
    adb.push(SCRIPTS / name, f"{REMOTE_DIR}/{name}")
    return f"{REMOTE_DIR}/{name}"


def test_setup_sh_root_and_not_root(fake, monkeypatch):
    adb = Adb(SERIAL)
    script = _push_script(adb, "setup.sh")
    out = adb.shell(["sh", script]).stdout
    assert "root=0" in out and "cpu3.governor=schedutil" in out
    monkeypatch.setenv("FAKE_ADB_UID", "0")
    out = adb.shell(["sh", script]).stdout
    assert "root=1" in out and "set cpu3.governor=performance (was schedutil)" in out
    gov = fake.path("/sys/devices/system/cpu/cpu3/cpufreq/scaling_governor").read_text().strip()
    assert gov == "performance"
    assert fake.path("/sys/devices/system/cpu/cpu1/cpufreq/scaling_governor").read_text().strip() == "schedutil"
    out = adb.shell(["sh", script, "2 3", "1824000"]).stdout
    f = lambda n: fake.path(f"/sys/devices/system/cpu/cpu2/cpufreq/{n}").read_text().strip()  # noqa: E731
    assert (f("scaling_governor"), f("scaling_min_freq"), f("scaling_max_freq"), f("scaling_setspeed")) == \
        ("userspace", "1824000", "1824000", "1824000")
    assert adb.shell(["sh", script, "3", "fast"], check=False).returncode == 2


def test_cooldown_sh(fake):
    adb = Adb(SERIAL)
    script = _push_script(adb, "cooldown.sh")
    res = adb.shell(["sh", script, "45", "10", "1"])
    assert "max_temp_c=38 zone=thermal_zone4" in res.stdout and "cool=1" in res.stdout
    res = adb.shell(["sh", script, "30", "0", "1"], check=False)
    assert res.returncode == 1 and "cool=0" in res.stdout


def test_bench_loop_sh(tmp_path):
    """bench_loop.sh on the host, with stand-ins for taskset and benchmark_model."""
    bm = tmp_path / "benchmark_model"
    bm.write_text(f"#!/bin/sh\necho \"args: $*\"\ncat '{FIX / 'new_litert_percentiles.txt'}'\n")
    notaskset = tmp_path / "notaskset"
    notaskset.write_text('#!/bin/sh\nshift\nexec "$@"\n')
    for p in (bm, notaskset):
        p.chmod(p.stat().st_mode | stat.S_IXUSR)
    out = tmp_path / "out"
    env = dict(os.environ, TASKSET=str(notaskset), RUNS="7", WARMUP="2")
    res = subprocess.run(["sh", str(SCRIPTS / "bench_loop.sh"), str(bm), "8", str(out), "/x/a.tflite", "/x/b.tflite"],
                         capture_output=True, text=True, env=env)
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines() == [f"graph=/x/a.tflite rc=0 out={out}/a.tflite.txt",
                                       f"graph=/x/b.tflite rc=0 out={out}/b.tflite.txt"]
    text = (out / "a.tflite.txt").read_text()
    assert "--graph=/x/a.tflite --num_threads=1 --warmup_runs=2 --warmup_min_secs=0 --num_runs=7 --min_secs=0" in text
    assert parse_benchmark_output(text)["count"] == 50


def test_read_conditions_sh_all_cpus(fake):
    adb = Adb(SERIAL)
    AndroidDevice(adb=adb)._setup_dir()
    c = parse_conditions(adb.shell(["sh", REMOTE_CONDITIONS]).stdout)
    assert set(c["cpus"]) == {"0", "1", "2", "3"}
    assert c["cpus"]["0"]["cpuinfo_max_freq_khz"] == 1593600 and c["cpus"]["3"]["cpuinfo_max_freq_khz"] == 2150400
    assert len(c["thermal"]) == 8 and not math.isnan(c["max_temp_c"])
