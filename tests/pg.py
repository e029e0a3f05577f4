"""The tests' throwaway PostgreSQL server: the code lives in :mod:`bench.pg`, shared with the benchmark."""

from __future__ import annotations

from bench.pg import PostgresServer, PostgresUnavailableError, create_database, find_bin_dir

__all__ = ["PostgresServer", "PostgresUnavailableError", "create_database", "find_bin_dir"]
