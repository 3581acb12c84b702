"""ONNX Runtime sessions as latbench measures them, and the seeded inputs every runtime is fed."""
from __future__ import annotations

from functools import lru_cache

import numpy as np


def ort_session(onnx_path, profile_prefix: str | None = None):
    """(session, feeds): ONNX Runtime with all graph optimisations, 1 intra- and 1 inter-op thread,
    sequential; with `profile_prefix`, its own profiler on. Feeds are the seeded inputs."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if profile_prefix is not None:
        so.enable_profiling = True
        so.profile_file_prefix = profile_prefix
    sess = ort.InferenceSession(str(onnx_path), so, providers=["CPUExecutionProvider"])
    return sess, {i.name: random_input(i.shape) for i in sess.get_inputs()}


def random_input(shape) -> np.ndarray:
    shape = tuple(int(d) if isinstance(d, (int, np.integer)) and d > 0 else 1 for d in shape)
    return _random_array(shape)


@lru_cache(maxsize=64)
def _random_array(shape: tuple) -> np.ndarray:
    """The (seeded, read-only) input of a shape: made once, shared by every model taking that shape."""
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    x.flags.writeable = False
    return x
