"""Android phones over adb (the Pixel 1 of TuNAS / ProxylessNAS), timed by TFLite's `benchmark_model`.

Protocol (DESIGN §4): the Arch/Op is converted to a `.tflite` (batch 1), pushed to
``/data/local/tmp/latbench/models/``, and run by the stock ``benchmark_model`` binary with one
thread, pinned with ``taskset`` to a big core::

    taskset 8 /data/local/tmp/latbench/benchmark_model --graph=/data/local/tmp/latbench/models/<sha>.tflite
        --num_threads=1 --warmup_runs=W --warmup_min_secs=S --num_runs=N --min_secs=0
        --use_xnnpack=true [--enable_op_profiling=true]

``--min_secs=0`` makes the loop stop after N runs (the default, 1 s, stretches it); the count the
tool really made is read from its ``count=`` line all the same (``--max_secs``, 150 s, can cut a
slow model short). The governor, the current frequency of the pinned core(s) and every thermal
zone are read before and after each measurement with one ``adb shell`` call each, by the pushed
``device_scripts/android/read_conditions.sh`` (``key=value`` lines).

CPU mask. The Pixel 1 (Snapdragon 821) has two clusters: cpu0-1, Kryo "silver", up to 1.59 GHz,
and cpu2-3, Kryo "gold", up to 2.15 GHz, sharing one clock. The default mask ``8`` pins the
single-threaded run to cpu3 only, so the scheduler cannot migrate it between cores mid-run and the
frequency read from cpu3 is the one the run used; ``c`` (cpu2+3) is the alternative. For other
phones pass ``cpu_mask`` or ``"auto"`` (the highest-numbered core with the highest
``cpuinfo_max_freq``).

The benchmark_model binary (android_aarch64) is configured once on the host: the
``benchmark_model`` argument, else ``$LATBENCH_BENCHMARK_MODEL``, else the key ``"benchmark_model"``
of ``~/.config/latbench/config.json`` (``$XDG_CONFIG_HOME`` honoured). It is pushed once to
``/data/local/tmp/latbench/benchmark_model`` (re-pushed only when its sha256 changes) and made
executable. Pushed model files are removed on ``close()``.
"""
from __future__ import annotations

import copy
import hashlib
import json
import os
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

from ..errors import DeviceError
from ..fileio import atomic_write_text
from .adb import Adb, AdbError, find_adb
from .base import Device, Sample
from .benchmark_model_output import parse_benchmark_output

REMOTE_DIR = "/data/local/tmp/latbench"
REMOTE_BINARY = f"{REMOTE_DIR}/benchmark_model"
REMOTE_BINARY_SHA = f"{REMOTE_DIR}/benchmark_model.sha256"
REMOTE_MODELS = f"{REMOTE_DIR}/models"
REMOTE_CONDITIONS = f"{REMOTE_DIR}/read_conditions.sh"

PIXEL1_BIG_CORES = (2, 3)
PIXEL1_CPU_MASK = "8"  # cpu3, one of the two 2.15 GHz Kryo cores (see the module docstring)

ENV_BINARY = "LATBENCH_BENCHMARK_MODEL"
CONFIG_KEY = "benchmark_model"
NIGHTLY_URL = ("https://storage.googleapis.com/tensorflow-nightly-public/prod/tensorflow/release/"
               "lite/tools/nightly/latest/android_aarch64_benchmark_model")
HOW_TO_GET = (
    "get the android_aarch64 benchmark_model binary: download the nightly prebuilt "
    f"android_aarch64_benchmark_model ({NIGHTLY_URL}, linked from the TFLite performance "
    "measurement page https://ai.google.dev/edge/litert/models/measurement) or build it with "
    "'bazel build -c opt --config=android_arm64 //tensorflow/lite/tools/benchmark:benchmark_model'; "
    f"then configure it once: --benchmark-model PATH, {ENV_BINARY}=PATH, or "
    '{"benchmark_model": "PATH"} in ~/.config/latbench/config.json')

# device_scripts/ at the top of a checkout; inside the package in an installed wheel (setup.py)
_SOURCE_SCRIPTS = Path(__file__).resolve().parents[2] / "device_scripts" / "android"
_SCRIPTS_DIR = _SOURCE_SCRIPTS if _SOURCE_SCRIPTS.is_dir() else Path(__file__).resolve().parent / "scripts" / "android"


# ---------------------------------------------------------------------- configuration
def config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "latbench" / "config.json"


def _read_config() -> dict:
    path = config_path()
    if not path.exists():
        return {}
    try:
        obj = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise DeviceError(f"{path}: cannot read the latbench config ({exc})") from None
    if not isinstance(obj, dict):
        raise DeviceError(f"{path}: the latbench config must be a JSON object")
    return obj


def configured_benchmark_model(explicit=None) -> tuple[Path | None, str]:
    """(path, where it came from) of the host benchmark_model binary; (None, why) if unset."""
    if explicit:
        return Path(explicit).expanduser(), "option"
    env = os.environ.get(ENV_BINARY)
    if env:
        return Path(env).expanduser(), f"${ENV_BINARY}"
    value = _read_config().get(CONFIG_KEY)
    if value:
        return Path(str(value)).expanduser(), str(config_path())
    return None, "no benchmark_model binary configured"


def set_configured_benchmark_model(path) -> Path:
    """Record `path` under "benchmark_model" in the user config (other keys kept); returns the file."""
    path = Path(path).expanduser().resolve()
    if not path.is_file():
        raise DeviceError(f"{path}: no such file")
    cfg_file = config_path()
    cfg = _read_config()
    cfg[CONFIG_KEY] = str(path)
    atomic_write_text(cfg_file, json.dumps(cfg, indent=2, sort_keys=True) + "\n")
    return cfg_file


def _sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# ---------------------------------------------------------------------- conditions
def parse_cpu_mask(mask) -> list[int]:
    """taskset hex mask ("8", "0xc", 12) -> sorted core numbers."""
    value = mask if isinstance(mask, int) else int(str(mask), 16)
    if value <= 0:
        raise DeviceError(f"cpu mask {mask!r} selects no core")
    return [i for i in range(value.bit_length()) if value >> i & 1]


def temperature_c(raw) -> float | None:
    """A thermal_zone*/temp reading in °C: kernels report millidegrees (36000), decidegrees (360)
    or degrees (36)."""
    try:
        v = float(str(raw).strip())
    except ValueError:
        return None
    if abs(v) >= 1000:
        return v / 1000.0
    if abs(v) >= 200:
        return v / 10.0
    return v


def _int_or_none(text):
    try:
        return int(str(text).strip())
    except (TypeError, ValueError):
        return None


def parse_conditions(text: str, cores=()) -> dict:
    """read_conditions.sh output (``cpuN.governor=..``, ``thermal_zoneK.temp=..`` lines) -> dict.

    Returns governor / cur_freq_khz / min_freq_khz / max_freq_khz of the first of `cores`, per-core
    values under ``cpus``, ``thermal`` ({zone: {type, temp_c, raw}}) and ``max_temp_c``.
    """
    raw = {}
    for line in text.splitlines():
        key, sep, value = line.strip().partition("=")
        if sep and key:
            raw[key] = value.strip()
    cpus, thermal = {}, {}
    for key, value in raw.items():
        head, _, field = key.partition(".")
        if head.startswith("cpu") and head[3:].isdigit():
            cpus.setdefault(int(head[3:]), {})[field] = value
        elif head.startswith("thermal_zone"):
            thermal.setdefault(head, {})[field] = value
    out_cpus = {}
    for c, d in sorted(cpus.items()):
        out_cpus[str(c)] = {
            "governor": None if d.get("governor") in (None, "NA") else d["governor"],
            "cur_freq_khz": _int_or_none(d.get("cur_freq_khz")),
            "min_freq_khz": _int_or_none(d.get("min_freq_khz")),
            "max_freq_khz": _int_or_none(d.get("max_freq_khz")),
            "cpuinfo_max_freq_khz": _int_or_none(d.get("cpuinfo_max_freq_khz")),
            "online": d.get("online", "NA") != "0",
        }
    zones = {}
    for z, d in sorted(thermal.items(), key=lambda kv: _int_or_none(kv[0][12:]) or 0):
        zones[z] = {"type": d.get("type"), "temp_c": temperature_c(d.get("temp")), "raw": d.get("temp")}
    temps = [v["temp_c"] for v in zones.values() if v["temp_c"] is not None and -40 < v["temp_c"] < 150]
    first = out_cpus.get(str(cores[0])) if cores else (next(iter(out_cpus.values())) if out_cpus else None)
    first = first or {}
    return {
        "governor": first.get("governor"),
        "cur_freq_khz": first.get("cur_freq_khz"),
        "min_freq_khz": first.get("min_freq_khz"),
        "max_freq_khz": first.get("max_freq_khz"),
        "cpus": out_cpus,
        "thermal": zones,
        "max_temp_c": max(temps) if temps else None,
    }


def _conditions_script() -> bytes:
    path = _SCRIPTS_DIR / "read_conditions.sh"
    if not path.is_file():
        raise DeviceError(f"{path}: missing (device_scripts/android/read_conditions.sh ships with latbench's "
                          "source tree)")
    return path.read_bytes()


# ---------------------------------------------------------------------- the device
@dataclass
class PreparedModel:
    local: Path  # the .tflite on the host
    remote: str  # where it was pushed
    label: str  # what it is (op key, arch name, file name)
    sha256: str


class AndroidDevice(Device):
    """An Android phone over adb, timing `.tflite` files with the stock benchmark_model binary."""

    runtime = "tflite-benchmark_model"
    CONDITIONS_REUSE_S = 2.0

    def __init__(self, serial: str | None = None, benchmark_model=None, threads: int = 1, cpu_mask=None,
                 use_xnnpack: bool = True, batch: int = 1, name: str = "pixel1", cache_dir=None,
                 adb_path: str | None = None, timeout: float = 900.0, adb: Adb | None = None,
                 remember: bool = True):
        if threads < 1:
            raise ValueError("threads must be >= 1")
        self.name = name
        self.serial = serial
        self.threads = int(threads)
        self.use_xnnpack = bool(use_xnnpack)
        self.batch = int(batch)
        self.cache_dir = cache_dir
        self.adb_path = adb_path
        self.timeout = float(timeout)
        self._benchmark_model_option = benchmark_model
        self.remember = remember
        self._remembered = False
        if cpu_mask is None:
            cpu_mask = PIXEL1_CPU_MASK if name == "pixel1" else "auto"
        self._cpu_mask_option = cpu_mask
        self._cpu_mask = None if str(cpu_mask) == "auto" else self._normalise_mask(cpu_mask)
        self._adb = adb
        self._dir_ready = False
        self._binary_ready = False
        self._binary_sha = None
        self._pushed = {}  # remote path -> PreparedModel
        self._fingerprint = None
        self._runs_done = 0  # benchmark_model invocations so far
        self._last_conditions = None  # (monotonic time, runs_done, dict)

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def _normalise_mask(mask) -> str:
        cores = parse_cpu_mask(mask)
        return format(sum(1 << c for c in cores), "x")

    @property
    def adb(self) -> Adb:
        if self._adb is None:
            self._adb = Adb(self.serial, adb_path=self.adb_path)
        return self._adb

    @property
    def cpu_mask(self) -> str:
        if self._cpu_mask is None:
            self._cpu_mask = self._auto_mask()
        return self._cpu_mask

    @property
    def cores(self) -> list[int]:
        return parse_cpu_mask(self.cpu_mask)

    def _auto_mask(self) -> str:
        self._setup_dir()
        cond = parse_conditions(self.adb.shell(["sh", REMOTE_CONDITIONS], timeout=30).stdout)
        best = None
        for c, d in cond["cpus"].items():
            f = d.get("cpuinfo_max_freq_khz") or d.get("max_freq_khz") or 0
            if best is None or (f, int(c)) > best:
                best = (f, int(c))
        if best is None:
            raise DeviceError("cannot pick a big core: read_conditions.sh listed no cpu; pass cpu_mask")
        return format(1 << best[1], "x")

    def benchmark_model_path(self) -> Path:
        """The host binary (option > $LATBENCH_BENCHMARK_MODEL > config); an option that names an
        existing file is remembered in the user config, so it is given once."""
        path, where = configured_benchmark_model(self._benchmark_model_option)
        if path is None:
            raise DeviceError(f"{where}: {HOW_TO_GET}")
        if not path.is_file():
            raise DeviceError(f"benchmark_model binary {path} (from {where}) does not exist: {HOW_TO_GET}")
        if where == "option" and self.remember and not self._remembered:
            self._remembered = True
            try:
                if _read_config().get(CONFIG_KEY) != str(path.resolve()):
                    set_configured_benchmark_model(path)
            except (OSError, DeviceError) as exc:
                warnings.warn(f"could not remember the benchmark_model path in {config_path()}: {exc}")
        return path

    def _setup_dir(self) -> None:
        """mkdir the remote folders and push read_conditions.sh (once per instance)."""
        if self._dir_ready:
            return
        self.adb.resolve_serial()
        self.adb.shell(["mkdir", "-p", REMOTE_MODELS], timeout=30)
        with tempfile.TemporaryDirectory(prefix="latbench-adb-") as tmp:
            script = Path(tmp) / "read_conditions.sh"
            script.write_bytes(_conditions_script())
            self.adb.push(script, REMOTE_CONDITIONS, timeout=60)
        self._dir_ready = True

    def _setup_binary(self) -> None:
        """Push benchmark_model unless the phone already has this exact binary (sha256 marker)."""
        if self._binary_ready:
            return
        self._setup_dir()
        local = self.benchmark_model_path()
        sha = _sha256(local)
        res = self.adb.shell(["cat", REMOTE_BINARY_SHA], timeout=30, check=False)
        have = self.adb.shell(["ls", REMOTE_BINARY], timeout=30, check=False).returncode == 0
        if not (have and res.returncode == 0 and res.stdout.strip() == sha):
            self.adb.push(local, REMOTE_BINARY, timeout=300)
            self.adb.shell(["chmod", "755", REMOTE_BINARY], timeout=30)
            with tempfile.TemporaryDirectory(prefix="latbench-adb-") as tmp:
                marker = Path(tmp) / "benchmark_model.sha256"
                marker.write_text(sha + "\n")
                self.adb.push(marker, REMOTE_BINARY_SHA, timeout=60)
        self._binary_sha = sha
        self._binary_ready = True

    def _command(self, prepared: PreparedModel, runs: int, warmup: int, min_warmup_s: float,
                 op_profiling: bool = False) -> list[str]:
        cmd = ["taskset", self.cpu_mask, REMOTE_BINARY,
               f"--graph={prepared.remote}",
               f"--num_threads={self.threads}",
               f"--warmup_runs={int(warmup)}",
               f"--warmup_min_secs={float(min_warmup_s):g}",
               f"--num_runs={int(runs)}",
               "--min_secs=0",
               f"--use_xnnpack={'true' if self.use_xnnpack else 'false'}"]
        if op_profiling:
            cmd.append("--enable_op_profiling=true")
        return cmd

    def _run(self, prepared, runs, warmup, min_warmup_s, op_profiling=False) -> dict:
        if not isinstance(prepared, PreparedModel):
            raise TypeError("measure() takes what prepare() returned")
        if runs < 1:
            raise ValueError("runs must be >= 1")
        self._setup_binary()
        res = self.adb.shell(self._command(prepared, runs, max(0, int(warmup)), min_warmup_s, op_profiling),
                             timeout=self.timeout, check=False)
        self._runs_done += 1
        if res.returncode != 0:
            try:
                parse_benchmark_output(res.output)
                detail = ""
            except DeviceError as exc:
                detail = str(exc)
            raise DeviceError(f"benchmark_model failed on {prepared.label} (exit {res.returncode})"
                              + (f": {detail}" if detail else ""))
        parsed = parse_benchmark_output(res.output)
        if parsed["count"] is None:
            raise DeviceError(f"benchmark_model output for {prepared.label} has no count= line for the timed runs")
        return parsed

    # ------------------------------------------------------------------ Device interface
    def available(self) -> tuple[bool, str]:
        if find_adb(self.adb_path) is None:
            return False, ("adb not found on PATH: install Android SDK platform-tools "
                           "(developer.android.com/tools/releases/platform-tools)")
        try:
            self.adb.resolve_serial()
        except AdbError as exc:
            return False, str(exc)
        try:
            self.benchmark_model_path()
        except DeviceError as exc:
            return False, str(exc)
        return True, ""

    def fingerprint(self) -> dict:
        if self._fingerprint is None:
            self._setup_binary()
            cond = self.conditions()
            self._fingerprint = {
                "device": self.name,
                "runtime": self.runtime,
                "model": self.adb.getprop("ro.product.model"),
                "build": self.adb.getprop("ro.build.fingerprint"),
                "benchmark_model_sha256": self._binary_sha,
                "threads": self.threads,
                "cpu_mask": self.cpu_mask,
                "cores": self.cores,
                "governor": cond.get("governor"),
                "use_xnnpack": self.use_xnnpack,
                "batch": self.batch,
            }
        return dict(self._fingerprint)

    def prepare(self, target) -> PreparedModel:
        """Convert (Arch / Op; a path to a .tflite is taken as is), push once, return the handle."""
        if isinstance(target, (str, os.PathLike)):
            local = Path(target)
            if not local.is_file():
                raise DeviceError(f"{local}: no such .tflite file")
            label = local.name
        else:
            try:
                from ..build.tflite_convert import to_tflite
            except ImportError as exc:
                raise DeviceError(f"TFLite conversion is unavailable ({exc}): install latbench[tflite]") from None
            local = Path(to_tflite(target, cache_dir=self.cache_dir, batch=self.batch))
            label = getattr(target, "key", None) or getattr(target, "name", None) or local.name
        self._setup_dir()
        sha = _sha256(local)
        remote = f"{REMOTE_MODELS}/{sha[:20]}.tflite"
        if remote not in self._pushed:
            self.adb.push(local, remote, timeout=300)
            self._pushed[remote] = PreparedModel(local, remote, label, sha)
        p = self._pushed[remote]
        return PreparedModel(p.local, p.remote, label, p.sha256)

    def measure(self, prepared, runs: int, warmup: int, min_warmup_s: float = 0.0) -> Sample:
        before = self.conditions()
        parsed = self._run(prepared, runs, warmup, min_warmup_s)
        after = self.conditions()
        stats = {k: parsed[k] for k in ("count", "avg_ms", "std_ms", "min_ms", "max_ms", "median_ms",
                                        "p5_ms", "p95_ms", "first_ms", "init_ms", "first_inference_ms",
                                        "warmup_avg_ms")}
        stats["warmup_count"] = parsed["warmup"].get("count")
        stats["requested_runs"] = int(runs)
        return Sample(samples_ms=[parsed["avg_ms"]], runs_per_sample=parsed["count"],
                      conditions={"before": before, "after": after, "benchmark_model": stats},
                      timed_s=parsed["avg_ms"] * parsed["count"] / 1000.0)

    def measure_op_profile(self, prepared, runs: int = 50, warmup: int = 10, min_warmup_s: float = 0.0) -> list[dict]:
        """Per-node rows of the regular runs (``--enable_op_profiling=true``, Run Order table):
        node_type, name, avg_ms (per call), first_ms, percent, cdf_percent, mem_kb, times_called,
        start_ms (None on binaries without that column), subgraph."""
        return self._run(prepared, runs, warmup, min_warmup_s, op_profiling=True)["nodes"]

    def conditions(self) -> dict:
        """Governor and frequency of the pinned core(s) and every thermal zone: one adb shell call.

        A reading taken less than CONDITIONS_REUSE_S ago with no benchmark run since is reused, so
        the protocol's before/after reads and measure()'s own cost one adb call, not two."""
        last = self._last_conditions
        if last is not None and last[1] == self._runs_done and time.monotonic() - last[0] < self.CONDITIONS_REUSE_S:
            return copy.deepcopy(last[2])
        self._setup_dir()
        cores = self.cores
        res = self.adb.shell(["sh", REMOTE_CONDITIONS] + [str(c) for c in cores], timeout=30)
        cond = parse_conditions(res.stdout, cores)
        self._last_conditions = (time.monotonic(), self._runs_done, cond)
        return copy.deepcopy(cond)

    def close(self) -> None:
        """Remove the model files this instance pushed (the binary and scripts stay for reuse)."""
        if not self._pushed:
            return
        remotes = sorted(self._pushed)
        try:
            self.adb.shell(["rm", "-f"] + remotes, timeout=60)
        except DeviceError as exc:
            warnings.warn(f"could not remove pushed models from the phone: {exc}")
            return
        self._pushed.clear()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
