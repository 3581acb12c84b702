"""Checkpoint and resume for any search runner, plus a per-rank state digest for debugging DDP.

A runner hands `Checkpointer` its state by name: `shared` (identical on every rank: supernet,
optimizers, controller, baselines) and `per_rank` (this process's own: data streams, sampling
generators). Items may be modules (DDP-wrapped or not), optimizers, tensors (restored in place),
torch / numpy generators, anything with state_dict/load_state_dict, or plain objects (their
attributes). The global torch / numpy / Python RNG states are always included.

    ck = Checkpointer(ctx, shared={...}, per_rank={...})
    start, trajectory, elapsed = ck.resume()          # (0, [], 0.0) on a fresh start
    for step in range(start, cfg.steps):
        ...
        ck.step_done(step, trajectory, elapsed)       # saves every cfg.checkpoint_every steps

Files: OUT/checkpoint/rank{R}-step{S}.pt, one per rank, written atomically; after all ranks have
written step S (a barrier) each deletes its older ones, so the newest step every rank has always
survives a kill. On start, the ranks agree on that step (min over ranks) and load it; a
checkpoint written with other options is an error naming them (another --out, or delete it).
`remove(out)` deletes the folder once the results are written (search.registry.run_search).

Debugging: with LATBENCH_STATE_DIGEST=DIR every rank appends to DIR/rank{R}.jsonl a SHA-256 of each
shared item every LATBENCH_STATE_DIGEST_EVERY steps (default 1) and at the end, so a test or a
user can check that every rank holds the same controller and weights.
"""
from __future__ import annotations

import copy
import hashlib
import json
import os
import random
import re
import shutil
from pathlib import Path

import numpy as np
import torch

from latbench.errors import BadInput
from latbench.fileio import atomic_write

from .distributed import barrier, reduce_floats, unwrap

FORMAT = "latbench-search-checkpoint/1"
FOLDER = "checkpoint"
# options that do not change what a search computes: a resume may change them
UNFINGERPRINTED = ("progress", "checkpoint_every", "workers", "out")
DIGEST_ENV, DIGEST_EVERY_ENV = "LATBENCH_STATE_DIGEST", "LATBENCH_STATE_DIGEST_EVERY"


def get_state(obj, clone: bool = True):
    """`obj`'s state (a copy unless `clone` is False: then only for reading at once)."""
    if not clone and isinstance(obj, torch.nn.Module):
        return unwrap(obj).state_dict()
    if not clone and isinstance(obj, torch.Tensor):
        return obj.detach()
    if isinstance(obj, torch.nn.Module):
        return copy.deepcopy(unwrap(obj).state_dict())
    if isinstance(obj, torch.Tensor):
        return obj.detach().clone()
    if isinstance(obj, torch.Generator):
        return obj.get_state()
    if isinstance(obj, np.random.Generator):
        return copy.deepcopy(obj.bit_generator.state)
    if hasattr(obj, "state_dict") and hasattr(obj, "load_state_dict"):
        return copy.deepcopy(obj.state_dict())
    return copy.deepcopy(vars(obj))


def set_state(obj, state) -> None:
    if isinstance(obj, torch.nn.Module):
        unwrap(obj).load_state_dict(state)
    elif isinstance(obj, torch.Tensor):
        with torch.no_grad():
            obj.copy_(state)
    elif isinstance(obj, torch.Generator):
        obj.set_state(state)
    elif isinstance(obj, np.random.Generator):
        obj.bit_generator.state = state
    elif hasattr(obj, "state_dict") and hasattr(obj, "load_state_dict"):
        obj.load_state_dict(state)
    else:
        vars(obj).update(state)


def _global_rng() -> dict:
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_global_rng(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def fingerprint(ctx) -> dict:
    """What must match for a checkpoint to continue this search: the options that change results + world size."""
    cfg = {k: v for k, v in ctx.cfg.as_dict().items() if k not in UNFINGERPRINTED}
    return {"config": json.loads(json.dumps(cfg, default=str)), "world_size": ctx.dist.world}


def _hash_state(state, h) -> None:
    if isinstance(state, torch.Tensor):
        t = state.detach().cpu().contiguous()
        h.update(f"{t.dtype}{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    elif isinstance(state, dict):
        for k in sorted(state, key=str):
            h.update(repr(k).encode())
            _hash_state(state[k], h)
    elif isinstance(state, (list, tuple)):
        for v in state:
            _hash_state(v, h)
    else:
        h.update(repr(state).encode())


def digest(obj) -> str:
    h = hashlib.sha256()
    _hash_state(get_state(obj, clone=False), h)
    return h.hexdigest()[:16]


class Checkpointer:
    def __init__(self, ctx, shared: dict, per_rank: dict):
        self.ctx, self.shared, self.per_rank = ctx, shared, per_rank
        self.every = int(getattr(ctx.cfg, "checkpoint_every", 0) or 0)
        self.folder = Path(ctx.cfg.out) / FOLDER
        self.rank = ctx.dist.rank
        self.digest_dir = os.environ.get(DIGEST_ENV)
        self.digest_every = int(os.environ.get(DIGEST_EVERY_ENV, "1") or 1)
        self.resumed_at = 0

    def _path(self, step: int) -> Path:
        return self.folder / f"rank{self.rank}-step{step}.pt"

    def _steps(self) -> list:
        if not self.folder.is_dir():
            return []
        pat = re.compile(rf"rank{self.rank}-step(\d+)\.pt$")
        return sorted(int(m.group(1)) for f in self.folder.iterdir() if (m := pat.match(f.name)))

    def resume(self):
        """(first step to run, trajectory so far, seconds already spent): from the newest checkpoint
        every rank has, or (0, [], 0.0)."""
        mine = self._steps()
        step = int(reduce_floats([mine[-1] if mine else 0], self.ctx.dist, "min")[0])
        if step == 0:
            return 0, [], 0.0
        path = self._path(step)
        if step not in mine:
            raise BadInput(f"{path}: missing (the other ranks resume at step {step}); the checkpoint folder "
                           f"{self.folder} is incomplete: delete it to start over")
        try:
            ck = torch.load(path, map_location="cpu", weights_only=False)
        except Exception as exc:
            raise BadInput(f"{path}: cannot read checkpoint ({type(exc).__name__}: {exc})") from None
        if not isinstance(ck, dict) or ck.get("format") != FORMAT:
            raise BadInput(f"{path}: not a {FORMAT} file")
        want, have = fingerprint(self.ctx), ck["fingerprint"]
        if want != have:
            diff = sorted(k for k in set(want["config"]) | set(have["config"])
                          if want["config"].get(k) != have["config"].get(k))
            if want["world_size"] != have["world_size"]:
                diff.append("world size")

            def value(fp, k):
                return fp["world_size"] if k == "world size" else fp["config"].get(k)

            shown = ", ".join(f"{k} ({value(have, k)!r} there, {value(want, k)!r} now)" for k in diff[:4])
            raise BadInput(f"{path}: written by a search with other options: {shown}; use another --out or delete "
                           f"{self.folder} to start over")
        for group in ("shared", "per_rank"):
            items = getattr(self, group)
            for name, obj in items.items():
                if name not in ck[group]:
                    raise BadInput(f"{path}: has no state for {name!r} ({group})")
                set_state(obj, ck[group][name])
        _set_global_rng(ck["rng"])
        self.resumed_at = step
        return step, list(ck["trajectory"]), float(ck["elapsed"])

    def save(self, completed: int, trajectory: list, elapsed: float) -> Path:
        state = {"format": FORMAT, "fingerprint": fingerprint(self.ctx), "step": completed,
                 "trajectory": trajectory, "elapsed": elapsed,
                 "shared": {k: get_state(v) for k, v in self.shared.items()},
                 "per_rank": {k: get_state(v) for k, v in self.per_rank.items()}, "rng": _global_rng()}
        path = atomic_write(self._path(completed), lambda tmp: torch.save(state, tmp))
        barrier(self.ctx.dist)  # every rank has written `completed`: older ones may go
        for old in self._steps():
            if old < completed:
                self._path(old).unlink(missing_ok=True)
        return path

    def step_done(self, step: int, trajectory: list, elapsed: float) -> None:
        """Call after step `step` (0-based) is complete and recorded in `trajectory`."""
        completed, total = step + 1, self.ctx.cfg.steps
        if self.every and completed % self.every == 0 and completed < total:
            self.save(completed, trajectory, elapsed)
        if self.digest_dir and (completed % self.digest_every == 0 or completed == total):
            self.write_digest(completed)

    def write_digest(self, completed: int, extra: dict | None = None) -> None:
        line = {"step": completed, "rank": self.rank, **{k: digest(v) for k, v in self.shared.items()},
                **(extra or {})}
        Path(self.digest_dir).mkdir(parents=True, exist_ok=True)
        with open(Path(self.digest_dir) / f"rank{self.rank}.jsonl", "a") as f:
            f.write(json.dumps(line, sort_keys=True) + "\n")


def remove(out, dist) -> None:
    """Delete OUT/checkpoint once the search's results are safe: each rank its own files (node-local
    folders too), then rank 0 the folder."""
    folder = Path(out) / FOLDER
    if folder.is_dir():
        for f in folder.glob(f"rank{dist.rank}-step*.pt"):
            f.unlink(missing_ok=True)
    barrier(dist)
    if dist.is_main:
        shutil.rmtree(folder, ignore_errors=True)
    else:
        try:
            folder.rmdir()  # a node-local folder, now empty
        except OSError:
            pass


def write_final_digest(result: dict, dist) -> None:
    """With LATBENCH_STATE_DIGEST set: each rank's final arch, as a digest line (step "final")."""
    where = os.environ.get(DIGEST_ENV)
    if not where:
        return
    arch = json.dumps({"indices": result.get("indices"), "arch": result.get("arch")}, sort_keys=True)
    Path(where).mkdir(parents=True, exist_ok=True)
    with open(Path(where) / f"rank{dist.rank}.jsonl", "a") as f:
        f.write(json.dumps({"step": "final", "rank": dist.rank,
                            "arch": hashlib.sha256(arch.encode()).hexdigest()[:16]}) + "\n")
