"""Files written atomically and JSON read defensively: the one place latbench touches its own files.

Every output (archs, tables, reports, plots, cached models, configs) goes through `atomic_write`:
a temp file in the same folder, then a rename, so a reader never sees a half-written file and a
killed run leaves the old file (or none). Errors become one-line `BadInput`s naming the path.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from .errors import BadInput

MAX_ECHO = 80  # characters of a user-supplied value echoed back in an error message


def short(value, limit: int = MAX_ECHO) -> str:
    """`repr(value)` cut to `limit` characters: errors echo what they reject, never megabytes of it."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path, write, replace: bool = True) -> Path:
    """Call ``write(tmp_path)`` on a temp file next to `path`, then rename it onto `path`.

    `replace=False`: first writer wins (the temp file is hard-linked; an existing `path` is kept), for
    files that concurrent processes may create at once with equal content.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise BadInput(f"{path}: cannot write ({exc.strerror or exc})") from None
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file normal permissions
        if replace:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)
            except FileExistsError:
                pass
    except OSError as exc:
        raise BadInput(f"{path}: cannot write ({exc.strerror or exc})") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def check_writable(path, option: str, folder: bool = False) -> Path:
    """Before any work starts: BadInput naming `option` when `path` (a file, or with `folder` a folder)
    cannot be written. Probes with a temp file in the nearest existing folder and removes it, so
    nothing is left behind (permission bits alone do not tell: root, read-only mounts, /proc)."""
    path = Path(path)
    if path.is_dir() and not folder:
        raise BadInput(f"{option}: {path}: is a folder, not a file")
    if path.exists() and not path.is_dir() and folder:
        raise BadInput(f"{option}: {path}: is a file, not a folder")
    probe = path if folder and path.is_dir() else path.parent
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise BadInput(f"{option}: {path}: cannot write ({probe} is not a folder)")
    try:
        fd, tmp = tempfile.mkstemp(dir=probe, prefix=".latbench-probe.", suffix=".tmp")
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        raise BadInput(f"{option}: {path}: cannot write ({exc.strerror or exc})") from None
    return path


def atomic_write_text(path, text: str, replace: bool = True) -> Path:
    """Write `text` (UTF-8) atomically; see `atomic_write`."""
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"), replace)


def read_json(path, what: str = "JSON"):
    """Parse a JSON file; unreadable, non-UTF-8, malformed or absurdly nested files are one-line BadInputs."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise BadInput(f"{path}: cannot read ({exc.strerror or exc})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadInput(f"{path}: not a {what} file (not UTF-8 text: byte {exc.start})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadInput(f"{path}: malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    except RecursionError:
        raise BadInput(f"{path}: JSON nested too deeply to be a {what} file") from None
