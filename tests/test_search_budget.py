"""Budget and numerics: --epochs, learning rates scaled with the global batch (B/256), bf16 autocast,
channels_last."""
import math
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from latbench.errors import BadInput  # noqa: E402
from search.context import prepare  # noqa: E402
from search.registry import make_config, run_search  # noqa: E402

TINY = dict(target_ms=84, width=0.125, resolution=16, progress=False, threads=1)


def test_epochs_become_steps_over_the_training_split():
    cfg = make_config("tunas", epochs=2.5, batch_size=32, **TINY)
    assert cfg.steps is None
    ctx = prepare(cfg)
    n = ctx.data.size("train")
    assert cfg.steps == math.ceil(2.5 * n / 32) and n == 1438
    assert make_config("tunas", **TINY).steps == 800  # neither: the default


def test_steps_and_epochs_together_are_refused():
    with pytest.raises(BadInput, match="--epochs: give --steps or --epochs, not both"):
        prepare(make_config("tunas", steps=10, epochs=1, **TINY))
    with pytest.raises(BadInput, match="--epochs: must be a positive"):
        prepare(make_config("tunas", epochs=0.0, **TINY))


def test_learning_rates_scale_with_the_global_batch_and_are_recorded():
    ctx = prepare(make_config("tunas", batch_size=128, weight_lr=0.2, rl_lr=0.01, **TINY))
    assert ctx.weight_lr == pytest.approx(0.2 * 128 / 256)
    assert ctx.scaled_lr("controller", 0.01, ctx.cfg.rl_batch_size) == pytest.approx(0.01 * 512 / 256)
    assert ctx.learning_rates["weights"] == {"per_256": 0.2, "global_batch": 128, "scaling": "linear", "lr": 0.1}
    ctx = prepare(make_config("tunas", batch_size=128, weight_lr=0.2, lr_scaling="none", **TINY))
    assert ctx.weight_lr == 0.2
    with pytest.raises(BadInput, match="--lr-scaling"):
        prepare(make_config("tunas", lr_scaling="sqrt", **TINY))


def test_default_weight_lr_is_unchanged_at_the_default_batch():
    """0.4 per 256 images = the former 0.1 at 64 images in one process."""
    assert prepare(make_config("tunas", **TINY)).weight_lr == 0.1


@pytest.mark.parametrize("algo", ["tunas", "random"])
def test_amp_and_channels_last_run_and_are_recorded(tmp_path, algo):
    extra = {"candidates": 1} if algo == "random" else {}
    r = run_search(make_config(algo, steps=3, batch_size=8, amp=True, channels_last=True, out=str(tmp_path),
                               **extra, **TINY), write=False)
    assert r["config"]["amp"] and r["config"]["channels_last"]
    assert 0 <= r["proxy_accuracy"] <= 1 and all(math.isfinite(t["train_loss"]) for t in r["trajectory"])
    assert r["learning_rates"]["weights"]["global_batch"] == 8
