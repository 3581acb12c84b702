"""The keys of imported TuNAS tables (granularity `tunas-layer`): one per term of TuNAS's cost model."""

TUNAS_GRANULARITY = "tunas-layer"


def term_key(layer: str, cout: int, cin: int | None, choice: str) -> str:
    """The `tunas-layer` key of one cost-model term: layer name, output and input width, choice label."""
    return f"tunas:{layer}:o={cout}:i={cin if cin is not None else 0}:{choice}"
