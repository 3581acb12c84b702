"""Stand-in for the ``adb`` command line, for latbench's tests (no phone attached).

Run through the ``adb`` sh wrapper next to this file, which calls
``"${LATBENCH_FAKE_ADB_PYTHON:-python3}" fake_adb.py "$@"``. It plays a Pixel 1 reached over
adb, with the device's filesystem kept in a host folder:

- ``FAKE_ADB_ROOT`` (required): the fake device filesystem; ``/data/local/tmp/x`` lives at
  ``$FAKE_ADB_ROOT/data/local/tmp/x``. A Pixel-1-like sysfs (4 cpus, cpufreq, thermal zones) and
  the build properties are created on first use. ``$FAKE_ADB_ROOT/.host/adb_log.jsonl`` records
  every invocation's argv.
- ``FAKE_ADB_STATE``: ``device`` (default), ``none`` (nothing attached), ``unauthorized``,
  ``offline``. ``FAKE_ADB_SERIAL``: the serial (default FA6AN0301234), or a comma-separated list
  of serials: several phones of the same model attached at once (``adb devices`` lists them all,
  ``-s SERIAL`` addresses one, a device command without ``-s`` fails with adb's "more than one
  device/emulator"). With one serial the phone's filesystem is ``$FAKE_ADB_ROOT`` itself; with
  several, each phone has its own under ``$FAKE_ADB_ROOT/<serial>/`` (its sysfs, props, pushed
  files, flaky counter), while the invocation log stays ``$FAKE_ADB_ROOT/.host/adb_log.jsonl``
  (entries carry ``-s SERIAL``). The state applies to every listed serial.
- ``FAKE_ADB_FLAKY=N``: the next N device commands fail once each with ``error: closed``
  (a transient transport error adb clients retry).
- ``FAKE_ADB_BM_FORMAT``: ``new`` (default; LiteRT output: ``INFO:`` prefixes, p5/median/p95,
  ``Inference timings in us: Init: ..``, profiling tables without ``[start]``, separate init
  profile) or ``old`` (TFLite 1.x output: ``Average inference timings in us: Warmup: ..,
  no stats: ..``, tables with ``[start]`` and no section headers).
- ``FAKE_ADB_UID``: what ``id -u`` says, also inside scripts (default 2000, the shell user).
- ``FAKE_ADB_DELAY_S``: sleep this long before answering a device command (timeouts).
- ``FAKE_ADB_BM_SLEEP_S``: benchmark_model sleeps this long before running (a run that times out).
- ``FAKE_ADB_BM_FLAVOUR``: ``benchmark_model`` (default) or ``litert``: LiteRT's
  ``benchmark_litert_model``, which knows no ``--use_xnnpack`` / ``--enable_op_profiling`` (it says
  so in an ``Unconsumed cmdline flags`` warning), accepts but ignores ``--num_threads`` and logs
  ``INFO: [file:NN]`` lines. The ``old`` format (TFLite 1.x) knows no ``--use_xnnpack`` either.
- ``FAKE_ADB_DISCONNECT=N:S``: the N-th benchmark_model run on a phone loses the USB link midway
  (partial output, ``error: closed``, exit 1) and the phone is gone for S seconds: ``adb devices``
  does not list it, device commands fail with ``adb: device 'SERIAL' not found``, and
  ``wait-for-device`` returns when it is back.
- ``FAKE_ADB_BM_PROFILER=off``: a binary built without the op profiler: it takes
  ``--enable_op_profiling=true`` and prints no table.
- ``FAKE_ADB_PROPS``: a JSON object of build properties overriding the Pixel's (another phone).

Commands: ``devices [-l]``, ``[-s SERIAL] push LOCAL REMOTE``, ``[-s SERIAL] shell CMD``,
``start-server``, ``kill-server``, ``version``, ``wait-for-device``; ``$ANDROID_SERIAL`` stands
for ``-s`` as in adb. ``shell`` runs a small sh: ``;`` ``&&`` ``||``, ``exec``, ``kill PID``,
``$$`` (a command line that uses it runs in its own process session, like a process on the
phone: killing the adb client leaves it running),
``>``/``>>`` redirection, and mkdir, chmod, rm, rmdir, ls, cat, echo, getprop, id, true, false,
``sh SCRIPT ARGS`` (the pushed script runs in the host's /bin/sh with ``LATBENCH_ROOT`` set to
the fake root, so the real device_scripts are exercised), ``taskset MASK PROGRAM ARGS`` and a
pushed ``benchmark_model``: the .tflite is run with LiteRT on this host for the requested warm-up
and timed runs and the output is printed in benchmark_model's format. With
``--enable_op_profiling=true`` the measured time is apportioned across the graph's nodes by their
multiply-accumulate share (LiteRT on the host has no per-op profiler); with XNNPACK (new format)
the table holds, as TF >= 2.9.1 prints it, the enclosing ``TfLiteXNNPackDelegate`` node and
XNNPACK's own ``Delegate/<operator>:<i>`` rows (a PAD fused into the next convolution has no row).
Unknown commands fail with
a mksh-like message and exit status 127.
"""
from __future__ import annotations

import json
import math
import os
import re
import shlex
import shutil
import subprocess
import sys
import time

SERIAL = "FA6AN0301234"
PROPS = {
    "ro.product.model": "Pixel",
    "ro.product.device": "sailfish",
    "ro.product.manufacturer": "Google",
    "ro.product.cpu.abi": "arm64-v8a",
    "ro.product.cpu.abilist": "arm64-v8a,armeabi-v7a,armeabi",
    "ro.build.version.release": "10",
    "ro.build.version.sdk": "29",
    "ro.build.fingerprint": "google/sailfish/sailfish:10/QP1A.191005.007.A3/5972272:user/release-keys",
}
# Pixel 1 / Snapdragon 821: cpu0-1 Kryo silver (1.59 GHz), cpu2-3 Kryo gold (2.15 GHz)
CPUS = {0: (307200, 1593600), 1: (307200, 1593600), 2: (307200, 2150400), 3: (307200, 2150400)}
THERMAL = [("tsens_tz_sensor0", "34"), ("tsens_tz_sensor1", "36"), ("tsens_tz_sensor2", "35"),
           ("tsens_tz_sensor3", "37"), ("tsens_tz_sensor4", "38"), ("pm8994_tz", "33000"),
           ("battery", "290"), ("bms", "27900")]


# ---------------------------------------------------------------------- the fake device
def serials() -> list:
    """The attached serials (FAKE_ADB_SERIAL, comma-separated; default one Pixel)."""
    value = os.environ.get("FAKE_ADB_SERIAL") or SERIAL
    return [s.strip() for s in value.split(",") if s.strip()] or [SERIAL]


def host_root() -> str:
    """$FAKE_ADB_ROOT, with its .host folder (the invocation log) created."""
    root = os.environ.get("FAKE_ADB_ROOT")
    if not root:
        sys.stderr.write("fake adb: FAKE_ADB_ROOT is not set\n")
        sys.exit(1)
    os.makedirs(os.path.join(root, ".host"), exist_ok=True)
    return root


def device_root(serial: str | None = None) -> str:
    """The filesystem of phone `serial` (initialised on first use): $FAKE_ADB_ROOT when one phone
    is attached, $FAKE_ADB_ROOT/<serial> when several are."""
    root = host_root()
    listed = serials()
    if len(listed) > 1:
        root = os.path.join(root, serial or listed[0])
    if not os.path.exists(os.path.join(root, ".host", "initialised")):
        init_root(root)
    return root


def fake_root() -> str:
    """The filesystem of the (only or first) phone."""
    return device_root()


def _write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as fh:
        fh.write(text)


def init_root(root):
    os.makedirs(os.path.join(root, "data", "local", "tmp"), exist_ok=True)
    for cpu, (lo, hi) in CPUS.items():
        d = os.path.join(root, "sys", "devices", "system", "cpu", f"cpu{cpu}")
        if cpu:
            _write(os.path.join(d, "online"), "1\n")
        f = os.path.join(d, "cpufreq")
        _write(os.path.join(f, "scaling_governor"), "schedutil\n")
        _write(os.path.join(f, "scaling_available_governors"), "interactive conservative ondemand userspace powersave performance schedutil\n")
        _write(os.path.join(f, "scaling_cur_freq"), f"{hi if cpu >= 2 else 1036800}\n")
        _write(os.path.join(f, "scaling_min_freq"), f"{lo}\n")
        _write(os.path.join(f, "scaling_max_freq"), f"{hi}\n")
        _write(os.path.join(f, "cpuinfo_min_freq"), f"{lo}\n")
        _write(os.path.join(f, "cpuinfo_max_freq"), f"{hi}\n")
        _write(os.path.join(f, "scaling_setspeed"), "<unsupported>\n")
        steps = (lo, (lo + hi) // 2, hi)
        _write(os.path.join(f, "stats", "time_in_state"), "".join(f"{fr} {1000 * (i + 1)}\n" for i, fr in enumerate(steps)))
    for i, (kind, temp) in enumerate(THERMAL):
        z = os.path.join(root, "sys", "class", "thermal", f"thermal_zone{i}")
        _write(os.path.join(z, "type"), kind + "\n")
        _write(os.path.join(z, "temp"), temp + "\n")
    props = dict(PROPS, **json.loads(os.environ.get("FAKE_ADB_PROPS") or "{}"))
    _write(os.path.join(root, ".host", "props.json"), json.dumps(props, indent=1))
    # scripts run by `sh` see the phone's `id`, not the host's
    shim = os.path.join(root, ".host", "bin", "id")
    _write(shim, '#!/bin/sh\nu="${FAKE_ADB_UID:-2000}"\n'
                 'if [ "$1" = "-u" ]; then echo "$u"; else echo "uid=$u gid=$u"; fi\n')
    os.chmod(shim, 0o755)
    _write(os.path.join(root, ".host", "initialised"), "1\n")


def dev_path(root, path):
    """Host path of a device path (absolute; relative ones are taken from /)."""
    norm = os.path.normpath("/" + path.lstrip("/"))
    return os.path.join(root, norm.lstrip("/"))


def heat_up(root, degrees=1, seconds=0.0, cap=42):
    """A benchmark run warms the SoC sensors a little, up to `cap` °C (so before/after conditions
    differ), and adds its duration to every online core's time at its current frequency."""
    for i, (kind, _) in enumerate(THERMAL):
        if not kind.startswith("tsens"):
            continue
        p = os.path.join(root, "sys", "class", "thermal", f"thermal_zone{i}", "temp")
        try:
            v = int(open(p).read().strip())
            _write(p, f"{min(v + degrees, max(v, cap))}\n")
        except (OSError, ValueError):
            pass
    ticks = max(1, int(round(seconds * 100)))
    for cpu in CPUS:
        f = os.path.join(root, "sys", "devices", "system", "cpu", f"cpu{cpu}", "cpufreq")
        try:
            cur = open(os.path.join(f, "scaling_cur_freq")).read().strip()
            lines = open(os.path.join(f, "stats", "time_in_state")).read().split("\n")
        except OSError:
            continue
        out = []
        for line in lines:
            parts = line.split()
            if len(parts) == 2 and parts[0] == cur:
                line = f"{parts[0]} {int(parts[1]) + ticks}"
            out.append(line)
        _write(os.path.join(f, "stats", "time_in_state"), "\n".join(out))


# ---------------------------------------------------------------------- benchmark_model output
def g6(x: float) -> str:
    """A double as a C++ ostream prints it by default (6 significant digits, %g)."""
    return format(x, ".6g")


def stat_line(values, percentiles: bool) -> str:
    """tensorflow::Stat / StatWithPercentiles OutputToStream."""
    n = len(values)
    if n == 0:
        return "count=0"
    first, curr, lo, hi = values[0], values[-1], min(values), max(values)
    if lo == hi:
        s = f"count={n} curr={curr}" + ("(all same)" if n > 1 else "")
    else:
        avg = sum(values) / n
        var = sum(v * v for v in values) / n - avg * avg
        std = int(math.sqrt(max(var, 0.0)))
        s = f"count={n} first={first} curr={curr} min={lo} max={hi} avg={g6(avg)} std={std}"
    if percentiles:
        srt = sorted(values)
        s += f" p5={srt[n * 5 // 100]} median={srt[n * 50 // 100]} p95={srt[n * 95 // 100]}"
    return s


def _f(width, value) -> str:
    """InitField: a tab, then right-aligned in `width`, fixed with 3 decimals for doubles."""
    if isinstance(value, float):
        value = f"{value:.3f}"
    return "\t" + str(value).rjust(width)


def stats_tables(nodes, num_runs, with_start, titles=True, time_limit=10) -> str:
    """StatsCalculator::GetOutputString (Run Order, Top by Computation Time, by node type, summary).

    nodes: dicts with type, name, start_us, first_us, sum_us (all runs), times_called (all runs).
    """
    run_total = sum(n["sum_us"] for n in nodes) or 1

    def header(title):
        out = ""
        if titles:
            out += "=" * 30 + f" {title} " + "=" * 30 + "\n"
        out += _f(24, "[node type]") + (_f(17, "[start]") if with_start else "") + _f(9, "[first]")
        out += _f(9, "[avg ms]") + _f(8, "[%]") + _f(8, "[cdf%]") + _f(10, "[mem KB]") + _f(9, "[times called]")
        return out + "\t[Name]\n"

    def column(n, cdf_sum):
        calls = max(1, n["times_called"])
        line = _f(24, n["type"])
        if with_start:
            line += _f(17, n["start_us"] / 1000.0)
        line += _f(9, n["first_us"] / 1000.0) + _f(9, n["sum_us"] / calls / 1000.0)
        line += _f(7, n["sum_us"] * 100.0 / run_total) + "%" + _f(7, cdf_sum * 100.0 / run_total) + "%"
        line += _f(10, 0.0) + _f(9, n["times_called"] // max(1, num_runs)) + "\t" + n["name"]
        return line + "\n"

    def table(title, ordered):
        out, cdf = header(title), 0
        for n in ordered:
            cdf += n["sum_us"]
            out += column(n, cdf)
        return out + "\n"

    text = table("Run Order", nodes)
    text += table("Top by Computation Time",
                  sorted(nodes, key=lambda n: -n["sum_us"] / max(1, n["times_called"]))[:time_limit])
    by_type, count = {}, {}
    for n in nodes:
        by_type[n["type"]] = by_type.get(n["type"], 0) + n["sum_us"] // max(1, num_runs)
        count[n["type"]] = count.get(n["type"], 0) + 1
    acc = sum(by_type.values()) or 1
    text += f"Number of nodes executed: {len(nodes)}\n"
    if titles:
        text += "=" * 30 + " Summary by node type " + "=" * 30 + "\n"
    text += _f(24, "[Node type]") + _f(9, "[count]") + _f(10, "[avg ms]") + _f(11, "[avg %]") + _f(11, "[cdf %]")
    text += _f(10, "[mem KB]") + _f(10, "[times called]") + "\n"
    cdf = 0.0
    for t, us in sorted(by_type.items(), key=lambda kv: -kv[1]):
        pct = us * 100.0 / acc
        cdf += pct
        text += _f(24, t) + _f(9, count[t]) + _f(10, us / 1000.0) + _f(10, pct) + "%" + _f(10, cdf) + "%"
        text += _f(10, 0.0) + _f(9, 1) + "\n"
    text += "\n"
    totals = [run_total // max(1, num_runs)] * max(1, num_runs)
    text += f"Timings (microseconds): {stat_line(totals, False)}\nMemory (bytes): count=0\n{len(nodes)} nodes observed\n"
    return text


def _bool_flag(v) -> bool:
    return str(v).lower() in ("true", "1", "yes")


def _node_weights(interp):
    """(type, name, MACs) per node of the main graph, from LiteRT's op and tensor details."""
    tensors = {t["index"]: t for t in interp.get_tensor_details()}
    out = []
    for op in interp._get_ops_details():
        kind = op["op_name"]
        if kind == "DELEGATE":
            continue
        outs = [tensors[i] for i in op["outputs"] if i in tensors]
        ins = [tensors[i] for i in op["inputs"] if i >= 0 and i in tensors]
        out_elems = sum(int(t["shape"].prod()) for t in outs) or 1
        macs = out_elems
        if kind == "CONV_2D" and len(ins) > 1:
            w = ins[1]["shape"]  # O, kh, kw, I
            macs = out_elems * int(w[1] * w[2] * w[3])
        elif kind == "DEPTHWISE_CONV_2D" and len(ins) > 1:
            w = ins[1]["shape"]  # 1, kh, kw, C
            macs = out_elems * int(w[1] * w[2])
        elif kind == "FULLY_CONNECTED" and len(ins) > 1:
            macs = out_elems * int(ins[1]["shape"][-1])
        name = outs[0]["name"] if outs else f"node{op['index']}"
        out.append((kind, name, op["index"], max(1, macs)))
    return out


# flags each flavour knows (tflite::Flags leaves the others "unconsumed" and warns)
BASE_FLAGS = {"num_runs", "min_secs", "max_secs", "run_delay", "num_threads", "benchmark_name", "output_prefix",
              "warmup_runs", "warmup_min_secs", "verbose", "graph"}
OLD_FLAGS = BASE_FLAGS | {"input_layer", "input_layer_shape", "use_nnapi", "use_legacy_nnapi", "use_gpu",
                          "allow_fp16", "enable_op_profiling"}
NEW_FLAGS = OLD_FLAGS | {"use_xnnpack", "max_profiling_buffer_entries", "dry_run", "report_peak_memory_footprint"}
LITERT_FLAGS = BASE_FLAGS | {"signature_to_run_for", "use_cpu", "use_gpu", "use_npu", "allow_fp16",
                             "require_full_delegation", "use_profiler", "result_file_path", "dry_run"}
# TFLite builtin op -> the XNNPACK operator type printed for it (None: fused into a neighbour)
XNNPACK_OPS = {"CONV_2D": "Convolution (NHWC, F32) {conv}", "DEPTHWISE_CONV_2D": "Convolution (NHWC, F32) DWConv",
               "FULLY_CONNECTED": "Fully Connected (NC, F32) GEMM", "ADD": "Add (ND, F32)",
               "MUL": "Multiply (ND, F32)", "MEAN": "Global Average Pooling (NWC, F32)", "RESHAPE": "Copy (NC, X32)",
               "HARD_SWISH": "HardSwish (NC, F32)", "LOGISTIC": "Sigmoid (NC, F32)", "PAD": None,
               "AVERAGE_POOL_2D": "Average Pooling (NHWC, F32)", "SOFTMAX": "Softmax (NC, F32)"}


def _is_pointwise(interp, node) -> bool:
    """Whether a CONV_2D row is a 1x1 convolution (XNNPACK runs those as GEMM, others as IGEMM)."""
    index = int(node["name"].rsplit(":", 1)[1])
    tensors = {t["index"]: t for t in interp.get_tensor_details()}
    for op in interp._get_ops_details():
        if op["index"] == index and len(op["inputs"]) > 1 and op["inputs"][1] in tensors:
            shape = tensors[op["inputs"][1]]["shape"]
            return len(shape) == 4 and shape[1] == 1 and shape[2] == 1
    return False


def _count(root, name) -> int:
    """Increment and return the counter `name` of the phone at `root`."""
    path = os.path.join(root, ".host", name)
    n = int(open(path).read()) + 1 if os.path.exists(path) else 1
    _write(path, str(n))
    return n


def benchmark_model(argv, root, out, err) -> int:
    fmt = os.environ.get("FAKE_ADB_BM_FORMAT", "new")
    litert = os.environ.get("FAKE_ADB_BM_FLAVOUR", "benchmark_model") == "litert"
    new = fmt != "old" or litert
    p = "INFO: " if new else ""
    known = LITERT_FLAGS if litert else NEW_FLAGS if new else OLD_FLAGS
    flags, unconsumed = {}, []
    for a in argv:
        m = re.match(r"--([A-Za-z0-9_]+)=(.*)$", a)
        if m and m.group(1) in known:
            flags[m.group(1)] = m.group(2)
        else:
            unconsumed.append(a)
    if os.environ.get("FAKE_ADB_BM_SLEEP_S"):
        time.sleep(float(os.environ["FAKE_ADB_BM_SLEEP_S"]))
    run_no = _count(root, "bm_runs")
    drop = os.environ.get("FAKE_ADB_DISCONNECT", "")
    drop_at, _, gone_s = drop.partition(":")
    try:
        num_runs = int(flags.get("num_runs", 50))
        min_secs = float(flags.get("min_secs", 1.0))
        max_secs = float(flags.get("max_secs", 150.0))
        warmup_runs = int(flags.get("warmup_runs", 1))
        warmup_min_secs = float(flags.get("warmup_min_secs", 0.5))
        threads = int(flags.get("num_threads", -1))
    except ValueError as exc:
        err.write(f"ERROR: bad flag value: {exc}\n")
        return 1
    profiling = _bool_flag(flags.get("enable_op_profiling", "false"))
    # TF 2.x applies XNNPACK unless --use_xnnpack=false; 1.x has none; LiteRT's CPU path uses it
    xnnpack = _bool_flag(flags.get("use_xnnpack", "true")) if new else False
    graph = flags.get("graph", "")

    out.write(f"{p}STARTING!\n")
    if unconsumed:
        out.write(("WARN: " if new else "") + f"Unconsumed cmdline flags: {' '.join(unconsumed)}\n")
    if drop_at and int(drop_at) == run_no:
        out.write(f"{p}Log parameter values verbosely: [0]\n")
        out.flush()
        _write(os.path.join(root, ".host", "gone_until"), str(time.time() + float(gone_s or 5)))
        err.write("error: closed\n")
        return 1
    if new:
        out.write(f"{p}Log parameter values verbosely: [0]\n")
        if "num_runs" in flags:
            out.write(f"{p}Min num runs: [{num_runs}]\n")
        if "min_secs" in flags:
            out.write(f"{p}Min runs duration (seconds): [{g6(min_secs)}]\n")
        if "warmup_runs" in flags:
            out.write(f"{p}Min warmup runs: [{warmup_runs}]\n")
        if "warmup_min_secs" in flags:
            out.write(f"{p}Min warmup runs duration (seconds): [{g6(warmup_min_secs)}]\n")
        out.write(f"{p}Graph: [{graph}]\n")
        if profiling:
            out.write(f"{p}Enable op profiling: [1]\n")
        if "num_threads" in flags:
            out.write(f"{p}#threads used for CPU inference: [{threads}]\n")
        if "use_xnnpack" in flags:
            out.write(f"{p}Use xnnpack: [{int(xnnpack)}]\n")
    else:
        for label, value in (("Min num runs", num_runs), ("Min runs duration (seconds)", g6(min_secs)),
                             ("Max runs duration (seconds)", g6(max_secs)), ("Inter-run delay (seconds)", -1),
                             ("Num threads", threads), ("Benchmark name", ""), ("Output prefix", ""),
                             ("Min warmup runs", warmup_runs),
                             ("Min warmup runs duration (seconds)", g6(warmup_min_secs)), ("Graph", graph),
                             ("Input layers", ""), ("Input shapes", ""), ("Use nnapi ", 0),
                             ("Use legacy nnapi ", 0), ("Use gpu ", 0), ("Allow fp16 ", 0),
                             ("Enable op profiling", int(profiling))):
            out.write(f"{label}: [{value}]\n")
    host = dev_path(root, graph) if graph else ""
    if not graph or not os.path.isfile(host):
        err.write(f"ERROR: Could not open '{graph}'.\n")
        err.write(f"ERROR: Failed to mmap model {graph}\n")
        return 1

    import numpy as np
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    t0 = time.perf_counter()
    try:
        resolver = OpResolverType.AUTO if xnnpack else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        interp = Interpreter(model_path=host, num_threads=max(1, threads), experimental_op_resolver_type=resolver)
        interp.allocate_tensors()
    except Exception as exc:  # a corrupt model
        err.write(f"ERROR: Failed to load model {graph}: {exc}\n")
        return 1
    init_us = int((time.perf_counter() - t0) * 1e6)
    rng = np.random.default_rng(0)
    for d in interp.get_input_details():
        shape, dtype = d["shape"], d["dtype"]
        if np.issubdtype(dtype, np.floating):
            interp.set_tensor(d["index"], rng.standard_normal(shape).astype(dtype))
        else:
            interp.set_tensor(d["index"], rng.integers(0, 10, size=shape).astype(dtype))
    size_mb = os.path.getsize(host) / 1e6
    if litert:
        out.write(f"{p}[benchmark_litert_model.cc:77] Loading model from: {graph}\n")
        out.write(f"{p}[litert_environment.cc:48] Creating LiteRT environment with options\n")
    else:
        out.write(f"{p}Loaded model {graph}\n")
    if new and xnnpack and not litert:
        out.write(f"{p}Created TensorFlow Lite XNNPACK delegate for CPU.\n")
    if new:
        out.write(f"{p}The input model file size (MB): {g6(size_mb)}\n")
        out.write(f"{p}Initialized session in {g6(init_us / 1e3)}ms.\n")
    else:
        out.write("resolved reporter\n")
        out.write(f"Initialized session in {g6(init_us / 1e3)}ms\n")

    def run(min_num, min_s):
        if new:
            out.write(f"{p}Running benchmark for at least {min_num} iterations and at least {g6(min_s)} "
                      f"seconds but terminate if exceeding {g6(max_secs)} seconds.\n")
        else:
            out.write(f"Running benchmark for at least {min_num} iterations and at least {g6(min_s)} seconds\n")
        times = []
        start = time.perf_counter()
        now = start
        while (len(times) < min_num or now < start + min_s) and now <= start + max_secs:
            a = time.perf_counter_ns()
            interp.invoke()
            times.append(max(1, (time.perf_counter_ns() - a) // 1000))
            now = time.perf_counter()
        out.write(f"{p}{stat_line(times, new)}\n\n")
        return times

    warm = run(warmup_runs, warmup_min_secs)
    timed = run(num_runs, min_secs)
    heat_up(root, seconds=(sum(warm) + sum(timed)) / 1e6)
    w_first = warm[0] if warm else 0
    w_avg = sum(warm) / len(warm) if warm else float("nan")
    i_avg = sum(timed) / len(timed) if timed else float("nan")
    if litert:
        loc = f"{p}[benchmark_litert_model.h:%d] "
        out.write(loc % 88 + "\n========== BENCHMARK RESULTS ==========\n")
        out.write(loc % 89 + f"Model initialization: {init_us / 1e3:.2f} ms\n")
        out.write(loc % 92 + f"Warmup (avg):         {w_avg / 1e3:.2f} ms ({len(warm)} runs)\n")
        out.write(loc % 94 + f"Inference (avg):      {i_avg / 1e3:.2f} ms ({len(timed)} runs)\n")
        return 0
    if new:
        out.write(f"{p}Inference timings in us: Init: {init_us}, First inference: {w_first}, "
                  f"Warmup (avg): {g6(w_avg)}, Inference (avg): {g6(i_avg)}\n")
        out.write(f"{p}Note: as the benchmark tool itself affects memory footprint, the following is only "
                  "APPROXIMATE to the actual memory footprint of the model at runtime. Take the information "
                  "at your discretion.\n")
        out.write(f"{p}Memory footprint delta from the start of the tool (MB): init={g6(3.1875)} "
                  f"overall={g6(4.25)}\n")
    else:
        out.write(f"Average inference timings in us: Warmup: {g6(w_avg)}, Init: {init_us}, no stats: {g6(i_avg)}\n")

    if profiling and timed and os.environ.get("FAKE_ADB_BM_PROFILER", "on") != "off":
        weights = _node_weights(interp)
        total_w = sum(w for *_, w in weights) or 1
        n_runs = len(timed)
        nodes, start_us = [], 0.0
        for kind, name, index, w in weights:
            share = w / total_w
            sum_us = int(sum(timed) * share)
            nodes.append({"type": kind, "name": f"[{name}]:{index}" if new else f"[{name}]",
                          "start_us": start_us, "first_us": timed[0] * share, "sum_us": sum_us,
                          "times_called": n_runs})
            start_us += sum_us / n_runs
        if new and xnnpack:
            # TF >= 2.9.1: the delegate node as a whole, then XNNPACK's operators ("Delegate/<type>:<i>",
            # i counting XNNPACK's operators; a fused PAD has none: its time goes to the next op)
            outputs = [t["name"] for t in interp.get_output_details()]
            enclosing = {"type": "TfLiteXNNPackDelegate", "name": f"[{', '.join(outputs)}]:{len(weights)}",
                         "start_us": 0.0, "first_us": timed[0] * 1.01, "sum_us": int(sum(timed) * 1.01),
                         "times_called": n_runs}
            rows, carry, i = [enclosing], None, 0
            for (kind, *_rest), node in zip(weights, nodes):
                label = XNNPACK_OPS.get(kind, kind.title().replace("_", " ") + " (NC, F32)")
                if label is None:
                    carry = node
                    continue
                if carry is not None:
                    node = dict(node, sum_us=node["sum_us"] + carry["sum_us"], first_us=node["first_us"] + carry["first_us"])
                    carry = None
                label = label.format(conv="GEMM" if _is_pointwise(interp, node) else "IGEMM")
                rows.append(dict(node, type=label, name=f"Delegate/{label}:{i}"))
                i += 1
            nodes = rows
        if new:
            init_nodes = []
            if xnnpack:
                init_nodes.append({"type": "ModifyGraphWithDelegate", "name": "ModifyGraphWithDelegate/0",
                                   "start_us": 0.0, "first_us": init_us * 0.6, "sum_us": int(init_us * 0.6),
                                   "times_called": 1})
            init_nodes.append({"type": "AllocateTensors", "name": "AllocateTensors/0", "start_us": 0.0,
                               "first_us": init_us * 0.3, "sum_us": int(init_us * 0.3), "times_called": 1})
            out.write(f"{p}Profiling Info for Benchmark Initialization:\n")
            out.write(stats_tables(init_nodes, 1, with_start=False) + "\n")
            out.write(f"{p}Operator-wise Profiling Info for Regular Benchmark Runs:\n")
            out.write(stats_tables(nodes, n_runs, with_start=False) + "\n")
        else:
            out.write(stats_tables(nodes, n_runs, with_start=True) + "\n")
    return 0


# ---------------------------------------------------------------------- the shell
class Shell:
    def __init__(self, root):
        self.root = root
        self.rc = 0

    def path(self, p):
        return dev_path(self.root, p)

    def run(self, cmdline: str, out, err) -> int:
        lex = shlex.shlex(cmdline, posix=True, punctuation_chars=";&|<>")
        lex.whitespace_split = True
        try:
            tokens = list(lex)
        except ValueError as exc:
            err.write(f"/system/bin/sh: syntax error: {exc}\n")
            return 2
        segments, current, op = [], [], None
        for tok in tokens:
            if tok in (";", "&&", "||"):
                segments.append((op, current))
                current, op = [], tok
            else:
                current.append(tok)
        segments.append((op, current))
        rc = 0
        for op, words in segments:
            if op == "&&" and rc != 0:
                continue
            if op == "||" and rc == 0:
                continue
            if not words:
                continue
            rc = self.simple(words, out, err)
        return rc

    def simple(self, words, out, err) -> int:
        redirect, mode, argv, i = None, "w", [], 0
        while i < len(words):
            w = words[i]
            if w in (">", ">>") and i + 1 < len(words):
                redirect, mode = words[i + 1], "w" if w == ">" else "a"
                i += 2
                continue
            if w in ("<", "|", "&", "|&", ">&"):
                err.write(f"/system/bin/sh: fake adb shell does not support '{w}'\n")
                return 2
            argv.append(w)
            i += 1
        if redirect is None:
            return self.command(argv, out, err)
        host = self.path(redirect)
        if not os.path.isdir(os.path.dirname(host)):
            err.write(f"/system/bin/sh: can't create {redirect}: No such file or directory\n")
            return 1
        with open(host, mode) as fh:
            return self.command(argv, fh, err)

    def command(self, argv, out, err) -> int:
        argv = [a.replace("$$", str(os.getpid())) for a in argv]
        if argv[0] == "exec" and len(argv) > 1:
            argv = argv[1:]
        name, args = argv[0], argv[1:]
        handler = getattr(self, "cmd_" + name, None) if re.fullmatch(r"[a-z]+", name) else None
        if handler is not None:
            return handler(args, out, err)
        if name.startswith("/"):
            return self.exec_path(name, args, out, err)
        err.write(f"/system/bin/sh: {name}: inaccessible or not found\n")
        return 127

    def exec_path(self, name, args, out, err) -> int:
        host = self.path(name)
        if not os.path.isfile(host):
            err.write(f"/system/bin/sh: {name}: inaccessible or not found\n")
            return 127
        if not os.access(host, os.X_OK):
            err.write(f"/system/bin/sh: {name}: can't execute: Permission denied\n")
            return 126
        if os.path.basename(name) == "benchmark_model":
            return benchmark_model(args, self.root, out, err)
        err.write(f"/system/bin/sh: {name}: can't execute: Exec format error\n")
        return 126

    # -- builtins / toybox
    def _split(self, args):
        opts = [a for a in args if a.startswith("-") and len(a) > 1]
        return "".join(o.lstrip("-") for o in opts), [a for a in args if not (a.startswith("-") and len(a) > 1)]

    def cmd_kill(self, args, out, err):
        import signal
        rc = 0
        for a in args:
            if a.startswith("-"):
                continue
            try:
                os.kill(int(a), signal.SIGTERM)
            except (ValueError, ProcessLookupError, PermissionError):
                err.write(f"kill: pid {a}: No such process\n")
                rc = 1
        return rc

    def cmd_true(self, args, out, err):
        return 0

    def cmd_false(self, args, out, err):
        return 1

    def cmd_echo(self, args, out, err):
        out.write(" ".join(args) + "\n")
        return 0

    def cmd_id(self, args, out, err):
        uid = os.environ.get("FAKE_ADB_UID", "2000")
        name = "root" if uid == "0" else "shell"
        if "-u" in args:
            out.write(uid + "\n")
        else:
            out.write(f"uid={uid}({name}) gid={uid}({name}) groups={uid}({name})\n")
        return 0

    def cmd_getprop(self, args, out, err):
        with open(os.path.join(self.root, ".host", "props.json")) as fh:
            props = json.load(fh)
        if args:
            out.write(props.get(args[0], args[1] if len(args) > 1 else "") + "\n")
        else:
            for k in sorted(props):
                out.write(f"[{k}]: [{props[k]}]\n")
        return 0

    def cmd_mkdir(self, args, out, err):
        opts, paths = self._split(args)
        rc = 0
        for p in paths:
            host = self.path(p)
            try:
                if "p" in opts:
                    os.makedirs(host, exist_ok=True)
                else:
                    os.mkdir(host)
            except FileExistsError:
                err.write(f"mkdir: '{p}': File exists\n")
                rc = 1
            except OSError as exc:
                err.write(f"mkdir: '{p}': {exc.strerror}\n")
                rc = 1
        return rc

    def cmd_chmod(self, args, out, err):
        if len(args) < 2:
            err.write("chmod: Needs 2 arguments\n")
            return 1
        mode, paths = args[0], args[1:]
        rc = 0
        for p in paths:
            host = self.path(p)
            if not os.path.exists(host):
                err.write(f"chmod: {p}: No such file or directory\n")
                rc = 1
                continue
            if re.fullmatch(r"[0-7]{3,4}", mode):
                os.chmod(host, int(mode, 8))
            elif mode in ("+x", "a+x", "u+x"):
                os.chmod(host, os.stat(host).st_mode | 0o111)
            else:
                err.write(f"chmod: bad mode '{mode}'\n")
                return 1
        return rc

    def cmd_rm(self, args, out, err):
        opts, paths = self._split(args)
        rc = 0
        for p in paths:
            host = self.path(p)
            if os.path.isdir(host) and not os.path.islink(host):
                if "r" in opts:
                    shutil.rmtree(host)
                else:
                    err.write(f"rm: {p}: is a directory\n")
                    rc = 1
            elif os.path.lexists(host):
                os.unlink(host)
            elif "f" not in opts:
                err.write(f"rm: {p}: No such file or directory\n")
                rc = 1
        return rc

    def cmd_rmdir(self, args, out, err):
        rc = 0
        for p in args:
            try:
                os.rmdir(self.path(p))
            except OSError as exc:
                err.write(f"rmdir: {p}: {exc.strerror}\n")
                rc = 1
        return rc

    def cmd_ls(self, args, out, err):
        _, paths = self._split(args)
        rc = 0
        for p in paths or ["/"]:
            host = self.path(p)
            if os.path.isdir(host):
                for n in sorted(os.listdir(host)):
                    if not n.startswith(".host"):
                        out.write(n + "\n")
            elif os.path.exists(host):
                out.write(p + "\n")
            else:
                err.write(f"ls: {p}: No such file or directory\n")
                rc = 1
        return rc

    def cmd_cat(self, args, out, err):
        rc = 0
        for p in args:
            host = self.path(p)
            try:
                with open(host) as fh:
                    out.write(fh.read())
            except IsADirectoryError:
                err.write(f"cat: {p}: Is a directory\n")
                rc = 1
            except OSError:
                err.write(f"cat: {p}: No such file or directory\n")
                rc = 1
        return rc

    def cmd_sh(self, args, out, err):
        if not args or args[0].startswith("-"):
            err.write("fake adb: only 'sh SCRIPT ARGS' is supported\n")
            return 2
        host = self.path(args[0])
        if not os.path.isfile(host):
            err.write(f"sh: {args[0]}: No such file or directory\n")
            return 127
        env = dict(os.environ, LATBENCH_ROOT=self.root,
                   PATH=os.path.join(self.root, ".host", "bin") + os.pathsep + os.environ.get("PATH", ""))
        proc = subprocess.run(["/bin/sh", host] + args[1:], env=env, capture_output=True, text=True,
                              cwd=self.root, timeout=600)
        out.write(proc.stdout)
        err.write(proc.stderr)
        return proc.returncode

    def cmd_taskset(self, args, out, err):
        if len(args) < 2:
            err.write("usage: taskset [-ap] [mask] [PID | cmd [args...]]\n")
            return 1
        mask, cmd = args[0], args[1:]
        try:
            value = int(mask, 16)
        except ValueError:
            err.write(f"taskset: bad mask '{mask}'\n")
            return 1
        if not value & ((1 << len(CPUS)) - 1):
            err.write("taskset: sched_setaffinity: Invalid argument\n")
            return 1
        if not cmd[0].startswith("/"):
            return self.command(cmd, out, err)
        return self.exec_path(cmd[0], cmd[1:], out, err)


# ---------------------------------------------------------------------- adb itself
def device_check(serial_opt) -> str:
    """The serial a device command talks to (or exit with adb's message)."""
    state = os.environ.get("FAKE_ADB_STATE", "device")
    listed = serials()
    if state == "none":
        fail("adb: no devices/emulators found")
    if serial_opt and serial_opt not in listed:
        fail(f"adb: device '{serial_opt}' not found")
    if not serial_opt and len(listed) > 1:
        fail("adb: more than one device/emulator")
    if state == "unauthorized":
        fail("adb: device unauthorized.\nThis adb server's $ADB_VENDOR_KEYS is not set\n"
             "Try 'adb kill-server' if that seems wrong.\nOtherwise check for a confirmation dialog on your device.")
    if state == "offline":
        fail("adb: device offline")
    serial = serial_opt or listed[0]
    if gone(serial):
        fail(f"adb: device '{serial}' not found" if serial_opt else "adb: no devices/emulators found")
    return serial


def gone(serial) -> bool:
    """Whether phone `serial` is off the USB bus now (after a FAKE_ADB_DISCONNECT)."""
    root = host_root()
    if len(serials()) > 1:
        root = os.path.join(root, serial)
    path = os.path.join(root, ".host", "gone_until")
    try:
        return time.time() < float(open(path).read())
    except (OSError, ValueError):
        return False


def flaky(root):
    n = int(os.environ.get("FAKE_ADB_FLAKY", "0") or 0)
    if n <= 0:
        return
    counter = os.path.join(root, ".host", "flaky_used")
    used = int(open(counter).read()) if os.path.exists(counter) else 0
    if used < n:
        _write(counter, str(used + 1))
        fail("error: closed")


def fail(message, rc=1):
    sys.stderr.write(message.rstrip("\n") + "\n")
    sys.exit(rc)


def main(argv) -> int:
    log_root = host_root()
    if len(serials()) == 1:
        fake_root()  # one phone: its filesystem is the root itself, set up on any command
    with open(os.path.join(log_root, ".host", "adb_log.jsonl"), "a") as fh:
        fh.write(json.dumps(argv) + "\n")
    serial_opt = None
    args = list(argv)
    while args and args[0] in ("-s", "-t", "-P", "-H", "-d", "-e"):
        opt = args.pop(0)
        if opt in ("-d", "-e"):
            continue
        if not args:
            fail(f"adb: option requires an argument -- '{opt[1:]}'")
        value = args.pop(0)
        if opt == "-s":
            serial_opt = value
    serial_opt = serial_opt or os.environ.get("ANDROID_SERIAL") or None
    if not args:
        fail("adb: no command specified")
    cmd, rest = args[0], args[1:]
    if cmd == "devices":
        state = os.environ.get("FAKE_ADB_STATE", "device")
        sys.stdout.write("List of devices attached\n")
        if state != "none":
            for i, serial in enumerate(serials()):
                if gone(serial):
                    continue
                extra = (f" product:sailfish model:Pixel device:sailfish transport_id:{i + 1}"
                         if "-l" in rest and state == "device" else "")
                sys.stdout.write(f"{serial}\t{state}{extra}\n")
        sys.stdout.write("\n")
        return 0
    if cmd in ("start-server", "kill-server"):
        return 0
    if cmd == "version":
        sys.stdout.write("Android Debug Bridge version 1.0.41\nVersion 35.0.2-12147458\n")
        return 0
    if cmd == "wait-for-device":
        target = serial_opt or serials()[0]
        while target not in serials() or gone(target) or os.environ.get("FAKE_ADB_STATE", "device") != "device":
            time.sleep(0.1)  # adb waits until the device shows up (the caller bounds it)
        return 0
    if cmd not in ("push", "shell"):
        fail(f"adb: unknown command {cmd}")
    root = device_root(device_check(serial_opt))
    flaky(root)
    if os.environ.get("FAKE_ADB_DELAY_S"):
        time.sleep(float(os.environ["FAKE_ADB_DELAY_S"]))
    if cmd == "push":
        if len(rest) < 2:
            fail("adb: push requires an argument")
        local, remote = rest[-2], rest[-1]
        if not os.path.isfile(local):
            fail(f"adb: error: cannot stat '{local}': No such file or directory")
        host = dev_path(root, remote)
        if remote.endswith("/") or os.path.isdir(host):
            host = os.path.join(host, os.path.basename(local))
        os.makedirs(os.path.dirname(host), exist_ok=True)
        shutil.copyfile(local, host)
        os.chmod(host, 0o644)
        size = os.path.getsize(local)
        sys.stdout.write(f"{local}: 1 file pushed, 0 skipped. 38.2 MB/s ({size} bytes in 0.001s)\n")
        return 0
    # shell
    if not rest:
        fail("fake adb: interactive shell is not supported")
    line = " ".join(rest)
    if "$$" in line:
        # a process on the phone: its own session, so it outlives this adb client if that is killed
        proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--remote-shell", root, line],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        o, e = proc.communicate()
        sys.stdout.write(o.decode())
        sys.stderr.write(e.decode())
        return proc.returncode
    return Shell(root).run(line, sys.stdout, sys.stderr)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--remote-shell"]:
        sys.exit(Shell(sys.argv[2]).run(sys.argv[3], sys.stdout, sys.stderr))
    try:
        sys.exit(main(sys.argv[1:]))
    except BrokenPipeError:
        sys.exit(1)
