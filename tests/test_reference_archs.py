"""Shipped reference architectures (latbench/archs/*.json): format, structure, MACs vs the papers.

TF-NAS archs are transcribed from the TF-NAS supplement, Tables 9-20 (C_in, e x C_in = absolute
mid channels, e_se x C_in = SE squeeze channels, C_out, act, stride). Their reported FLOPs are in
supplement Tables 1, 3, 4 and 6. MACs follow latbench's rules (arch.py): convs, depthwise, the two
SE fully-connected layers (2 x mid x se) and the fc.

Findings, kept here because they explain the tolerances:
- SE counting: with the two SE FC layers counted, the six SE archs land within 0.3% of the
  reported FLOPs; without them they would be 0.4-1.1% low (A 453.0, B 357.4, C 281.6, CPU-A 301.6),
  so TF-NAS's FLOPs include the SE FCs (checked in test_se_convention).
- The markdown of the supplement writes the fixed block's input as `112^3 x 32` (a garble of
  112^2 x 32); every other Input cell agrees with latbench's shape inference.
- Captions follow their tables in the supplement's markdown (Table 9 = the first table, ...):
  with that reading every arch lands on its own FLOPs, including D (16 blocks) and D-wose.
- TF-NAS-A-wose: Table 13 gives 512.8M MACs against 504M reported (+1.75%). No single-cell
  transcription slip explains the 8.8M (a kernel 5 -> 3 mix-up changes at most 3.0M, at 28x28; a mid
  typo would need e.g. 640 -> 416 or 1536 -> 1096, not digit slips); DESIGN section 2 records this
  table/FLOPs disagreement and allows 2% for this arch only.
"""
import json
import re
from pathlib import Path

import pytest

from latbench.arch import FORMAT, load_arch, parse_arch
from latbench.ops import decompose
from latbench.references import ARCH_DIR, reference_names, resolve_arch

REPO = Path(__file__).resolve().parents[1]

# file stem -> (arch name, reported FLOPs in M, relative tolerance)
TFNAS = {
    "tfnas-a": ("TF-NAS-A", 457, 0.01),
    "tfnas-b": ("TF-NAS-B", 361, 0.01),
    "tfnas-c": ("TF-NAS-C", 284, 0.01),
    "tfnas-d": ("TF-NAS-D", 219, 0.01),
    "tfnas-a-wose": ("TF-NAS-A-wose", 504, 0.02),  # table vs reported disagree (see module docstring)
    "tfnas-b-wose": ("TF-NAS-B-wose", 433, 0.01),
    "tfnas-c-wose": ("TF-NAS-C-wose", 315, 0.01),
    "tfnas-d-wose": ("TF-NAS-D-wose", 286, 0.01),
    "tfnas-cpu-a": ("TF-NAS-CPU-A", 305, 0.01),
    "tfnas-cpu-b": ("TF-NAS-CPU-B", 230, 0.01),
    "tfnas-mbv2-a": ("TF-NAS-MBV2-A", 445, 0.01),
    "tfnas-mbv2-b": ("TF-NAS-MBV2-B", 297, 0.01),
}
SE_SEARCHED = ("tfnas-a", "tfnas-b", "tfnas-c", "tfnas-d", "tfnas-cpu-a", "tfnas-cpu-b")
OTHERS = {
    # stem -> (name, MACs in M, tolerance, params in M or None, tolerance)
    "mobilenetv2": ("MobileNetV2", 300, 0.01, 3.5, 0.02),
    "mobilenetv3-large": ("MobileNetV3-Large", 219, 0.02, 5.4, 0.02),
    "mnasnet-b1": ("MnasNet-B1", 315, 0.02, None, None),
    "proxylessnas-mobile": ("ProxylessNAS-Mobile", 320, 0.03, None, None),
}


def _load(stem):
    return load_arch(ARCH_DIR / f"{stem}.json")


def test_all_shipped():
    names = set(reference_names())
    assert set(TFNAS) | set(OTHERS) <= names


@pytest.mark.parametrize("stem", sorted(TFNAS) + sorted(OTHERS))
def test_file_is_canonical_and_resolvable(stem):
    path = ARCH_DIR / f"{stem}.json"
    arch = load_arch(path)
    # written by Arch.save: loading and saving again gives the same bytes
    assert path.read_text() == arch.to_json()
    assert json.loads(path.read_text())["format"] == FORMAT
    assert arch.resolution == 224 and arch.in_channels == 3 and arch.num_classes == 1000
    assert arch.space is None and arch.indices is None
    name = (TFNAS.get(stem) or OTHERS.get(stem))[0]
    assert arch.name == name
    # shipped archs are addressable by name, case/punctuation-insensitively
    assert resolve_arch(name).layers == arch.layers
    assert resolve_arch(stem).layers == arch.layers


@pytest.mark.parametrize("stem", sorted(TFNAS))
def test_tfnas_macs_match_reported_flops(stem):
    name, flops_m, tol = TFNAS[stem]
    macs_m = _load(stem).macs / 1e6
    assert abs(macs_m - flops_m) / flops_m <= tol, f"{name}: {macs_m:.2f}M MACs vs {flops_m}M reported"


def test_tfnas_a_wose_disagreement_is_the_documented_one():
    macs_m = _load("tfnas-a-wose").macs / 1e6
    assert 0.01 < (macs_m - 504) / 504 < 0.02  # +1.75%: not within 1%, and not worse than DESIGN allows


def _se_macs(arch):
    return sum(2 * s.mid * s.layer["se"] for s in arch.shapes() if s.type == "mbconv")


def test_se_convention():
    """Counting the two SE FC layers (2 x mid x se) is what TF-NAS's FLOPs do."""
    for stem in SE_SEARCHED:
        arch = _load(stem)
        reported = TFNAS[stem][1] * 1e6
        assert _se_macs(arch) > 0
        with_se = abs(arch.macs - reported)
        without_se = abs(arch.macs - _se_macs(arch) - reported)
        assert with_se < without_se, stem
        assert with_se / reported < 0.003, stem


@pytest.mark.parametrize("stem", sorted(TFNAS))
def test_tfnas_structure(stem):
    arch = _load(stem)
    L, S = arch.layers, arch.shapes()
    mbv2 = "mbv2" in stem
    act = "relu6" if mbv2 else "relu"
    assert L[0] == {**L[0], "type": "conv", "out": 32, "kernel": 3, "stride": 2, "act": act}
    # fixed first block 32 -> 16: mid == in == 32, so no expansion conv
    assert L[1]["type"] == "mbconv" and S[1].cin == 32 and S[1].mid == 32 and S[1].cout == 16
    assert [u.part for u in decompose(arch, "layer") if u.layer_index == 1][0] == "dw"
    assert L[1]["se"] == (8 if stem in SE_SEARCHED else 0)
    # head: 1x1 320 -> 1280, pool, fc 1000
    assert S[-3].cin == 320 and L[-3]["out"] == 1280 and L[-3]["kernel"] == 1
    assert L[-3]["act"] == ("relu6" if mbv2 else "swish")
    assert [l["type"] for l in L[-2:]] == ["pool", "fc"] and L[-1]["out"] == 1000
    assert S[-3].hin == 7
    if stem.endswith("wose") or mbv2:
        assert _se_macs(arch) == 0


@pytest.mark.parametrize("stem", SE_SEARCHED)
def test_tfnas_se_width_rule(stem):
    """Every searched SE block has se = C_in x e / 3 with e in {3, 6} (C_in for e3, 2 C_in for e6) and a
    mid inside that op's elasticity range ([2, 4] x C_in for e3, [4, 8] x C_in for e6)."""
    for s in _load(stem).shapes()[2:-3]:
        se = s.layer["se"]
        if not se:
            continue
        e = 3 * se // s.cin
        assert 3 * se == e * s.cin and e in (3, 6), (stem, s.index, s.cin, se)
        assert 2 * s.cin * e // 3 <= s.mid <= 4 * s.cin * e // 3, (stem, s.index, s.mid)


@pytest.mark.parametrize("stem", sorted(OTHERS))
def test_other_references_macs_params(stem):
    name, macs_m, tol, params_m, ptol = OTHERS[stem]
    arch = _load(stem)
    assert abs(arch.macs / 1e6 - macs_m) / macs_m <= tol, f"{name}: {arch.macs / 1e6:.2f}M MACs"
    if params_m is not None:
        assert abs(arch.params / 1e6 - params_m) / params_m <= ptol, f"{name}: {arch.params / 1e6:.3f}M params"


def test_mobilenetv3_large_details():
    arch = _load("mobilenetv3-large")
    L = arch.layers
    blocks = [l for l in L if l["type"] == "mbconv"]
    assert len(blocks) == 15
    for b in blocks:
        if b["se"]:
            v = b["mid"] / 4  # make_divisible(mid / 4, 8)
            want = max(8, int(v + 4) // 8 * 8)
            want += 8 if want < 0.9 * v else 0
            assert b["se"] == want and b["se_gate"] == "hsigmoid"
    assert [b["act"] for b in blocks] == ["relu"] * 6 + ["hswish"] * 9
    assert L[0]["act"] == "hswish" and L[0]["out"] == 16
    assert L[-4]["out"] == 960 and L[-3]["type"] == "pool"
    assert L[-2] == {**L[-2], "type": "conv", "out": 1280, "kernel": 1, "bn": False, "act": "hswish"}
    assert arch.shapes()[-2].hin == 1


def test_mnasnet_b1_first_block_is_separable():
    arch = _load("mnasnet-b1")
    s = arch.shapes()[1]
    assert s.cin == s.mid == 32 and s.cout == 16 and s.layer["kernel"] == 3 and s.layer["act"] == "relu"
    assert all(l.get("se", 0) == 0 for l in arch.layers)


# ---------------------------------------------------------------------- against the sources, when present
def _shared_file(*parts):
    for root in (REPO / "shared", REPO.parent / "shared"):
        p = root.joinpath(*parts)
        if p.exists():
            return p
    pytest.skip(f"{'/'.join(parts)} not available here")


def _supplement_tables(text):
    tables, cur = {}, None
    for line in text.splitlines():
        if line.startswith("| Input") and "C_{in}" in line:
            cur = []
        elif cur is not None and line.startswith("|"):
            if not set(line) <= set("|- "):
                cur.append([c.strip() for c in line.strip("|").split("|")])
        elif cur is not None and line.startswith("Table"):
            m = re.match(r"Table \d+\. Architecture details of (\S+)\.", line)
            tables[m.group(1)] = cur
            cur = None
    return tables


def test_tfnas_files_equal_supplement_tables():
    tables = _supplement_tables(_shared_file("papers", "tfnas-supplement.md").read_text())
    acts = {"ReLU": "relu", "ReLU6": "relu6", "Swish": "swish"}
    assert len(tables) == 12
    for stem, (name, _, _) in TFNAS.items():
        rows = [r for r in tables[name] if r[1].startswith("MBInvRes")]
        shapes = [s for s in _load(stem).shapes() if s.type == "mbconv"]
        assert len(rows) == len(shapes), name
        for r, s in zip(rows, shapes):
            m = re.fullmatch(r"\$(\d+)\^(\d) \\times (\d+)\$", r[0])  # e.g. $56^2 \times 24$
            assert (int(m.group(1)), int(m.group(3))) == (s.hin, s.cin), (name, r[0])
            assert m.group(2) == "2" or (s.index == 1 and r[0] == "$112^3 \\times 32$"), (name, r[0])
            want = (int(r[1].split("_k")[1]), int(r[2]), int(r[3]), int(r[4]), int(r[5]), acts[r[6]], int(r[7]))
            got = (s.layer["kernel"], s.cin, s.mid, s.layer["se"], s.cout, s.layer["act"], s.layer["stride"])
            assert got == want, (name, s.index)


def test_proxylessnas_mobile_equals_tunas_reference():
    ref = json.loads(_shared_file("reference", "tunas_pixel1_cost_model.json").read_text())
    layers = ref["reference_architectures"]["proxylessnas_search"]["ProxylessNAS-Mobile"]["layers"]
    want = [(l["kernel"], l["stride"], l.get("input_filters"), l.get("expansion_filters", l.get("input_filters")),
             l["output_filters"]) for l in layers
            if not l.get("skipped") and l["op"] in ("depthwise-separable conv", "inverted bottleneck",
                                                    "inverted bottleneck (residual)")]
    got = [(s.layer["kernel"], s.layer["stride"], s.cin, s.mid, s.cout)
           for s in _load("proxylessnas-mobile").shapes() if s.type == "mbconv"]
    assert got == want


def test_parse_round_trip_of_every_reference():
    for stem in list(TFNAS) + list(OTHERS):
        arch = _load(stem)
        again = parse_arch(arch.to_dict(), stem)
        assert again.layers == arch.layers and again.macs == arch.macs and again.params == arch.params
