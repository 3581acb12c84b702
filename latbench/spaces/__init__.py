"""Registry of search spaces by name. Spaces load lazily: a module is imported on first use.

To add a space, add one line to `SPACES`: ``"name": _lazy("latbench.spaces.module:ClassName")``.
"""
from __future__ import annotations

import functools
import importlib

from ..errors import BadInput
from .base import Choice, SearchSpace


class _lazy:
    """A factory for the SearchSpace class named by "module:Class", imported when called."""

    def __init__(self, target: str):
        self.target = target

    def load(self) -> type:
        module, _, cls = self.target.partition(":")
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:  # a dependency of the space module is missing: a real error
                raise
            raise BadInput(f"space: {self.target} is registered but its module is not available") from None
        return getattr(mod, cls)

    def __call__(self) -> SearchSpace:
        return self.load()()

    def __repr__(self) -> str:
        return f"_lazy({self.target!r})"


SPACES = {
    "proxylessnas": _lazy("latbench.spaces.tunas:ProxylessNASSpace"),
    "proxylessnas-enlarged": _lazy("latbench.spaces.tunas:ProxylessNASEnlargedSpace"),
    "mobilenetv3-like": _lazy("latbench.spaces.tunas:MobileNetV3LikeSpace"),
    "tfnas": _lazy("latbench.spaces.tfnas:TFNASSpace"),
    "tfnas-mbv2": _lazy("latbench.spaces.tfnas:TFNASMBV2Space"),
    "tfnas-elastic": _lazy("latbench.spaces.tfnas_elastic:TFNASElasticSpace"),
    "netadaptv2": _lazy("latbench.spaces.netadaptv2:NetAdaptV2Space"),
}


def space_names() -> list[str]:
    """Registered space names, in registry order."""
    return list(SPACES)


@functools.lru_cache(maxsize=None)
def get_space(name: str) -> SearchSpace:
    """The (shared, read-only) space registered as `name`; BadInput for unknown names."""
    factory = SPACES.get(name)
    if factory is None:
        raise BadInput(f"space: unknown space {name!r} (known: {', '.join(SPACES)})")
    return factory()


def check_recorded_indices(arch) -> None:
    """An arch file's recorded `indices` of a known space must fit it (length, ranges): an inconsistent
    file is an error naming the file, not silently ignored."""
    if arch.indices is not None and arch.space in SPACES:
        get_space(arch.space).check_indices(arch.indices, f"{arch.where}: indices")


__all__ = ["SPACES", "check_recorded_indices", "Choice", "SearchSpace", "get_space", "space_names"]
