"""`latbench search` end to end in a subprocess (tiny proxy), and bad input -> exit 2, one line."""
import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from latbench.arch import parse_arch  # noqa: E402
from latbench.spaces import get_space  # noqa: E402

TINY = ["--steps", "12", "--width", "0.125", "--resolution", "16", "--batch-size", "16", "--quiet"]


def test_tiny_tunas_search_writes_result(cli, tmp_path):
    out = tmp_path / "run"
    r = cli("search", "--target-ms", "84", *TINY, "--out", out, "--json")
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    for key in ("latency_ms", "target_ms", "arch", "indices", "argmax_latency_ms", "sampled_latency_ms"):
        assert key in summary
    result = json.loads((out / "result.json").read_text())
    assert (out / "trajectory.png").stat().st_size > 1000
    arch = parse_arch(result["arch"], "result.json")
    space = get_space("proxylessnas")
    idx = [int(i) for i in result["indices"].split(":")]
    assert arch.indices == idx and space.encode(arch) is not None
    from latbench.lut.files import load_table

    assert load_table("pixel1-tunas-proxylessnas").predict(arch).latency_ms == pytest.approx(result["latency_ms"])
    traj = result["trajectory"]
    assert [t["step"] for t in traj] == list(range(12))
    assert {"reward", "accuracy", "sampled_latency_ms", "argmax_latency_ms", "rl_lr"} <= set(traj[0])
    assert traj[0]["rl_lr"] == 0 and traj[-1]["rl_lr"] > 0
    assert result["space"] == "proxylessnas" and result["lut"] == "pixel1-tunas-proxylessnas"
    assert summary["latency_ms"] == pytest.approx(result["latency_ms"])
    policy = result["final_policy"]  # per decision, the final probabilities (argmax = the indices)
    assert [len(p) for p in policy] == space.sizes
    assert [int(np.argmax(p)) for p in policy] == [int(i) for i in result["argmax_indices"].split(":")]
    assert 0 <= result["final_entropy_active"] <= result["final_entropy"]
    assert summary["final_entropy_active"] == pytest.approx(result["final_entropy_active"])


@pytest.mark.parametrize("refine", [False, True])
def test_text_output_hints_at_refine_when_the_argmax_misses(cli, tmp_path, refine):
    out = tmp_path / "run"
    r = cli("search", "--target-ms", "84", *TINY, "--out", out, *(["--refine"] if refine else []))
    assert r.returncode == 0, r.stderr
    result = json.loads((out / "result.json").read_text())
    assert "policy entropy over the argmax's decisions" in r.stdout
    missed = result["argmax_relative_error"] > 0.005 and not result["refined"]
    assert ("hint: the argmax is more than 0.5% off; --refine" in r.stdout) == missed
    assert "the default --preset proxy" not in r.stdout  # already the default preset: no preset hint
    if not refine:
        assert missed  # 12 steps do not land within 0.5 %, so the hint shows


def test_settings_block_and_preset_in_result(cli, tmp_path):
    out = tmp_path / "run"
    r = cli("search", "--target-ms", "84", *TINY, "--preset", "paper", "--rl-lr", "0.02", "--out", out)
    assert r.returncode == 0, r.stderr
    block = r.stderr[r.stderr.index("tunas settings: preset paper"):]
    assert "weight_optimizer = 'rmsprop' [preset]" in block and "rl_lr = 0.02 [option]" in block
    assert "weight_lr = 0.165 [preset]" in block  # per 256 images of global batch
    result = json.loads((out / "result.json").read_text())
    assert result["preset"] == "paper" and result["global_batch"] == 16
    assert result["learning_rates"]["weights"]["lr"] == pytest.approx(0.165 * 16 / 256)  # batch 16
    cfg = result["config"]
    assert (cfg["beta"], cfg["latency_samples"], cfg["weight_optimizer"], cfg["weight_decay_on"]) == (-0.1, 0, "rmsprop", "conv")
    assert cfg["rl_lr"] == 0.02 and result["config_sources"]["rl_lr"] == "option"
    assert "the default --preset proxy" in r.stdout or result["argmax_relative_error"] <= 0.005


def test_tiny_tunas_search_with_several_samples_per_step(cli, tmp_path):
    out = tmp_path / "run"
    r = cli("search", "--target-ms", "84", *TINY, "--rl-samples", "4", "--latency-samples", "64", "--out", out, "--json")
    assert r.returncode == 0, r.stderr
    result = json.loads((out / "result.json").read_text())
    assert result["config"]["rl_samples"] == 4 and result["config"]["latency_samples"] == 64
    assert len(result["trajectory"]) == 12
    from latbench.lut.files import load_table

    table = load_table("pixel1-tunas-proxylessnas")
    arch = parse_arch(result["arch"], "result.json")
    assert table.predict(arch).latency_ms == pytest.approx(result["latency_ms"])


def test_tiny_random_search_with_npz_data(cli, tmp_path):
    rng = np.random.default_rng(0)
    data = tmp_path / "d.npz"
    np.savez(data, x=rng.random((60, 8, 8)), y=np.arange(60) % 3)
    out = tmp_path / "rs"
    r = cli("search", "--target-ms", "58", "--algo", "random", "--space", "mobilenetv3-like", "--candidates", "2",
            "--data", data, *TINY, "--out", out, "--json")
    assert r.returncode == 0, r.stderr
    result = json.loads((out / "result.json").read_text())
    assert len(result["candidates"]) == 2 and result["steps_per_candidate"] == 6
    assert abs(result["latency_ms"] / 58 - 1) <= 0.01
    assert result["data"]["classes"] == 3


@pytest.mark.parametrize("args, match", [
    (["--space", "no-such-space"], "unknown space"),
    (["--space", "tfnas-elastic"], "TuNAS spaces (proxylessnas, proxylessnas-enlarged, mobilenetv3-like) and tfnas only"),
    (["--algo", "tfnas", "--space", "proxylessnas"], "--algo tfnas searches tfnas, tfnas-elastic, tfnas-mbv2"),
    (["--algo", "tfnas", "--space", "tfnas-mbv2"], "no shipped table for space tfnas-mbv2"),
    (["--algo", "random", "--beta", "-1"], "--beta: not an option of --algo random"),
    (["--algo", "tunas", "--samples", "3"], "--samples: not an option of --algo tunas"),
    (["--algo", "netadaptv2", "--space", "proxylessnas"], "(--space netadaptv2)"),
    (["--algo", "netadaptv2", "--lut", "pixel1-tunas-proxylessnas"], "built for space(s) proxylessnas"),
    (["--algo", "random", "--space", "netadaptv2"], "random search needs a space a LatencyModel can compile"),
    (["--algo", "evolution"], "unknown algorithm"),
    (["--reward", "linear"], "--reward"),
    (["--steps", "0"], "--steps"),
    (["--rl-samples", "0"], "--rl-samples"),
    (["--latency-samples", "-1"], "--latency-samples"),
    (["--latency-samples", "64", "--reward", "soft"], "needs --reward absolute"),
    (["--latency-term", "median"], "--latency-term: expected one of samples, expected, samples+expected"),
    (["--latency-term", "expected", "--reward", "hard"], "--latency-term expected: needs --reward absolute"),
    (["--lut", "pixel1-tunas-mobilenetv3-like"], "built for space"),
    (["--data", "BAD_NPZ"], "cannot read"),
    (["--data", "MISSING"], "no such file"),
])
def test_bad_input_exits_2_with_one_line(cli, tmp_path, args, match):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"garbage")
    args = [str(bad) if a == "BAD_NPZ" else str(tmp_path / "missing.npz") if a == "MISSING" else a for a in args]
    r = cli("search", "--target-ms", "84", "--out", tmp_path / "o", "--quiet", *args)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and match in lines[0] and lines[0].startswith("latbench: error:")
    assert not (tmp_path / "o").exists()
