"""Device registry: `get_device(name, ...)` and `describe_devices()` for `latbench devices`."""
from __future__ import annotations

from ..errors import BadInput

DEVICE_NAMES = ("cpu", "gpu", "pixel1")


def get_device(name: str, runtime: str | None = None, serial: str | None = None, core: int | None = None,
               gpu_index: int = 0, batch: int | None = None, benchmark_model: str | None = None,
               timing: str | None = None):
    """Build a device object. `pixel1` is any Android phone over adb (pick one with `serial`)."""
    if timing not in (None, "plain") and name != "cpu":
        raise BadInput(f"--timing: {timing} timing is for the cpu device (a phone or GPU is not shared with other tenants)")
    if name == "cpu":
        from .cpu import CpuDevice
        return CpuDevice(runtime or "ort", core=core, batch=batch or 1, timing=timing or "plain")
    if name == "gpu":
        if runtime not in (None, "torch"):
            raise BadInput(f"--runtime: gpu supports torch only, got {runtime!r}")
        from .gpu import GpuDevice
        return GpuDevice(gpu_index, batch=batch or 32)
    if name in ("pixel1", "android"):
        if runtime not in (None, "tflite"):
            raise BadInput(f"--runtime: {name} runs TFLite benchmark_model only, got {runtime!r}")
        from .android import AndroidDevice
        return AndroidDevice(serial=serial, benchmark_model=benchmark_model, batch=batch or 1)
    raise BadInput(f"--device: unknown device {name!r} (known: {', '.join(DEVICE_NAMES)})")


def open_device(name: str, runtime=None, core=None, batch=None, benchmark_model=None, timing=None, serial=None,
                gpu_index: int = 0, check: bool = True):
    """`get_device`, then (with `check`) a one-line BadInput when it cannot measure here."""
    if serial is not None and name not in ("pixel1", "android"):
        raise BadInput(f"--serial: selects an Android phone; it does not apply to --device {name}")
    dev = get_device(name, runtime, serial=serial, core=core, gpu_index=gpu_index, batch=batch,
                     benchmark_model=benchmark_model, timing=timing)
    if check:
        ok, why = dev.available()
        if not ok:
            raise BadInput(f"--device {name}: not available here: {why}")
    return dev


def open_devices(name: str, runtime=None, core=None, batch=None, benchmark_model=None, timing=None,
                 serials=(), gpus: str | None = None) -> list:
    """The devices that profile disjoint shards: one per `serials` entry (phones) or per `gpus` index
    ("0,1"), else one. An option that does not apply to the device is an error, not ignored."""
    if gpus and name != "gpu":
        raise BadInput(f"--gpus: selects GPUs; it does not apply to --device {name}")
    common = dict(runtime=runtime, core=core, batch=batch, benchmark_model=benchmark_model, timing=timing)
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
    try:
        dev = get_device("pixel1")
        ok, why = dev.available()
        fp = dev.fingerprint() if ok else None
    except Exception as exc:  # noqa: BLE001 — describing must never fail
        ok, why, fp = False, str(exc), None
    rows.append({"device": "pixel1", "runtime": "tflite", "available": ok, "why": why, "fingerprint": fp})
    return rows
