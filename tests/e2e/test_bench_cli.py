"""``govbus bench produce --json`` as a user runs it, on the session's broker (small counts: a smoke test)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.e2e]


def test_bench_produce_ends_with_one_json_object_of_figures(kafka_bootstrap: str) -> None:
    """The last output line is a JSON object with every figure, measured next to the two baselines."""
    env = {**os.environ, "GOVBUS_KAFKA_BOOTSTRAP": kafka_bootstrap, "GOVBUS_LOG_LEVEL": "warning"}
    result = subprocess.run(
        [sys.executable, "-m", "govbus", "bench", "produce", "--json", "--events", "3000", "--rounds", "1"],
        capture_output=True,
        text=True,
        env=env,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.strip().splitlines()
    figures = json.loads(lines[-1])
    for name in ("govbus_events_per_s", "stock_events_per_s", "raw_events_per_s"):
        assert figures[name] > 0
    assert figures["events"] == 3000
    assert figures["event_bytes"] > 5
    assert any(line.startswith("govbus ") and "x" in line for line in lines)
