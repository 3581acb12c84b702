"""Commands about lookup tables: build-lut, predict, validate, import-lut."""
from __future__ import annotations

from pathlib import Path

import click

from ..errors import BadInput
from ..fileio import check_writable
from .app import emit, json_option, main
from .options import (device_options, load_arch_arg, make_device, make_protocol, optional_device_options,
                      protocol_options)

# lut.fit.GROUPING_CHOICES, spelled out so the CLI does not import numpy to list them (a test checks)
PRIOR_GROUPS = ("auto", "one", "one+size", "kind", "kind+size", "kind-resolution", "kind-resolution+size")


@main.command("build-lut")
@click.option("--db", "db_path", type=click.Path(dir_okay=False), default=None,
              help="Profile store to read (required unless --relevel).")
@click.option("--relevel", "relevel_lut", default=None,
              help="Instead of --db: measure this table's anchors on --device now and write it re-levelled "
                   "(every entry times the host's level change since its sitting; seconds, not minutes).")
@click.option("--method", type=click.Choice(["isolated", "context", "fitted"]), default="isolated", show_default=True)
@click.option("--granularity", type=click.Choice(["block", "layer"]), default="block", show_default=True)
@click.option("--prior", type=click.Choice(["isolated", "context"]), default=None,
              help="fitted only: the table of this store the fit is regularised toward (context needs node "
                   "profiles)  [default: isolated]")
@click.option("--prior-lut", "prior_lut", default=None,
              help="fitted only, instead of --prior: an existing table (LUT file or shipped name, same "
                   "granularity) to fit toward; the store then needs whole networks only (profile --archs 30): "
                   "recalibrates a table built in another sitting or on a similar device.")
@click.option("--prior-groups", "groups", type=click.Choice(PRIOR_GROUPS), default=None,
              help="fitted only: fit the prior's level with one factor, one per op kind, or one per op kind and "
                   "resolution; +size: the level also changes with the op's own time  [default: auto, the one "
                   "with the lowest cross-validated MAPE over the networks]")
@click.option("--space", "space_name", default=None, help="Only ops/archs profiled for this space.")
@click.option("--fingerprint", default=None, help="Fingerprint id, when the store holds several.")
@click.option("--anchors", "n_anchors", type=click.IntRange(0), default=None,
              help="Measurements the table keeps so that validate and --relevel can measure the host's drift "
                   "later: training networks (fitted, context) or ops (isolated)  [default: 8 networks, 6 ops; "
                   "0: none]")
@click.option("-o", "--output", type=click.Path(dir_okay=False), required=True, help="LUT file to write.")
@optional_device_options
@click.option("--serial", default=None, help="--relevel on Android: adb serial of the phone.")
@protocol_options
@json_option
def build_lut(db_path, relevel_lut, method, granularity, prior, prior_lut, groups, space_name, fingerprint, n_anchors,
              output, device_name, runtime, core, batch, benchmark_model, timing, serial, rounds, runs, warmup,
              precision, budget_s, workers, as_json):
    """Build a latbench-lut/1 table from a profile store.

    \b
    Example:
      latbench build-lut --db cpu-ort.db --method isolated -o cpu-ort.lut.json
      latbench build-lut --db cpu-ort.db --method fitted --space proxylessnas -o fitted.json
      latbench build-lut --db cpu-ort.db --method fitted --prior context --granularity layer -o f.json
      latbench build-lut --db today.db --method fitted --prior-lut fitted.json -o today.json
      latbench build-lut --relevel fitted.json --device cpu -o fitted-today.json
    """
    from ..lut import save_lut
    from ..lut.build import build_lut as build
    from ..lut.files import load_table
    from ..measure.store import ProfileStore
    from ..validation import fit_noise_warning

    check_writable(output, "-o")
    measuring = dict(device_name=device_name, runtime=runtime, core=core, batch=batch, benchmark_model=benchmark_model,
                     timing=timing, serial=serial, rounds=rounds, runs=runs, warmup=warmup, precision=precision,
                     budget_s=budget_s, workers=workers)
    if relevel_lut:
        if n_anchors is not None:
            raise BadInput("--anchors: chooses a new table's anchors; --relevel keeps the table's own")
        return _relevel(relevel_lut, db_path, prior_lut, output, measuring, as_json)
    if given := [k for k, v in measuring.items() if v is not None]:
        raise BadInput(f"--{_FLAGS.get(given[0], given[0])}: measures, so only with --relevel (build-lut --db reads "
                       "a store)")
    if db_path is None:
        raise BadInput("--db: required (the profile store to build from), or --relevel TABLE")
    if not Path(db_path).exists():
        raise BadInput(f"--db: {db_path}: no such profile store")
    table = load_table(prior_lut, "--prior-lut") if prior_lut else None
    store = ProfileStore(db_path, fp_id=fingerprint)
    data = build(store, method, granularity, space_name, prior=prior, groups=groups, progress=not as_json,
                 prior_table=table, anchors=n_anchors)
    save_lut(data, output)
    build_info = data["provenance"].get("build") or {}
    if warning := fit_noise_warning(build_info):
        click.echo(warning, err=True)
    if table is not None and (differ := _fingerprint_differences(table.data["device"], store.fingerprint)):
        click.echo(f"note: --prior-lut {prior_lut} was measured with another {', '.join(differ)} than --db "
                   f"(a transfer: its fitted level absorbs the difference, its per-op shape is kept)", err=True)
    toward = prior_lut if prior_lut else build_info.get("prior")
    info = {"output": output, "entries": len(data["entries"]), "base_ms": data["base_ms"], "method": method,
            **({"prior": build_info["prior"]} if method == "fitted" else {}),
            "granularity": granularity, "spaces": data["spaces"], "build": build_info}
    emit(info, as_json, f"wrote {output}: {len(data['entries'])} entries, base {data['base_ms']:.4f} ms "
                        f"({method}{f' toward {toward}' if method == 'fitted' else ''}, {granularity})")


_FLAGS = {"device_name": "device", "benchmark_model": "benchmark-model", "budget_s": "budget"}


def _relevel(lut_path, db_path, prior_lut, output, m, as_json):
    """build-lut --relevel: the table's anchors measured now, the table times the level change."""
    from ..lut import save_lut
    from ..lut.anchors import drift_warning
    from ..lut.files import load_table
    from ..lut.relevel import relevel_table
    from ..measure.store import ProfileStore
    from ..validation import validation_timing

    if db_path or prior_lut:
        raise BadInput(f"--relevel: measures the table's own anchors; not with {'--db' if db_path else '--prior-lut'}")
    if not m["device_name"]:
        raise BadInput("--relevel: needs --device (where to measure the anchors now)")
    table = load_table(lut_path, "--relevel")
    runtime = m["runtime"] or (table.data.get("runtime") if m["device_name"] == "cpu" else None)
    dev = make_device(m["device_name"], runtime, m["core"], m["batch"], m["benchmark_model"], m["serial"],
                      timing=validation_timing(m["device_name"], m["timing"], table), workers=m["workers"])
    store = ProfileStore(":memory:", dev.fingerprint())
    if differ := _fingerprint_differences(table.data["device"], store.fingerprint):
        click.echo(f"note: {lut_path} was measured with another {', '.join(differ)} than --device: re-levelling "
                   "moves its level only, not its per-op shape", err=True)
    data, change = relevel_table(table, dev, store, make_protocol(m["rounds"], m["runs"], m["warmup"],
                                                                   m["precision"], m["budget_s"]),
                                 progress=not as_json)
    save_lut(data, output)
    if warning := drift_warning(change):
        click.echo(warning.replace("; `latbench build-lut --relevel` re-levels it", f"; {output} is re-levelled"),
                   err=True)
    lo, hi = change["ci95_pct"]
    emit({"output": output, "relevel": data["provenance"]["relevels"][-1], "drift": change}, as_json,
         f"wrote {output}: {lut_path} re-levelled by {change['factor']:.4f} (host {change['drift_pct']:+.2f}% "
         f"[{lo:+.2f}…{hi:+.2f}] since {change['measured_then']}, {change['anchors']} anchors)")


def _fingerprint_differences(a: dict, b: dict) -> list:
    """The identity fields (device, model, runtime, batch, timing) two device fingerprints disagree on."""
    return [f for f in ("device", "model", "runtime", "batch", "timing") if a.get(f) != b.get(f)]


@main.command()
@click.argument("arch")
@click.option("--lut", "lut_path", required=True, help="LUT file (or a shipped table name, see lut_tables/).")
@click.option("--strict", is_flag=True, help="A key missing from the table is an error instead of an estimate.")
@json_option
def predict(arch, lut_path, strict, as_json):
    """Predict the latency of ARCH from a lookup table: base_ms + Σ entries over its ops.

    \b
    Example:
      latbench predict proxylessnas-mobile --lut pixel1-proxylessnas
      latbench predict my_arch.json --lut cpu-ort.lut.json --strict --json
    """
    from ..lut.files import load_table

    a = load_arch_arg(arch)
    table = load_table(lut_path)
    pred = table.predict(a, strict=strict)
    from ..lut.anchors import table_dates

    data = {"name": a.name, **pred.as_dict(), "lut": table.source, "table": table_dates(table.data)}
    lines = [f"{a.name}: {pred.latency_ms:.3f} ms predicted ({table.data['method']} {table.granularity} table, "
             f"base {pred.base_ms:.3f} ms)"]
    if pred.outside_fit_range:
        lo, hi = pred.fit_range_ms
        lines.append(f"note: outside {lo:.2f}–{hi:.2f} ms, the range of the networks this table was fitted on: "
                     "it extrapolates (less accurate there)")
    for why in pred.far:
        click.echo(f"latbench: warning: {a.name if len(a.name) <= 60 else a.name[:59] + '…'}: far outside what "
                   f"{table.source} measured: {why}", err=True)
    if pred.estimated:
        lines.append(f"{len(pred.estimated)} op(s) not in the table were estimated:")
        lines += [f"  {k}: {v['ms']:.4f} ms ({v['how']})" for k, v in sorted(pred.estimated.items())]
    emit(data, as_json, "\n".join(lines))


@main.command()
@click.option("--archs", "n_archs", type=click.IntRange(1), default=100, show_default=True)
@device_options
@click.option("--lut", "lut_path", required=True, help="The table to validate.")
@click.option("--space", "space_name", default=None, help="Space to sample from (default: the table's first).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--band", default=None, help="Rejection-sample into a predicted-latency band LO:HI (ms).")
@click.option("--arch", "arch_args", multiple=True,
              help="Validate this arch instead of N random ones (a file, a shipped name or a search's result.json; "
                   "repeatable), e.g. the final archs of searches.")
@click.option("--serial", default=None, help="Android: adb serial of the phone.")
@click.option("--db", "db_path", type=click.Path(dir_okay=False), default=None,
              help="Store for the whole-network measurements (default OUT/measurements.db; resumable).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="validation", show_default=True)
@protocol_options
@json_option
def validate(n_archs, device_name, runtime, core, batch, benchmark_model, timing, lut_path, space_name, seed, band,
             arch_args, serial, db_path, out_dir, rounds, runs, warmup, precision, budget_s, workers, as_json):
    """Predict N random archs (or the --arch ones) with a table, measure them on the device, report the fit.

    Writes OUT/report.json, OUT/archs.csv and OUT/scatter.png (predicted vs measured, ±5/±10 % bands).

    \b
    Example:
      latbench validate --archs 100 --device cpu --runtime ort --lut cpu-ort.lut.json --space proxylessnas
      latbench validate --device cpu --runtime torch --lut cpu-torch-tfnas-fitted --arch runs/a/result.json --arch runs/b/result.json
    """
    from ..lut.files import load_table
    from ..measure.store import ProfileStore
    from ..spaces import get_space
    from ..lut.anchors import drift_warning
    from ..validation import format_report, noise_warning, run_validation, validation_archs, validation_timing

    check_writable(out_dir, "--out", folder=True)
    if db_path:
        check_writable(db_path, "--db")
    table = load_table(lut_path)
    space = get_space(space_name or (table.data["spaces"] or [None])[0] or "proxylessnas")
    if arch_args:
        if band:
            raise BadInput("--band: not with --arch (it selects random archs)")
        archs = [load_arch_arg(a) for a in arch_args]
        for a in archs:
            table.predict(a)  # a table that cannot price an arch fails now, not after the measurements
    else:
        archs = validation_archs(table, space, n_archs, seed, band)  # priced there
    timing = validation_timing(device_name, timing, table)
    dev = make_device(device_name, runtime, core, batch, benchmark_model, serial, timing=timing, workers=workers)
    store = ProfileStore(db_path or Path(out_dir) / "measurements.db", dev.fingerprint(), lock=True)
    try:
        if table.data.get("fingerprint_id") and table.data["fingerprint_id"] != store.fp:
            click.echo(f"latbench: warning: {table.source} was built on another fingerprint "
                       f"({table.data['fingerprint_id']}) than this device ({store.fp})", err=True)
        report = run_validation(table, space, archs, dev, store, make_protocol(rounds, runs, warmup, precision, budget_s),
                                out_dir, progress=not as_json)
    finally:
        store.close()
    if warning := noise_warning(report):
        click.echo(warning, err=True)
    if warning := drift_warning(report.get("drift")):
        click.echo(warning, err=True)
    emit(report, as_json, format_report(report, table, out_dir))


@main.command("import-lut")
@click.argument("source", type=click.Choice(["tunas"]))
@click.option("--space", "space_name", required=True,
              help="proxylessnas, proxylessnas-enlarged or mobilenetv3-like.")
@click.option("--data", "data_path", type=click.Path(dir_okay=False), default=None,
              help="The published cost-model file (default: the copy shipped in latbench/data).")
@click.option("-o", "--output", type=click.Path(dir_okay=False), required=True)
@json_option
def import_lut(source, space_name, data_path, output, as_json):
    """Import a published latency table: TuNAS's Pixel-1 cost model, normalised to a LUT.

    \b
    Example:
      latbench import-lut tunas --space proxylessnas -o pixel1-proxylessnas.json
    """
    from ..lut import save_lut
    from ..lut.importers import import_published

    check_writable(output, "-o")
    data = import_published(source, space_name, data_path)
    save_lut(data, output)
    emit({"output": output, "entries": len(data["entries"]), "base_ms": data["base_ms"]}, as_json,
         f"wrote {output}: {len(data['entries'])} entries, base {data['base_ms']:.3f} ms")
