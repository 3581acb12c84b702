"""latbench: latency lookup tables and on-device benchmarking for hardware-aware NAS."""

__version__ = "0.1.0"
