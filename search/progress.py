"""The progress bar of a search: on stderr, rank 0 only, off with --quiet."""
from __future__ import annotations


def progress_bar(cfg, dist, desc: str, total: int | None):
    """A tqdm bar over `total` steps (None: unknown), or None when it should not show."""
    if not cfg.progress or not dist.is_main:
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="step", dynamic_ncols=True, leave=False)


def tick(bar, step: int, total: int, postfix) -> None:
    """Advance `bar` one step; every 10th and the last step show `postfix()` (a callable, so the text is
    only formatted when shown)."""
    if bar is None:
        return
    bar.update(1)
    if step % 10 == 0 or step == total - 1:
        bar.set_postfix_str(postfix())
