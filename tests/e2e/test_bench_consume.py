"""``govbus bench consume --json`` as a user runs it, on the session's broker (small counts: a smoke test)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.pg import PostgresUnavailableError, find_bin_dir

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

FIGURES = (
    "sqlite_events_per_s",
    "postgres_events_per_s",
    "baseline_events_per_s",
    "e2e_p50_ms",
    "e2e_p99_ms",
    "e2e_rate_per_s",
)


def test_bench_consume_ends_with_one_json_object_of_figures(kafka_bootstrap: str) -> None:
    """The last output line is a JSON object with each store's rate, the baseline, rebuilds and latency."""
    try:
        find_bin_dir()
    except PostgresUnavailableError as exc:
        pytest.skip(str(exc))
    env = {**os.environ, "GOVBUS_KAFKA_BOOTSTRAP": kafka_bootstrap, "GOVBUS_LOG_LEVEL": "warning"}
    command = [sys.executable, "-m", "govbus", "bench", "consume", "--json", "--events", "1500"]
    command += ["--rebuild-sizes", "800", "--rate", "400", "--seconds", "1"]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.strip().splitlines()
    figures = json.loads(lines[-1])
    for name in FIGURES:
        assert figures[name] > 0, name
    assert figures["events"] == 1500
    # Every simulated event is read by at least one adapter (the tables and the log go with a failure).
    assert figures["records"] >= 1500, result.stdout[-3000:] + result.stderr[-3000:]
    assert figures["e2e_samples"] > 0
    assert figures["e2e_cpu_pressure"] is None or figures["e2e_cpu_pressure"] >= 0
    assert set(figures["rebuild_s"]) == {"800", "1500"}
    assert all(seconds > 0 for sizes in figures["rebuild_s"].values() for seconds in sizes.values())
    assert any(line.startswith("sqlite ") for line in lines)
    assert any(line.startswith("e2e at 400 events/s") for line in lines)
