"""Deterministic generators of realistic Korean administrative activity, for demos, tests and benchmarks."""
