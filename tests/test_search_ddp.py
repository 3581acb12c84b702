"""A 2-process DDP search (gloo on CPU) launched with torchrun, as users run multi-GPU searches."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_two_process_gloo_search_with_torchrun(tmp_path):
    out = tmp_path / "ddp"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "latbench", "search", "--target-ms", "84", "--steps", "10", "--width", "0.125", "--resolution", "16",
           "--batch-size", "8", "--quiet", "--out", str(out), "--json"]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=str(REPO), env=env, timeout=240)
    assert r.returncode == 0, r.stderr[-3000:]
    summary = json.loads(r.stdout)  # only rank 0 prints
    result = json.loads((out / "result.json").read_text())
    assert result["world_size"] == 2 and summary["indices"] == result["indices"]
    assert len(result["trajectory"]) == 10
    assert sorted(p.name for p in out.iterdir()) == ["result.json", "trajectory.png"]  # no stray temp files
