"""Re-levelling a table: measure its anchors now, multiply it by the level change (lut.anchors).

The anchors are a handful of items, so this takes seconds where rebuilding a table takes minutes;
it corrects the host's overall speed since the table's sitting, not its per-op shape.
"""
from __future__ import annotations

from ..errors import BadInput
from ..measure.protocol import run_items
from .anchors import anchor_items, level_change, relevelled


def relevel_table(table, device, store, protocol, progress: bool = True) -> tuple[dict, dict]:
    """(re-levelled table data, the level change) from `table`'s anchors measured on `device` into
    `store` (a store of `device`'s fingerprint); closes the device."""
    items = anchor_items(table)
    if not items:
        raise BadInput(f"{table.source}: anchors: the table keeps no anchors to re-level from (tables built by "
                       "this version's build-lut keep them; or recalibrate with profile --archs 30 and "
                       "build-lut --prior-lut)")
    try:
        run_items(device, items, store, protocol, progress=progress, desc="relevel")
    finally:
        device.close()
    change = level_change(table, store)
    other = store.fp != table.data.get("fingerprint_id")
    return relevelled(table, change, store, store.fingerprint if other else None), change
