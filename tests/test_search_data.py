"""Proxy-task data: built-in digits, .npz arrays, image folders, and one-line errors for bad data."""
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from latbench.errors import BadInput  # noqa: E402
import torch  # noqa: E402

from search.data import load_proxy_data  # noqa: E402
from search.distributed import DistInfo  # noqa: E402


def test_builtin_digits_fixed_split():
    d = load_proxy_data(None, 32)
    assert d.x_train.shape[1:] == (3, 32, 32) and d.num_classes == 10
    assert len(d.y_train) + len(d.y_valid) == 1797
    assert 0.18 < len(d.y_valid) / 1797 < 0.22
    again = load_proxy_data(None, 16)
    np.testing.assert_array_equal(d.y_valid, again.y_valid)  # the split never changes
    assert abs(float(d.x_train.mean())) < 1e-3


def test_npz_with_and_without_valid_arrays(tmp_path):
    rng = np.random.default_rng(0)
    x, y = rng.random((40, 10, 10)), np.arange(40) % 4
    np.savez(tmp_path / "a.npz", x=x, y=y)
    d = load_proxy_data(tmp_path / "a.npz", 16)
    assert d.x_train.shape[1:] == (1, 16, 16) and d.num_classes == 4 and len(d.y_valid) == 8
    np.savez(tmp_path / "b.npz", x=rng.random((30, 12, 12, 3)), y=np.arange(30) % 3,
             x_valid=rng.random((6, 12, 12, 3)), y_valid=np.arange(6) % 3)
    d = load_proxy_data(tmp_path / "b.npz", 12)
    assert d.x_train.shape == (30, 3, 12, 12) and d.x_valid.shape == (6, 3, 12, 12)


def test_image_folder(tmp_path):
    import matplotlib.image as mpimg

    rng = np.random.default_rng(0)
    for c in ("cat", "dog"):
        (tmp_path / c).mkdir()
        for i in range(5):
            mpimg.imsave(tmp_path / c / f"{i}.png", rng.random((8, 8, 3)))
        np.save(tmp_path / c / "extra.npy", rng.random((8, 8, 3)).astype(np.float32))
    d = load_proxy_data(tmp_path, 16)  # streamed (search.folder_data); tests/test_search_folder_data.py
    assert d.num_classes == 2 and d.size("train") + d.size("valid") == 12
    x, y = next(d.eval_batches("train", DistInfo()))
    assert x.shape[1:] == (3, 16, 16) and set(y.tolist()) <= {0, 1}


def test_holdout_fraction_count_and_errors(tmp_path):
    d = load_proxy_data(None, 16, holdout=0.5)
    assert abs(d.size("valid") - 1797 / 2) < 10 and d.describe()["holdout"] == 0.5
    d = load_proxy_data(None, 16, holdout=100)
    assert d.size("valid") == 100 and d.size("train") == 1697
    np.testing.assert_array_equal(d.y_valid, load_proxy_data(None, 8, holdout=100).y_valid)  # fixed split
    for bad in (0, 1.5, -3, 1797):
        with pytest.raises(BadInput, match="--holdout"):
            load_proxy_data(None, 16, holdout=bad)
    with pytest.raises(BadInput, match="--valid-data"):
        load_proxy_data(None, 16, valid=tmp_path)


def test_a_batch_larger_than_the_shard_is_an_error_naming_the_sizes():
    d = load_proxy_data(None, 8)  # 359 held-out images: 180 per process over 2 (the last padded)
    d.stream("valid", 180, DistInfo(world=2, rank=1))
    with pytest.raises(BadInput, match="held-out batch of 256 per process .* has 359 = 180 per process over 2"):
        d.stream("valid", 256, DistInfo(world=2, rank=1))


def test_in_memory_stream_resumes_from_its_state():
    d = load_proxy_data(None, 8)
    s = d.stream("train", 500, DistInfo(), seed=3)  # 1437 training images: batches cross epochs
    for _ in range(4):
        s.next()
    again = d.stream("train", 500, DistInfo(), seed=3)
    again.load_state_dict(s.state_dict())
    for _ in range(3):
        a, b = s.next(), again.next()
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


@pytest.mark.parametrize("case, match", [
    ("missing", "no such file"),
    ("text", "expected a .npz"),
    ("garbage", "cannot read"),
    ("no_y", "missing array 'y'"),
    ("length", "expected 10 labels"),
    ("shape", "expected images of shape"),
    ("float_labels", "labels must be integers"),
    ("one_class_folder", "at least 2 class subfolders"),
])
def test_bad_data_is_one_line_bad_input(tmp_path, case, match):
    p = tmp_path / "d.npz"
    if case == "text":
        p = tmp_path / "d.txt"
        p.write_text("hello")
    elif case == "garbage":
        p.write_bytes(b"not a zip file")
    elif case == "no_y":
        np.savez(p, x=np.zeros((10, 8, 8)))
    elif case == "length":
        np.savez(p, x=np.zeros((10, 8, 8)), y=np.zeros(9, dtype=int))
    elif case == "shape":
        np.savez(p, x=np.zeros((10, 8)), y=np.zeros(10, dtype=int))
    elif case == "float_labels":
        np.savez(p, x=np.zeros((10, 8, 8)), y=np.full(10, 0.5))
    elif case == "one_class_folder":
        p = tmp_path / "folder"
        (p / "only").mkdir(parents=True)
    with pytest.raises(BadInput, match=match) as err:
        load_proxy_data(p, 16)
    assert "\n" not in str(err.value) and str(err.value).startswith("--data: ")
