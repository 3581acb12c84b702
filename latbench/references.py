"""Shipped reference architectures (latbench/archs/*.json), addressable by name."""
from __future__ import annotations

from pathlib import Path

from .arch import Arch, load_arch
from .errors import BadInput

ARCH_DIR = Path(__file__).parent / "archs"


def _norm(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


def reference_names() -> list[str]:
    return sorted(p.stem for p in ARCH_DIR.glob("*.json"))


def reference_path(name: str) -> Path | None:
    want = _norm(name)
    for p in ARCH_DIR.glob("*.json"):
        if _norm(p.stem) == want:
            return p
    return None


def resolve_arch(name_or_path: str) -> Arch:
    """A path to an Arch JSON file, or the name of a shipped reference arch (case/punctuation-insensitive)."""
    p = Path(name_or_path)
    if p.suffix == ".json" or p.exists():
        return load_arch(p)
    ref = reference_path(name_or_path)
    if ref is None:
        raise BadInput(f"{name_or_path}: no such file and no shipped reference arch of that name "
                       f"(known: {', '.join(reference_names())})")
    return load_arch(ref)
