"""Shipped reference architectures (latbench/archs/*.json), addressable by name, and the ARCH
argument every command takes: an arch file, a reference name, or a search's result.json."""
from __future__ import annotations

from pathlib import Path

from .arch import Arch, load_arch, parse_arch
from .errors import BadInput
from .fileio import read_json

# What `search/` writes (search.results); read here so that every command taking an ARCH takes a
# search result too, without the core layer importing the search package.
SEARCH_RESULT_FORMAT = "latbench-search-result/1"

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


def load_arch_or_result(path) -> Arch:
    """An Arch file, or a search's result.json (format latbench-search-result/1): its final arch."""
    path = Path(path)
    obj = read_json(path, "latbench-arch/1 or search result")
    if isinstance(obj, dict) and obj.get("format") == SEARCH_RESULT_FORMAT:
        if "arch" not in obj:
            raise BadInput(f"{path}: arch: missing (a search result names its final arch there)")
        return parse_arch(obj["arch"], f"{path}: arch")
    return parse_arch(obj, str(path))


def resolve_arch(name_or_path: str) -> Arch:
    """A path to an Arch JSON file or to a search's result.json (its final arch), or the name of a
    shipped reference arch (case/punctuation-insensitive)."""
    p = Path(name_or_path)
    if p.suffix == ".json" or p.exists():
        return load_arch_or_result(p)
    ref = reference_path(name_or_path)
    if ref is None:
        raise BadInput(f"{name_or_path}: no such file and no shipped reference arch of that name "
                       f"(known: {', '.join(reference_names())})")
    return load_arch(ref)
