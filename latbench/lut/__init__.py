"""Latency lookup tables: the `latbench-lut/1` format and prediction (`table`), shipped tables and
loading by name (`files`), building from a profile store (`build`, `fit`), importing published tables
(`importers`) and the compiled, vectorised `LatencyModel` that searches consume (`latency_model`)."""
from .table import FORMAT, LatencyTable, Prediction, make_lut, provenance, save_lut, validate_lut  # noqa: F401
