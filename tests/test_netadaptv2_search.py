"""NetAdaptV2 end to end through the search registry: a tiny super-network, MCD on MACs."""
import json

import pytest

pytest.importorskip("torch")

from latbench.arch import parse_arch  # noqa: E402
from latbench.spaces import get_space  # noqa: E402
from search.registry import make_config, run_search  # noqa: E402

TINY = dict(metric="macs", steps=3, batch_size=18, eval_batch=32, samples=3, layers=8, initial_reduction=0.1,
            decay=0.98, resolution=8, width=0.125)


def run(tmp_path, target, **over):
    cfg = make_config("netadaptv2", target_ms=target, space="netadaptv2", seed=1, out=str(tmp_path / "o"),
                      progress=False, **{**TINY, **over})
    return run_search(cfg)


def test_search_on_macs_lands_in_band_and_writes_results(tmp_path):
    space = get_space("netadaptv2")
    initial = space.decode(space.full_indices()).macs / 1e6
    target = round(0.75 * initial, 1)
    result = run(tmp_path, target)
    assert result["algo"] == "netadaptv2" and result["metric"] == "macs" and result["in_band"]
    arch = parse_arch(result["arch"], "result")
    assert 0.99 * target <= arch.macs / 1e6 <= target and arch.macs == result["macs"]
    assert space.decode(space.encode(arch)).macs == arch.macs  # (a clipped dw width encodes as its value)
    traj = result["trajectory"]
    assert traj[0]["macs"] == space.decode(space.full_indices()).macs and len(traj) == result["iterations"] + 1
    assert all(t["macs"] / 1e6 == pytest.approx(t["metric"]) for t in traj)
    assert all(a["metric"] > b["metric"] for a, b in zip(traj, traj[1:]))
    assert result["samples_evaluated"] == sum(t["samples"] for t in traj)
    # batch 18, full_fraction 0.25: 4 images run the full network (one sub-network), 14 their own
    assert result["supernet"]["subnetworks_per_step"] == 15 and 0 <= result["proxy_accuracy"] <= 1
    assert result["config"]["resolved"]["full_fraction"] == 0.25
    saved = json.loads((tmp_path / "o" / "result.json").read_text())
    assert saved["indices"] == result["indices"] and (tmp_path / "o" / "trajectory.png").stat().st_size > 0


def test_scd_and_no_ordered_dropout(tmp_path):
    space = get_space("netadaptv2")
    target = round(0.9 * space.decode(space.full_indices()).macs / 1e6, 1)
    result = run(tmp_path, target, scd=True, ordered_dropout=False, steps=2)
    assert result["in_band"] and result["supernet"]["subnetworks_per_step"] == 1
    from search.netadaptv2.mcd import default_groups

    layers = len(default_groups(space))  # a block's depthwise filters and kernel are one layer
    assert layers == space.num_decisions - 17  # 17 blocks, each with a kernel decision
    # SCD: one sample per layer; the first iteration keeps those that made progress
    assert layers * 0.8 <= result["trajectory"][1]["samples"] <= layers


def test_search_on_a_latency_table_file(tmp_path):
    """--metric latency prices archs with any layer table; here one whose entries are the ops' MACs (a
    stand-in for a measured table: every key of the space present, so nothing is estimated)."""
    from latbench.lut import LatencyTable
    from latbench.ops import op_features

    space = get_space("netadaptv2")
    entries = {op.key: {"ms": op_features(op)["macs"] / 1e7} for op in space.ops("layer")}
    data = {"format": "latbench-lut/1", "device": {"name": "test"}, "runtime": "none", "batch": 1,
            "granularity": "layer", "method": "isolated", "spaces": ["netadaptv2"], "base_ms": 0.5,
            "entries": entries, "provenance": {}}
    table = LatencyTable.from_dict(data)
    path = tmp_path / "t.json"
    table.save(path)
    full = table.predict(space.decode(space.full_indices())).latency_ms
    target = round(0.8 * full, 2)
    cfg = make_config("netadaptv2", target_ms=target, space="netadaptv2", lut=str(path), seed=2,
                      out=str(tmp_path / "o"), progress=False, **{**TINY, "metric": "latency"})
    result = run_search(cfg)
    pred = table.predict(parse_arch(result["arch"], "result"))
    assert not pred.estimated and pred.latency_ms == pytest.approx(result["latency_ms"])
    assert 0.99 * target <= result["latency_ms"] <= target and result["lut"] == str(path)
    assert result["trajectory"][0]["metric"] == pytest.approx(full)


def test_presets_and_bad_knobs():
    from latbench.errors import BadInput
    from search.netadaptv2.config import make_config

    paper = make_config("paper")
    assert (paper.samples, paper.layers, paper.initial_reduction, paper.decay, paper.full_fraction) == (
        200, 10, 0.03, 0.98, 0.0)
    assert make_config("paper", samples=50).samples == 50 and make_config().metric == "latency"
    for bad, msg in (({"metric": "energy"}, "--metric"), ({"samples": 0}, "--samples"),
                     ({"decay": 1.5}, "--decay"), ({"full_fraction": 2.0}, "--full-fraction")):
        with pytest.raises(BadInput, match=msg):
            make_config(**bad)
    with pytest.raises(BadInput, match="--preset"):
        make_config("huge")
