"""Anchors: a few of a table's own measurements, kept in the table, that tell a later sitting how
far the host's level has moved since the table was measured (DESIGN §5: sitting-to-sitting drift).

A table built from whole networks (fitted, context) keeps `ANCHOR_ARCHS` of its training networks,
an isolated table `ANCHOR_OPS` of its ops (raw times, overhead included, as measured), chosen
evenly over their latency range, each with its stored median, round count and 95 % CI. Measuring
the anchors again (interleaved with whatever else is measured then) gives one level factor:
the geometric mean of now/then over the anchors, with a Student-t interval over them. On a shared
host that factor is the part of a validation's error no table built in another sitting can know;
`relevel` multiplies a table by it (entries, base, fit range) and re-dates its anchors.

Table field (`latbench-lut/1`, optional):
  "anchors": {"kind": "arch" | "op", "measured": ISO time of their rounds, "fingerprint_id": ...,
              "items": [{"key", "ms", "rounds", "ci95_pct", "space"+"indices" | "arch" (arch kind)}]}
Provenance gains `relevels`: [{"created", "factor", "drift_pct", "ci95_pct", "anchors", "from"}].
"""
from __future__ import annotations

import copy
import math
import time

import numpy as np

from ..arch import format_indices, parse_arch, parse_indices
from ..errors import BadInput
from ..measure.profiling import PROBE_KEY
from ..measure.protocol import Item
from ..ops import op_from_key

ANCHOR_ARCHS = 8  # whole networks a fitted / context table keeps
ANCHOR_OPS = 6  # ops an isolated table keeps
PREFIX = "anchor:"  # store key prefix: an anchor is measured again, never read from the table's own rounds
KIND = "anchor"  # store item kind of anchors measured by validate / relevel
DRIFT_WARN_PCT = 1.0  # |drift| above which validate warns


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def _parse_iso(text: str) -> float:
    import calendar

    return float(calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ")))


def spread_pick(keys_ms: list, k: int) -> list:
    """`k` keys evenly spaced over the latency order of [(key, ms)] (ends included), deterministic."""
    ordered = sorted(keys_ms, key=lambda kv: (kv[1], kv[0]))
    if len(ordered) <= k:
        return [key for key, _ in ordered]
    picks = np.unique(np.round(np.linspace(0, len(ordered) - 1, k)).astype(int))
    return [ordered[i][0] for i in picks]


def _record(store, keys: list, results: dict, extra) -> list:
    out = []
    for key in keys:
        r = results[key]
        out.append({"key": key, "ms": float(r["ms"]), "rounds": int(r["rounds"]),
                    "ci95_pct": None if r.get("ci95_pct") is None else round(float(r["ci95_pct"]), 4), **extra(key, r)})
    return out


def _measured_at(store, keys: list) -> str:
    last = store.last_round_times()
    times = sorted(last[k] for k in keys if k in last)
    return _iso(times[len(times) // 2]) if times else _iso(time.time())


def arch_anchors(store, train_keys: list, k: int = ANCHOR_ARCHS) -> dict | None:
    """Anchors of a table fitted / profiled from the whole networks `train_keys` of `store`."""
    results = store.results("arch")
    keys = spread_pick([(key, results[key]["ms"]) for key in train_keys if key in results], k)
    if not keys:
        return None

    def target(key, r):
        arch = r["arch"]
        if arch.get("space") and arch.get("indices") is not None:
            idx = arch["indices"]
            return {"space": arch["space"], "indices": idx if isinstance(idx, str) else format_indices(idx)}
        return {"arch": arch}
    return {"kind": "arch", "measured": _measured_at(store, keys), "fingerprint_id": store.fp,
            "items": _record(store, keys, results, target)}


def op_anchors(store, entry_keys: list, k: int = ANCHOR_OPS) -> dict | None:
    """Anchors of an isolated table: `k` of its ops (raw stored times) spread over their range."""
    results = {**store.results("op"), **store.results("probe")}
    keys = spread_pick([(key, results[key]["ms"]) for key in entry_keys if key in results and key != PROBE_KEY], k)
    if not keys:
        return None
    return {"kind": "op", "measured": _measured_at(store, keys), "fingerprint_id": store.fp,
            "items": _record(store, keys, results, lambda key, r: {})}


# ---------------------------------------------------------------------- reading a table's anchors
def validate_anchors(obj, source: str) -> None:
    """The optional `anchors` field of a table (one-line BadInput naming the field)."""
    a = obj.get("anchors")
    if a is None:
        return
    where = f"{source}: anchors"
    if not isinstance(a, dict) or a.get("kind") not in ("arch", "op") or not isinstance(a.get("items"), list):
        raise BadInput(f"{where}: must be an object with kind arch|op and a list of items")
    if not isinstance(a.get("measured"), str):
        raise BadInput(f"{where}.measured: must be an ISO time string")
    for i, it in enumerate(a["items"]):
        if not isinstance(it, dict) or not isinstance(it.get("key"), str):
            raise BadInput(f"{where}.items[{i}].key: must be a string")
        ms = it.get("ms")
        if not (isinstance(ms, (int, float)) and not isinstance(ms, bool) and math.isfinite(ms) and ms > 0):
            raise BadInput(f"{where}.items[{i}].ms: must be a positive number")


def _target(kind: str, it: dict, source: str):
    if kind == "op":
        return op_from_key(it["key"])
    if "arch" in it:
        return parse_arch(it["arch"], f"{source}: anchors {it['key']}")
    from ..spaces import get_space

    return get_space(it["space"]).decode(parse_indices(it["indices"], f"{source}: anchors {it['key']}.indices"))


def anchor_items(table) -> list:
    """Store items that measure `table`'s anchors again (kind "anchor", keys prefixed, never the
    training rounds a shared store may hold under the plain key)."""
    a = table.data.get("anchors")
    if not a:
        return []
    items = []
    for it in a["items"]:
        target = _target(a["kind"], it, table.source)
        items.append(Item(PREFIX + it["key"], target, KIND, {"anchor_of": it["key"], "anchor_kind": a["kind"]}))
    return items


def level_change(table, store) -> dict | None:
    """The host's level now relative to the table's anchors, from their measurements in `store`:
    {factor, drift_pct, ci95_pct [lo, hi] of the drift, anchors, measured_then, per_anchor}; None
    when the table has no anchors or `store` holds none of them."""
    a = table.data.get("anchors")
    if not a:
        return None
    now = store.results(KIND)
    pairs = [(it, now[PREFIX + it["key"]]) for it in a["items"] if PREFIX + it["key"] in now]
    if not pairs:
        return None
    logs = np.array([math.log(r["ms"] / it["ms"]) for it, r in pairs])
    centre = float(logs.mean())
    if len(logs) >= 2:
        from scipy import stats

        half = float(stats.t.ppf(0.975, len(logs) - 1) * np.std(logs, ddof=1) / math.sqrt(len(logs)))
    else:  # one anchor: its own two intervals, combined
        it, r = pairs[0]
        half = math.hypot(it.get("ci95_pct") or 0.0, r.get("ci95_pct") or 0.0) / 100.0
    factor = math.exp(centre)
    return {"factor": factor, "drift_pct": (factor - 1) * 100.0,
            "ci95_pct": [(math.exp(centre - half) - 1) * 100.0, (math.exp(centre + half) - 1) * 100.0],
            "anchors": len(pairs), "of": len(a["items"]), "measured_then": a.get("measured"),
            "per_anchor": [{"key": it["key"], "then_ms": it["ms"], "now_ms": r["ms"],
                            "ratio": r["ms"] / it["ms"], "now_ci95_pct": r.get("ci95_pct")} for it, r in pairs]}


def drift_warning(change: dict | None) -> str | None:
    """One line for stderr when the host's level moved by more than DRIFT_WARN_PCT."""
    if not change or not abs(change["drift_pct"]) > DRIFT_WARN_PCT:
        return None
    lo, hi = change["ci95_pct"]
    return (f"latbench: warning: this host runs {abs(change['drift_pct']):.1f}% "
            f"{'slower' if change['drift_pct'] > 0 else 'faster'} [{lo:+.1f}…{hi:+.1f}%] than when the table was "
            f"measured ({change['measured_then']}, {change['anchors']} anchors); `latbench build-lut --relevel` "
            "re-levels it")


def relevelled(table, change: dict, store, fingerprint: dict | None = None) -> dict:
    """A copy of `table`'s data at the level `change` measured: every entry's ms, base_ms and the
    fit range times the factor; the anchors re-dated to their measurements in `store`; the change
    appended to provenance.relevels. Other fields (raw_ms, mad, prior times, ...) keep the record
    of the original sitting."""
    f = change["factor"]
    data = copy.deepcopy(table.data)
    for e in data["entries"].values():
        e["ms"] = float(e["ms"]) * f
    data["base_ms"] = float(data["base_ms"]) * f
    if "fit_range_ms" in data:
        data["fit_range_ms"] = [float(v) * f for v in data["fit_range_ms"]]
    now = store.results(KIND)
    anchors = data["anchors"]
    kept = []
    for it in anchors["items"]:
        r = now.get(PREFIX + it["key"])
        if r is None:  # not measured now: stays an anchor at the new level
            kept.append({**it, "ms": it["ms"] * f})
        else:
            kept.append({**it, "ms": float(r["ms"]), "rounds": int(r["rounds"]),
                         "ci95_pct": None if r.get("ci95_pct") is None else round(float(r["ci95_pct"]), 4)})
    anchors["items"] = kept
    anchors["measured"] = _measured_at(store, [PREFIX + it["key"] for it in kept])
    anchors["fingerprint_id"] = store.fp
    if fingerprint is not None:
        data["device"], data["fingerprint_id"] = fingerprint, store.fp
    record = {"created": _iso(time.time()), "factor": f, "drift_pct": change["drift_pct"],
              "ci95_pct": change["ci95_pct"], "anchors": change["anchors"], "from": table.source}
    data["provenance"] = {**data["provenance"], "relevels": [*data["provenance"].get("relevels", []), record]}
    return data


def table_dates(data: dict, now: float | None = None) -> dict:
    """When a table was built and measured, how old its level is, and when it was last re-levelled."""
    now = time.time() if now is None else now
    prov = data.get("provenance") or {}
    anchors = data.get("anchors") or {}
    relevels = prov.get("relevels") or []
    measured = anchors.get("measured") or prov.get("created")
    out = {"created": prov.get("created"), "level_measured": measured,
           "relevelled": relevels[-1]["created"] if relevels else None, "relevels": len(relevels),
           "anchors": len(anchors.get("items", [])), "age_days": None}
    try:
        out["age_days"] = round((now - _parse_iso(measured)) / 86400.0, 3) if measured else None
    except (ValueError, TypeError):
        pass
    return out
