"""Device registry: `get_device(name, ...)` and `describe_devices()` for `latbench devices`."""
from __future__ import annotations

from ..errors import BadInput, DeviceError

DEVICE_NAMES = ("cpu", "gpu", "pixel1", "android")


def get_device(name: str, runtime: str | None = None, serial: str | None = None, core: int | None = None,
               gpu_index: int = 0, batch: int | None = None, benchmark_model: str | None = None,
               timing: str | None = None, cpu_mask: str | None = None, threads: int | None = None,
               xnnpack: bool = True, gpu_timing: str | None = None):
    """Build a device object. `pixel1` is a Pixel 1 over adb, `android` any phone (pick one with
    `serial`, else $ANDROID_SERIAL); `cpu_mask` / `threads` / `xnnpack` are for phones."""
    if name not in ("pixel1", "android") and (cpu_mask is not None or threads is not None or not xnnpack):
        raise BadInput(f"--cpu-mask/--threads/--no-xnnpack: only for the pixel1 and android devices, not {name}")
    if gpu_timing not in (None, "sync") and name != "gpu":
        raise BadInput(f"--gpu-timing: only for the gpu device, not {name}")
    if timing not in (None, "plain") and name != "cpu":
        raise BadInput(f"--timing: {timing} timing is for the cpu device (a phone or GPU is not shared with other tenants)")
    if name == "cpu":
        from .cpu import CpuDevice
        return CpuDevice(runtime or "ort", core=core, batch=batch or 1, timing=timing or "plain")
    if name == "gpu":
        if runtime not in (None, "torch"):
            raise BadInput(f"--runtime: gpu supports torch only, got {runtime!r}")
        from .gpu import GpuDevice
        return GpuDevice(gpu_index, batch=batch or 32, timing=gpu_timing or "sync")
    if name in ("pixel1", "android"):
        if runtime not in (None, "tflite"):
            raise BadInput(f"--runtime: {name} runs TFLite benchmark_model only, got {runtime!r}")
        from .android import AndroidDevice, parse_cpu_mask
        if cpu_mask not in (None, "auto"):
            try:
                parse_cpu_mask(cpu_mask)
            except (ValueError, DeviceError) as exc:
                raise BadInput(f"--cpu-mask: {cpu_mask!r} is not a taskset hex mask ({exc})") from None
        return AndroidDevice(serial=serial, benchmark_model=benchmark_model, batch=batch or 1, name=name,
                             cpu_mask=cpu_mask, threads=threads or 1, use_xnnpack=xnnpack)

    raise BadInput(f"--device: unknown device {name!r} (known: {', '.join(DEVICE_NAMES)})")


def open_device(name: str, runtime=None, core=None, batch=None, benchmark_model=None, timing=None, serial=None,
                gpu_index: int = 0, check: bool = True, **extra):
    """`get_device` (`extra`: cpu_mask, threads, xnnpack, gpu_timing), then (with `check`) a one-line
    BadInput when it cannot measure here."""
    if serial is not None and name not in ("pixel1", "android"):
        raise BadInput(f"--serial: selects an Android phone; it does not apply to --device {name}")
    dev = get_device(name, runtime, serial=serial, core=core, gpu_index=gpu_index, batch=batch,
                     benchmark_model=benchmark_model, timing=timing, **extra)
    if check:
        ok, why = dev.available()
        if not ok:
            raise BadInput(f"--device {name}: not available here: {why}")
    return dev


def open_devices(name: str, runtime=None, core=None, batch=None, benchmark_model=None, timing=None,
                 serials=(), gpus: str | None = None, **extra) -> list:
    """The devices that profile disjoint shards: one per `serials` entry (phones) or per `gpus` index
    ("0,1"), else one. An option that does not apply to the device is an error, not ignored."""
    if gpus and name != "gpu":
        raise BadInput(f"--gpus: selects GPUs; it does not apply to --device {name}")
    common = dict(runtime=runtime, core=core, batch=batch, benchmark_model=benchmark_model, timing=timing, **extra)
    if serials:
        return [open_device(name, serial=s, **common) for s in serials]
    if gpus:
        try:
            indices = [int(g) for g in gpus.split(",")]
        except ValueError:
            raise BadInput(f"--gpus: expected comma-separated integers, got {gpus!r}") from None
        return [open_device(name, gpu_index=i, **common) for i in indices]
    return [open_device(name, **common)]


def describe_devices() -> list:
    """What can measure here and, for what cannot, why."""
    rows = []
    from .cpu import RUNTIMES
    for rt in RUNTIMES:
        dev = get_device("cpu", rt)
        ok, why = dev.available()
        rows.append({"device": "cpu", "runtime": rt, "available": ok, "why": why,
                     "fingerprint": dev.fingerprint() if ok else None})
    dev = get_device("gpu")
    ok, why = dev.available()
    rows.append({"device": "gpu", "runtime": "torch", "available": ok, "why": why,
                 "fingerprint": dev.fingerprint() if ok else None})
    rows.append(describe_phones())
    return rows


def describe_phones() -> dict:
    """The Android row of `latbench devices` (pixel1 and android): every attached phone (serial, state, model, Android
    version, ABI) and whether a benchmark_model binary is configured; pushes nothing."""
    from .adb import Adb, AdbError, find_adb
    from .android import HOW_TO_GET, configured_benchmark_model
    from .android_host import list_phones

    row = {"device": "pixel1", "runtime": "tflite", "available": False, "why": "", "fingerprint": None,
           "phones": []}
    binary, where = configured_benchmark_model()
    if find_adb() is None:
        row["why"] = "adb not found on PATH: install Android SDK platform-tools"
        return row
    try:
        row["phones"] = list_phones(Adb())
    except AdbError as exc:
        row["why"] = str(exc)
        return row
    ready = [p for p in row["phones"] if p["state"] == "device"]
    if not ready:
        row["why"] = "no Android device attached in the 'device' state (adb devices)"
    elif binary is None or not binary.is_file():
        row["why"] = f"{where if binary is None else f'benchmark_model binary {binary} does not exist'}: {HOW_TO_GET}"
    else:
        row["available"] = True
    return row
