"""Measurement: the timing protocol (`protocol`), the resumable profile store (`store`, `store_file`),
per-op profiling of a space into a store (`profiling`) and whole-network measurement (`whole`)."""
