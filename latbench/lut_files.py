"""Shipped tables (lut_tables/*.json at the repository root) and loading a table by path or name."""
from __future__ import annotations

from pathlib import Path

from .errors import BadInput
from .lut import LatencyTable

LUT_DIR = Path(__file__).resolve().parents[1] / "lut_tables"


def shipped_tables() -> list[str]:
    return sorted(p.name[: -len(".json")] for p in LUT_DIR.glob("*.json"))


def load_table(name_or_path, option: str = "--lut") -> LatencyTable:
    """A LUT file path, or the name of a shipped table (file name without .json); `option` names the
    command-line option in the error for neither."""
    p = Path(name_or_path)
    if p.exists() or p.suffix == ".json" and p.parent != Path("."):
        return LatencyTable.load(p)
    shipped = LUT_DIR / f"{name_or_path}.json"
    if shipped.exists():
        return LatencyTable.load(shipped)
    if p.suffix == ".json":
        return LatencyTable.load(p)  # reports "cannot read"
    raise BadInput(f"{option}: {name_or_path}: no such file and no shipped table of that name "
                   f"(shipped: {', '.join(shipped_tables()) or 'none'})")
