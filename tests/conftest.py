import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def run_cli(*args, env=None, input=None):
    """Run the real `latbench` entry point in a subprocess (exit codes and stderr as users see them)."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "latbench", *map(str, args)], capture_output=True, text=True,
                          env=full_env, input=input, cwd=str(REPO))


@pytest.fixture
def cli():
    return run_cli


@pytest.fixture
def write_json(tmp_path):
    def _write(obj, name="arch.json"):
        p = tmp_path / name
        p.write_text(obj if isinstance(obj, str) else json.dumps(obj))
        return p
    return _write
