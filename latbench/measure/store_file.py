"""Opening a profile store's SQLite file safely: only latbench stores, one writer at a time.

A store latbench creates carries `PRAGMA application_id = APPLICATION_ID`. A file without it is
taken as a store only when it is empty or holds nothing but latbench's own tables with latbench's
columns (stores written before the id existed); it then gets the id. Anything else (another tool's
database, a store whose `items` table is someone else's, a text file) is refused before a single
table is added. `WriterLock` keeps a second measuring process off a store: two processes would
measure every item twice, pinned to the same core, and overwrite each other's rounds.
"""
from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from ..errors import BadInput

APPLICATION_ID = 0x4C744263  # "LtBc": a latbench profile store


def _cut(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _columns(db, table: str) -> tuple:
    return tuple(r[1] for r in db.execute(f"PRAGMA table_info({table})"))


def expected_tables(schema: str) -> dict:
    """{table: column names} that `schema` creates."""
    mem = sqlite3.connect(":memory:")
    try:
        mem.executescript(schema)
        names = [r[0] for r in mem.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return {t: _columns(mem, t) for t in names}
    finally:
        mem.close()


def open_store_db(path, schema: str, create: bool) -> sqlite3.Connection:
    """A connection to the latbench store at `path` with `schema` in place; one-line BadInputs for a
    path that cannot be opened, a missing store (unless `create`) and a file that is not a store."""
    memory = str(path) == ":memory:"
    if not memory:
        path = Path(path)
        if path.is_dir():
            raise BadInput(f"{path}: is a folder, not a profile store")
        if not path.exists():
            if not create:
                raise BadInput(f"{path}: no such profile store")
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise BadInput(f"{path}: cannot create the profile store ({exc.strerror or exc})") from None
    try:
        db = sqlite3.connect(str(path), timeout=60)
        app_id = db.execute("PRAGMA application_id").fetchone()[0]
        present = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")
                   if not r[0].startswith("sqlite_")}
        columns = {t: _columns(db, t) for t in present}
    except sqlite3.OperationalError as exc:
        raise BadInput(f"{path}: cannot open the profile store ({exc})") from None
    except sqlite3.DatabaseError as exc:
        raise BadInput(f"{path}: not a latbench profile store (not an SQLite database: {exc})") from None
    want = expected_tables(schema)
    try:
        _check_is_store(path, app_id, present, columns, want)
        if app_id != APPLICATION_ID and not create and not present:
            raise BadInput(f"{path}: store is empty (run `latbench profile` first)")
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable across kill -9, cheap commits
        if set(want) - present or app_id != APPLICATION_ID:
            db.executescript(schema)
            db.execute(f"PRAGMA application_id={APPLICATION_ID}")
    except sqlite3.OperationalError as exc:
        db.close()
        raise BadInput(f"{path}: cannot write the profile store ({exc})") from None
    except BaseException:
        db.close()
        raise
    return db


def _check_is_store(path, app_id: int, present: set, columns: dict, want: dict) -> None:
    if app_id not in (0, APPLICATION_ID):
        raise BadInput(f"{path}: not a latbench profile store (another application's SQLite file, "
                       f"application_id {app_id:#x}); use another --db")
    if app_id == 0 and present and ("fingerprints" not in present or present - set(want)):
        others = sorted(present - set(want)) or sorted(present)
        raise BadInput(f"{path}: not a latbench profile store (it holds table(s) "
                       f"{_cut(', '.join(others))}); use another --db")
    for table in sorted(present & set(want)):
        if columns[table] != want[table]:
            raise BadInput(f"{path}: not a latbench profile store: its table {table} has columns "
                           f"{_cut(', '.join(columns[table]))}, a store's has {', '.join(want[table])}")


class WriterLock:
    """An exclusive lock on `<store>.lock` (flock: released by the kernel when the holder dies, so a
    killed run never leaves a stale lock). The file holds the holder's pid for the error message."""

    def __init__(self, store_path):
        self.store_path = Path(store_path)
        self.path = self.store_path.with_name(self.store_path.name + ".lock")
        self.fd = None

    def acquire(self) -> "WriterLock":
        import fcntl

        while True:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
            except OSError as exc:
                raise BadInput(f"{self.store_path}: cannot lock the profile store ({exc.strerror or exc})") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
                os.close(fd)
                raise BadInput(f"{self.store_path}: another latbench process (pid {holder}) is measuring into "
                               "this store; wait for it to finish or use another --db") from None
            try:  # the holder before us may have removed the file between our open and our lock
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self.fd = fd
        return self

    def release(self) -> None:
        if self.fd is None:
            return
        try:
            os.unlink(self.path)  # while still holding it: a waiting opener sees another inode and retries
        except OSError:
            pass
        os.close(self.fd)
        self.fd = None
