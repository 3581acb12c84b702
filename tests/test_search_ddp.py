"""A 2-process DDP search (gloo on CPU) launched with torchrun, as users run multi-GPU searches:
every rank holds the same controller and supernet after every few steps and ends on the same arch."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from search.distributed import (DistInfo, all_reduce_mean, all_reduce_sum, check_collective_device,  # noqa: E402
                                reduce_floats, reduce_mean_)

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_two_process_gloo_search_with_torchrun_keeps_ranks_identical(tmp_path):
    out, digests = tmp_path / "ddp", tmp_path / "digests"
    env = dict(os.environ, OMP_NUM_THREADS="1", LATBENCH_STATE_DIGEST=str(digests), LATBENCH_STATE_DIGEST_EVERY="2")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           "-m", "latbench", "search", "--target-ms", "84", "--steps", "10", "--width", "0.125", "--resolution", "16",
           "--batch-size", "8", "--checkpoint-every", "4", "--quiet", "--out", str(out), "--json"]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=str(REPO), env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    summary = json.loads(r.stdout)  # only rank 0 prints
    result = json.loads((out / "result.json").read_text())
    assert result["world_size"] == 2 and summary["indices"] == result["indices"]
    assert len(result["trajectory"]) == 10
    assert result["learning_rates"]["weights"]["global_batch"] == 16
    assert sorted(p.name for p in out.iterdir()) == ["result.json", "timing.json", "trajectory.png"]
    lines = [[json.loads(s) for s in (digests / f"rank{r}.jsonl").read_text().splitlines()] for r in (0, 1)]
    assert [d["step"] for d in lines[0]] == [2, 4, 6, 8, 10, "final"] == [d["step"] for d in lines[1]]
    for a, b in zip(*lines):
        a.pop("rank"), b.pop("rank")
        assert a == b, f"ranks differ at step {a['step']}"
    keys = set(lines[0][0])
    assert {"supernet", "policy", "weight_opt", "rl_opt", "baseline"} <= keys
    # the controller learns after the RL delay (25 %): its digest changes, on both ranks alike
    assert lines[0][1]["policy"] != lines[0][-2]["policy"]


def test_no_cpu_tensor_reaches_an_nccl_collective():
    nccl = DistInfo(world=2, rank=0, backend="nccl", device="cuda:0")
    for helper in (all_reduce_sum, all_reduce_mean):
        with pytest.raises(RuntimeError, match="collective on a cpu tensor in a nccl run"):
            helper(torch.zeros(2), nccl)
    gloo = DistInfo(world=2, rank=0, backend="gloo", device="cpu")
    check_collective_device(torch.zeros(2), gloo)  # CPU tensors on a CPU group are right
    one = DistInfo()  # one process: no collective, values unchanged
    t = torch.tensor([1.0, 3.0])
    assert reduce_mean_(t, one) is t and t.tolist() == [1.0, 3.0]
    assert reduce_floats([2.5, 4], one, "min") == [2.5, 4.0]


def test_collectives_go_through_the_checked_helpers():
    """torch.distributed is imported only by search/distributed.py, whose helpers check the device."""
    import ast

    offenders = []
    for path in (REPO / "search").rglob("*.py"):
        if path.name == "distributed.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [f"{node.module}.{a.name}" for a in node.names] + [node.module or ""]
            elif isinstance(node, ast.Attribute) and node.attr == "distributed" \
                    and isinstance(node.value, ast.Name) and node.value.id == "torch":
                names = ["torch.distributed"]
            offenders += [f"{path.relative_to(REPO)}:{node.lineno}: {n}" for n in names
                          if n.startswith("torch.distributed")]
    assert not offenders, offenders

