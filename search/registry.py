"""Search algorithms by name. Runners load lazily; an algorithm plugs in with one `register` call
(or one line in ALGORITHMS): a runner takes a SearchContext and returns the result dict.

`tfnas` (DESIGN 8.2) is a known name without a runner yet. A runner's module may define
`prepare_context(cfg)`; it then builds the SearchContext in place of `context.prepare`.
"""
from __future__ import annotations

import importlib

from latbench.errors import BadInput

ALGORITHMS = {
    "tunas": "search.tunas:run_tunas",
    "random": "search.random_search:run_random_search",
    "tfnas": None,
    "netadaptv2": "search.netadaptv2.runner:run_netadaptv2",
}


def register(name: str, target) -> None:
    """Register a runner: a callable or "module:function" (imported on first use)."""
    ALGORITHMS[name] = target


def algorithm_names() -> list[str]:
    return list(ALGORITHMS)


def check_algorithm(name: str) -> None:
    """BadInput for unknown names and for names without a runner yet (imports nothing)."""
    if name not in ALGORITHMS:
        raise BadInput(f"--algo: unknown algorithm {name!r} (known: {', '.join(ALGORITHMS)})")
    target = ALGORITHMS[name]
    if target is None:
        ready = ", ".join(n for n, t in ALGORITHMS.items() if t is not None)
        raise BadInput(f"--algo: {name} is not implemented yet (available: {ready})")


def get_runner(name: str):
    check_algorithm(name)
    target = ALGORITHMS[name]
    if callable(target):
        return target
    module, _, func = target.partition(":")
    return getattr(importlib.import_module(module), func)


def run_search(cfg, write: bool = True) -> dict:
    """Prepare the context, run the algorithm, write result.json + plot (rank 0); return the result."""
    from .context import check_config, prepare

    check_config(cfg)
    check_algorithm(cfg.algo)
    runner = get_runner(cfg.algo)
    own = getattr(importlib.import_module(runner.__module__), "prepare_context", None)
    ctx = (own or prepare)(cfg)
    from .distributed import barrier, shutdown

    try:
        result = runner(ctx)
        if write and ctx.dist.is_main:
            from .results import write_results

            result["files"] = write_results(cfg.out, result)
        barrier(ctx.dist)  # ranks leave together: tearing gloo down while a peer still works aborts it
        return result
    finally:
        shutdown(ctx.dist)
