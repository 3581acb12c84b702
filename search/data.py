"""The proxy task a supernet is trained on: images (N, C, H, W) float32 + integer labels.

Sources (`load_proxy_data(path)`):
- None: built-in, scikit-learn's bundled digits (1797 8x8 grey images, 10 classes; offline),
  upscaled bilinearly to the proxy resolution, repeated to 3 channels, fixed 80/20 train/valid
  split (seed 0, stratified), normalised with the training mean/std.
- `.npz`: arrays `x` (N,H,W / N,H,W,C / N,C,H,W) and `y` (N,) integer labels, optionally
  `x_valid`, `y_valid`; without them the same fixed 80/20 split is made.
- a folder with one subfolder per class holding images (.png/.jpg/.jpeg/.bmp via PIL when it is
  installed, .png via matplotlib otherwise, and .npy arrays); classes are the sorted subfolder names.
Anything malformed raises latbench.errors.BadInput with one line naming the path and the problem.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from latbench.errors import BadInput

VALID_FRACTION = 0.2
SPLIT_SEED = 0
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".npy")


@dataclass
class ProxyData:
    """Train/valid arrays, NCHW float32 at the proxy resolution, labels int64 in 0..classes-1."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_valid: np.ndarray
    y_valid: np.ndarray
    num_classes: int
    source: str

    @property
    def in_channels(self) -> int:
        return int(self.x_train.shape[1])

    def describe(self) -> dict:
        return {"source": self.source, "train": int(len(self.y_train)), "valid": int(len(self.y_valid)),
                "classes": self.num_classes, "shape": list(self.x_train.shape[1:])}


def load_proxy_data(path=None, resolution: int = 32) -> ProxyData:
    """The proxy task at `resolution` from `path` (None: built-in digits)."""
    if path is None:
        from sklearn.datasets import load_digits

        d = load_digits()
        x = d.images.astype(np.float32)[:, None] / 16.0
        return _finish(x, d.target, None, None, resolution, "sklearn digits (built-in)", rgb=True)
    p = Path(path)
    if not p.exists():
        raise BadInput(f"--data: {path}: no such file or folder")
    if p.is_dir():
        x, y = _read_folder(p)
        return _finish(x, y, None, None, resolution, str(p))
    if p.suffix != ".npz":
        raise BadInput(f"--data: {path}: expected a .npz file or an image folder")
    return _read_npz(p, resolution)


def _read_npz(p: Path, resolution: int) -> ProxyData:
    try:
        with np.load(p, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except Exception as exc:  # zipfile / pickle / OS errors: all user input problems
        raise BadInput(f"--data: {p}: cannot read .npz ({type(exc).__name__}: {exc})") from None
    for key in ("x", "y"):
        if key not in arrays:
            raise BadInput(f"--data: {p}: missing array {key!r} (has: {', '.join(arrays) or 'none'})")
    if ("x_valid" in arrays) != ("y_valid" in arrays):
        raise BadInput(f"--data: {p}: give both x_valid and y_valid or neither")
    x = _as_nchw(arrays["x"], f"{p}: x")
    y = _labels(arrays["y"], len(x), f"{p}: y")
    xv = yv = None
    if "x_valid" in arrays:
        xv = _as_nchw(arrays["x_valid"], f"{p}: x_valid")
        yv = _labels(arrays["y_valid"], len(xv), f"{p}: y_valid")
        if xv.shape[1:] != x.shape[1:]:
            raise BadInput(f"--data: {p}: x_valid images {xv.shape[1:]} differ from x images {x.shape[1:]}")
    return _finish(x, y, xv, yv, resolution, str(p))


def _as_nchw(a: np.ndarray, where: str) -> np.ndarray:
    if not np.issubdtype(a.dtype, np.number) or a.dtype == np.bool_:
        raise BadInput(f"--data: {where}: expected numeric image data, got dtype {a.dtype}")
    if a.ndim == 3:
        a = a[:, None]
    elif a.ndim == 4:
        if a.shape[-1] in (1, 3, 4) and a.shape[1] not in (1, 3, 4):
            a = a.transpose(0, 3, 1, 2)  # NHWC -> NCHW
    else:
        raise BadInput(f"--data: {where}: expected images of shape (N,H,W), (N,H,W,C) or (N,C,H,W), got {a.shape}")
    if a.shape[0] < 2 or min(a.shape[2:]) < 1:
        raise BadInput(f"--data: {where}: need at least 2 non-empty images, got shape {a.shape}")
    a = a.astype(np.float32)
    if not np.isfinite(a).all():
        raise BadInput(f"--data: {where}: contains NaN or infinite values")
    return a


def _labels(y: np.ndarray, n: int, where: str) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1 or len(y) != n:
        raise BadInput(f"--data: {where}: expected {n} labels (one per image), got shape {y.shape}")
    if not np.issubdtype(y.dtype, np.integer):
        if np.issubdtype(y.dtype, np.floating) and np.all(np.mod(y, 1) == 0):
            y = y.astype(np.int64)
        else:
            raise BadInput(f"--data: {where}: labels must be integers, got dtype {y.dtype}")
    if y.min() < 0:
        raise BadInput(f"--data: {where}: labels must be >= 0, got {int(y.min())}")
    return y.astype(np.int64)


def _read_folder(p: Path):
    classes = sorted(d for d in p.iterdir() if d.is_dir() and not d.name.startswith("."))
    if len(classes) < 2:
        raise BadInput(f"--data: {p}: an image folder needs at least 2 class subfolders, found {len(classes)}")
    xs, ys, shape = [], [], None
    for label, d in enumerate(classes):
        files = sorted(f for f in d.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise BadInput(f"--data: {d}: no images ({', '.join(IMAGE_SUFFIXES)})")
        for f in files:
            img = _read_image(f)
            if shape is None:
                shape = img.shape
            elif img.shape != shape:
                raise BadInput(f"--data: {f}: image shape {img.shape} differs from {shape} (first image)")
            xs.append(img)
            ys.append(label)
    return np.stack(xs), np.array(ys, dtype=np.int64)


def _read_image(f: Path) -> np.ndarray:
    """One image as (C, H, W) float32 in [0, 1] (npy: as stored)."""
    try:
        if f.suffix.lower() == ".npy":
            a = np.load(f, allow_pickle=False).astype(np.float32)
        else:
            a = _read_bitmap(f)
    except BadInput:
        raise
    except Exception as exc:
        raise BadInput(f"--data: {f}: cannot read image ({type(exc).__name__}: {exc})") from None
    if a.ndim == 2:
        a = a[None]
    elif a.ndim == 3:
        a = a.transpose(2, 0, 1) if a.shape[-1] in (1, 3, 4) else a
    else:
        raise BadInput(f"--data: {f}: expected a 2-D or 3-D image, got shape {a.shape}")
    if a.shape[0] == 4:
        a = a[:3]  # drop alpha
    return a


def _read_bitmap(f: Path) -> np.ndarray:
    try:
        from PIL import Image
    except ImportError:
        if f.suffix.lower() != ".png":
            raise BadInput(f"--data: {f}: reading {f.suffix} needs Pillow (pip install pillow); use .png or .npy") from None
        import matplotlib.image as mpimg

        return np.asarray(mpimg.imread(f), dtype=np.float32)  # png -> floats in [0, 1]
    with Image.open(f) as im:
        a = np.asarray(im.convert("RGB") if im.mode not in ("L", "RGB") else im, dtype=np.float32)
    return a / 255.0


def _split(n: int, y: np.ndarray):
    """Fixed stratified split: the same for every search (seed SPLIT_SEED)."""
    rng = np.random.default_rng(SPLIT_SEED)
    valid = []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        rng.shuffle(idx)
        valid.extend(idx[: max(1, int(round(len(idx) * VALID_FRACTION)))] if len(idx) > 1 else [])
    valid = np.sort(np.array(valid, dtype=np.int64))
    train = np.setdiff1d(np.arange(n), valid)
    if len(train) == 0 or len(valid) == 0:
        raise BadInput("--data: too few images to split into train and valid")
    return train, valid


def _resize(x: np.ndarray, resolution: int) -> np.ndarray:
    if x.shape[2] == resolution and x.shape[3] == resolution:
        return x
    import torch
    import torch.nn.functional as F

    out = []
    for lo in range(0, len(x), 1024):
        t = torch.from_numpy(np.ascontiguousarray(x[lo:lo + 1024]))
        out.append(F.interpolate(t, size=(resolution, resolution), mode="bilinear", align_corners=False).numpy())
    return np.concatenate(out)


def _finish(x, y, xv, yv, resolution, source, rgb=False) -> ProxyData:
    if xv is None:
        tr, va = _split(len(x), y)
        x, y, xv, yv = x[tr], y[tr], x[va], y[va]
    num_classes = int(max(y.max(), yv.max())) + 1
    if num_classes < 2:
        raise BadInput(f"--data: {source}: need at least 2 classes")
    x, xv = _resize(x, resolution), _resize(xv, resolution)
    if rgb and x.shape[1] == 1:
        x, xv = np.repeat(x, 3, axis=1), np.repeat(xv, 3, axis=1)
    mean = x.mean(axis=(0, 2, 3), keepdims=True)
    std = x.std(axis=(0, 2, 3), keepdims=True) + 1e-6
    x, xv = (x - mean) / std, (xv - mean) / std
    return ProxyData(np.ascontiguousarray(x, dtype=np.float32), y.astype(np.int64),
                     np.ascontiguousarray(xv, dtype=np.float32), yv.astype(np.int64), num_classes, source)
