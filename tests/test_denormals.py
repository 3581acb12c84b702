"""flush_denormals(): PyTorch measurements run with subnormal floats flushed to zero.

A saturated squeeze-excite gate, e.g. sigmoid(−88) ≈ 6.1e-39, is a subnormal float that x86 cores
handle by a slow microcode assist (denormals.py). Checked in subprocesses: the setting is per
thread and sticks to the process, and the measuring thread is the one that prepares the model.
"""
from __future__ import annotations

import subprocess
import sys

SCRIPT = r"""
import sys, torch
if sys.argv[1] == "device":
    from latbench.devices.cpu import CpuDevice
    dev = CpuDevice("torch")
    run = dev.prepare("se:r=7:c=64:se=16:gate=sigmoid")
    run()
    print(dev.fingerprint()["denormals"])
gate = torch.sigmoid(torch.full((64,), -88.0))  # a subnormal unless flushed
tiny = torch.tensor([1e-39]) * 1.0            # a subnormal input (DAZ) and output (FTZ)
print(float(gate[0]), float(tiny[0]))
"""


def _run(mode: str) -> list[str]:
    out = subprocess.run([sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True, check=True)
    return out.stdout.strip().splitlines()


def test_torch_device_flushes_subnormals_in_the_measuring_thread():
    *state, values = _run("device")
    assert state == ["flushed to zero (FTZ+DAZ)"]
    assert [float(v) for v in values.split()] == [0.0, 0.0]


def test_without_the_device_subnormals_stay():
    gate, tiny = (float(v) for v in _run("plain")[-1].split())
    assert 0 < gate < 1.2e-38 and 0 < tiny < 1.2e-38  # what a network's SE gate passes on by default
