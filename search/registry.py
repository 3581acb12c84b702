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
    plot: str = "search.results:plot_trajectory"  # (result, path) -> trajectory.png


ALGORITHMS = {
    "tunas": Algorithm("search.tunas.runner:run_tunas", "search.tunas.config:TunasConfig"),
    "random": Algorithm("search.random_search:run_random_search", "search.random_search:RandomConfig"),
    "tfnas": Algorithm("search.tfnas.run:run_tfnas", "search.tfnas.config:TFNASConfig",
                       "search.tfnas.plot:plot_trajectory"),
    "netadaptv2": Algorithm("search.netadaptv2.runner:run_netadaptv2", "search.netadaptv2.config:NetAdaptV2SearchConfig",
                            ),
}


def register(name: str, runner, config: str = "search.config:SearchConfig",
             plot: str = "search.results:plot_trajectory") -> None:
    """Register a runner ("module:function" or a callable), its config class and its trajectory plot."""
    ALGORITHMS[name] = Algorithm(runner, config, plot)


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
    return cls(algo=algo, explicit=tuple(sorted(given)), **given)


def run_search(cfg, write: bool = True, measure: bool = False, on_start=None) -> dict:
    """Prepare the context, run the algorithm, write result.json + timing.json + plot (rank 0), then
    delete the search's checkpoints (search.checkpoint); return the result.

    `measure`: time the final arch on the table's device when it is here (search.measure_final) and
    record predicted vs measured latency under `measured` (or why it was not measured).
    `on_start(cfg)`: called on rank 0 once every input has been checked and loaded, before the search
    (the CLI prints the resolved settings there)."""
    from .context import prepare

    check_algorithm(cfg.algo)
    runner = get_runner(cfg.algo)
    # an algorithm that needs another context (e.g. an arch-level metric instead of a LatencyModel)
    # defines prepare_context(cfg) next to its runner
    own = getattr(importlib.import_module(runner.__module__), "prepare_context", None)
    ctx = (own or prepare)(cfg)
    from . import checkpoint
    from .distributed import barrier, shutdown

    try:
        if on_start is not None and ctx.dist.is_main:
            on_start(cfg)
        result = runner(ctx)
        checkpoint.write_final_digest(result, ctx.dist)
        if measure and ctx.dist.is_main:
            from latbench.arch import parse_arch

            from .measure_final import measure_final

            result["measured"] = measure_final(parse_arch(result["arch"], "final arch"), ctx.lm.table,
                                               result["latency_ms"], progress=cfg.progress)
        if write and ctx.dist.is_main:
            from .results import write_results

            result["files"] = write_results(cfg.out, result, _load(ALGORITHMS[cfg.algo].plot))
        checkpoint.remove(cfg.out, ctx.dist)  # also a barrier: ranks leave together (gloo aborts otherwise)
        barrier(ctx.dist)
        return result
    finally:
        shutdown(ctx.dist)
