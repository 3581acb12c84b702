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
import json
import os
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

from ..build.cache import file_digest
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
REMOTE_PID = f"{REMOTE_DIR}/run.pid"

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


def _time_in_state(text) -> dict | None:
    """``2150400:1234,1824000:56`` -> {"2150400": 1234, "1824000": 56} (ticks of 10 ms); None if NA."""
    if not text or text == "NA":
        return None
    out = {}
    for part in str(text).split(","):
        f, _, t = part.partition(":")
        if f.strip().isdigit() and _int_or_none(t) is not None:
            out[f.strip()] = _int_or_none(t)
    return out or None


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
            "time_in_state": _time_in_state(d.get("time_in_state")),
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


def _script(name: str) -> bytes:
    path = _SCRIPTS_DIR / name
    if not path.is_file():
        raise DeviceError(f"{path}: missing (device_scripts/android/{name} ships with latbench's source tree)")
    return path.read_bytes()


def _conditions_script() -> bytes:
    return _script("read_conditions.sh")


# ---------------------------------------------------------------------- the device
@dataclass
class PreparedModel:
    local: Path  # the .tflite on the host
    remote: str  # where it was pushed
    label: str  # what it is (op key, arch name, file name)
    sha256: str


PIXEL1_DEVICES = ("sailfish", "marlin")  # ro.product.device of the Pixel and the Pixel XL
DISCONNECTED = ("no-device", "offline", "transport")  # AdbError reasons a reconnect can cure


def freq_used_khz(before: dict, after: dict, core) -> tuple[float | None, dict]:
    """Time-weighted mean frequency of `core` between two readings of its cpufreq
    ``stats/time_in_state`` (``freq ticks`` per line, ticks of 10 ms), and the per-frequency
    seconds; (None, {}) when the kernel has no such statistics."""
    a = (before.get("cpus", {}).get(str(core)) or {}).get("time_in_state") or {}
    b = (after.get("cpus", {}).get(str(core)) or {}).get("time_in_state") or {}
    delta = {f: (b[f] - a.get(f, 0)) / 100.0 for f in b if b[f] - a.get(f, 0) > 0}
    total = sum(delta.values())
    if not total:
        return None, {}
    return round(sum(int(f) * s for f, s in delta.items()) / total, 1), delta


class AndroidDevice(Device):
    """An Android phone over adb, timing `.tflite` files with the stock benchmark_model binary.

    Before the first run it checks the phone (``pixel1``: ro.product.device sailfish/marlin), the
    binary's ABI against the phone's, locks the phone against other latbench processes, and runs
    ``device_scripts/android/setup.sh`` (performance governor and online check of the pinned
    cores; needs root, else one warning). Before every run it waits (bounded) until the phone is
    under `cooldown_c` °C with ``cooldown.sh``. A run whose phone drops off USB waits (bounded)
    for ``adb wait-for-device`` and is repeated once; a run that times out has its remote
    process killed by PID.
    """

    runtime = "tflite-benchmark_model"
    CONDITIONS_REUSE_S = 2.0

    def __init__(self, serial: str | None = None, benchmark_model=None, threads: int = 1, cpu_mask=None,
                 use_xnnpack: bool = True, batch: int = 1, name: str = "pixel1", cache_dir=None,
                 adb_path: str | None = None, timeout: float = 900.0, adb: Adb | None = None,
                 remember: bool = True, cooldown_c: float | None = 45.0, cooldown_timeout_s: float = 120.0,
                 reconnect_timeout_s: float = 120.0, setup: bool = True, governor: str = "performance"):
        if threads < 1:
            raise ValueError("threads must be >= 1")
        self.name = name
        self.serial = serial or os.environ.get("ANDROID_SERIAL") or None
        self.threads = int(threads)
        self.use_xnnpack = bool(use_xnnpack)
        self.batch = int(batch)
        self.cache_dir = cache_dir
        self.adb_path = adb_path
        self.timeout = float(timeout)
        self.cooldown_c = cooldown_c
        self.cooldown_timeout_s = float(cooldown_timeout_s)
        self.reconnect_timeout_s = float(reconnect_timeout_s)
        self.setup = setup
        self.governor = governor
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
        self._binary_abi = None
        self._props = None
        self._lock = None
        self._setup_done = None  # what setup.sh did (dict) once it ran
        self._warned = set()
        self._binary_info = {}  # flavour / format / xnnpack seen in the last run's output
        self._pushed = {}  # remote path -> PreparedModel
        self._fingerprint = None
        self._runs_done = 0  # benchmark_model invocations so far
        self._last_conditions = None  # (monotonic time, runs_done, dict)

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def _normalise_mask(mask) -> str:
        cores = parse_cpu_mask(mask)
        return format(sum(1 << c for c in cores), "x")

    def _warn_once(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            warnings.warn(f"{self.serial or self.name}: {message}", stacklevel=3)

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

    def props(self) -> dict:
        """The phone's build properties (one ``getprop`` call, cached)."""
        if self._props is None:
            from .android_host import parse_getprop
            self._props = parse_getprop(self.adb.shell(["getprop"], timeout=30).stdout)
        return self._props

    @property
    def label(self) -> str:
        """``pixel1``, or for ``android`` a slug of ro.product.model (``pixel-4a``)."""
        if self.name == "pixel1":
            return "pixel1"
        from .android_host import model_label
        return model_label(self.props().get("ro.product.model"))

    def _check_phone(self) -> None:
        """``pixel1`` must be a Pixel 1 (the mask and the published tables assume its cores)."""
        if self.name != "pixel1":
            return
        device = self.props().get("ro.product.device", "")
        if device not in PIXEL1_DEVICES:
            model = self.props().get("ro.product.model") or "?"
            raise DeviceError(f"--device pixel1: phone {self.adb.serial} is a {model!r} (ro.product.device="
                              f"{device or '?'}), not a Pixel 1 (sailfish/marlin): use --device android "
                              "(with --cpu-mask for its big core)")

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
        """Lock the phone, check it, mkdir the remote folders and push the device scripts (once)."""
        if self._dir_ready:
            return
        from .android_host import PhoneLock

        serial = self.adb.resolve_serial()
        self.serial = self.serial or serial
        if self._lock is None:
            lock = PhoneLock(serial)
            lock.acquire()
            self._lock = lock
        self._check_phone()
        self.adb.shell(["mkdir", "-p", REMOTE_MODELS], timeout=30)
        with tempfile.TemporaryDirectory(prefix="latbench-adb-") as tmp:
            for name in ("read_conditions.sh", "setup.sh", "cooldown.sh"):
                script = Path(tmp) / name
                script.write_bytes(_script(name))
                self.adb.push(script, f"{REMOTE_DIR}/{name}", timeout=60)
        self._dir_ready = True

    def _setup_binary(self) -> None:
        """Check the binary's ABI against the phone's, push it unless the phone already has this
        exact binary (sha256 marker), then run setup.sh once."""
        if self._binary_ready:
            return
        from .android_host import check_abi, phone_abis

        self._setup_dir()
        local = self.benchmark_model_path()
        self._binary_abi = check_abi(local, phone_abis(self.props()), self.adb.serial)
        sha = file_digest(local)
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
        self._run_setup()

    def _run_setup(self) -> None:
        """setup.sh on the pinned cores: governor, online check; warns once without root."""
        if not self.setup or self._setup_done is not None:
            return
        cores = " ".join(str(c) for c in self.cores)
        res = self.adb.shell(["sh", f"{REMOTE_DIR}/setup.sh", cores, self.governor], timeout=60, check=False)
        lines = res.stdout.splitlines()
        root = "root=1" in lines
        failed = [l for l in lines if l.startswith("FAILED")]
        self._setup_done = {"root": root, "governor_requested": self.governor,
                            "actions": [l for l in lines if l.startswith(("set ", "FAILED"))]}
        if not root:
            self._warn_once("governor", f"not root: the governor of cpu {cores} was left as it is (the run's "
                            "frequency is recorded from time_in_state); 'adb root' on a userdebug build fixes it")
        elif failed:
            self._warn_once("governor", f"setup.sh could not apply: {'; '.join(failed)[:300]}")
        cond = parse_conditions(self.adb.shell(["sh", REMOTE_CONDITIONS] + cores.split(), timeout=30).stdout,
                                self.cores)
        offline = [c for c, d in cond["cpus"].items() if not d["online"]]
        if offline:
            raise DeviceError(f"phone {self.adb.serial}: cpu{', cpu'.join(offline)} of mask {self.cpu_mask} is offline"
                              + ("" if root else " (bringing it online needs root: 'adb root')"))

    def _cooldown(self) -> dict | None:
        """Wait (at most cooldown_timeout_s) until the hottest thermal zone is under cooldown_c."""
        if self.cooldown_c is None:
            return None
        res = self.adb.shell(["sh", f"{REMOTE_DIR}/cooldown.sh", str(int(self.cooldown_c)),
                              str(int(self.cooldown_timeout_s)), "2"],
                             timeout=self.cooldown_timeout_s + 60, check=False)
        info = {"limit_c": self.cooldown_c}
        for line in res.stdout.splitlines():
            for key, _, value in (kv.partition("=") for kv in line.split()):
                if key in ("max_temp_c", "cool", "waited_s"):
                    info[key] = _int_or_none(value)
        info["cool"] = bool(info.get("cool"))
        if info.get("max_temp_c") is not None and info["max_temp_c"] <= -1000 + 1:
            info["max_temp_c"] = None
        if info.get("max_temp_c") is None:
            self._warn_once("thermal", "no readable thermal zone: cooldown and temperatures are not recorded")
        elif not info["cool"]:
            self._warn_once("hot", f"still {info['max_temp_c']} °C after {self.cooldown_timeout_s:g} s of cooldown "
                                   f"(limit {self.cooldown_c:g} °C): measuring anyway, the temperature is recorded")
        return info

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

    def _shell_line(self, cmd: list) -> str:
        """The run as one sh line that first records its PID (``exec`` keeps the PID for the binary),
        so a timed-out run can be killed on the phone."""
        import shlex
        return f"echo $$ > {REMOTE_PID} && exec " + " ".join(shlex.quote(str(c)) for c in cmd)

    def _kill_remote(self) -> bool:
        """Kill the run whose PID the last command recorded; True when one was killed."""
        try:
            pid = self.adb.shell(["cat", REMOTE_PID], timeout=30, check=False).stdout.strip()
            if not pid.isdigit():
                return False
            return self.adb.shell(["kill", pid], timeout=30, check=False).returncode == 0
        except AdbError:
            return False

    def _invoke(self, prepared, cmd):
        """One benchmark_model run; a phone that drops off USB is waited for (bounded) and the run
        repeated once; a timed-out run's remote process is killed."""
        for attempt in (0, 1):
            try:
                res = self.adb.shell(self._shell_line(cmd), timeout=self.timeout, check=False, retries=0)
            except AdbError as exc:
                if exc.reason == "timeout":
                    killed = self._kill_remote()
                    raise DeviceError(f"benchmark_model on {prepared.label} timed out after {self.timeout:g} s "
                                      + ("(its process on the phone was killed)" if killed else
                                         "(its process on the phone could not be killed)")) from None
                if exc.reason not in DISCONNECTED or attempt:
                    raise
                cause = str(exc)
            else:
                low = res.output.lower()
                lost = res.returncode != 0 and ("error: closed" in low or "device offline" in low or
                                                "not found" in low and f"'{self.adb.serial}'" in low)
                if not lost:
                    return res
                if attempt:
                    raise DeviceError(f"phone {self.adb.serial} dropped off USB again during {prepared.label} "
                                      f"after reconnecting: check the cable")
                cause = res.output.strip().splitlines()[-1] if res.output.strip() else "connection lost"
            self._wait_for_phone(prepared, cause)
        raise AssertionError("unreachable")

    def _wait_for_phone(self, prepared, cause: str) -> None:
        try:
            self.adb.wait_for_device(self.reconnect_timeout_s)
        except AdbError:
            raise DeviceError(f"phone {self.adb.serial} disconnected during {prepared.label} ({cause}) and did not "
                              f"come back within {self.reconnect_timeout_s:g} s: reconnect it and rerun the same "
                              "command (what was measured is kept)") from None
        warnings.warn(f"{self.adb.serial}: reconnected after '{cause}'; repeating {prepared.label}", stacklevel=4)
        self._last_conditions = None

    def _check_output(self, prepared, parsed: dict, op_profiling: bool) -> None:
        """Settings the binary did not apply are errors, not silently different measurements."""
        if parsed["flavour"] == "benchmark_litert_model":
            raise DeviceError("the binary is LiteRT's benchmark_litert_model, which ignores --num_threads and has "
                              "no --use_xnnpack or --enable_op_profiling: use TFLite's benchmark_model "
                              "(android_aarch64_benchmark_model)"
                              + (f"; it ignored {' '.join(parsed['unconsumed_flags'])}" if parsed["unconsumed_flags"] else ""))
        ignored = parsed["unconsumed_flags"]
        if ignored == ["--use_xnnpack=false"] and not parsed["xnnpack_delegate_created"]:
            ignored = []  # a binary older than XNNPACK (TF < 2.3): it runs without it, as asked
        if ignored:
            hint = ""
            if any(f.startswith("--use_xnnpack") for f in ignored):
                hint = ("; a binary without --use_xnnpack predates XNNPACK: pass --no-xnnpack, or get a newer "
                        "benchmark_model")
            raise DeviceError(f"benchmark_model ignored {' '.join(ignored)} on {prepared.label} (\"Unconsumed cmdline "
                              f"flags\"): the run would not be what the fingerprint says{hint}")
        if self.use_xnnpack and parsed["format"] == "new" and not parsed["xnnpack_delegate_created"]:
            raise DeviceError(f"benchmark_model did not create the XNNPACK delegate for {prepared.label} although "
                              "--use_xnnpack=true: pass --no-xnnpack or use a binary built with XNNPACK")
        if not self.use_xnnpack and parsed["xnnpack_delegate_created"]:
            raise DeviceError(f"benchmark_model created the XNNPACK delegate for {prepared.label} although "
                              "--use_xnnpack=false")
        if op_profiling and not parsed["nodes"]:
            raise DeviceError(f"benchmark_model printed no op-profiling table for {prepared.label} although "
                              "--enable_op_profiling=true was given")

    def _run(self, prepared, runs, warmup, min_warmup_s, op_profiling=False) -> dict:
        if not isinstance(prepared, PreparedModel):
            raise TypeError("measure() takes what prepare() returned")
        if runs < 1:
            raise ValueError("runs must be >= 1")
        self._setup_binary()
        res = self._invoke(prepared, self._command(prepared, runs, max(0, int(warmup)), min_warmup_s, op_profiling))
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
        self._check_output(prepared, parsed, op_profiling)
        if parsed["count"] is None:
            raise DeviceError(f"benchmark_model output for {prepared.label} has no count= line for the timed runs")
        self._binary_info = {"flavour": parsed["flavour"], "format": parsed["format"],
                             "percentiles": parsed["median_ms"] is not None,
                             "xnnpack_delegate_created": parsed["xnnpack_delegate_created"]}
        return parsed

    # ------------------------------------------------------------------ Device interface
    def available(self) -> tuple[bool, str]:
        if find_adb(self.adb_path) is None:
            return False, ("adb not found on PATH: install Android SDK platform-tools "
                           "(developer.android.com/tools/releases/platform-tools)")
        try:
            self.adb.resolve_serial()
            self._check_phone()
        except DeviceError as exc:
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
                "model": self.props().get("ro.product.model") or self.adb.getprop("ro.product.model"),
                "build": self.props().get("ro.build.fingerprint") or self.adb.getprop("ro.build.fingerprint"),
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
        sha = file_digest(local)
        remote = f"{REMOTE_MODELS}/{sha[:20]}.tflite"
        if remote not in self._pushed:
            self.adb.push(local, remote, timeout=300)
            self._pushed[remote] = PreparedModel(local, remote, label, sha)
        p = self._pushed[remote]
        return PreparedModel(p.local, p.remote, label, p.sha256)

    def measure(self, prepared, runs: int, warmup: int, min_warmup_s: float = 0.0) -> Sample:
        self._setup_binary()
        cooldown = self._cooldown()
        before = self.conditions()
        parsed = self._run(prepared, runs, warmup, min_warmup_s)
        after = self.conditions()
        stats = {k: parsed[k] for k in ("count", "avg_ms", "std_ms", "min_ms", "max_ms", "median_ms",
                                        "p5_ms", "p95_ms", "first_ms", "init_ms", "first_inference_ms",
                                        "warmup_avg_ms")}
        stats["warmup_count"] = parsed["warmup"].get("count")
        stats["requested_runs"] = int(runs)
        stats.update(self._binary_info)
        used, per_freq = freq_used_khz(before, after, self.cores[0])
        return Sample(samples_ms=[parsed["avg_ms"]], runs_per_sample=parsed["count"],
                      conditions={"before": before, "after": after, "benchmark_model": stats,
                                  "freq_used_khz": used, "time_at_freq_s": per_freq, "cooldown": cooldown,
                                  "setup": self._setup_done},
                      timed_s=parsed["avg_ms"] * parsed["count"] / 1000.0)

    def measure_op_profile(self, prepared, runs: int = 50, warmup: int = 10, min_warmup_s: float = 0.0) -> list[dict]:
        """Per-node rows of the regular runs (``--enable_op_profiling=true``, Run Order table):
        node_type, name, avg_ms (per call), first_ms, percent, cdf_percent, mem_kb, times_called,
        start_ms (None on binaries without that column), subgraph. An enclosing delegate row whose
        delegate printed its own rows is left out (see benchmark_model_output)."""
        return self._run(prepared, runs, warmup, min_warmup_s, op_profiling=True)["nodes"]

    def node_profile(self, target, runs: int = 30, warmup: int = 5) -> list:
        """One round of per-node times of a whole network (for `context` tables), from
        ``--enable_op_profiling``, each row mapped back to its layer (see tflite_nodes)."""
        from .tflite_nodes import map_rows, tflite_ops

        prepared = self.prepare(target)
        self._cooldown()
        parsed = self._run(prepared, runs, warmup, 0.0, op_profiling=True)
        if parsed["enclosing_nodes"] == [] and any(_is_enclosing(r) for r in parsed["nodes"]):
            raise DeviceError(f"benchmark_model timed the XNNPACK-delegated part of {prepared.label} as one row "
                              "(binaries before TF 2.9.1 do): per-op times need a newer benchmark_model, or "
                              "--no-xnnpack")
        arch = target if hasattr(target, "layers") else None
        return [map_rows(parsed["nodes"], tflite_ops(prepared.local), arch)]

    def conditions(self) -> dict:
        """Governor, frequency (and time_in_state) of the pinned core(s) and every thermal zone:
        one adb shell call.

        A reading taken less than CONDITIONS_REUSE_S ago with no benchmark run since is reused, so
        the protocol's before/after reads and measure()'s own cost one adb call, not two."""
        last = self._last_conditions
        if last is not None and last[1] == self._runs_done and time.monotonic() - last[0] < self.CONDITIONS_REUSE_S:
            return copy.deepcopy(last[2])
        self._setup_dir()
        cores = self.cores
        res = self.adb.shell(["sh", REMOTE_CONDITIONS] + [str(c) for c in cores], timeout=30)
        cond = parse_conditions(res.stdout, cores)
        if cond["max_temp_c"] is None:
            self._warn_once("thermal", "no readable thermal zone: temperatures are not recorded")
        self._last_conditions = (time.monotonic(), self._runs_done, cond)
        return copy.deepcopy(cond)

    def close(self) -> None:
        """Remove the model files this instance pushed (the binary and scripts stay for reuse) and
        release the phone's lock."""
        try:
            if not self._pushed:
                return
            remotes = sorted(self._pushed)
            try:
                self.adb.shell(["rm", "-f"] + remotes, timeout=60)
            except DeviceError as exc:
                warnings.warn(f"could not remove pushed models from the phone: {exc}")
                return
            self._pushed.clear()
        finally:
            if self._lock is not None:
                self._lock.release()
                self._lock = None
                self._dir_ready = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _is_enclosing(row: dict) -> bool:
    from .benchmark_model_output import _ENCLOSING_RE
    return bool(_ENCLOSING_RE.match(row["node_type"]))
