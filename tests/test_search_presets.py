"""--preset proxy / paper: resolved values, per-256 learning-rate scaling, explicit overrides, and
TuNAS's weight optimiser (TF1 RMSProp, L2 on convolution kernels only)."""
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from latbench.errors import BadInput  # noqa: E402
from latbench.spaces import get_space  # noqa: E402
from search.registry import make_config  # noqa: E402
from search.tunas.config import TunasConfig  # noqa: E402
from search.tunas.optim import TFRMSprop, make_tunas_weight_optimizer  # noqa: E402
from search.tunas.supernet import Supernet  # noqa: E402


def test_proxy_is_the_default_preset():
    cfg = make_config("tunas")
    assert cfg.preset == "proxy"
    assert (cfg.beta_value, cfg.latency_samples, cfg.weight_optimizer, cfg.weight_decay_on) == (-3.0, 1024, "sgd", "all")
    assert (cfg.weight_lr, cfg.rl_lr, cfg.rl_moments_after_delay) == (0.4, 0.05, True)  # per 256 images
    assert TunasConfig().as_dict() == cfg.as_dict()
    assert set(cfg.sources().values()) == {"preset"}


def test_default_budget_is_larger_for_the_larger_tunas_spaces():
    """No --steps / --epochs: 800 steps, 1200 on proxylessnas-enlarged and mobilenetv3-like; a given
    budget always wins; other algorithms keep 800 on every space."""
    assert make_config("tunas").steps == 800
    assert make_config("tunas", space="tfnas").steps == 800
    for space in ("proxylessnas-enlarged", "mobilenetv3-like"):
        assert make_config("tunas", space=space).steps == 1200
        assert make_config("tunas", space=space, steps=300).steps == 300
        cfg = make_config("tunas", space=space, epochs=2.0)
        cfg.resolve_budget(train_size=1280, world=1)
        assert cfg.steps == 40
        assert make_config("random", space=space).steps == 800


def test_paper_preset_is_tunas_with_learning_rates_per_256_images(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    cfg = make_config("tunas", preset="paper")
    assert (cfg.beta_value, cfg.latency_samples, cfg.weight_optimizer, cfg.weight_decay_on) == (-0.10, 0, "rmsprop", "conv")
    assert cfg.rl_moments_after_delay is False and cfg.rmsprop_epsilon == 0.1
    # per 256 images: 0.165 per 256 training images, 3e-4 per 256 training = 7.5e-5 per 256 held-out images
    assert cfg.weight_lr == pytest.approx(0.165) and cfg.rl_lr == pytest.approx(7.5e-5)
    # TuNAS's 32 shards of 128 images: the linear scaling gives appendix E's 2.64 and the code's 4.8e-3
    assert cfg.weight_lr * cfg.lr_factor(128, 32) == pytest.approx(2.64)
    assert cfg.rl_lr * cfg.lr_factor(4 * 128, 32) == pytest.approx(4.8e-3)
    monkeypatch.setenv("WORLD_SIZE", "32")
    assert make_config("tunas", preset="paper", batch_size=128).global_batch == 4096


def test_explicit_options_override_the_preset():
    cfg = make_config("tunas", preset="paper", rl_lr=0.01, beta=-0.5, latency_samples=256)
    assert (cfg.rl_lr, cfg.beta_value, cfg.latency_samples) == (0.01, -0.5, 256)
    assert cfg.weight_optimizer == "rmsprop"
    src = cfg.sources()
    assert src["rl_lr"] == src["beta"] == "option" and src["weight_lr"] == "preset"
    again = TunasConfig(**cfg.as_dict())  # result.json's config rebuilds the same search
    assert again.as_dict() == cfg.as_dict()
    text = cfg.settings_text()
    assert text.startswith("tunas settings: preset paper") and "rl_lr = 0.01 [option]" in text
    assert "weight_optimizer = 'rmsprop' [preset]" in text


def test_soft_reward_keeps_its_own_beta_under_either_preset():
    for preset in ("proxy", "paper"):
        cfg = make_config("tunas", preset=preset, reward="soft")
        assert (cfg.beta_value, cfg.latency_samples) == (-0.07, 0)
        assert cfg.sources()["beta"] == "default"
        cfg.check()


@pytest.mark.parametrize("options, match", [
    ({"preset": "fast"}, "--preset"),
    ({"weight_optimizer": "adam"}, "--weight-optimizer"),
    ({"preset": "paper", "kernel_sharing": True, "candidates": 3}, "--candidates: not an option"),
])
def test_bad_presets_and_knobs(options, match):
    with pytest.raises(BadInput, match=match):
        make_config("tunas", **options).check()


def test_tf_rmsprop_matches_tensorflow_update_rule():
    """TF1 RMSPropOptimizer: ms starts at 1, eps inside the root, lr inside the momentum; L2 coupled."""
    w0, grads, lrs = np.array([0.5, -1.0, 2.0]), [np.array([0.1, -0.2, 0.3]), np.array([0.05, 0.0, -0.4]),
                                                np.array([-0.3, 0.1, 0.2])], [0.1, 0.05, 0.2]
    p = torch.nn.Parameter(torch.tensor(w0, dtype=torch.float64))
    opt = TFRMSprop([p], lr=0.1, eps=0.1, weight_decay=0.01)
    w, ms, mom = w0.copy(), np.ones(3), np.zeros(3)
    for g, lr in zip(grads, lrs):
        opt.param_groups[0]["lr"] = lr
        p.grad = torch.tensor(g)
        opt.step()
        g = g + 0.01 * w
        ms = 0.9 * ms + 0.1 * g * g
        mom = 0.9 * mom + lr * g / np.sqrt(ms + 0.1)
        w = w - mom
    np.testing.assert_allclose(p.detach().numpy(), w, rtol=1e-12)
    # not torch's RMSprop (ms from 0, eps outside the root): its first step here is several times larger
    q = torch.nn.Parameter(torch.tensor(w0, dtype=torch.float64))
    ref = torch.optim.RMSprop([q], lr=0.1, alpha=0.9, eps=0.1, momentum=0.9)
    q.grad = torch.tensor(grads[0])
    ref.step()
    first = 0.1 * grads[0][0] / np.sqrt(0.9 + 0.1 * grads[0][0] ** 2 + 0.1)
    assert abs(w0[0] - q.detach().numpy()[0]) > 2.5 * abs(first)


def test_conv_only_l2_decays_conv_kernels_and_nothing_else():
    torch.manual_seed(0)
    net = Supernet(get_space("proxylessnas"), 10, width=0.125, resolution=16)
    cfg = make_config("tunas", preset="paper")
    opt = make_tunas_weight_optimizer(net, cfg, 0.01)
    decayed = {id(p) for g in opt.param_groups if g["weight_decay"] > 0 for p in g["params"]}
    names = {n for n, p in net.named_parameters() if id(p) in decayed}
    assert names and all(n.endswith("weight") for n in names)
    assert not any(n.startswith("classifier") or ".bn" in n or "bn_" in n for n in names)
    assert all(p.dim() == 4 for n, p in net.named_parameters() if n in names)  # conv kernels only
    assert sum(p.dim() == 4 for p in net.parameters()) == len(names)  # ... and all of them
    sgd = make_tunas_weight_optimizer(net, make_config("tunas"), 0.1)
    assert [g["weight_decay"] for g in sgd.param_groups] == [4e-5]  # proxy: every trained tensor
