"""`latbench spaces` and `latbench sample` through the real entry point."""
import json

from latbench.arch import load_arch
from latbench.spaces import get_space


def test_spaces_json_lists_all_six(cli):
    r = cli("spaces", "--json")
    assert r.returncode == 0, r.stderr
    by_name = {d["name"]: d for d in json.loads(r.stdout)}
    assert set(by_name) == {"proxylessnas", "proxylessnas-enlarged", "mobilenetv3-like", "tfnas", "tfnas-mbv2",
                            "tfnas-elastic", "netadaptv2"}
    assert round(by_name["netadaptv2"]["log10_cardinality"]) == 70 and by_name["netadaptv2"]["decisions"] == 84
    assert round(by_name["proxylessnas"]["log10_cardinality"]) == 21
    assert round(by_name["proxylessnas-enlarged"]["log10_cardinality"]) == 28
    assert round(by_name["mobilenetv3-like"]["log10_cardinality"]) == 43
    assert "ProxylessNAS-Mobile" in by_name["proxylessnas"]["references"]


def test_sample_seed_indices_reference_round_trip(cli, tmp_path):
    r = cli("sample", "--space", "proxylessnas-enlarged", "--seed", "4")
    assert r.returncode == 0, r.stderr
    arch = json.loads(r.stdout)
    space = get_space("proxylessnas-enlarged")
    assert arch["indices"] == space.sample(4) and arch["space"] == "proxylessnas-enlarged"
    idx = ":".join(map(str, arch["indices"]))
    again = cli("sample", "--space", "proxylessnas-enlarged", "--indices", idx)
    assert json.loads(again.stdout) == arch
    out = tmp_path / "pm.json"
    r = cli("sample", "--space", "proxylessnas", "--reference", "ProxylessNAS-Mobile", "-o", out)
    assert r.returncode == 0 and load_arch(out).macs == get_space("proxylessnas").decode(
        get_space("proxylessnas").reference_models()["ProxylessNAS-Mobile"]).macs


def test_sample_bad_input(cli):
    r = cli("sample", "--space", "nope")
    assert r.returncode == 2 and "unknown space 'nope'" in r.stderr and "Traceback" not in r.stderr
    r = cli("sample", "--space", "proxylessnas", "--indices", "0:1:x")
    assert r.returncode == 2 and "--indices" in r.stderr
    r = cli("sample", "--space", "proxylessnas", "--indices", "0:1:2")
    assert r.returncode == 2 and "73 decisions, got 3" in r.stderr
    r = cli("sample", "--space", "proxylessnas", "--seed", "1", "--indices", "0")
    assert r.returncode == 2 and "at most one of" in r.stderr
