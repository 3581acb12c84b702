"""Imports run one way along the data flow (DESIGN §1): no cycles, no import of a later layer.

Walks every module of `latbench/` and `search/` with `ast` (function-level imports included: a lazy
import is still a dependency) and checks the graph against the layer order below.
"""
import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("latbench", "search")

# Layer order, earliest first; a module belongs to the first prefix that matches it (longest prefixes
# first inside one layer do not matter: prefixes of different layers never nest except where listed).
LAYERS = [
    ("core", ["latbench", "latbench.errors", "latbench.stats", "latbench.fileio", "latbench.arch", "latbench.ops",
              "latbench.cbc", "latbench.references"]),
    ("spaces", ["latbench.spaces"]),
    ("build", ["latbench.build"]),
    ("devices", ["latbench.devices"]),
    ("measure", ["latbench.measure"]),
    ("lut", ["latbench.lut"]),
    ("validation", ["latbench.validation"]),
    ("search", ["search"]),
    ("cli", ["latbench.cli", "latbench.__main__"]),
]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer_of(module: str) -> int:
    best, best_len = None, -1
    for i, (_, prefixes) in enumerate(LAYERS):
        for p in prefixes:
            if (module == p or module.startswith(p + ".")) and len(p) > best_len:
                best, best_len = i, len(p)
    if best is None:
        raise AssertionError(f"{module}: in no layer of tests/test_layering.py")
    return best


def imports_of(path: Path, module: str, known: set) -> set:
    """Modules of this repository that `path` imports (resolved to the longest known module name)."""
    tree = ast.parse(path.read_text(), str(path))
    is_pkg = path.name == "__init__.py"
    package = module if is_pkg else module.rpartition(".")[0]
    found = set()

    def add(name):
        while name and name not in known:
            name = name.rpartition(".")[0]
        if name and name != module:
            found.add(name)

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                add(a.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for a in node.names:  # `from pkg import submodule` depends on the submodule
                full = f"{target}.{a.name}"
                add(full if full in known else target)
    return found


def import_graph() -> dict:
    files = {module_name(p): p for pkg in PACKAGES for p in (REPO / pkg).rglob("*.py")}
    known = set(files)
    return {m: imports_of(p, m, known) for m, p in files.items()}


def _is_parent_package(a: str, b: str) -> bool:
    """Python runs a package's __init__ before its submodules; that edge is not a dependency."""
    return b.startswith(a + ".")


def test_no_import_of_a_later_layer():
    graph = import_graph()
    upward = sorted(f"{m} ({LAYERS[layer_of(m)][0]}) imports {d} ({LAYERS[layer_of(d)][0]})"
                    for m, deps in graph.items() for d in deps if layer_of(d) > layer_of(m))
    assert not upward, "imports against the data flow:\n" + "\n".join(upward)


def test_no_import_cycles():
    graph = {m: {d for d in deps if not _is_parent_package(d, m)} for m, deps in import_graph().items()}
    state, cycles = {}, []

    def visit(m, stack):
        state[m] = "open"
        stack.append(m)
        for d in sorted(graph.get(m, ())):
            if state.get(d) == "open":
                cycles.append(" -> ".join(stack[stack.index(d):] + [d]))
            elif d not in state:
                visit(d, stack)
        stack.pop()
        state[m] = "done"

    for m in sorted(graph):
        if m not in state:
            visit(m, [])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_generic_lut_format_names_no_space():
    """The table format prices block/layer tables by itself; space-specific keys come from the space."""
    assert not any(d.startswith("latbench.spaces") for d in import_graph()["latbench.lut.table"])


@pytest.mark.parametrize("src,expect", [("from .b import x", "pkg.b"), ("from . import b", "pkg.b"),
                                        ("import pkg.b.c", "pkg.b")])
def test_import_resolution(tmp_path, src, expect, monkeypatch):
    """The walker resolves relative and absolute imports to the repository's modules."""
    f = tmp_path / "a.py"
    f.write_text(src)
    monkeypatch.setattr(f"{__name__}.REPO", tmp_path)
    assert imports_of(f, "pkg.a", {"pkg", "pkg.a", "pkg.b"}) == {expect}


@pytest.mark.parametrize("package", PACKAGES)
def test_every_module_folder_is_a_regular_package(package):
    """`packages = find:` skips folders without `__init__.py`, so a wheel would lack them (a checkout
    still imports them as namespace packages, which hides the gap)."""
    missing = sorted(str(d.relative_to(REPO)) for d in (REPO / package).rglob("*")
                     if d.is_dir() and d.name != "__pycache__" and any(d.glob("*.py"))
                     and not (d / "__init__.py").exists())
    assert missing == []
