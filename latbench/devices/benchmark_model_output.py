"""Parse what TFLite's stock ``benchmark_model`` binary prints (a pure function, no I/O).

Every format variant seen in TensorFlow / LiteRT releases is read:

- the timed-run statistics line that ``Stat::OutputToStream`` writes after each
  ``Running benchmark for ...`` line: ``count=50 first=.. curr=.. min=.. max=.. avg=.. std=..``,
  the all-same form ``count=1 curr=146161`` (``count=N curr=X(all same)``), the 2017 order
  ``curr=.. count=..``, the LiteRT ``StatWithPercentiles`` suffix ``p5=.. median=.. p95=..``, and
  doubles in scientific notation (``avg=1.24357e+06``: C++ streams print 6 significant digits).
  The *actual* ``count=`` of the regular run is returned; it differs from ``--num_runs`` whenever
  ``min_secs`` / ``max_secs`` stretch or cut the loop;
- the summary line, new ``Inference timings in us: Init: .., First inference: .., Warmup (avg): ..,
  Inference (avg): ..`` and old ``Average inference timings in us: Warmup: .., Init: ..,
  no stats: ..`` / ``.., Inference: ..``;
- ``--enable_op_profiling=true`` tables (``StatsCalculator``): the initialization profile
  (``Profiling Info for Benchmark Initialization:``) is kept apart from the regular-run profile
  (``Operator-wise Profiling Info for Regular Benchmark Runs:``, or, in releases before either
  header existed, tables printed with no header); ``Run Order`` / ``Top by Computation Time``
  tables with or without the ``[start]`` column, tab separated as printed or space aligned as
  pasted into docs; per-subgraph blocks (``Primary graph (name: ..) profile:``,
  ``Subgraph (index: N, ..) profile:``) and the ``Delegate internal:`` block;
- log prefixes (``INFO: ``, glog ``I... file.cc:123] ``, logcat ``... tflite  : ``).

All times are returned in milliseconds. Output without inference timings raises DeviceError.
"""
from __future__ import annotations

import re

from ..errors import DeviceError

_NUM = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|[-+]?(?:nan|inf)"
_KV_RE = re.compile(r"([A-Za-z0-9_]+)=(%s)" % _NUM)
_PREFIX_RES = (
    # glog / absl: "2017-11-27 08:56:35.518009: I tensorflow/.../benchmark_model.cc:324] "
    re.compile(r"^\d{4}-\d\d-\d\d[ T][\d:.]+:?\s+[IWEFV]\s+\S+:\d+\]\s?"),
    # absl short form: "I0000 00:00:1700000000.000000    4520 file.cc:153] "
    re.compile(r"^[IWEFV]\d{4} [\d:.]+\s+\d+\s+\S+:\d+\]\s?"),
    # logcat: "11-25 10:00:00.123  1234  1234 I tflite  : "
    re.compile(r"^\d\d-\d\d [\d:.]+\s+\d+\s+\d+\s+[VDIWEF]\s+tflite\s*:\s?"),
    # TFLITE_LOG: "INFO: ", "WARN: ", "ERROR: "
    re.compile(r"^(?:INFO|WARN|WARNING|ERROR|VERBOSE|DEBUG):\s"),
    # LITERT_LOG adds the source location: "INFO: [benchmark_litert_model.h:94] "
    re.compile(r"^\[[\w./-]+\.(?:h|cc|c|cpp):\d+\]\s?"),
)
_TITLE_RE = re.compile(r"^=+\s+(.+?)\s+=+$")
# "Primary graph (name: main) profile:" and, before subgraph names were printed, "Primary graph profile:"
_PRIMARY_RE = re.compile(r"^Primary graph(?: \(name: (.*)\))? \w+:$")
# "Subgraph (index: 1, name: body) profile:" and the older "Subgraph (index: 1) profile:"
_SUBGRAPH_RE = re.compile(r"^Subgraph \(index: (\d+)(?:, name: (.*))?\) \w+:$")
_UNCONSUMED_RE = re.compile(r"Unconsumed cmdline flags:\s*(.*?)\s*$")
_LITERT_LOCATION_RE = re.compile(r"^(?:INFO|WARN|WARNING|ERROR|VERBOSE|DEBUG):\s\[benchmark_litert_model[\w.]*:\d+\]")
# The op-profile row of a whole delegated partition, e.g. "TfLiteXNNPackDelegate" (TfLite...Delegate...).
_ENCLOSING_RE = re.compile(r"^TfLite\w*Delegate\w*$")
_XNNPACK_CREATED = ("Created TensorFlow Lite XNNPACK delegate for CPU", "XNNPACK delegate created")
_SUMMARY_RE = re.compile(r"(?:Average inference|Inference) timings in us:\s*(.*)$")
_INIT_SESSION_RE = re.compile(r"Initialized session in (%s)\s*ms" % _NUM)
_PARAM_RE = re.compile(r"^(Min num runs|Num runs|Num threads|Min warmup runs|Warmup runs): \[(-?\d+)\]")

# Table column names as printed in the header, mapped to row keys.
_COLUMNS = {
    "[node type]": "node_type", "[start]": "start_ms", "[first]": "first_ms", "[avg ms]": "avg_ms",
    "[%]": "percent", "[cdf%]": "cdf_percent", "[mem KB]": "mem_kb", "[times called]": "times_called",
    "[Name]": "name",
}
_STAT_KEYS = ("first", "curr", "min", "max", "avg", "std", "p5", "median", "p95")


def _strip_prefix(line: str) -> str:
    for rx in _PREFIX_RES:
        m = rx.match(line)
        if m:
            line = line[m.end():]
    return line


def _num(text: str) -> float:
    return float(text)


def _ms(us_text: str) -> float:
    """microseconds as printed -> milliseconds (rounded to the nanosecond: no float dust)."""
    return round(float(us_text) / 1000.0, 9)


def parse_stat_line(line: str) -> dict | None:
    """One ``Stat``/``StatWithPercentiles`` line -> {count, first_ms, ..., p95_ms} (us -> ms).

    Returns None when the line is not a stat line. Keys the line lacks are None; the all-same form
    (``count=N curr=X``) fills min/max/avg with X and std with 0, as the tool means it.
    """
    s = line.strip()
    if not (s.startswith("count=") or s.startswith("curr=")):
        return None
    kv = {k: v for k, v in _KV_RE.findall(s)}
    if "count" not in kv:
        return None
    out = {"count": int(float(kv["count"]))}
    for key in _STAT_KEYS:
        out[f"{key}_ms"] = _ms(kv[key]) if key in kv else None
    if out["count"] > 0 and out["avg_ms"] is None and out["curr_ms"] is not None:
        # all same: every run took `curr`
        for key in ("first_ms", "min_ms", "max_ms", "avg_ms"):
            if out[key] is None:
                out[key] = out["curr_ms"]
        if out["std_ms"] is None:
            out["std_ms"] = 0.0
    return out


def _parse_summary(rest: str) -> dict:
    """``Init: 32163, First inference: 19834, Warmup (avg): 15997.4, Inference (avg): 15517.6``."""
    out = {}
    for part in rest.split(","):
        key, sep, value = part.partition(":")
        if not sep:
            continue
        key = key.strip().lower()
        m = re.match(r"\s*(%s)" % _NUM, value)
        if not m:
            continue
        ms = _ms(m.group(1))
        if key == "init":
            out["init_ms"] = ms
        elif key == "first inference":
            out["first_inference_ms"] = ms
        elif key in ("warmup", "warmup (avg)"):
            out["warmup_avg_ms"] = ms
        elif key in ("inference", "inference (avg)", "no stats"):
            out["inference_avg_ms"] = ms
        elif key == "with stats":
            out["inference_with_stats_avg_ms"] = ms
    return out


def _header_columns(line: str):
    """Column keys of a ``[node type] ... [Name]`` header, and whether it is tab separated."""
    names = re.findall(r"\[[^\]]*\]", line)
    cols = [_COLUMNS.get(n) for n in names]
    if not cols or cols[0] != "node_type" or cols[-1] != "name" or None in cols:
        return None
    return cols, "\t" in line


def _row_regex(cols):
    parts = [r"^\s*(?P<node_type>\S.*?)"]
    for c in cols[1:-1]:
        if c in ("percent", "cdf_percent"):
            parts.append(r"(?P<%s>%s)%%" % (c, _NUM))
        else:
            parts.append(r"(?P<%s>%s)" % (c, _NUM))
    parts.append(r"(?P<name>\S.*?)\s*$")
    return re.compile(r"\s+".join(parts))


def _parse_row(line: str, cols, tabbed: bool, rx) -> dict | None:
    values = None
    if tabbed and "\t" in line:
        fields = line.split("\t")
        if fields and not fields[0].strip():
            fields = fields[1:]
        if len(fields) >= len(cols):
            # a name never holds a tab in this output, but keep any extra fields in it
            fields = fields[:len(cols) - 1] + ["\t".join(fields[len(cols) - 1:])]
            values = dict(zip(cols, (f.strip() for f in fields)))
    if values is None:
        m = rx.match(line)
        if not m:
            return None
        values = m.groupdict()
    row = {}
    try:
        for c in cols:
            v = values[c]
            if c in ("node_type", "name"):
                row[c] = v
            elif c == "times_called":
                row[c] = int(float(v))
            else:
                row[c] = _num(v.rstrip("%"))
    except (ValueError, KeyError):
        return None
    if not row.get("node_type"):
        return None
    return row


def _problem_lines(lines) -> str:
    bad = [l.strip() for l in lines if re.search(r"error|failed|fail|cannot|could not|abort", l, re.I)]
    if not bad:
        bad = [l.strip() for l in lines if l.strip()][-3:]
    text = " | ".join(bad[:4])
    return text[:500] if text else "(empty output)"


def parse_benchmark_output(text) -> dict:
    """Parse benchmark_model output (stdout and stderr together) into a dict, times in ms.

    Keys: ``format`` ("new" / "old" / None: which summary line), ``count`` (timed runs actually
    made), ``avg_ms std_ms min_ms max_ms median_ms p5_ms p95_ms first_ms curr_ms`` (of the timed
    runs; a statistic the binary does not print is None), ``init_ms``, ``first_inference_ms``,
    ``warmup`` (the warm-up loop's stats, same keys, {} when not printed), ``warmup_avg_ms``,
    ``requested_runs`` (the ``Min num runs`` parameter if logged), ``nodes`` (rows of the
    regular runs' Run Order table: node_type, name, avg_ms, first_ms, percent, cdf_percent,
    mem_kb, times_called, start_ms (None without that column), subgraph), ``nodes_by_time``
    (the Top by Computation Time rows), ``init_nodes`` (the initialization profile's Run Order
    rows), ``delegate_nodes`` (a ``Delegate internal:`` Run Order, if any), ``enclosing_nodes``
    (the ``TfLiteXNNPackDelegate``-like rows dropped from ``nodes`` because the delegate's own
    ``Delegate/...`` rows time the same work), ``unconsumed_flags`` (what the binary's
    "Unconsumed cmdline flags" warning lists: flags it ignored), ``flavour``
    (``benchmark_model`` or LiteRT's ``benchmark_litert_model``, told by its ``[file:NN]`` log
    lines) and ``xnnpack_delegate_created``.

    Raises DeviceError when the output holds no inference timings (a failed run, a truncated
    log, ``count=0``): never returns zeros.
    """
    if isinstance(text, (bytes, bytearray)):
        text = text.decode("utf-8", errors="replace")
    if not isinstance(text, str):
        raise TypeError("parse_benchmark_output expects the text of benchmark_model's output")
    raw_lines = [l.rstrip("\r") for l in text.splitlines()]
    flavour = ("benchmark_litert_model" if any(_LITERT_LOCATION_RE.match(l) for l in raw_lines)
               else "benchmark_model")
    lines = [_strip_prefix(l) for l in raw_lines]
    unconsumed = []
    for l in lines:
        m = _UNCONSUMED_RE.search(l)
        if m:
            unconsumed += m.group(1).split()
    xnnpack_created = any(marker in l for l in lines for marker in _XNNPACK_CREATED)

    markers = 0
    stats = []  # (marker index, stat)
    summary = {}
    fmt = None
    init_session_ms = None
    params = {}
    section = None  # None (no profiling header seen) | "init" | "regular"
    subgraph = 0
    pending_title = None
    seen_tables = {}  # (section, subgraph) -> number of tables seen
    tables = {}  # (section, subgraph, title) -> rows
    table = None

    for line in lines:
        s = line.strip()
        title_here, pending_title = pending_title, None  # a title names only the header right below it
        if table is not None:
            if not s:
                table = None
                continue
            row = _parse_row(line, table["cols"], table["tabbed"], table["rx"])
            if row is not None:
                table["rows"].append(row)
                continue
            table = None  # not a row: handle the line normally
        if s.startswith("Profiling Info for Benchmark Initialization"):
            section, subgraph = "init", 0
            continue
        if s.startswith("Operator-wise Profiling Info for Regular Benchmark Runs"):
            section, subgraph = "regular", 0
            continue
        if _PRIMARY_RE.match(s):
            subgraph = 0
            continue
        m = _SUBGRAPH_RE.match(s)
        if m:
            subgraph = int(m.group(1))
            continue
        if s.startswith("Delegate internal:"):
            subgraph = "delegate"
            continue
        m = _TITLE_RE.match(s)
        if m:
            pending_title = m.group(1)
            continue
        if "[node type]" in line:
            parsed = _header_columns(line)
            if parsed is None:
                continue
            cols, tabbed = parsed
            sec = section or "regular"  # old releases printed only the run profile, no header
            n = seen_tables.get((sec, subgraph), 0)
            seen_tables[(sec, subgraph)] = n + 1
            title = title_here or ("Run Order" if n == 0 else "Top by Computation Time" if n == 1 else f"table {n}")
            rows = tables.setdefault((sec, subgraph, title), [])
            table = {"cols": cols, "tabbed": tabbed, "rx": _row_regex(cols), "rows": rows}
            continue
        if "Running benchmark for" in s:
            markers += 1
            continue
        st = parse_stat_line(s)
        if st is not None:
            stats.append((markers, st))
            continue
        m = _SUMMARY_RE.search(s)
        if m:
            fmt = "old" if "Average inference timings" in s else "new"
            summary.update(_parse_summary(m.group(1)))
            continue
        m = _INIT_SESSION_RE.search(s)
        if m:
            init_session_ms = _num(m.group(1))
            continue
        m = _PARAM_RE.match(s)
        if m:
            params[m.group(1)] = int(m.group(2))

    # The regular run is the last Run() call: the stat line after the last "Running benchmark"
    # marker; the warm-up loop is the one before it.
    inference = warmup = None
    if markers:
        by_marker = {k: st for k, st in stats}
        inference = by_marker.get(markers)
        warmup = by_marker.get(markers - 1)
    elif stats:
        inference = stats[-1][1]
        warmup = stats[-2][1] if len(stats) > 1 else None

    if inference is None and "inference_avg_ms" in summary:
        inference = {"count": None, **{f"{k}_ms": None for k in _STAT_KEYS}}
        inference["avg_ms"] = summary["inference_avg_ms"]
    if inference is not None and inference["count"] == 0:
        raise DeviceError(f"benchmark_model made no timed runs (count=0): {_problem_lines(lines)}")
    if inference is None or inference["avg_ms"] is None:
        raise DeviceError(f"benchmark_model output has no inference timings: {_problem_lines(lines)}")
    if not inference["avg_ms"] > 0:
        raise DeviceError(f"benchmark_model reported a non-positive inference time ({inference['avg_ms']} ms)")

    def rows(sec, sub, title):
        out = []
        for r in tables.get((sec, sub, title), []):
            r = dict(r)
            r.setdefault("start_ms", None)
            r["subgraph"] = sub
            out.append(r)
        return out

    subgraphs = sorted({k[1] for k in tables if k[0] == "regular" and isinstance(k[1], int)})
    nodes, nodes_by_time, enclosing = [], [], []
    for sub in subgraphs:
        run_order = rows("regular", sub, "Run Order")
        by_time = rows("regular", sub, "Top by Computation Time")
        if any(r["name"].startswith("Delegate/") for r in run_order):
            # TF >= 2.9.1 / LiteRT time the delegated partition twice: as one TfLite...Delegate node
            # and as the delegate's own "Delegate/<op>:<i>" rows; keep the per-op rows only.
            enclosing += [r for r in run_order if _ENCLOSING_RE.match(r["node_type"])]
            run_order = [r for r in run_order if not _ENCLOSING_RE.match(r["node_type"])]
            by_time = [r for r in by_time if not _ENCLOSING_RE.match(r["node_type"])]
        nodes += run_order
        nodes_by_time += by_time

    result = {
        "format": fmt,
        "count": inference["count"],
        **{f"{k}_ms": inference[f"{k}_ms"] for k in _STAT_KEYS},
        "init_ms": summary.get("init_ms", init_session_ms),
        "first_inference_ms": summary.get("first_inference_ms", warmup["first_ms"] if warmup else None),
        "warmup": dict(warmup) if warmup else {},
        "warmup_avg_ms": summary.get("warmup_avg_ms", warmup["avg_ms"] if warmup else None),
        "summary_inference_avg_ms": summary.get("inference_avg_ms"),
        "requested_runs": params.get("Min num runs", params.get("Num runs")),
        "nodes": nodes,
        "nodes_by_time": nodes_by_time,
        "init_nodes": rows("init", 0, "Run Order"),
        "delegate_nodes": rows("regular", "delegate", "Run Order"),
        "enclosing_nodes": enclosing,
        "unconsumed_flags": unconsumed,
        "flavour": flavour,
        "xnnpack_delegate_created": xnnpack_created,
    }
    return result
