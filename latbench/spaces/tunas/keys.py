"""The keys of imported TuNAS tables (granularity `tunas-layer`): one per term of TuNAS's cost model."""

import re

TUNAS_GRANULARITY = "tunas-layer"
_TERM_RE = re.compile(r"tunas:[A-Za-z0-9_/]+:o=\d+:i=\d+:[^:\s]+")


def is_term_key(key: str) -> bool:
    """Whether `key` has the shape of a `term_key` (a table's garbage keys are refused on loading)."""
    return bool(_TERM_RE.fullmatch(key))


def term_key(layer: str, cout: int, cin: int | None, choice: str) -> str:
    """The `tunas-layer` key of one cost-model term: layer name, output and input width, choice label."""
    return f"tunas:{layer}:o={cout}:i={cin if cin is not None else 0}:{choice}"
