"""The held-out split of a proxy task's training data: fixed (seed SPLIT_SEED, the same for every
search), a fraction per class (default VALID_FRACTION) or a count of images drawn uniformly."""
from __future__ import annotations

import numpy as np

from latbench.errors import BadInput

VALID_FRACTION = 0.2
SPLIT_SEED = 0


def check_holdout(holdout) -> None:
    if holdout is None:
        return
    h = float(holdout)
    if not (0 < h < 1 or (h >= 1 and h == int(h))):
        raise BadInput(f"--holdout: expected a fraction in (0, 1) or a whole number of images, got {holdout}")


def holdout_split(y: np.ndarray, holdout=None):
    """(train indices, held-out indices, description): the fixed split (seed SPLIT_SEED) of labels `y`.
    A fraction (default VALID_FRACTION) is taken per class; a count uniformly over all images."""
    n = len(y)
    rng = np.random.default_rng(SPLIT_SEED)
    if holdout is not None and float(holdout) >= 1:
        count = int(holdout)
        if count >= n:
            raise BadInput(f"--holdout: {count} held-out images leave none of the {n} for training")
        valid = np.sort(rng.permutation(n)[:count])
        info = {"holdout": count}
    else:
        frac = VALID_FRACTION if holdout is None else float(holdout)
        valid = []
        for c in np.unique(y):
            idx = np.flatnonzero(y == c)
            rng.shuffle(idx)
            valid.extend(idx[: max(1, int(round(len(idx) * frac)))] if len(idx) > 1 else [])
        valid = np.sort(np.array(valid, dtype=np.int64))
        info = {"holdout": frac}
    train = np.setdiff1d(np.arange(n), valid)
    if len(train) == 0 or len(valid) == 0:
        raise BadInput("--data: too few images to split into train and held-out")
    return train, valid, info
