"""The `cpu` device: this machine's CPU, one thread, process pinned to one core.

Runtimes: `ort` (ONNX Runtime, all graph optimisations, 1 intra-op + 1 inter-op thread; default),
`torch` (PyTorch, 1 thread, steady heap and subnormals flushed: see allocator.py and
denormals.py; TF-NAS's Xeon setup) and `tflite` (LiteRT interpreter with XNNPACK, 1 thread).
Batch 1. Models are built from Arch/Op by latbench.build and cached on disk.

Timing `plain` (default) times runs one by one; `paired` times each block of runs between two
runs of a fixed reference workload and scales it to the reference's calibrated speed (see
latbench.devices.timing): use it on shared hosts whose speed jumps while measuring.
"""
from __future__ import annotations

import os
import platform

import numpy as np

from ..errors import BadInput, DeviceError
from . import hostinfo
from .allocator import steady_heap
from .base import Device, Sample
from .denormals import flush_denormals
from .ort_runtime import ort_session, random_input
from .timing import Reference, time_callable, time_paired

RUNTIMES = ("ort", "torch", "tflite")
TIMINGS = ("plain", "paired")


class CpuDevice(Device):
    name = "cpu"

    def __init__(self, runtime: str = "ort", core: int | None = None, batch: int = 1, timing: str = "plain"):
        if runtime not in RUNTIMES:
            raise BadInput(f"--runtime: cpu supports {', '.join(RUNTIMES)}, got {runtime!r}")
        if timing not in TIMINGS:
            raise BadInput(f"--timing: expected {' or '.join(TIMINGS)}, got {timing!r}")
        self.timing = timing
        self._reference = None
        allowed = hostinfo.allowed_cores()
        if core is None:
            core = allowed[-1]  # the last allowed core: usually the least busy with system work
        if core not in allowed:
            raise BadInput(f"--core: core {core} is not available to this process (allowed: {allowed})")
        self.runtime, self.core, self.batch = runtime, core, batch
        self._saved_affinity = None

    # -------------------------------------------------------------------------------- identity
    def available(self):
        try:
            self._runtime_version()
        except ImportError as exc:
            return False, f"runtime {self.runtime} is not installed ({exc.name}); pip install 'latbench[tflite]'"
        return True, ""

    def _runtime_version(self) -> str:
        if self.runtime == "ort":
            import onnxruntime
            return onnxruntime.__version__
        if self.runtime == "torch":
            import torch
            return torch.__version__
        from ..build.tflite_convert import interpreter_version
        return interpreter_version()

    def _base_fingerprint(self) -> dict:
        return {"device": "cpu", "model": hostinfo.cpu_model(), "machine": platform.machine(),
                "runtime": self.runtime, "runtime_version": self._runtime_version(), "threads": 1,
                "affinity": "one core", "governor": hostinfo.governor(self.core), "batch": self.batch,
                **({"heap": steady_heap(), "denormals": flush_denormals()} if self.runtime == "torch" else {})}

    def fingerprint(self) -> dict:
        fp = self._base_fingerprint()
        if self.timing == "paired":  # another scale: paired and plain measurements never mix
            ref = self.reference()
            fp.update(timing="paired", reference=ref.key, reference_ms=ref.ms)
        return fp

    def reference(self) -> Reference:
        """The paired-timing reference, prepared and calibrated (once per machine) on first use."""
        if self._reference is None:
            from .calibration import REFERENCE_KEY, reference_ms

            run = self.prepare(REFERENCE_KEY)
            self._reference = Reference(run, reference_ms(self._base_fingerprint(), run), REFERENCE_KEY)
        return self._reference

    def conditions(self) -> dict:
        return hostinfo.conditions(self.core)

    # -------------------------------------------------------------------------------- running
    def pin(self) -> None:
        if self._saved_affinity is None:
            self._saved_affinity = os.sched_getaffinity(0)
            os.sched_setaffinity(0, {self.core})

    def close(self) -> None:
        if self._saved_affinity is not None:
            os.sched_setaffinity(0, self._saved_affinity)
            self._saved_affinity = None

    def prepare(self, target):
        """Return a zero-argument callable that runs one inference of `target` (Arch or Op)."""
        self.pin()
        try:
            return getattr(self, f"_prepare_{self.runtime}")(target)
        except (BadInput, DeviceError):
            raise
        except Exception as exc:  # a runtime refusing a model is a device failure, not a crash
            raise DeviceError(f"{self.runtime}: cannot build/load model: {type(exc).__name__}: {exc}") from exc

    def _prepare_ort(self, target):
        from ..build.onnx_export import to_onnx

        sess, feeds = ort_session(to_onnx(target, batch=self.batch))
        return lambda: sess.run(None, feeds)

    def _prepare_torch(self, target):
        import torch

        from ..build.torch_model import torch_module_and_inputs

        _torch_setup(torch)
        module, inputs = torch_module_and_inputs(target, batch=self.batch)

        def run():
            with torch.inference_mode():
                module(*inputs)
        return run

    def _prepare_tflite(self, target):
        from ..build.tflite_convert import tflite_interpreter, to_tflite

        interp = tflite_interpreter(to_tflite(target, batch=self.batch), threads=1)
        for d in interp.get_input_details():
            interp.set_tensor(d["index"], random_input(d["shape"]))
        return interp.invoke

    def node_profile(self, target):
        from .node_profile import ort_node_profile, torch_module_profile

        self.pin()
        reference = self.reference() if self.timing == "paired" else None
        if self.runtime == "ort":
            from ..build.onnx_export import to_onnx
            return ort_node_profile(to_onnx(target, batch=self.batch), reference=reference)
        if self.runtime == "torch":
            import torch

            from ..build.torch_model import torch_module_and_inputs
            _torch_setup(torch)
            return torch_module_profile(*torch_module_and_inputs(target, batch=self.batch), reference=reference)
        return None  # the LiteRT Python interpreter has no per-op profiler

    # measure() takes min_timed_s: the protocol sizes a round it has no timing for (the first) to last
    # Protocol.min_round_s from the warm-up's own speed, as it sizes later rounds from earlier ones
    supports_min_timed_s = True

    def measure(self, prepared, runs: int, warmup: int, min_warmup_s: float = 0.0, min_timed_s: float = 0.0,
                max_runs: int | None = None) -> Sample:
        if self.timing == "paired":
            return time_paired(prepared, self.reference(), runs, warmup, min_warmup_s, min_timed_s, max_runs)
        return time_callable(prepared, runs, warmup, min_warmup_s, min_timed_s, max_runs)


def _torch_setup(torch) -> None:
    """One thread, a heap that does not mmap/munmap every large activation (see allocator), and
    subnormal floats flushed to zero (see denormals)."""
    torch.set_num_threads(1)
    steady_heap()
    flush_denormals()
