"""Latency lookup tables: the `latbench-lut/1` file and prediction from it.

Prediction = base_ms + Σ entries over the arch's ops. A key missing from the table is estimated,
in this order, and reported as estimated:
  1. interpolation along one channel width among entries that differ only in that width
     (linear between the nearest measured widths below and above; averaged over width fields);
  2. a non-negative linear regressor per op kind over (MACs, input/output elements, weights),
     fitted at load time on the table's own entries (deterministic, never pickled).
`strict=True` turns any missing key into an error instead.
"""
from __future__ import annotations

import getpass
import json
import math
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..arch import Arch
from ..errors import BadInput
from ..fileio import atomic_write_text, read_json, short
from ..ops import GRANULARITIES, WIDTH_FIELDS, decompose, op_features, op_from_key

FORMAT = "latbench-lut/1"
METHODS = ("isolated", "context", "fitted", "imported")
_REQUIRED = ("format", "device", "runtime", "batch", "granularity", "method", "spaces", "base_ms", "entries",
             "provenance")
FEATURES = ("macs", "in", "out", "weights")
# an estimate this many times the table's largest entry (or a prediction this far outside a fitted
# table's range) is orders of magnitude beyond anything measured: flagged, never silently reported
FAR_FACTOR = 10.0


@dataclass
class Prediction:
    latency_ms: float
    base_ms: float
    per_op: list  # [(layer_index, part, key, ms, how)] how: "table" / "interpolated" / "regressed"
    estimated: dict = field(default_factory=dict)  # key -> {"ms":, "how":}
    fit_range_ms: tuple | None = None  # fitted tables: latency range of the networks they were fitted on
    far: list = field(default_factory=list)  # why the prediction is far outside the table (FAR_FACTOR)

    @property
    def outside_fit_range(self) -> bool:
        """True when a fitted table extrapolates: the prediction lies outside its training networks' range."""
        return self.fit_range_ms is not None and not self.fit_range_ms[0] <= self.latency_ms <= self.fit_range_ms[1]

    def as_dict(self) -> dict:
        return {"latency_ms": self.latency_ms, "base_ms": self.base_ms, "estimated": sorted(self.estimated),
                "estimates": self.estimated, "fit_range_ms": self.fit_range_ms,
                "outside_fit_range": self.outside_fit_range, "far_outside_table": self.far,
                "ops": [{"layer": l, "part": p, "key": k, "ms": ms, "how": how} for l, p, k, ms, how in self.per_op]}


class LatencyTable:
    """A loaded LUT. Construct with `LatencyTable.load(path)` or from a dict via `from_dict`.

    Block and layer tables price any arch by themselves. A table keyed the way one space alone
    understands (granularity `tunas-layer`) prices through that space: `bind(space)` (done by
    `latbench.lut.files.load_table`) hands the keying to `space.arch_keys`."""

    def __init__(self, data: dict, source: str = "<lut>"):
        self.data = data
        self.source = source
        self.entries = {k: float(v["ms"]) for k, v in data["entries"].items()}
        self.base_ms = float(data["base_ms"])
        self.granularity = data["granularity"]
        self.fit_range_ms = tuple(data["fit_range_ms"]) if "fit_range_ms" in data else None
        self._regressors = None
        self._by_shape = None
        self._cache = {}
        self.space = None

    def bind(self, space) -> "LatencyTable":
        """Price archs through `space.arch_keys` (a space this table was built for)."""
        if space.name not in self.data["spaces"]:
            raise BadInput(f"{self.source}: a table for {', '.join(self.data['spaces']) or 'no space'} "
                           f"cannot price archs of {space.name}")
        self.space = space
        return self

    # ------------------------------------------------------------------ file format
    @classmethod
    def load(cls, path) -> "LatencyTable":
        path = Path(path)
        return cls.from_dict(read_json(path, "latbench-lut/1"), str(path))

    @classmethod
    def from_dict(cls, obj, source: str = "<lut>") -> "LatencyTable":
        validate_lut(obj, source)
        return cls(obj, source)

    def save(self, path) -> None:
        save_lut(self.data, path)

    # ------------------------------------------------------------------ prediction
    def op_ms(self, key: str, strict: bool = False) -> tuple[float, str]:
        if key in self.entries:
            return self.entries[key], "table"
        if strict:
            raise BadInput(f"{self.source}: no entry for op {key} (--strict)")
        if key not in self._cache:
            self._cache[key] = self._estimate(key)
        return self._cache[key]

    def arch_keys(self, arch: Arch) -> list:
        """[(layer index, part, key)] of `arch` at this table's granularity."""
        if self.space is not None:
            return self.space.arch_keys(arch, self.granularity)
        if self.granularity not in GRANULARITIES:
            raise BadInput(f"{self.source}: a {self.granularity} table prices archs through its space; "
                           "load it with latbench.lut.files.load_table")
        return [(u.layer_index, u.part, u.op.key) for u in decompose(arch, self.granularity)]

    def predict(self, arch: Arch, strict: bool = False) -> Prediction:
        per_op, estimated = [], {}
        total = self.base_ms
        for layer, part, key in self.arch_keys(arch):
            ms, how = self.op_ms(key, strict)
            total += ms
            per_op.append((layer, part, key, ms, how))
            if how != "table":
                estimated[key] = {"ms": ms, "how": how}
        return Prediction(total, self.base_ms, per_op, estimated, self.fit_range_ms,
                          self._far(total, estimated))

    def _far(self, total: float, estimated: dict) -> list:
        """Lines saying how a prediction lies orders of magnitude beyond what the table measured."""
        out = []
        top = max(self.entries.values(), default=0.0)
        big = {k: v["ms"] for k, v in estimated.items() if top > 0 and v["ms"] > FAR_FACTOR * top}
        if big:
            key = max(big, key=big.get)
            out.append(f"{len(big)} estimated op(s) over {FAR_FACTOR:g}x the table's largest entry ({top:.4g} ms), "
                       f"e.g. {short(key, 60)} at {big[key]:.4g} ms")
        if self.fit_range_ms is not None:
            lo, hi = self.fit_range_ms
            if total > FAR_FACTOR * hi or total < lo / FAR_FACTOR:
                out.append(f"{total:.4g} ms is over {FAR_FACTOR:g}x outside {lo:.4g}–{hi:.4g} ms, the range the "
                           "table was fitted on")
        return out

    # ------------------------------------------------------------------ estimation
    def _estimate(self, key: str) -> tuple[float, str]:
        if self.granularity not in GRANULARITIES:  # keys of one space's own: nothing to estimate from
            raise BadInput(f"{self.source}: no entry for {key}; a {self.granularity} table covers its own space only")
        op = op_from_key(key)
        interp = self._interpolate(op)
        if interp is not None:
            return interp, "interpolated"
        return self._regress(op), "regressed"

    def _shape_index(self):
        """{(kind, field, other fields): sorted [(width, ms)]} for 1-D interpolation."""
        if self._by_shape is None:
            idx = {}
            for k, ms in self.entries.items():
                try:
                    op = op_from_key(k)
                except BadInput:
                    continue  # foreign keys (imported tables) are looked up, never interpolated
                d = op.as_dict()
                for f in WIDTH_FIELDS:
                    if f in d:
                        rest = tuple((n, v) for n, v in op.fields if n != f)
                        idx.setdefault((op.kind, f, rest), []).append((d[f], ms))
            self._by_shape = {k: sorted(v) for k, v in idx.items()}
        return self._by_shape

    def _interpolate(self, op) -> float | None:
        d = op.as_dict()
        vals = []
        for f in WIDTH_FIELDS:
            if f not in d:
                continue
            rest = tuple((n, v) for n, v in op.fields if n != f)
            line = self._shape_index().get((op.kind, f, rest))
            if not line:
                continue
            below = [p for p in line if p[0] < d[f]]
            above = [p for p in line if p[0] > d[f]]
            if below and above:
                (x0, y0), (x1, y1) = below[-1], above[0]
                vals.append(y0 + (y1 - y0) * (d[f] - x0) / (x1 - x0))
        return sum(vals) / len(vals) if vals else None

    def _regress(self, op) -> float:
        import numpy as np

        if self._regressors is None:
            self._regressors = self._fit_regressors()
        model = self._regressors.get(op.kind) or self._regressors.get("*")
        if model is None:
            raise BadInput(f"{self.source}: cannot estimate op {op.key}: the table has no entries to learn from")
        f = op_features(op)
        return float(max(0.0, model.predict(np.array([[f[n] for n in FEATURES]], dtype=float))[0]))

    def _fit_regressors(self) -> dict:
        import numpy as np
        from sklearn.linear_model import LinearRegression

        groups = {}
        for k, ms in self.entries.items():
            try:
                op = op_from_key(k)
            except BadInput:
                continue
            f = op_features(op)
            row = [f[n] for n in FEATURES]
            groups.setdefault(op.kind, []).append((row, ms))
            groups.setdefault("*", []).append((row, ms))
        models = {}
        for kind, rows in groups.items():
            if len(rows) < 2:
                continue
            X = np.array([r for r, _ in rows], dtype=float)
            y = np.array([m for _, m in rows], dtype=float)
            models[kind] = LinearRegression(positive=True).fit(X, y)
        return models


# ---------------------------------------------------------------------- validation / writing
# Fields a table may carry besides _REQUIRED: what the builders and importers write (`make_lut`).
_OPTIONAL = ("units", "fingerprint_id", "fit_range_ms", "anchors")
# base_ms of these methods is the intercept of a fit (context scaling, fitted least squares, TuNAS's
# linear model normalised so every entry is ≥ 0): negative values are legitimate there. An isolated
# table's base_ms is a measured overhead, never below 0.
NEGATIVE_BASE_METHODS = ("context", "fitted", "imported")


def validate_lut(obj, source: str) -> None:
    """The `latbench-lut/1` contract; one-line BadInputs naming `source` and the field."""
    if not isinstance(obj, dict):
        raise BadInput(f"{source}: top level must be an object")
    if obj.get("format") != FORMAT:
        raise BadInput(f"{source}: format: expected {FORMAT!r}, got {short(obj.get('format'))}")
    for k in _REQUIRED:
        if k not in obj:
            raise BadInput(f"{source}: missing field {k!r}")
    unknown = sorted(set(obj) - set(_REQUIRED) - set(_OPTIONAL))
    if unknown:
        raise BadInput(f"{source}: unknown field {short(unknown[0])} (a {FORMAT} table has "
                       f"{', '.join(_REQUIRED + _OPTIONAL)})")
    if obj["granularity"] not in ("block", "layer", "tunas-layer"):
        raise BadInput(f"{source}: granularity: expected block, layer or tunas-layer, got {short(obj['granularity'])}")
    if obj["method"] not in METHODS:
        raise BadInput(f"{source}: method: expected one of {', '.join(METHODS)}, got {short(obj['method'])}")
    spaces = obj["spaces"]
    if not (isinstance(spaces, list) and all(isinstance(n, str) and n for n in spaces)):
        raise BadInput(f"{source}: spaces: must be a list of space names")
    if obj.get("units", "ms") != "ms":
        raise BadInput(f"{source}: units: latencies are in ms, got {short(obj['units'])}")
    if "fingerprint_id" in obj and not isinstance(obj["fingerprint_id"], str):
        raise BadInput(f"{source}: fingerprint_id: must be a string")
    if not _is_finite(obj["base_ms"]):
        raise BadInput(f"{source}: base_ms: must be a finite number, got {short(obj['base_ms'])}")
    if obj["base_ms"] < 0 and obj["method"] not in NEGATIVE_BASE_METHODS:
        raise BadInput(f"{source}: base_ms: {obj['base_ms']:g} < 0; only {', '.join(NEGATIVE_BASE_METHODS)} "
                       f"tables (a fitted intercept) may have a negative base, a {obj['method']} one may not")
    if not isinstance(obj["entries"], dict):
        raise BadInput(f"{source}: entries: must be an object {{key: {{ms, ...}}}}")
    own_keys = obj["granularity"] in GRANULARITIES
    for key, e in obj["entries"].items():
        if not isinstance(e, dict) or not _is_finite(e.get("ms")) or e["ms"] < 0:
            got = e.get("ms") if isinstance(e, dict) else e
            raise BadInput(f"{source}: entries[{short(key)}].ms: must be a finite number ≥ 0, got {short(got)}")
        if own_keys:
            try:
                op_from_key(key)
            except BadInput as exc:
                raise BadInput(f"{source}: entries: {short(str(exc), 160)}") from None
    if "fit_range_ms" in obj:
        r = obj["fit_range_ms"]
        if not (isinstance(r, list) and len(r) == 2 and all(_is_finite(v) for v in r) and 0 <= r[0] <= r[1]):
            raise BadInput(f"{source}: fit_range_ms: must be [low, high] in ms with 0 ≤ low ≤ high")
    from .anchors import validate_anchors

    validate_anchors(obj, source)


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _is_finite(v) -> bool:
    return _is_number(v) and math.isfinite(v)


def save_lut(data: dict, path) -> None:
    """Deterministic, diffable JSON: header fields, then one entry per line, keys sorted."""
    validate_lut(data, str(path))
    head = {k: v for k, v in data.items() if k != "entries"}
    lines = [json.dumps(head, indent=1, sort_keys=False)[:-2] + ',\n "entries": {']
    items = sorted(data["entries"].items())
    for i, (k, v) in enumerate(items):
        lines.append(f"  {json.dumps(k)}: {json.dumps(v, sort_keys=True)}" + ("," if i < len(items) - 1 else ""))
    lines.append(" }\n}\n")
    atomic_write_text(path, "\n".join(lines))


def provenance(**extra) -> dict:
    from .. import __version__

    try:
        user = getpass.getuser()
    except Exception:  # noqa: BLE001 — no user name in some containers
        user = "unknown"
    return {"tool": f"latbench {__version__}", "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "user": user, "host": platform.node(), **extra}


def make_lut(*, device: dict, runtime: str, batch: int, granularity: str, method: str, spaces: list,
             base_ms: float, entries: dict, provenance_info: dict, **extra) -> dict:
    return {"format": FORMAT, "device": device, "runtime": runtime, "batch": batch, "granularity": granularity,
            "method": method, "spaces": list(spaces), "base_ms": float(base_ms), "units": "ms", **extra,
            "provenance": provenance_info, "entries": entries}
