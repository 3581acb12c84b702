"""Streamed image folders (ImageNet layout): mixed-size JPEGs read lazily by DataLoader workers,
seeded held-out split or a validation folder, resumable and worker-independent streams."""
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from latbench.errors import BadInput  # noqa: E402
from search.data import load_proxy_data  # noqa: E402
from search.distributed import DistInfo  # noqa: E402
from search.folder_data import MEAN, STD, center_box, resized_crop_box  # noqa: E402


def write_folder(root: Path, classes=3, per_class=12, seed=0):
    """JPEGs of mixed sizes (one grey, one PNG per class); class c has mean brightness ~ 40 + 60 c."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for c in range(classes):
        d = root / f"class{c}"
        d.mkdir(parents=True)
        for i in range(per_class):
            w, h = (int(v) for v in rng.integers(12, 70, 2))
            a = np.clip(rng.normal(40 + 60 * c, 15, (h, w, 3)), 0, 255).astype(np.uint8)
            im = Image.fromarray(a)
            if i == 0:
                im.convert("L").save(d / f"{i}.jpeg")
            elif i == 1:
                im.save(d / f"{i}.png")
            else:
                im.save(d / f"{i}.JPG", quality=90)
        (d / "notes.txt").write_text("not an image")
    return root


def test_mixed_size_folder_streams_normalised_batches(tmp_path):
    root = write_folder(tmp_path / "imgs")
    d = load_proxy_data(root, 16, workers=2)
    assert d.num_classes == 3 and d.size("train") + d.size("valid") == 36
    assert d.describe()["streamed"] and d.describe()["holdout"] == 0.2
    s = d.stream("train", 8, DistInfo(), seed=0)
    x, y = s.next()
    assert x.shape == (8, 3, 16, 16) and x.dtype == torch.float32 and y.dtype == torch.int64
    # evaluation transform, classes by brightness: normalised means rise with the label
    xs, ys = zip(*d.eval_batches("valid", DistInfo()))
    x, y = torch.cat(xs), torch.cat(ys)
    assert len(y) == d.size("valid")
    raw = x * torch.tensor(STD)[:, None, None] + torch.tensor(MEAN)[:, None, None]
    means = [float(raw[y == c].mean()) for c in range(3)]
    assert means[0] < means[1] < means[2]
    assert abs(means[1] - 100 / 255) < 0.05
    s.close()


def test_stream_is_the_same_with_any_number_of_workers_and_after_a_resume(tmp_path):
    d = load_proxy_data(write_folder(tmp_path / "imgs"), 12, workers=0)
    info = DistInfo()
    s0 = d.stream("train", 10, info, seed=5)
    batches = [s0.next() for _ in range(5)]  # 28 training images: batches cross epochs
    d.workers = 2
    s2 = d.stream("train", 10, info, seed=5)
    for xb, yb in batches[:2]:
        x, y = s2.next()
        assert torch.equal(x, xb) and torch.equal(y, yb)
    state = s2.state_dict()
    s2.close()
    resumed = d.stream("train", 10, info, seed=5)
    resumed.load_state_dict(json.loads(json.dumps(state)))
    for xb, yb in batches[2:]:
        x, y = resumed.next()
        assert torch.equal(x, xb) and torch.equal(y, yb)
    other = d.stream("train", 10, info, seed=6).next()
    assert not torch.equal(other[0], batches[0][0])  # the seed changes order and augmentation


def test_ranks_shard_training_and_split_evaluation_without_overlap(tmp_path):
    d = load_proxy_data(write_folder(tmp_path / "imgs", per_class=10), 12, workers=0)
    ranks = [DistInfo(world=2, rank=r) for r in range(2)]
    seen = [sum(len(y) for _, y in d.eval_batches("train", info)) for info in ranks]
    assert sum(seen) == d.size("train")
    # one epoch of training positions: the two ranks' first batches are disjoint draws
    a = d.stream("train", 12, ranks[0], seed=0).next()[0]
    b = d.stream("train", 12, ranks[1], seed=0).next()[0]
    assert not torch.equal(a, b)
    with pytest.raises(BadInput, match="training batch of 13 per process .* 24 = 12 per process over 2"):
        d.stream("train", 13, ranks[0], seed=0)


def test_holdout_count_and_validation_folder(tmp_path):
    root = write_folder(tmp_path / "imgs")
    d = load_proxy_data(root, 8, holdout=5)
    assert d.size("valid") == 5 and d.size("train") == 31
    same = load_proxy_data(root, 8, holdout=5)
    assert d.splits["valid"][0] == same.splits["valid"][0]  # fixed, seeded
    valid = write_folder(tmp_path / "val", per_class=4, seed=1)
    d = load_proxy_data(root, 8, valid=valid)
    assert d.size("train") == 36 and d.size("valid") == 12 and d.describe()["valid_source"] == str(valid)
    (valid / "class2").rename(valid / "other")
    with pytest.raises(BadInput, match=r"--valid-data: .* subfolders differ .* \(missing: class2; extra: other\)"):
        load_proxy_data(root, 8, valid=valid)


def test_an_unreadable_image_names_its_file(tmp_path):
    root = write_folder(tmp_path / "imgs", per_class=4)
    (root / "class1" / "5.jpg").write_bytes(b"not a jpeg")
    d = load_proxy_data(root, 8, holdout=0.5)
    with pytest.raises(BadInput, match=r"5\.jpg: cannot read image"):
        for split in ("train", "valid"):
            list(d.eval_batches(split, DistInfo()))


def test_crop_boxes_stay_inside_and_follow_the_standard_definitions():
    rng = np.random.default_rng(0)
    for w, h in ((40, 30), (13, 100), (500, 375)):
        for _ in range(50):
            left, top, cw, ch = resized_crop_box(w, h, rng)
            assert 0 <= left and left + cw <= w and 0 <= top and top + ch <= h and cw > 0 and ch > 0
    assert center_box(500, 375) == (86, 23, 328, 328)  # 0.875 x 375 = 328, centred


def test_tiny_search_on_a_jpeg_folder_with_workers(cli, tmp_path):
    root = write_folder(tmp_path / "imgs")
    out = tmp_path / "run"
    r = cli("search", "--target-ms", "84", "--steps", "4", "--width", "0.125", "--resolution", "16", "--batch-size",
            "4", "--holdout", "16", "--workers", "2", "--data", root, "--quiet", "--out", out, "--json")
    assert r.returncode == 0, r.stderr
    result = json.loads((out / "result.json").read_text())
    assert result["data"]["streamed"] and result["data"]["valid"] == 16 and result["data"]["train"] == 20
    assert len(result["trajectory"]) == 4 and 0 <= result["proxy_accuracy"] <= 1
