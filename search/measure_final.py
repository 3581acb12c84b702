"""`--measure`: the final arch measured on the device its table describes, when that device is here.

The table's `device` block says where its numbers come from (`cpu` + runtime + timing, `gpu`,
`pixel1`); that device is opened with the same options `latbench measure` would use and the
final arch is timed with the standard protocol (DESIGN §5). When the device cannot measure here
(no phone attached, no GPU, a runtime missing) the result says why in one line instead. A table
built on another machine of the same kind (another CPU model, other runtime versions) is still
measured here, with a note naming the fields that differ: its prediction is then for another host.
"""
from __future__ import annotations

from latbench.errors import BadInput

IDENTITY = ("device", "model", "runtime", "runtime_version", "batch", "threads", "timing")


def table_device(table) -> dict:
    """(device name, runtime, batch, timing) of a LatencyTable's device block."""
    dev = table.data.get("device") or {}
    name = dev.get("device")
    timing = dev.get("timing", "plain") if name == "cpu" else None
    return {"device": name, "runtime": table.data.get("runtime") or dev.get("runtime"),
            "batch": table.data.get("batch") or dev.get("batch"), "timing": timing}


def measure_final(arch, table, predicted_ms: float, protocol=None, progress: bool = False) -> dict:
    """Predicted vs measured latency of `arch` on `table`'s device, or {'why': ...} when it is not here."""
    from latbench.devices import DEVICE_NAMES, open_device

    spec = table_device(table)
    out = {"device": spec["device"], "runtime": spec["runtime"], "predicted_ms": predicted_ms, "latency_ms": None}
    if spec["device"] not in DEVICE_NAMES:
        return {**out, "why": f"the table's device {spec['device']!r} is not one latbench can open"}
    try:
        dev = open_device(spec["device"], spec["runtime"], batch=spec["batch"], timing=spec["timing"])
    except BadInput as exc:
        return {**out, "why": f"{table.source} was measured on {spec['device']}/{spec['runtime']}: {exc}"}
    from latbench.measure.whole import measure_arch

    m = measure_arch(dev, arch, protocol, progress=progress)
    theirs = table.data.get("device") or {}
    differ = [f for f in IDENTITY if f in theirs and theirs.get(f) != m["fingerprint"].get(f)]
    note = None
    if differ:
        note = ("the table was built on another host/runtime (" +
                ", ".join(f"{f}: {theirs.get(f)!r} there, {m['fingerprint'].get(f)!r} here" for f in differ) + ")")
    return {**out, "latency_ms": m["latency_ms"], "mad_ms": m["mad_ms"], "cv_pct": m["cv_pct"], "count": m["count"],
            "prediction_error_pct": 100.0 * (predicted_ms / m["latency_ms"] - 1.0),
            "fingerprint_id": m["fingerprint_id"], "table_fingerprint_id": table.data.get("fingerprint_id"),
            "protocol": m["protocol"], "wall_s": m["wall_s"], "note": note}
