"""Search algorithms by name. Each is a runner ("module:function", taking a SearchContext and returning
the result dict) and its config class ("module:Class", a SearchConfig subclass holding its own knobs),
both imported on first use; an algorithm plugs in with one `register` call or one line in ALGORITHMS.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass

from latbench.errors import BadInput


@dataclass(frozen=True)
class Algorithm:
    runner: str | None  # "module:function"; None: a known name without a runner yet
    config: str = "search.config:SearchConfig"


ALGORITHMS = {
    "tunas": Algorithm("search.tunas.runner:run_tunas", "search.tunas.config:TunasConfig"),
    "random": Algorithm("search.random_search:run_random_search", "search.random_search:RandomConfig"),
    "tfnas": Algorithm(None),
    "netadaptv2": Algorithm(None),
}


def register(name: str, runner, config: str = "search.config:SearchConfig") -> None:
    """Register a runner ("module:function" or a callable) and its config class."""
    ALGORITHMS[name] = Algorithm(runner, config)


def algorithm_names() -> list[str]:
    return list(ALGORITHMS)


def check_algorithm(name: str) -> None:
    """BadInput for unknown names and for names without a runner yet (imports nothing)."""
    if name not in ALGORITHMS:
        raise BadInput(f"--algo: unknown algorithm {name!r} (known: {', '.join(ALGORITHMS)})")
    if ALGORITHMS[name].runner is None:
        ready = ", ".join(n for n, a in ALGORITHMS.items() if a.runner is not None)
        raise BadInput(f"--algo: {name} is not implemented yet (available: {ready})")


def _load(target: str):
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


def get_runner(name: str):
    check_algorithm(name)
    runner = ALGORITHMS[name].runner
    return runner if callable(runner) else _load(runner)


def make_config(algo: str, **options):
    """The algorithm's config with `options` set; an option the algorithm does not have is an error
    naming it (None values mean "not given" and keep the default)."""
    check_algorithm(algo)
    cls = _load(ALGORITHMS[algo].config)
    given = {k: v for k, v in options.items() if v is not None}
    foreign = sorted(set(given) - cls.field_names())
    if foreign:
        flags = ", ".join("--" + f.replace("_", "-") for f in foreign)
        raise BadInput(f"{flags}: not an option of --algo {algo}")
    return cls(algo=algo, **given)


def run_search(cfg, write: bool = True, measure: bool = False, on_start=None) -> dict:
    """Prepare the context, run the algorithm, write result.json + plot (rank 0); return the result.

    `measure`: time the final arch on the table's device when it is here (search.measure_final) and
    record predicted vs measured latency under `measured` (or why it was not measured).
    `on_start(cfg)`: called on rank 0 once every input has been checked and loaded, before the search
    (the CLI prints the resolved settings there)."""
    from .context import prepare

    check_algorithm(cfg.algo)
    ctx = prepare(cfg)
    runner = get_runner(cfg.algo)
    from .distributed import barrier, shutdown

    try:
        if on_start is not None and ctx.dist.is_main:
            on_start(cfg)
        result = runner(ctx)
        if measure and ctx.dist.is_main:
            from latbench.arch import parse_arch

            from .measure_final import measure_final

            result["measured"] = measure_final(parse_arch(result["arch"], "final arch"), ctx.lm.table,
                                               result["latency_ms"], progress=cfg.progress)
        if write and ctx.dist.is_main:
            from .results import write_results

            result["files"] = write_results(cfg.out, result)
        barrier(ctx.dist)  # ranks leave together: tearing gloo down while a peer still works aborts it
        return result
    finally:
        shutdown(ctx.dist)
