"""LUT file format, prediction with estimates, and the TuNAS Pixel-1 import."""
import json

import numpy as np
import pytest

from latbench.errors import BadInput
from latbench.lut import LatencyTable, make_lut, provenance, save_lut
from latbench.lut.files import load_table
from latbench.ops import make_op, op_features
from latbench.references import resolve_arch
from latbench.spaces import get_space
from latbench.spaces.tunas.cost_model import pixel1_latency_ms


def synthetic_entries(ops, scale=1.0):
    """A deterministic, documented test table: ms linear in the op's work (not a measurement)."""
    return {op.key: {"ms": scale * (2e-6 * op_features(op)["macs"] + 1e-5 * op_features(op)["out"] + 0.003)}
            for op in ops}


def table_for(entries, granularity="block", base=0.5):
    return LatencyTable.from_dict(make_lut(device={"device": "cpu"}, runtime="ort", batch=1,
                                           granularity=granularity, method="isolated", spaces=["proxylessnas"],
                                           base_ms=base, entries=entries, provenance_info=provenance()))


def test_save_load_round_trip_is_diffable(tmp_path):
    space = get_space("proxylessnas")
    t = table_for(synthetic_entries(space.ops("block")))
    path = tmp_path / "t.json"
    t.save(path)
    text = path.read_text()
    again = LatencyTable.load(path)
    assert again.entries == t.entries and again.base_ms == 0.5
    lines = text.splitlines()
    start = lines.index(' "entries": {')
    entry_lines = [l for l in lines[start + 1:] if l.startswith('  "')]
    assert len(entry_lines) == len(t.entries)  # one entry per line
    assert entry_lines == sorted(entry_lines)  # sorted keys: stable diffs
    assert json.loads(text)["format"] == "latbench-lut/1"
    assert b"pickle" not in path.read_bytes()


@pytest.mark.parametrize("mutate,msg", [
    (lambda d: d.pop("base_ms"), "missing field 'base_ms'"),
    (lambda d: d.update(format="lut/0"), "format: expected"),
    (lambda d: d.update(method="magic"), "method: expected"),
    (lambda d: d["entries"].update({"conv:x": {"mad": 1}}), r"entries\['conv:x'\]\.ms"),
    (lambda d: d.update(fit_range_ms=[5.0, 2.0]), r"fit_range_ms: must be \[low, high\]"),
    (lambda d: d.update(fit_range_ms="3-9"), r"fit_range_ms: must be \[low, high\]"),
])
def test_malformed_lut_one_line_error(tmp_path, mutate, msg, cli):
    space = get_space("proxylessnas")
    d = make_lut(device={}, runtime="ort", batch=1, granularity="block", method="isolated", spaces=[],
                 base_ms=0.0, entries=synthetic_entries(space.ops("block")[:3]), provenance_info={})
    mutate(d)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(d))
    with pytest.raises(BadInput, match=msg):
        LatencyTable.load(path)
    r = cli("predict", "mobilenetv2", "--lut", path)
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0 and "bad.json" in r.stderr


def test_save_is_atomic_on_invalid_data(tmp_path):
    path = tmp_path / "t.json"
    path.write_text("old content")
    with pytest.raises(BadInput):
        save_lut({"format": "latbench-lut/1"}, path)
    assert path.read_text() == "old content" and list(tmp_path.iterdir()) == [path]


def test_predict_is_base_plus_sum_of_entries():
    space = get_space("proxylessnas")
    entries = synthetic_entries(space.ops("block"))
    t = table_for(entries)
    arch = space.decode(space.sample(3))
    pred = t.predict(arch)
    from latbench.ops import arch_op_keys
    assert pred.latency_ms == pytest.approx(0.5 + sum(entries[k]["ms"] for k in arch_op_keys(arch)), rel=1e-12)
    assert pred.estimated == {}


def test_missing_key_interpolated_along_width():
    lo = make_op("conv", r=14, i=64, o=64, k=1, s=1, g=1, act="relu", bn=1)
    hi = make_op("conv", r=14, i=64, o=128, k=1, s=1, g=1, act="relu", bn=1)
    mid = make_op("conv", r=14, i=64, o=96, k=1, s=1, g=1, act="relu", bn=1)
    t = table_for({lo.key: {"ms": 1.0}, hi.key: {"ms": 2.0}})
    assert t.op_ms(mid.key) == (pytest.approx(1.5), "interpolated")
    with pytest.raises(BadInput, match="no entry for op .*strict"):
        t.op_ms(mid.key, strict=True)


def test_missing_key_regressed_and_reported():
    space = get_space("proxylessnas")
    ops = space.ops("block")
    entries = synthetic_entries(ops)
    held = [op for op in ops if op.kind == "mbconv"][5]
    del entries[held.key]
    t = table_for(entries)
    ms, how = t.op_ms(held.key)
    truth = synthetic_entries([held])[held.key]["ms"]
    assert how in ("interpolated", "regressed")
    assert ms == pytest.approx(truth, rel=0.25)
    # an unseen op kind with the regressor: deterministic
    far = make_op("mbconv", r=7, i=320, o=320, m=1920, k=7, s=1, se=0, gate="sigmoid", act="relu", res=1)
    a, b = t.op_ms(far.key), table_for(entries).op_ms(far.key)
    assert a == b and a[1] == "regressed" and a[0] > 0


def test_cli_predict_reports_estimates(tmp_path, cli):
    space = get_space("proxylessnas")
    ops = space.ops("block")
    entries = synthetic_entries(ops)
    arch = space.decode(space.sample(0))
    from latbench.ops import arch_op_keys
    dropped = arch_op_keys(arch)[3]
    del entries[dropped]
    path = tmp_path / "t.json"
    table_for(entries).save(path)
    arch_path = tmp_path / "a.json"
    arch.save(arch_path)
    r = cli("predict", arch_path, "--lut", path, "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["estimated"] == [dropped] and data["latency_ms"] > 0.5
    r = cli("predict", arch_path, "--lut", path, "--strict")
    assert r.returncode == 2 and "--strict" in r.stderr


def test_prediction_outside_the_fit_range_is_flagged(tmp_path, cli):
    space = get_space("proxylessnas")
    entries = synthetic_entries(space.ops("block"))
    arch = space.decode(space.sample(0))
    ms = table_for(entries).predict(arch).latency_ms
    assert table_for(entries).predict(arch).outside_fit_range is False  # no range: never flagged
    d = table_for(entries).data
    for lo, hi, outside in ((ms * 0.5, ms * 2, False), (ms * 1.1, ms * 3, True), (ms * 0.2, ms * 0.9, True)):
        path = tmp_path / "t.json"
        save_lut({**d, "method": "fitted", "fit_range_ms": [lo, hi]}, path)
        pred = LatencyTable.load(path).predict(arch)
        assert pred.outside_fit_range is outside and pred.fit_range_ms == (lo, hi)
        arch_path = tmp_path / "a.json"
        arch.save(arch_path)
        data = json.loads(cli("predict", arch_path, "--lut", path, "--json").stdout)
        assert data["outside_fit_range"] is outside and data["fit_range_ms"] == [lo, hi]
        text = cli("predict", arch_path, "--lut", path).stdout
        assert ("the range of the networks this table was fitted on" in text) is outside


# ---------------------------------------------------------------------- TuNAS import
@pytest.mark.parametrize("space_name,arch,expected", [
    ("proxylessnas", "ProxylessNAS-Mobile", 84.4),
    ("proxylessnas-enlarged", "MobileNetV2", 77.2),
    ("proxylessnas-enlarged", "MnasNet-B1", 84.5),
    ("proxylessnas-enlarged", "ProxylessNAS-Mobile", 84.4),
])
def test_shipped_pixel1_tables_reproduce_checks(space_name, arch, expected):
    space = get_space(space_name)
    t = load_table(f"pixel1-tunas-{space_name}")
    a = space.decode(space.reference_models()[arch])
    assert t.predict(a).latency_ms == pytest.approx(expected, abs=0.05)


def test_shipped_reference_arch_predicts_84_4(cli):
    r = cli("predict", "proxylessnas-mobile", "--lut", "pixel1-tunas-proxylessnas", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["latency_ms"] == pytest.approx(84.4, abs=0.05)


@pytest.mark.parametrize("space_name", ["proxylessnas", "proxylessnas-enlarged", "mobilenetv3-like"])
def test_import_is_normalised_and_exact(space_name, tmp_path, cli):
    out = tmp_path / "t.json"
    r = cli("import-lut", "tunas", "--space", space_name, "-o", out)
    assert r.returncode == 0, r.stderr
    t = load_table(out)
    assert min(t.entries.values()) >= 0.0
    assert not any(k.endswith(":skip") for k in t.entries)  # skipped layers cost 0: no entry
    assert t.data["provenance"]["license"].startswith("Apache-2.0")
    shipped = load_table(f"pixel1-tunas-{space_name}")
    assert shipped.entries == t.entries and shipped.base_ms == t.base_ms
    space = get_space(space_name)
    rng = np.random.default_rng(5)
    for _ in range(50):
        idx = space.sample(rng)
        arch = space.decode(idx)
        raw = pixel1_latency_ms(space_name, space.encode(arch))
        assert t.predict(arch).latency_ms == pytest.approx(raw, abs=1e-6)


def test_import_bad_inputs(tmp_path, cli):
    r = cli("import-lut", "tunas", "--space", "tfnas", "-o", tmp_path / "x.json")
    assert r.returncode == 2 and "tfnas has no published latency table" in r.stderr and "proxylessnas" in r.stderr
    bad = tmp_path / "bad.json"
    bad.write_text('{"spaces": {}}')
    r = cli("import-lut", "tunas", "--space", "proxylessnas", "--data", bad, "-o", tmp_path / "x.json")
    assert r.returncode == 2 and "not a TuNAS cost-model file" in r.stderr
    assert not (tmp_path / "x.json").exists()


@pytest.mark.parametrize("name", ["cpu-ort-proxylessnas-isolated", "cpu-ort-proxylessnas-context",
                                  "cpu-ort-proxylessnas-fitted"])
def test_shipped_cpu_tables_cover_their_space(name):
    t = load_table(name)
    assert t.data["device"]["device"] == "cpu" and t.data["runtime"] == "ort" and t.data["spaces"] == ["proxylessnas"]
    space = get_space("proxylessnas")
    assert {op.key for op in space.ops("block")} <= set(t.entries)
    assert t.data["provenance"]["store"] and t.data["method"] in name
    ms = t.predict(resolve_arch("proxylessnas-mobile"), strict=True).latency_ms
    assert 1.0 < ms < 50.0


@pytest.mark.parametrize("name, cpu_a_ms", [("cpu-torch-tfnas-isolated", 15.993), ("cpu-torch-tfnas-fitted", 20.883)])
def test_shipped_tfnas_tables_cover_both_spaces(name, cpu_a_ms):
    """Every op of `tfnas-elastic` (a superset of `tfnas`) is measured, so elastic widths never need
    an estimate; the fitted one is the TF-NAS spaces' default table and prices TF-NAS-CPU-A as shipped."""
    t = load_table(name)
    assert t.data["device"]["device"] == "cpu" and t.data["runtime"] == "torch"
    assert set(t.data["spaces"]) == {"tfnas", "tfnas-elastic"}
    assert {op.key for op in get_space("tfnas-elastic").ops("block")} <= set(t.entries)
    arch = resolve_arch("tfnas-cpu-a")
    assert t.predict(arch, strict=True).latency_ms == pytest.approx(cpu_a_ms, abs=5e-4)
    assert get_space("tfnas").default_table == get_space("tfnas-elastic").default_table == "cpu-torch-tfnas-fitted"


def test_shipped_netadaptv2_tables_price_the_space():
    """Every layer op of `netadaptv2` is measured (isolated, fitted), so NetAdaptV2's samples are never
    estimated; the fitted table is the space's default and prices the paper's 51 ms network as shipped."""
    space = get_space("netadaptv2")
    assert space.default_table == "cpu-ort-netadaptv2-fitted"
    keys = {op.key for op in space.ops("layer")}
    for name in ("cpu-ort-netadaptv2-isolated", "cpu-ort-netadaptv2-fitted"):
        t = load_table(name)
        assert t.data["runtime"] == "ort" and t.granularity == "layer" and t.data["spaces"] == ["netadaptv2"]
        assert keys <= set(t.entries)
    pred = load_table("cpu-ort-netadaptv2-fitted").predict(resolve_arch("netadaptv2-51ms"), strict=True)
    assert pred.latency_ms == pytest.approx(7.729, abs=5e-4)
