"""Content-addressed cache for converted models (ONNX, TFLite).

Layout: ``$LATBENCH_CACHE/<format>/<name>-<sha16>.<ext>``, where ``$LATBENCH_CACHE`` defaults to
``~/.cache/latbench``. The key hashes what determines the file's bytes: the network (the arch's
layers, resolution and input channels, or the op key), the batch, the weight seed, the builder
version and the converter's version. Files are written atomically (temp file + rename), so a
killed conversion leaves nothing behind and concurrent writers of one key are harmless. Beside each
file, ``<file>.sha256`` holds the digest of its bytes; a file that no longer matches it is rebuilt.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from functools import lru_cache
from importlib import metadata
from pathlib import Path

from ..arch import Arch
from ..fileio import atomic_write, atomic_write_text
from ..ops import Op, op_from_key

# Bump when the builders change what they emit: old cache entries stop matching.
BUILDER_VERSION = 1


def cache_root(cache_dir=None, fmt: str = "") -> Path:
    """`cache_dir` if given, else ``$LATBENCH_CACHE/<fmt>``, else ``~/.cache/latbench/<fmt>``."""
    if cache_dir is not None:
        return Path(cache_dir)
    root = os.environ.get("LATBENCH_CACHE") or Path.home() / ".cache" / "latbench"
    return Path(root) / fmt


@lru_cache(maxsize=None)
def dist_version(module: str) -> str:
    """Installed version of the distribution providing `module`, without importing it ('?' if unknown)."""
    for dist in metadata.packages_distributions().get(module, []):
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return "?"


def as_arch_or_op(obj):
    """An `Arch` or `Op` (an op key string is parsed)."""
    if isinstance(obj, str):
        return op_from_key(obj)
    if isinstance(obj, (Arch, Op)):
        return obj
    raise TypeError(f"expected an Arch, an Op or an op key, got {type(obj).__name__}")


def network_id(arch_or_op) -> dict:
    """What defines the network (names and provenance fields of an Arch do not)."""
    if isinstance(arch_or_op, Op):
        return {"op": arch_or_op.key}
    d = arch_or_op.to_dict()
    return {"resolution": d["resolution"], "in_channels": d["in_channels"], "layers": d["layers"]}


def content_key(arch_or_op, **extra) -> str:
    """sha256 (hex) of the network id, the builder version and `extra` (batch, versions, ...)."""
    blob = json.dumps({"net": network_id(arch_or_op), "builder": BUILDER_VERSION, **extra}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def cache_path(arch_or_op, root: Path, ext: str, **extra) -> Path:
    """``root/<readable name>-<first 16 hex of the key>.<ext>``."""
    name = arch_or_op.kind if isinstance(arch_or_op, Op) else arch_or_op.name
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", name)[:40] or "net"
    return Path(root) / f"{name}-{content_key(arch_or_op, **extra)[:16]}.{ext}"


def file_digest(path) -> str:
    """sha256 (hex) of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def digest_path(path) -> Path:
    """The sidecar holding the sha256 of a cached file's bytes as written: ``<file>.sha256``."""
    path = Path(path)
    return path.with_name(path.name + ".sha256")


def cached_file(path, write) -> Path:
    """`path` if it exists and its bytes still hash to the digest stored beside it (a cache hit), else
    `atomic_write(path, write)` and a fresh digest: a truncated, edited or swapped cache file (or one
    from before digests, or without its digest) is rebuilt, never loaded."""
    path = Path(path)
    if path.exists():
        try:
            want = digest_path(path).read_text().strip()
        except OSError:
            want = None
        try:
            if want and file_digest(path) == want:
                return path
        except OSError:
            pass
    atomic_write(path, write)
    atomic_write_text(digest_path(path), file_digest(path) + "\n")
    return path
