"""The `netadaptv2` space (appendix A.1) and the shipped discovered networks (appendix B, Tables 8/9)."""
import numpy as np
import pytest

from latbench.errors import BadInput
from latbench.ops import arch_op_keys, decompose
from latbench.references import resolve_arch
from latbench.spaces import get_space, space_names


@pytest.fixture(scope="module")
def space():
    return get_space("netadaptv2")


def test_registered_and_initial_network(space):
    assert "netadaptv2" in space_names()
    full = space.decode(space.full_indices())
    shapes = full.shapes()
    # MobileNetV3-Large rounded up to powers of two, two extra blocks (28x28, 14x14), kernels +2
    blocks = [s for s in shapes if s.type == "mbconv"]
    assert len(blocks) == 15 + 2
    assert [s.cout for s in blocks] == [16, 32, 32] + [64] * 4 + [128] * 7 + [256] * 3
    assert [s.hin for s in blocks].count(28) == 4 and [s.hin for s in blocks].count(14) == 7
    assert [b.layer["kernel"] for b in blocks] == [5, 5, 5] + [7] * 4 + [5] * 7 + [7] * 3
    assert all(c & (c - 1) == 0 for b in blocks for c in (b.layer["mid"], b.layer["out"]))
    # T per output resolution, T x resolution constant (appendix B)
    ts = {s.hout: s.layer["bypass"] for s in shapes if s.layer.get("bypass") and s.hout > 1}
    assert ts == {112: 8, 56: 16, 28: 32, 14: 64, 7: 128} and shapes[-2].layer["bypass"] == 1024


def test_levels_and_kernels(space):
    for c in space.choices:
        if c.name.endswith("/kernel"):
            assert c.options[0] == 3 and all(k % 2 == 1 for k in c.options) and len(c.options) in (2, 3)
        else:
            assert len(c.options) == 9 and c.options[0] == 0
            assert np.all(np.diff(c.options) == c.options[-1] // 8)


def test_ops_cover_every_sampled_arch(space):
    ops = space.ops("layer")
    keys = [o.key for o in ops]
    assert len(keys) == len(set(keys))
    for seed in range(60):
        arch = space.decode(space.sample(seed))
        assert set(arch_op_keys(arch, "layer")) <= set(keys)
    assert len(keys) < 6000  # what `profile` must measure stays practical
    with pytest.raises(BadInput, match="layer granularity only"):
        space.ops("block")


def test_zero_width_levels_remove_blocks(space):
    idx = space.full_indices()
    for pos, c in enumerate(space.choices):
        if c.name.startswith("L9/"):  # the first stride-1 block at 14x14
            idx[pos] = 0
    arch = space.decode(idx)
    assert arch.shapes()[9].macs == 0 and not [u for u in decompose(arch, "layer") if u.layer_index == 9]
    assert arch.shapes()[9].cout == arch.shapes()[8].cout  # the identity
    assert space.encode(arch) == idx


# MACs as the format counts them (conv, depthwise, SE FC layers, fc). The paper's 225 M / 314 M come
# from its own counter; ours gives MobileNetV3-Large 216.6 M against the 219 M its paper reports.
@pytest.mark.parametrize("name, macs, paper, tol", [("netadaptv2-51ms", 219_844_736, 225e6, 0.025),
                                                    ("netadaptv2-314m", 311_295_744, 314e6, 0.02)])
def test_discovered_networks_macs(name, macs, paper, tol):
    arch = resolve_arch(name)
    assert arch.macs == macs and abs(arch.macs / paper - 1) <= tol
    assert arch.num_classes == 1000 and arch.resolution == 224


# Counting the element-wise ops too (SE pooling and scaling, residual adds, global pooling) brings
# MobileNetV3-Large to its paper's 219 M within 0.5 %, and both appendix C networks within 2 %.
@pytest.mark.parametrize("name, elementwise, paper, tol", [("mobilenetv3-large", 1_665_216, 219e6, 0.005),
                                                           ("netadaptv2-51ms", 2_286_144, 225e6, 0.02),
                                                           ("netadaptv2-314m", 2_417_856, 314e6, 0.02)])
def test_macs_with_elementwise_ops_match_the_papers(name, elementwise, paper, tol):
    arch = resolve_arch(name)
    assert arch.elementwise_ops == elementwise
    assert abs((arch.macs + arch.elementwise_ops) / paper - 1) <= tol


def test_table8_is_a_network_of_the_space(space):
    arch = resolve_arch("netadaptv2-51ms")
    idx = space.reference_models()["NetAdaptV2-51ms"]
    again = space.decode(idx)
    assert again.macs == arch.macs and arch_op_keys(again, "layer") == arch_op_keys(arch, "layer")
    assert [s.macs for s in again.shapes()][11] == 0  # block 12 removed (Table 8 index 12)
