"""Image folders streamed from disk (ImageNet layout: one subfolder per class), never all in RAM.

Images are listed once (paths + labels), then decoded lazily by DataLoader workers at the search
resolution with the standard transforms (torchvision's release for the pinned torch does not load
against the CPU build of torch, so they are written here on PIL, with the same definitions):
- training: random-resized crop (area 8-100 %, aspect 3/4-4/3) resized bilinearly to the
  resolution, horizontal flip with probability 1/2;
- held-out / validation: the central 87.5 % square (resize to resolution/0.875, centre crop);
then scaled to [0, 1] and normalised with the ImageNet mean and std. Every image becomes RGB
(grey and CMYK JPEGs too); `.npy` arrays (H,W / H,W,C / C,H,W, values in [0, 1]) take the same
path through torch.

Each process reads its shard (DistributedSampler order, reshuffled every epoch, one epoch's tail
continuing into the next). A training image's augmentation is drawn from a generator seeded by
(seed, rank, position in the stream), not from the worker that happens to load it, so a run is the
same with any number of workers and after a resume; the stream's position is one integer.
"""
from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from latbench.errors import BadInput

from .splits import holdout_split

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".npy")
MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
CROP_SCALE = (0.08, 1.0)
CROP_RATIO = (3 / 4, 4 / 3)
EVAL_CROP = 0.875


def list_folder(p: Path, what: str = "--data", classes=None):
    """(paths, labels, class names) of a class-per-subfolder folder; `classes`: the training folder's
    names, which a validation folder must match."""
    if not p.is_dir():
        raise BadInput(f"{what}: {p}: not a folder")
    names = sorted(d.name for d in os.scandir(p) if d.is_dir() and not d.name.startswith("."))
    if classes is None and len(names) < 2:
        raise BadInput(f"{what}: {p}: an image folder needs at least 2 class subfolders, found {len(names)}")
    if classes is not None and names != list(classes):
        extra, missing = sorted(set(names) - set(classes)), sorted(set(classes) - set(names))
        raise BadInput(f"{what}: {p}: class subfolders differ from the training folder's "
                       f"(missing: {', '.join(missing[:5]) or 'none'}; extra: {', '.join(extra[:5]) or 'none'})")
    paths, labels = [], []
    for label, name in enumerate(names):
        files = sorted(e.name for e in os.scandir(p / name)
                       if e.is_file() and os.path.splitext(e.name)[1].lower() in IMAGE_SUFFIXES)
        if not files:
            raise BadInput(f"{what}: {p / name}: no images ({', '.join(IMAGE_SUFFIXES)})")
        paths.extend(str(p / name / f) for f in files)
        labels.extend([label] * len(files))
    return paths, np.array(labels, dtype=np.int64), names


def resized_crop_box(width: int, height: int, rng: np.random.Generator):
    """(left, top, w, h) of a random-resized crop (the Inception / torchvision definition: 10 tries,
    then the central crop at the nearest allowed aspect)."""
    area = width * height
    log_ratio = (math.log(CROP_RATIO[0]), math.log(CROP_RATIO[1]))
    for _ in range(10):
        target = area * rng.uniform(*CROP_SCALE)
        aspect = math.exp(rng.uniform(*log_ratio))
        w, h = int(round(math.sqrt(target * aspect))), int(round(math.sqrt(target / aspect)))
        if 0 < w <= width and 0 < h <= height:
            return int(rng.integers(0, width - w + 1)), int(rng.integers(0, height - h + 1)), w, h
    ratio = width / height
    if ratio < CROP_RATIO[0]:
        w, h = width, int(round(width / CROP_RATIO[0]))
    elif ratio > CROP_RATIO[1]:
        w, h = int(round(height * CROP_RATIO[1])), height
    else:
        w, h = width, height
    return (width - w) // 2, (height - h) // 2, w, h


def center_box(width: int, height: int):
    """The central EVAL_CROP square (= resize the short side to res / 0.875, then centre-crop res)."""
    side = max(1, int(round(min(width, height) * EVAL_CROP)))
    return (width - side) // 2, (height - side) // 2, side, side


class FolderDataset:
    """Map-style dataset over (paths, labels); items are (index, stream position) pairs, the position
    seeding the training augmentation (None: evaluation transform)."""

    def __init__(self, paths, labels, resolution: int, train: bool, seed: int = 0, rank: int = 0):
        self.paths, self.labels = paths, labels
        self.resolution, self.train, self.seed, self.rank = resolution, train, seed, rank

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, item):
        import torch

        index, position = item if isinstance(item, tuple) else (item, None)
        path = self.paths[index]
        rng = np.random.default_rng([self.seed, self.rank, position]) if self.train and position is not None else None
        try:
            x = self._load(path, rng)
        except BadInput:
            raise
        except Exception as exc:
            raise BadInput(f"--data: {path}: cannot read image ({type(exc).__name__}: {exc})") from None
        x = (x - MEAN[:, None, None]) / STD[:, None, None]
        return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)), int(self.labels[index])

    def _box(self, width, height, rng):
        return resized_crop_box(width, height, rng) if rng is not None else center_box(width, height)

    def _load(self, path, rng) -> np.ndarray:
        """(3, res, res) float32 in [0, 1]."""
        res = self.resolution
        if path.lower().endswith(".npy"):
            return self._load_array(path, rng)
        from PIL import Image

        with Image.open(path) as im:
            im = im.convert("RGB")
            left, top, w, h = self._box(im.width, im.height, rng)
            im = im.resize((res, res), Image.BILINEAR, box=(left, top, left + w, top + h))
            a = np.asarray(im, dtype=np.float32).transpose(2, 0, 1) / 255.0
        if rng is not None and rng.random() < 0.5:
            a = a[:, :, ::-1]
        return a

    def _load_array(self, path, rng) -> np.ndarray:
        import torch
        import torch.nn.functional as F

        a = np.load(path, allow_pickle=False).astype(np.float32)
        if a.ndim == 2:
            a = a[None]
        elif a.ndim == 3 and a.shape[-1] in (1, 3, 4) and a.shape[0] not in (1, 3, 4):
            a = a.transpose(2, 0, 1)
        if a.ndim != 3 or a.shape[0] not in (1, 3, 4):
            raise BadInput(f"--data: {path}: expected an image array (H,W), (H,W,C) or (C,H,W) with 1, 3 or 4 "
                           f"channels, got shape {a.shape}")
        a = a[:3] if a.shape[0] == 4 else np.repeat(a, 3, axis=0) if a.shape[0] == 1 else a
        left, top, w, h = self._box(a.shape[2], a.shape[1], rng)
        t = torch.from_numpy(np.ascontiguousarray(a[:, top:top + h, left:left + w]))[None]
        out = F.interpolate(t, size=(self.resolution, self.resolution), mode="bilinear", align_corners=False,
                            antialias=True)[0].numpy()
        if rng is not None and rng.random() < 0.5:
            out = out[:, :, ::-1]
        return out


class EndlessBatches:
    """Batch sampler: this rank's DistributedSampler order, epoch after epoch, cut into batches of
    `batch` (index, position) pairs, starting at batch `start`."""

    def __init__(self, n: int, batch: int, world: int, rank: int, seed: int, start: int = 0):
        self.n, self.batch, self.world, self.rank, self.seed, self.start = n, batch, world, rank, seed, start
        self.shard = int(math.ceil(n / world))  # DistributedSampler pads the last shard by repeating

    def _epoch(self, epoch: int) -> list:
        from torch.utils.data import DistributedSampler

        s = DistributedSampler(range(self.n), num_replicas=self.world, rank=self.rank, shuffle=True,
                               seed=self.seed, drop_last=False)
        s.set_epoch(epoch)
        return list(s)

    def __iter__(self):
        position = self.start * self.batch
        epoch, offset = divmod(position, self.shard)
        order = self._epoch(epoch)[offset:]
        while True:
            while len(order) < self.batch:
                epoch += 1
                order += self._epoch(epoch)
            take, order = order[: self.batch], order[self.batch:]
            yield [(i, position + j) for j, i in enumerate(take)]
            position += self.batch


class FolderStream:
    """Endless batches from a FolderDataset through DataLoader workers; `next()` -> (x, y) on the device."""

    def __init__(self, dataset: FolderDataset, batch: int, info, seed: int, workers: int, what: str):
        from .distributed import check_batch

        self.dataset, self.batch, self.info, self.seed, self.workers = dataset, batch, info, seed, workers
        shard = int(math.ceil(len(dataset) / info.world))
        check_batch(batch, shard, len(dataset), info, what)
        self.consumed, self._it = 0, None
        self.channels_last = False

    def _iterator(self):
        from torch.utils.data import DataLoader

        sampler = EndlessBatches(len(self.dataset), self.batch, self.info.world, self.info.rank, self.seed,
                                 start=self.consumed)
        loader = DataLoader(self.dataset, batch_sampler=sampler, num_workers=self.workers,
                            pin_memory=self.info.device.startswith("cuda"), persistent_workers=False,
                            prefetch_factor=4 if self.workers else None)
        return iter(loader)

    def next(self):
        import torch

        if self._it is None:
            self._it = self._iterator()
        x, y = next(self._it)
        self.consumed += 1
        x = x.to(self.info.device, non_blocking=True)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x, y.to(self.info.device, non_blocking=True)

    def state_dict(self) -> dict:
        return {"consumed": self.consumed}

    def load_state_dict(self, state: dict) -> None:
        self.close()
        self.consumed = int(state["consumed"])

    def close(self) -> None:
        self._it = None  # the DataLoader iterator shuts its workers down when dropped


class FolderData:
    """A streamed image-folder proxy task: the same interface as search.data.ProxyData."""

    in_channels = 3

    def __init__(self, source: str, splits: dict, num_classes: int, resolution: int, workers: int, split_info: dict):
        self.source, self.splits, self.num_classes = source, splits, num_classes
        self.resolution, self.workers, self.split_info = resolution, workers, split_info

    def size(self, split: str) -> int:
        return len(self.splits[split][0])

    def stream(self, split: str, batch: int, info, seed: int = 0, what: str | None = None):
        paths, labels = self.splits[split]
        ds = FolderDataset(paths, labels, self.resolution, train=split == "train", seed=seed, rank=info.rank)
        return FolderStream(ds, batch, info, seed, self.workers,
                            what or ("training" if split == "train" else "held-out"))

    def eval_batches(self, split: str, info, batch: int = 256):
        """This rank's share (every world-th image, no padding) of a split, evaluation transform."""
        from torch.utils.data import DataLoader, Subset

        paths, labels = self.splits[split]
        ds = FolderDataset(paths, labels, self.resolution, train=False)
        part = Subset(ds, range(info.rank, len(ds), info.world))
        loader = DataLoader(part, batch_size=batch, num_workers=self.workers,
                            pin_memory=info.device.startswith("cuda"))
        for x, y in loader:
            yield x.to(info.device, non_blocking=True), y.to(info.device, non_blocking=True)

    def describe(self) -> dict:
        return {"source": self.source, "train": self.size("train"), "valid": self.size("valid"),
                "classes": self.num_classes, "shape": [3, self.resolution, self.resolution], "streamed": True,
                **self.split_info}


def load_folder(p: Path, resolution: int, holdout=None, valid=None, workers: int = 0) -> FolderData:
    """A streamed folder; the held-out split is `valid` (a folder with the same classes) or a fixed,
    seeded split of the training folder (`holdout`: a fraction or a count; search.data.holdout_split)."""
    paths, labels, classes = list_folder(p)
    if valid is not None:
        vp = Path(valid)
        if not vp.exists():
            raise BadInput(f"--valid-data: {valid}: no such folder")
        vpaths, vlabels, _ = list_folder(vp, "--valid-data", classes)
        splits = {"train": (paths, labels), "valid": (vpaths, vlabels)}
        info = {"valid_source": str(vp)}
    else:
        tr, va, info = holdout_split(labels, holdout)
        splits = {"train": ([paths[i] for i in tr], labels[tr]), "valid": ([paths[i] for i in va], labels[va])}
    return FolderData(str(p), splits, len(classes), resolution, workers, info)
