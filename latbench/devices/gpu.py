"""The `gpu` device: PyTorch on CUDA, the TF-NAS Titan RTX setup.

Batch 32 by default, fp32, cudnn.benchmark on, each timed run bracketed by CUDA events and
synchronised, reported as milliseconds per batch.
"""
from __future__ import annotations

import time

from ..errors import BadInput
from .base import Device, Sample


class GpuDevice(Device):
    name = "gpu"
    runtime = "torch"

    def __init__(self, index: int = 0, batch: int = 32):
        self.index, self.batch = index, batch

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

    def fingerprint(self) -> dict:
        import torch

        self._require()
        props = torch.cuda.get_device_properties(self.index)
        return {"device": "gpu", "model": props.name, "runtime": "torch", "runtime_version": torch.__version__,
                "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version(), "precision": "fp32",
                "cudnn_benchmark": True, "batch": self.batch}

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
        dev = torch.device("cuda", self.index)
        module, inputs = torch_module_and_inputs(target, batch=self.batch)
        module = module.to(dev).eval()
        inputs = [x.to(dev) for x in inputs]
        return module, inputs

    def node_profile(self, target):
        from .node_profile import torch_module_profile

        module, inputs = self.prepare(target)
        return torch_module_profile(module, inputs, cuda=True)

    def measure(self, prepared, runs: int, warmup: int, min_warmup_s: float = 0.0) -> Sample:
        import torch

        module, inputs = prepared
        with torch.inference_mode():
            start = time.perf_counter()
            done = 0
            while done < warmup or time.perf_counter() - start < min_warmup_s:
                module(*inputs)
                done += 1
            torch.cuda.synchronize(self.index)
            samples = []
            t_all = time.perf_counter()
            for _ in range(runs):
                begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                begin.record()
                module(*inputs)
                end.record()
                end.synchronize()
                samples.append(begin.elapsed_time(end))
        return Sample(samples_ms=samples, timed_s=time.perf_counter() - t_all)
