"""Checkpoint and resume: a search killed with SIGKILL and re-run with the same command ends with a
byte-identical result.json (wall-clock fields live in timing.json); mismatched options are refused."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TINY = ["--steps", "24", "--width", "0.125", "--resolution", "16", "--batch-size", "8", "--checkpoint-every", "4",
        "--quiet"]


def search_cmd(out, *extra):
    return [sys.executable, "-m", "latbench", "search", "--target-ms", "84", *TINY, "--out", str(out), *extra]


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=str(REPO), env=dict(os.environ, OMP_NUM_THREADS="1"))
    return r


def kill_after_checkpoint(cmd, folder: Path, step: int, timeout=300):
    """Start `cmd`, SIGKILL it once a checkpoint of `step` steps exists; its return code."""
    p = subprocess.Popen(cmd, cwd=str(REPO), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         env=dict(os.environ, OMP_NUM_THREADS="1"))
    t0 = time.time()
    while p.poll() is None and time.time() - t0 < timeout:
        if (folder / f"rank0-step{step}.pt").exists():
            p.send_signal(signal.SIGKILL)
            break
        time.sleep(0.02)
    return p.wait()


def test_kill_9_and_resume_gives_a_byte_identical_result(tmp_path):
    out = tmp_path / "run"
    r = run(search_cmd(out))
    assert r.returncode == 0, r.stderr
    reference = (out / "result.json").read_bytes()
    assert not (out / "checkpoint").exists()  # removed once the result is written
    assert "resumed_at_step" not in json.loads((out / "timing.json").read_text())
    shutil.rmtree(out)

    assert kill_after_checkpoint(search_cmd(out), out / "checkpoint", 8) == -signal.SIGKILL
    assert not (out / "result.json").exists()
    r = run(search_cmd(out))
    assert r.returncode == 0, r.stderr
    timing = json.loads((out / "timing.json").read_text())
    assert timing["resumed_at_step"] >= 8 and len(timing["steps"]) == 24
    assert (out / "result.json").read_bytes() == reference
    result = json.loads(reference)
    assert "wall_s" not in result and all("time_s" not in t for t in result["trajectory"])
    assert not (out / "checkpoint").exists()


def test_a_checkpoint_of_other_options_is_refused(tmp_path):
    out = tmp_path / "run"
    assert kill_after_checkpoint(search_cmd(out), out / "checkpoint", 4) == -signal.SIGKILL
    r = run(search_cmd(out, "--seed", "3"))
    assert r.returncode == 2
    line = r.stderr.strip().splitlines()[-1]
    assert "written by a search with other options: seed (0 there, 3 now)" in line and "delete" in line
    # options that do not change results may change: it resumes
    r = run(search_cmd(out, "--checkpoint-every", "5"))
    assert r.returncode == 0, r.stderr
    assert json.loads((out / "timing.json").read_text())["resumed_at_step"] >= 4
