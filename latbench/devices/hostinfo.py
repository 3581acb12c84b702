"""Facts about this host's CPU: model, governor, frequency, temperatures (Linux sysfs; absent = None)."""
from __future__ import annotations

import glob
import os
import platform
from pathlib import Path


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


def cpu_model() -> str:
    text = _read("/proc/cpuinfo") or ""
    for line in text.splitlines():
        if line.lower().startswith(("model name", "hardware", "cpu model")):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def governor(core: int) -> str | None:
    return _read(f"/sys/devices/system/cpu/cpu{core}/cpufreq/scaling_governor")


def cur_freq_khz(core: int) -> int | None:
    v = _read(f"/sys/devices/system/cpu/cpu{core}/cpufreq/scaling_cur_freq")
    return int(v) if v and v.isdigit() else None


def temperatures_c() -> dict:
    out = {}
    for zone in sorted(glob.glob("/sys/class/thermal/thermal_zone*")):
        t = _read(zone + "/temp")
        if t and t.lstrip("-").isdigit():
            out[(_read(zone + "/type") or Path(zone).name)] = int(t) / 1000.0
    return out


def conditions(core: int) -> dict:
    d = {"freq_khz": cur_freq_khz(core), "governor": governor(core), "loadavg1": os.getloadavg()[0]}
    temps = temperatures_c()
    if temps:
        d["temp_c_max"] = max(temps.values())
    return d


def allowed_cores() -> list[int]:
    return sorted(os.sched_getaffinity(0))


def package_versions(dists=("numpy", "onnxruntime", "onnx", "torch", "ai-edge-litert", "tensorflow-cpu",
                            "keras", "scikit-learn")) -> dict:
    """Installed versions of the given distributions (absent ones left out), for benchmark reports."""
    from importlib import metadata

    out = {"python": platform.python_version()}
    for d in dists:
        try:
            out[d] = metadata.version(d)
        except metadata.PackageNotFoundError:
            pass
    return out
