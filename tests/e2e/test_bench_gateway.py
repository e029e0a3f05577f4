"""``govbus bench gateway --json`` as a user runs it, on the session's broker (2 s runs: a smoke test)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

ROOT = Path(__file__).resolve().parents[2]
MEASURED = ("registry_auth", "registry_noauth", "publish_single", "publish_batch")
PUBLISHED = ("publish_single", "publish_batch")


def _wrk() -> str:
    """wrk's path, installed from Debian's packages (as `make test` does) when missing; skip if impossible."""
    found = shutil.which("wrk")
    if found is None:
        installed = subprocess.run(
            ["bash", str(ROOT / "deploy" / "install-tools.sh"), "--wrk"],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        found = shutil.which("wrk")
        if found is None:
            pytest.skip(
                "wrk is not installed and `deploy/install-tools.sh --wrk` could not install it: "
                + (installed.stderr or installed.stdout).strip()[-300:]
            )
    return found


def test_bench_gateway_ends_with_one_json_object_of_figures(kafka_bootstrap: str) -> None:
    """The last output line is a JSON object of every figure, all positive, measured without errors."""
    _wrk()
    env = {**os.environ, "GOVBUS_KAFKA_BOOTSTRAP": kafka_bootstrap, "GOVBUS_LOG_LEVEL": "warning"}
    result = subprocess.run(
        [sys.executable, "-m", "govbus", "bench", "gateway", "--json", "--duration", "2"],
        capture_output=True,
        text=True,
        env=env,
        timeout=280,
        check=False,
    )
    assert result.returncode == 0, (result.stdout[-2000:], result.stderr[-2000:])
    lines = result.stdout.strip().splitlines()
    figures = json.loads(lines[-1])
    assert figures["benchmark"] == "gateway"
    for name in MEASURED:
        for figure in ("req_per_s", "p50_ms", "p99_ms", "requests"):
            assert figures[f"{name}_{figure}"] > 0, f"{name}_{figure}"
        assert figures[f"{name}_p99_ms"] >= figures[f"{name}_p50_ms"]
    for name in PUBLISHED:
        assert figures[f"{name}_events_per_s"] > 0
        assert figures[f"{name}_vs_sdk"] > 0
    assert figures["publish_batch_events_per_s"] == pytest.approx(
        figures["publish_batch_req_per_s"] * figures["batch_size"], rel=0.01
    )
    assert figures["sdk_events_per_s"] > 0
    assert figures["auth_cost"] < 1
    assert figures["errors"] == 0
    assert any(line.startswith("registry by id, auth") for line in lines)
