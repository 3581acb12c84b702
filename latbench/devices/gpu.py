"""The `gpu` device: PyTorch on CUDA, the TF-NAS Titan RTX setup.

Batch 32 by default, fp32 with TF32 off (cuDNN and matmul; Ampere and later would otherwise run
fp32 convolutions and matmuls in TF32, so "fp32" tables would not be fp32), cudnn.benchmark on.
Every CUDA call runs inside the measured GPU's device context: events and ``synchronize()``
otherwise go to the current device (GPU 0) and a worker for GPU 1 would time nothing.

Timing (recorded in the fingerprint):

- ``sync`` (default): each batch between two CUDA events, synchronised: per-batch latency;
- ``pipelined``: `pipeline_runs` batches back to back between one pair of events, the elapsed
  time divided by their number: throughput-style per-batch time, what TF-NAS's and OFA's GPU
  tables measure (the launch overhead of one batch overlaps the previous batch's kernels).

Profiling shards run one process per GPU (`process_shards`): threads share the GIL, which skews
launch-bound small ops. The prepared-model cache is bounded by the bytes the models hold on the
GPU (`prepared_nbytes`, `prepared_cache_bytes`), not by their count.

Clock pinning helpers (``device_scripts/gpu/lock_clocks.sh`` / ``reset_clocks.sh``) write what
they set to a state file that the fingerprint records (``clocks``) while it is in force.
"""
from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

from ..errors import BadInput
from .base import Device, Sample

TIMINGS = ("sync", "pipelined")
PIPELINE_RUNS = 10


def clock_state_dir() -> Path:
    """Where device_scripts/gpu/lock_clocks.sh records locked clocks (LATBENCH_GPU_STATE_DIR)."""
    return Path(os.environ.get("LATBENCH_GPU_STATE_DIR") or Path(tempfile.gettempdir()) / "latbench-gpu")


def locked_clocks(index: int) -> dict | None:
    """The clocks lock_clocks.sh set on GPU `index` ({"graphics_mhz", "memory_mhz", "persistence"}),
    or None when none is in force (never locked, or reset_clocks.sh ran)."""
    path = clock_state_dir() / f"gpu{index}.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def set_fp32(torch) -> dict:
    """Turn TF32 off for cuDNN convolutions and matmuls; returns the flags as now set."""
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    if hasattr(torch, "set_float32_matmul_precision"):
        torch.set_float32_matmul_precision("highest")
    return precision_flags(torch)


def precision_flags(torch) -> dict:
    return {"cuda_matmul_allow_tf32": bool(torch.backends.cuda.matmul.allow_tf32),
            "cudnn_allow_tf32": bool(torch.backends.cudnn.allow_tf32)}


class GpuDevice(Device):
    name = "gpu"
    runtime = "torch"
    process_shards = True  # profile_items runs one process per GPU

    def __init__(self, index: int = 0, batch: int = 32, timing: str = "sync", pipeline_runs: int = PIPELINE_RUNS,
                 cache_fraction: float = 0.25):
        if timing not in TIMINGS:
            raise BadInput(f"--gpu-timing: {timing!r} is not one of {', '.join(TIMINGS)}")
        self.index, self.batch, self.timing = index, batch, timing
        self.pipeline_runs = max(1, int(pipeline_runs))
        self.cache_fraction = cache_fraction

    def available(self):
        try:
            import torch
        except ImportError:
            return False, "PyTorch is not installed"
        if not torch.cuda.is_available():
            return False, f"no CUDA device (torch {torch.__version__}, built with CUDA {torch.version.cuda or 'none'})"
        if self.index >= torch.cuda.device_count():
            return False, f"GPU {self.index} does not exist ({torch.cuda.device_count()} visible)"
        return True, ""

    def _require(self):
        ok, why = self.available()
        if not ok:
            raise BadInput(f"--device gpu: {why}")

    def on_device(self):
        """The CUDA device context of this GPU (events, streams and synchronize() follow it)."""
        import torch
        return torch.cuda.device(self.index)

    def fingerprint(self) -> dict:
        import torch

        self._require()
        props = torch.cuda.get_device_properties(self.index)
        fp = {"device": "gpu", "model": props.name, "runtime": "torch", "runtime_version": torch.__version__,
              "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version(), "precision": "fp32",
              **set_fp32(torch), "cudnn_benchmark": True, "batch": self.batch, "timing": self.timing}
        if self.timing == "pipelined":
            fp["pipeline_runs"] = self.pipeline_runs
        clocks = locked_clocks(self.index)
        if clocks is not None:
            fp["clocks"] = clocks
        return fp

    def conditions(self) -> dict:
        try:
            import torch
            return {"temp_c": torch.cuda.temperature(self.index), "clock_mhz": torch.cuda.clock_rate(self.index)}
        except Exception:  # pynvml missing or unsupported: conditions are best effort
            return {}

    def prepare(self, target):
        import torch

        from ..build.torch_model import torch_module_and_inputs

        self._require()
        torch.backends.cudnn.benchmark = True
        set_fp32(torch)
        dev = torch.device("cuda", self.index)
        module, inputs = torch_module_and_inputs(target, batch=self.batch)
        with self.on_device():
            module = module.to(dev).eval()
            inputs = [x.to(dev) for x in inputs]
        return module, inputs

    # ------------------------------------------------------------------ memory-bounded cache
    @staticmethod
    def prepared_nbytes(prepared) -> int:
        """Bytes a prepared model holds on the GPU: parameters, buffers and inputs."""
        module, inputs = prepared
        tensors = list(module.parameters()) + list(module.buffers()) + list(inputs)
        return int(sum(t.numel() * t.element_size() for t in tensors))

    @property
    def prepared_cache_bytes(self) -> int:
        """Keep prepared models up to this many bytes (a fraction of the GPU's memory)."""
        import torch
        return int(torch.cuda.get_device_properties(self.index).total_memory * self.cache_fraction)

    # ------------------------------------------------------------------ timing
    def node_profile(self, target):
        from .node_profile import torch_module_profile

        module, inputs = self.prepare(target)
        with self.on_device():
            return torch_module_profile(module, inputs, cuda=True)

    def measure(self, prepared, runs: int, warmup: int, min_warmup_s: float = 0.0) -> Sample:
        import torch

        module, inputs = prepared
        with self.on_device(), torch.inference_mode():
            start = time.perf_counter()
            done = 0
            while done < warmup or time.perf_counter() - start < min_warmup_s:
                module(*inputs)
                done += 1
            torch.cuda.synchronize(self.index)
            samples = []
            t_all = time.perf_counter()
            if self.timing == "pipelined":
                k = self.pipeline_runs
                for _ in range(max(1, -(-runs // k))):
                    begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                    begin.record()
                    for _ in range(k):
                        module(*inputs)
                    end.record()
                    end.synchronize()
                    samples.append(begin.elapsed_time(end) / k)
                return Sample(samples_ms=samples, runs_per_sample=k, timed_s=time.perf_counter() - t_all)
            for _ in range(runs):
                begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                begin.record()
                module(*inputs)
                end.record()
                end.synchronize()
                samples.append(begin.elapsed_time(end))
        return Sample(samples_ms=samples, timed_s=time.perf_counter() - t_all)
