"""The built wheel works on its own: in a fresh virtualenv outside the repository it runs the broker.

The wheel is built from a copy of the sources (so no stale ``build/`` output of the checkout slips in
and nothing is written into it), installed with its runtime dependencies only (no ``dev`` extra) into a
new virtualenv, and then used from a folder outside the repository: ``govbus kafka up``, ``status`` and
``down`` must work with nothing but the installed package (the broker's pom, KRaft template and log4j2
configuration come from its package data). The broker jars are shared from the checkout's
``.govbus/kafka/libs`` (see the ``private_broker`` fixture) so they are not downloaded again.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from govbus.local_kafka import LocalKafka

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
# Everything the wheel is not built from: tools' state, caches, earlier build output, the tests.
NOT_SOURCES = shutil.ignore_patterns(
    ".git", ".venv", ".govbus", "build", "dist", "*.egg-info", "__pycache__", "*.so", ".*_cache", "tests"
)
RUNTIME_PACKAGES = ("govbus", "bus", "schemas", "producers", "consumers", "gateway", "deploy")
# Installed only by the dev extra: confluent-kafka's schema registry extras and the test tools.
DEV_ONLY = ("avro", "authlib", "pytest", "testcontainers", "mypy", "ruff")
# Imports every runtime module (not ``bench``, which needs the dev extra) and reports what got loaded.
PROBE = """
import importlib, importlib.metadata as metadata, json, pkgutil, sys
modules = 0
for top in sys.argv[1:]:
    package = importlib.import_module(top)
    for found in pkgutil.walk_packages(package.__path__, top + "."):
        if not found.name.endswith(".__main__"):
            importlib.import_module(found.name)
            modules += 1
installed = {dist.metadata["Name"].lower() for dist in metadata.distributions()}
print(json.dumps({
    "govbus": importlib.import_module("govbus").__file__,
    "kafka_dir": str(importlib.import_module("deploy").KAFKA_DIR),
    "modules": modules,
    "schema_registry": sorted(m for m in sys.modules if m.startswith("confluent_kafka.schema_registry")),
    "installed": sorted(installed),
}))
"""


def _run(command: list[str | Path], cwd: Path, env: dict[str, str], timeout_s: float = 120) -> int:
    """Run a command; fail the test with its output unless it exits 0 or 3 (a status of "not running")."""
    result = subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    assert result.returncode in (0, 3), (
        f"{command} exited {result.returncode}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    )
    assert "Traceback" not in result.stderr, result.stderr
    return result.returncode


def _output(command: list[str | Path], cwd: Path, env: dict[str, str]) -> str:
    result = subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return result.stdout


def _brokers_of(home: Path) -> list[int]:
    """Pids of kafka.Kafka JVMs started with this home's server.properties."""
    config = str(home / "config" / "server.properties")
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            args = (proc / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        if "kafka.Kafka" in args and config in args:
            pids.append(int(proc.name))
    return pids


def test_wheel_in_a_fresh_virtualenv_runs_the_local_broker(
    tmp_path: Path, private_broker: LocalKafka
) -> None:
    """The wheel installs without the dev extra; its `govbus kafka up|status|down` work outside the repo."""
    assert ROOT not in tmp_path.parents
    source, dist, venv, work = (tmp_path / name for name in ("src", "dist", "venv", "work"))
    shutil.copytree(ROOT, source, ignore=NOT_SOURCES)
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOVBUS_") and k != "PYTHONPATH"}
    env.pop("VIRTUAL_ENV", None)

    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", dist, source], work, env, 180)
    (wheel,) = dist.glob("govbus-*.whl")
    _run([sys.executable, "-m", "venv", venv], work, env)
    _run([venv / "bin" / "python", "-m", "pip", "install", "-q", wheel], work, env, 240)

    probe = json.loads(_output([venv / "bin" / "python", "-c", PROBE, *RUNTIME_PACKAGES], work, env))
    site_packages = str(venv / "lib")
    assert probe["govbus"].startswith(site_packages)
    assert probe["kafka_dir"].startswith(site_packages)
    assert probe["modules"] > 50
    assert probe["schema_registry"] == []
    assert "confluent-kafka" in probe["installed"]
    assert [name for name in DEV_ONLY if name in probe["installed"]] == []

    # private_broker.home is {GOVBUS_HOME}/kafka, the folder `govbus kafka` uses, with the shared jars.
    assert private_broker.home == (tmp_path / "kafka").resolve()
    env |= {"GOVBUS_HOME": str(tmp_path), "GOVBUS_KAFKA_BOOTSTRAP": private_broker.bootstrap}
    govbus = venv / "bin" / "govbus"
    assert _run([govbus, "kafka", "up"], work, env) == 0
    assert len(_brokers_of(private_broker.home)) == 1
    assert _run([govbus, "kafka", "status"], work, env) == 0
    assert _run([govbus, "kafka", "down"], work, env) == 0
    assert _run([govbus, "kafka", "status"], work, env) == 3
    assert _brokers_of(private_broker.home) == []
    assert not (work / ".govbus").exists()
