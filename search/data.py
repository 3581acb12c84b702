"""The proxy task a supernet is trained on: images (N, C, H, W) float32 + integer labels.

Sources (`load_proxy_data(path)`):
- None: built-in, scikit-learn's bundled digits (1797 8x8 grey images, 10 classes; offline),
  upscaled bilinearly to the proxy resolution, repeated to 3 channels, fixed 80/20 train/valid
  split (seed 0, stratified), normalised with the training mean/std.
- `.npz`: arrays `x` (N,H,W / N,H,W,C / N,C,H,W) and `y` (N,) integer labels, optionally
  `x_valid`, `y_valid`; without them the same fixed 80/20 split is made.
- a folder with one subfolder per class holding images (ImageNet layout): streamed from disk by
  DataLoader workers with the standard train / eval transforms (search.folder_data), never all in RAM.
The held-out split (the controller's / architecture steps' data) is the given validation data
(`x_valid`/`y_valid`, `--valid-data FOLDER`) or a fixed split of the training data (seed 0, the same
for every search): `holdout` a fraction (stratified per class; default 20 %) or a count of images
(uniform; TuNAS holds out 50,046 ImageNet training images).
Anything malformed raises latbench.errors.BadInput with one line naming the path and the problem.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from latbench.errors import BadInput

from .splits import check_holdout, holdout_split



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

    split_info: dict | None = None

    def describe(self) -> dict:
        return {"source": self.source, "train": int(len(self.y_train)), "valid": int(len(self.y_valid)),
                "classes": self.num_classes, "shape": list(self.x_train.shape[1:]), **(self.split_info or {})}

    def size(self, split: str) -> int:
        return int(len(self.y_train if split == "train" else self.y_valid))

    def stream(self, split: str, batch: int, info, seed: int = 0, what: str | None = None):
        """Endless shuffled batches of this process's shard of `split` ("train" / "valid")."""
        from .distributed import BatchStream

        x, y = (self.x_train, self.y_train) if split == "train" else (self.x_valid, self.y_valid)
        return BatchStream(x, y, batch, info, seed=seed, what=what or ("training" if split == "train" else "held-out"))

    def eval_batches(self, split: str, info, batch: int = 512):
        """This process's share (every world-th example) of `split`, in batches on the device."""
        import torch

        x, y = (self.x_train, self.y_train) if split == "train" else (self.x_valid, self.y_valid)
        x, y = torch.as_tensor(x)[info.rank::info.world], torch.as_tensor(y)[info.rank::info.world]
        for lo in range(0, len(y), batch):
            yield x[lo:lo + batch].to(info.device), y[lo:lo + batch].to(info.device)


def load_proxy_data(path=None, resolution: int = 32, holdout=None, valid=None, workers: int = 0):
    """The proxy task at `resolution` from `path` (None: built-in digits): a ProxyData (in memory) or,
    for an image folder, a search.folder_data.FolderData (streamed by `workers` DataLoader workers)."""
    if valid is not None and (path is None or not Path(path).is_dir()):
        raise BadInput("--valid-data: a validation folder goes with an image-folder --data (.npz files carry "
                       "x_valid / y_valid)")
    check_holdout(holdout)
    if path is None:
        from sklearn.datasets import load_digits

        d = load_digits()
        x = d.images.astype(np.float32)[:, None] / 16.0
        return _finish(x, d.target, None, None, resolution, "sklearn digits (built-in)", rgb=True, holdout=holdout)
    p = Path(path)
    if not p.exists():
        raise BadInput(f"--data: {path}: no such file or folder")
    if p.is_dir():
        from .folder_data import load_folder

        return load_folder(p, resolution, holdout, valid, workers)
    if p.suffix != ".npz":
        raise BadInput(f"--data: {path}: expected a .npz file or an image folder")
    return _read_npz(p, resolution, holdout)


def _read_npz(p: Path, resolution: int, holdout=None) -> ProxyData:
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
        if holdout is not None:
            raise BadInput(f"--holdout: {p} has its own x_valid / y_valid")
    return _finish(x, y, xv, yv, resolution, str(p), holdout=holdout)


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


def _finish(x, y, xv, yv, resolution, source, rgb=False, holdout=None) -> ProxyData:
    info = None
    if xv is None:
        tr, va, info = holdout_split(y, holdout)
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
                     np.ascontiguousarray(xv, dtype=np.float32), yv.astype(np.int64), num_classes, source, info)
