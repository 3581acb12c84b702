"""The profile store: SQLite, one row per (fingerprint, key, round), committed as measured.

A killed run loses at most the round in flight; the next run reads `rounds_done` and continues.
Each measurement round keeps its raw samples and the conditions (temperature, frequency) seen
before and after it. Statistics are computed on read from all rounds, so re-measured items just
have more rounds.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from ..devices.base import Sample, fingerprint_id
from ..errors import BadInput
from ..fileio import short
from ..stats import level_ci_pct, summarize
from .store_file import WriterLock, open_store_db

SCHEMA = """
CREATE TABLE IF NOT EXISTS fingerprints (id TEXT PRIMARY KEY, json TEXT NOT NULL, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS items (
  fp TEXT NOT NULL, key TEXT NOT NULL, kind TEXT NOT NULL, meta TEXT NOT NULL,
  PRIMARY KEY (fp, key));
CREATE TABLE IF NOT EXISTS rounds (
  fp TEXT NOT NULL, key TEXT NOT NULL, round INTEGER NOT NULL,
  samples TEXT NOT NULL, runs_per_sample INTEGER NOT NULL, conditions TEXT NOT NULL,
  timed_s REAL NOT NULL, ts REAL NOT NULL,
  PRIMARY KEY (fp, key, round));
CREATE TABLE IF NOT EXISTS node_profiles (
  fp TEXT NOT NULL, key TEXT NOT NULL, round INTEGER NOT NULL, nodes TEXT NOT NULL, ts REAL NOT NULL,
  PRIMARY KEY (fp, key, round));
"""


class ProfileStore:
    """Measurements of one device fingerprint (others in the same file are refused unless asked for).

    With a `fingerprint` the store is opened for writing (created if missing); `lock=True` also takes
    the store's writer lock (`store_file.WriterLock`) for as long as it is open: what a measuring run
    does, so a second one on the same store stops with a one-line error before measuring anything."""

    def __init__(self, path, fingerprint: dict | None = None, fp_id: str | None = None, lock: bool = False):
        self.path = Path(path)
        self.lock = None
        self.db = open_store_db(path, SCHEMA, create=fingerprint is not None)
        try:
            if lock and str(path) != ":memory:":
                self.lock = WriterLock(self.path).acquire()
            if fingerprint is not None:
                self._enter(fingerprint)
            else:
                self._pick(fp_id)
        except BaseException:
            self.close()
            raise

    def _enter(self, fingerprint: dict) -> None:
        """Check that the store holds no other fingerprint and add this one, in one transaction: two
        processes with different fingerprints cannot both get in."""
        self.fp = fingerprint_id(fingerprint)
        self.db.execute("BEGIN IMMEDIATE")
        try:
            known = self.fingerprints()
            others = [k for k in known if k != self.fp]
            if others:
                theirs = known[others[0]]
                differ = sorted(k for k in set(theirs) | set(fingerprint) if theirs.get(k) != fingerprint.get(k))
                raise BadInput(
                    f"{self.path}: store holds measurements of another device fingerprint ({others[0]}: "
                    f"{_short(theirs)}); this device is {self.fp} ({_short(fingerprint)}), different in "
                    f"{', '.join(differ)}. Use another --db for this device.")
            if self.fp not in known:
                self.db.execute("INSERT INTO fingerprints VALUES (?,?,?)",
                                (self.fp, json.dumps(fingerprint, sort_keys=True), time.time()))
            self.db.commit()
        except BaseException:
            self.db.rollback()
            raise
        self.fingerprint = fingerprint

    def _pick(self, fp_id: str | None) -> None:
        known = self.fingerprints()
        if fp_id is None:
            if not known:
                raise BadInput(f"{self.path}: store is empty (run `latbench profile` first)")
            if len(known) > 1:
                raise BadInput(f"{self.path}: store holds {len(known)} fingerprints ({', '.join(known)}); pick one with --fingerprint")
            fp_id = next(iter(known))
        if fp_id not in known:
            raise BadInput(f"{self.path}: no fingerprint {fp_id} in store (has {', '.join(known) or 'none'})")
        self.fp = fp_id
        self.fingerprint = known[fp_id]

    def fingerprints(self) -> dict:
        out = {}
        for fp, text in self.db.execute("SELECT id, json FROM fingerprints"):
            out[fp] = self._json(text, f"fingerprint {short(fp)}")
            if not isinstance(out[fp], dict):
                raise BadInput(f"{self.path}: fingerprint {short(fp)}: corrupt row (not a JSON object)")
        return out

    def _json(self, text, what: str):
        """A JSON column of this store; a corrupt one is a one-line BadInput naming the store and row."""
        try:
            return json.loads(text)
        except (TypeError, ValueError) as exc:
            raise BadInput(f"{self.path}: {what}: corrupt row ({short(str(exc))})") from None

    # ------------------------------------------------------------------ writing
    def register(self, key: str, kind: str, meta: dict) -> None:
        """Add an item; an op measured again for another granularity or space (a stem conv is the same
        op at block and layer granularity, a 1×1 conv the same op in every space) is one measurement
        that now belongs to both: its meta gains `granularities` / `spaces` lists (`tags_of`)."""
        with self.db:
            row = self.db.execute("SELECT meta FROM items WHERE fp=? AND key=?", (self.fp, key)).fetchone()
            if row is None:
                self.db.execute("INSERT INTO items VALUES (?,?,?,?)", (self.fp, key, kind, json.dumps(meta)))
                return
            old = self._json(row[0], f"item {short(key)}")
            merged = _merge_tags(old, meta)
            if merged != old:
                self.db.execute("UPDATE items SET meta=? WHERE fp=? AND key=?", (json.dumps(merged), self.fp, key))

    def add_round(self, key: str, round_no: int, sample: Sample) -> None:
        with self.db:
            self.db.execute("INSERT OR REPLACE INTO rounds VALUES (?,?,?,?,?,?,?,?)",
                            (self.fp, key, round_no, json.dumps(sample.samples_ms), sample.runs_per_sample,
                             json.dumps(sample.conditions), sample.timed_s, time.time()))

    def drop_rounds(self, kind: str) -> int:
        """Forget the measured rounds of every item of `kind` (items and node profiles stay), so they
        are measured again; returns how many rounds were dropped."""
        with self.db:
            cur = self.db.execute("DELETE FROM rounds WHERE fp=? AND key IN (SELECT key FROM items WHERE fp=? AND kind=?)",
                                  (self.fp, self.fp, kind))
        return cur.rowcount

    def add_node_profile(self, key: str, round_no: int, nodes: list) -> None:
        with self.db:
            self.db.execute("INSERT OR REPLACE INTO node_profiles VALUES (?,?,?,?,?)",
                            (self.fp, key, round_no, json.dumps(nodes), time.time()))

    # ------------------------------------------------------------------ reading
    def rounds_done(self) -> dict:
        """{key: number of rounds stored}."""
        return dict(self.db.execute("SELECT key, COUNT(*) FROM rounds WHERE fp=? GROUP BY key", (self.fp,)))

    def last_round_times(self) -> dict:
        """{key: time.time() of its newest stored round}."""
        return dict(self.db.execute("SELECT key, MAX(ts) FROM rounds WHERE fp=? GROUP BY key", (self.fp,)))

    def samples(self, key: str) -> tuple[list, list]:
        rows = self.db.execute("SELECT samples, runs_per_sample FROM rounds WHERE fp=? AND key=? ORDER BY round",
                               (self.fp, key)).fetchall()
        xs, ws = [], []
        for s, w in rows:
            vals = self._json(s, f"rounds of {short(key)}")
            xs.extend(vals)
            ws.extend([w] * len(vals))
        return xs, ws

    def round_medians(self, key: str) -> list:
        """Median of each stored round of `key` (the noise floor compares rounds)."""
        import numpy as np

        return [float(np.median(json.loads(s))) for (s,) in self.db.execute(
            "SELECT samples FROM rounds WHERE fp=? AND key=? ORDER BY round", (self.fp, key))]

    def items(self, kind: str | None = None) -> dict:
        q = "SELECT key, kind, meta FROM items WHERE fp=?" + (" AND kind=?" if kind else "")
        args = (self.fp, kind) if kind else (self.fp,)
        return {k: {"kind": t, **self._json(m, f"item {short(k)}")} for k, t, m in self.db.execute(q, args)}

    def results(self, kind: str | None = None) -> dict:
        """{key: stats (ms, mad, p10, p90, cv, n) + rounds and ci95_pct (the 95 % CI half-width of its
        level from its round medians, stats.level_ci_pct; None with one round) + item meta} for items
        with at least one round."""
        out = {}
        for key, meta in self.items(kind).items():
            xs, ws = self.samples(key)
            if xs:
                medians = self.round_medians(key)
                out[key] = {**summarize(xs, ws), "rounds": len(medians), "ci95_pct": level_ci_pct(medians), **meta}
        return out

    def node_profiles(self, key: str) -> list:
        return [json.loads(r[0]) for r in self.db.execute(
            "SELECT nodes FROM node_profiles WHERE fp=? AND key=? ORDER BY round", (self.fp, key))]

    def timed_seconds(self) -> float:
        return float(self.db.execute("SELECT COALESCE(SUM(timed_s),0) FROM rounds WHERE fp=?", (self.fp,)).fetchone()[0])

    def timed_seconds_since(self, t0: float) -> tuple[int, float]:
        """(items, timed seconds) of the rounds stored at or after time.time() `t0`: one run's work."""
        n, s = self.db.execute("SELECT COUNT(DISTINCT key), COALESCE(SUM(timed_s),0) FROM rounds WHERE fp=? AND ts>=?",
                               (self.fp, t0)).fetchone()
        return int(n), float(s)

    def close(self) -> None:
        self.db.close()
        if self.lock is not None:
            self.lock.release()
            self.lock = None


_TAGS = {"granularity": "granularities", "space": "spaces"}


def tags_of(meta: dict, field: str) -> set:
    """Every value of `field` ("granularity" or "space") an item was registered with."""
    return set(meta.get(_TAGS[field], [])) | ({meta[field]} if meta.get(field) is not None else set())


def _merge_tags(old: dict, new: dict) -> dict:
    """`old` plus the granularity/space of `new` in list fields (the first registration's single
    fields stay as they were, so stores written before the lists existed read the same)."""
    merged = dict(old)
    for field, plural in _TAGS.items():
        known = tags_of(old, field)
        if new.get(field) is not None and new[field] not in known:
            merged[plural] = sorted(known | {new[field]})
    return merged


def _short(fp: dict) -> str:
    return ", ".join(str(fp.get(k)) for k in ("device", "runtime", "model") if fp.get(k) is not None)
