"""Measuring in worker processes: each item's rounds spread over N processes (DESIGN §5).

A process fixes things a round cannot vary: where the allocator put the model's weights and
buffers, which physical pages back them, how they alias in the caches. When that layout moves a
network's time by more than its round-to-round noise, every round measured in one process repeats
the same bias (pyperf runs benchmarks in many fresh worker processes for this reason). With
`WorkerPoolDevice`, round r of an item runs in worker (r + offset(item)) mod N: N rounds see N
processes, and the item's median is over their layouts.

Workers are `python -m latbench.devices.workers` children speaking pickled messages over their
stdin/stdout (the child's own prints go to stderr). Each builds the device from the same options
and keeps its own prepared models; the parent's device keeps the fingerprint, conditions and
node profiles.
"""
from __future__ import annotations

import hashlib
import json
import os
import pickle
import subprocess
import sys
import zlib
from collections import OrderedDict

from ..errors import BadInput, DeviceError
from .base import Device


class WorkerPoolDevice(Device):
    def __init__(self, spec: dict, workers: int, local: Device):
        self.spec, self.n, self.local = dict(spec), int(workers), local
        self.name, self.runtime, self.batch = local.name, local.runtime, local.batch
        self.supports_min_timed_s = getattr(local, "supports_min_timed_s", False)
        self._procs: list = []
        self._turn: dict = {}

    def available(self):
        return self.local.available()

    def fingerprint(self) -> dict:
        return self.local.fingerprint()  # the same measurement on the same scale: stores may mix them

    def conditions(self) -> dict:
        return self.local.conditions()

    def node_profile(self, target):
        return self.local.node_profile(target)

    def prepare(self, target):
        if hasattr(target, "to_dict"):  # an Arch: its content, not its name, identifies it
            blob = json.dumps(target.to_dict(), sort_keys=True).encode()
            key = "arch:" + hashlib.sha256(blob).hexdigest()[:16]
        else:
            key = str(getattr(target, "key", target))
        return (key, target)

    def _worker(self, key: str):
        turn = self._turn.get(key, 0)
        self._turn[key] = turn + 1
        if not self._procs:
            self._procs = [_start() for _ in range(self.n)]
        return self._procs[(turn + zlib.crc32(key.encode())) % self.n]

    def measure(self, prepared, runs: int, warmup: int, min_warmup_s: float = 0.0, **kwargs):
        key, target = prepared
        proc = self._worker(key)
        reply = _call(proc, ("measure", self.spec, key, target, runs, warmup, min_warmup_s, kwargs))
        reply.conditions = {**reply.conditions, "worker": self._procs.index(proc), "worker_pid": proc.pid}
        return reply

    def close(self) -> None:
        for p in self._procs:
            try:
                _send(p, ("quit",))
                p.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired, ValueError):
                p.kill()
        self._procs = []
        self.local.close()


def _start():
    return subprocess.Popen([sys.executable, "-m", "latbench.devices.workers"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE)


def _send(proc, msg) -> None:
    pickle.dump(msg, proc.stdin, protocol=pickle.HIGHEST_PROTOCOL)
    proc.stdin.flush()


def _call(proc, msg):
    try:
        _send(proc, msg)
        status, value = pickle.load(proc.stdout)
    except (OSError, EOFError, pickle.UnpicklingError) as exc:
        raise DeviceError(f"measurement worker {proc.pid} died ({type(exc).__name__}: {exc})") from None
    if status == "ok":
        return value
    raise (BadInput if status == "bad" else DeviceError)(value)


def serve(inp, out) -> None:
    """The worker loop: ("measure", spec, key, target, runs, warmup, min_warmup_s, kwargs) → Sample."""
    from . import open_device

    device, prepared = None, OrderedDict()
    while True:
        try:
            msg = pickle.load(inp)
        except EOFError:
            break
        if msg[0] == "quit":
            break
        _, spec, key, target, runs, warmup, min_warmup_s, kwargs = msg
        try:
            if device is None:
                device = open_device(spec["name"], spec.get("runtime"), spec.get("core"), spec.get("batch"),
                                     spec.get("benchmark_model"), spec.get("timing"), spec.get("serial"),
                                     **spec.get("extra", {}))
            if key not in prepared:
                prepared[key] = device.prepare(target)
                if len(prepared) > 64:
                    prepared.popitem(last=False)
            reply = ("ok", device.measure(prepared[key], runs, warmup, min_warmup_s, **kwargs))
        except BadInput as exc:
            reply = ("bad", str(exc))
        except Exception as exc:  # noqa: BLE001 — reported to the parent as a device failure
            reply = ("fail", f"{type(exc).__name__}: {exc}")
        pickle.dump(reply, out, protocol=pickle.HIGHEST_PROTOCOL)
        out.flush()
    if device is not None:
        device.close()


if __name__ == "__main__":
    channel = os.fdopen(os.dup(1), "wb")  # the parent's pipe; whatever the runtimes print goes to stderr
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    serve(sys.stdin.buffer, channel)
