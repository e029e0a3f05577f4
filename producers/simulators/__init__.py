"""Deterministic generators of realistic Korean administrative activity, for demos, tests and benchmarks.

``simulation.simulated_events(agency, count, seed)`` is the entry point; ``world`` holds the clock,
agenda and population the agency modules (``residents``, ``vehicles``, ``education``,
``personnel``, ``benefits``, ``budget``) act on.
"""
