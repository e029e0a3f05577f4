"""``govbus schemas register|list|check`` as an integration engineer runs them, on a real registry."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bus.settings import Settings
from schemas.catalog import CATALOG_DIR, load_catalog

pytestmark = [pytest.mark.integration, pytest.mark.e2e]


def _govbus(gateway_url: str, *args: str, home: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GOVBUS_REGISTRY_URL": f"{gateway_url}/registry", "GOVBUS_LOG_LEVEL": "warning"}
    if home is not None:
        env["GOVBUS_HOME"] = str(home)
    return subprocess.run(
        [sys.executable, "-m", "govbus", "schemas", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_register_is_idempotent_and_list_shows_every_subject(
    gateway_url: str, bus_settings: Settings
) -> None:
    """Registering twice keeps version 1 of every subject, and list shows them all."""
    first = _govbus(gateway_url, "register", home=bus_settings.home)
    assert first.returncode == 0, first.stderr
    second = _govbus(gateway_url, "register", home=bus_settings.home)
    assert second.returncode == 0, second.stderr
    assert first.stdout.splitlines()[1:] == second.stdout.splitlines()[1:]
    listed = _govbus(gateway_url, "list", home=bus_settings.home)
    subjects = {line.split()[0] for line in listed.stdout.splitlines()}
    assert subjects == {event.subject for event in load_catalog()}
    assert all("version 1 " in line for line in listed.stdout.splitlines())


def test_check_names_the_incompatible_subject_and_field(
    gateway_url: str, bus_settings: Settings, tmp_path: Path
) -> None:
    """A new required field without a default fails check with exit 1, naming subject and field."""
    assert _govbus(gateway_url, "register", home=bus_settings.home).returncode == 0
    edited = tmp_path / "catalog"
    shutil.copytree(CATALOG_DIR, edited)
    moved = edited / "localgov.resident" / "ResidentMoved.avsc"
    schema = json.loads(moved.read_text())
    schema["fields"].append(
        {
            "name": "household_size",
            "type": "int",
            "doc": "People in the household.",
            "classification": "personal",
        }
    )
    moved.write_text(json.dumps(schema))
    unchanged = _govbus(gateway_url, "check", home=bus_settings.home)
    assert unchanged.returncode == 0, unchanged.stdout + unchanged.stderr
    result = _govbus(gateway_url, "check", "--catalog", str(edited), home=bus_settings.home)
    assert result.returncode == 1
    assert "INCOMPATIBLE localgov.resident-govbus.localgov.ResidentMoved" in result.stdout
    assert "household_size" in result.stdout
    assert result.stdout.count("INCOMPATIBLE") == 1


def test_check_without_registry_fails_clearly(tmp_path: Path) -> None:
    """With no registry listening, check exits 1 with a message saying it is unreachable."""
    result = _govbus("http://127.0.0.1:9", "check")
    assert result.returncode == 1
    assert "unreachable" in (result.stdout + result.stderr)
