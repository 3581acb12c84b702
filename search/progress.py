"""The progress bar of a search: on stderr, rank 0 only, off with --quiet."""
from __future__ import annotations


def progress_bar(cfg, dist, desc: str, total: int | None = None):
    """A tqdm bar over `total` (default cfg.steps) steps, or None when it should not show."""
    if not cfg.progress or not dist.is_main:
        return None
    from tqdm import tqdm

    return tqdm(total=cfg.steps if total is None else total, desc=desc, unit="step", dynamic_ncols=True, leave=False)
