"""A search's result.json leaves the tool: macs / predict / export / measure take it as ARCH (its final
arch), and `search --measure` records predicted vs measured latency (or why it could not)."""
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

TINY = ["--steps", "12", "--width", "0.125", "--resolution", "16", "--batch-size", "16", "--quiet"]
FAST = ["--rounds", "1", "--runs", "3", "--warmup", "1"]


@pytest.fixture(scope="module")
def cpu_search(tmp_path_factory):
    from conftest import run_cli

    out = tmp_path_factory.mktemp("s") / "run"
    r = run_cli("search", "--target-ms", "5.1", "--lut", "cpu-ort-proxylessnas-fitted", *TINY, "--measure",
                "--out", out, "--json")
    assert r.returncode == 0, r.stderr
    return out / "result.json", json.loads(r.stdout)


def test_search_measure_records_predicted_and_measured(cpu_search):
    path, summary = cpu_search
    result = json.loads(path.read_text())
    m = result["measured"]
    assert m["device"] == "cpu" and m["runtime"] == "ort"
    assert m["predicted_ms"] == pytest.approx(result["latency_ms"]) and m["latency_ms"] > 0
    assert m["prediction_error_pct"] == pytest.approx(100 * (m["predicted_ms"] / m["latency_ms"] - 1))
    assert summary["measured"]["latency_ms"] == pytest.approx(m["latency_ms"])


def test_result_json_is_an_arch_for_macs_predict_measure_export(cli, cpu_search, tmp_path):
    path, _ = cpu_search
    result = json.loads(path.read_text())
    r = cli("predict", path, "--lut", "cpu-ort-proxylessnas-fitted", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["latency_ms"] == pytest.approx(result["latency_ms"])
    r = cli("macs", path, "--json")
    assert r.returncode == 0, r.stderr
    from latbench.arch import parse_arch

    assert json.loads(r.stdout)["macs"] == parse_arch(result["arch"]).macs
    r = cli("measure", path, "--device", "cpu", *FAST, "--json")
    assert r.returncode == 0, r.stderr
    measured = json.loads(r.stdout)
    assert measured["name"] == result["arch"]["name"] and measured["latency_ms"] > 0
    onnx = tmp_path / "found.onnx"
    r = cli("export", path, "--format", "onnx", "-o", onnx, "--json")
    assert r.returncode == 0, r.stderr
    import onnxruntime as ort

    sess = ort.InferenceSession(str(onnx), providers=["CPUExecutionProvider"])
    assert sess.get_inputs()[0].shape == [1, 3, 224, 224]
    assert json.loads(r.stdout)["macs"] == parse_arch(result["arch"]).macs


def test_search_measure_says_why_not_without_the_device(cli, tmp_path):
    out = tmp_path / "run"
    r = cli("search", "--target-ms", "84", *TINY, "--measure", "--out", out, env={"PATH": "/nonexistent", "ADB": ""})
    assert r.returncode == 0, r.stderr
    result = json.loads((out / "result.json").read_text())
    assert result["measured"]["latency_ms"] is None and "pixel1" in result["measured"]["why"]
    line = [ln for ln in r.stdout.splitlines() if "not measured" in ln]
    assert len(line) == 1 and "not available here" in line[0]


@pytest.mark.parametrize("text, match", [
    ('{"format": "latbench-search-result/1", "algo": "tunas"}', "arch: missing"),
    ('{"format": "latbench-search-result/1", "arch": {"format": "latbench-arch/1", "layers": []}}', "arch: layers"),
])
def test_broken_result_json_is_one_line_bad_input(cli, tmp_path, text, match):
    bad = tmp_path / "result.json"
    bad.write_text(text)
    r = cli("macs", bad)
    assert r.returncode == 2 and match in r.stderr and len(r.stderr.strip().splitlines()) == 1
