"""Shipped tables and loading a table by path or name.

The shipped tables live in `lut_tables/` at the top of the source tree; a wheel carries them as
`latbench/lut/tables/` (setup.py copies them at build time), so an installed latbench finds them
from any folder.
"""
from __future__ import annotations

from pathlib import Path

from ..errors import BadInput
from ..ops import GRANULARITIES
from ..fileio import short
from ..spaces import get_space, space_names
from .table import LatencyTable


def _lut_dir() -> Path:
    source_tree = Path(__file__).resolve().parents[2] / "lut_tables"
    return source_tree if source_tree.is_dir() else Path(__file__).resolve().parent / "tables"


LUT_DIR = _lut_dir()


def shipped_tables() -> list[str]:
    return sorted(p.name[: -len(".json")] for p in LUT_DIR.glob("*.json"))


def bind_space(table: LatencyTable) -> LatencyTable:
    """Check the spaces a table names (all known; a table keyed by one space's own keys names exactly
    one, checks its keys with it and prices through it, `LatencyTable.bind`); errors name the file."""
    spaces = table.data["spaces"]
    unknown = [n for n in spaces if n not in space_names()]
    if unknown:
        raise BadInput(f"{table.source}: spaces: unknown space {short(unknown[0])} (known: {', '.join(space_names())})")
    if table.granularity in GRANULARITIES:
        return table
    if len(spaces) != 1:
        raise BadInput(f"{table.source}: spaces: a {table.granularity} table must name exactly one space, "
                       f"got {len(spaces)}")
    try:
        space = get_space(spaces[0])
    except BadInput as exc:
        raise BadInput(f"{table.source}: spaces: {exc}") from None
    for key in table.entries:
        try:
            space.check_table_key(key, table.granularity)
        except BadInput as exc:
            raise BadInput(f"{table.source}: entries: {exc}") from None
    return table.bind(space)


def load_table(name_or_path, option: str = "--lut") -> LatencyTable:
    """A LUT file path, or the name of a shipped table (file name without .json); `option` names the
    command-line option in the error for neither."""
    p = Path(name_or_path)
    shipped = LUT_DIR / f"{name_or_path}.json"
    if p.exists() or p.suffix == ".json" and p.parent != Path("."):
        path = p
    elif shipped.exists():
        path = shipped
    elif p.suffix == ".json":
        path = p  # reports "cannot read"
    else:
        raise BadInput(f"{option}: {name_or_path}: no such file and no shipped table of that name "
                       f"(shipped: {', '.join(shipped_tables()) or 'none'})")
    return bind_space(LatencyTable.load(path))
