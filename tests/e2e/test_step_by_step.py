"""The README's "Step by step" as a user runs it: `up`, `simulate`, one resident over HTTP, `status`, `down`.

Every command is a `python -m govbus` subprocess with its own GOVBUS_HOME, topic prefix and gateway port,
on the session's broker (so `up` uses that cluster and `down` leaves it running).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from confluent_kafka.admin import AdminClient

from bus.settings import Settings
from govbus.local_kafka import metadata_answers, process_alive
from govbus.topics import bus_topics
from producers.simulators.simulation import simulated_events
from tests.support import bearer, free_port, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

RESIDENT = "R004200000001"  # the first resident the simulator registers with its default seed, 42
EVENTS = 500
SETTINGS_VARIABLES = {f"GOVBUS_{name.upper()}" for name in Settings.model_fields}


def govbus(env: dict[str, str], *args: str, timeout_s: float = 180) -> subprocess.CompletedProcess[str]:
    """Run ``govbus ARGS`` as a user would, in its own process."""
    return subprocess.run(
        [sys.executable, "-m", "govbus", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout_s,
        check=False,
    )


@pytest.fixture
def user_env(kafka_bootstrap: str, tmp_path: Path, unique_name: str) -> Iterator[dict[str, str]]:
    """A user's environment: its own home, topic prefix and gateway port; `govbus down` runs at the end."""
    env = {
        **{name: value for name, value in os.environ.items() if name not in SETTINGS_VARIABLES},
        "GOVBUS_HOME": str(tmp_path / "home"),
        "GOVBUS_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "GOVBUS_REGISTRY_URL": f"http://127.0.0.1:{free_port()}/registry",
        "GOVBUS_TOPIC_PREFIX": f"t{unique_name}.",
        "GOVBUS_LOG_LEVEL": "warning",
    }
    yield env
    govbus(env, "down")


def _stack_processes(home: Path) -> list[int]:
    """Pids of every process on this machine running with ``home`` as its GOVBUS_HOME.

    The consumers' worker processes (forked by ``govbus consume``) are left out: their parent is one.
    """
    mark = f"GOVBUS_HOME={home}".encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                environ = (entry / "environ").read_bytes().split(b"\0")
            except OSError:
                continue
            if mark in environ and process_alive(int(entry.name)):
                pids.append(int(entry.name))
    return [pid for pid in pids if _parent(pid) not in pids]


def _parent(pid: int) -> int:
    try:
        return int((Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return 0


def _expected_resident() -> dict[str, Any]:
    """The address and status the simulated events leave ``RESIDENT`` with."""
    expected: dict[str, Any] = {}
    for event in simulated_events("all", EVENTS, 42):
        if event.data.get("resident_id") != RESIDENT or not event.type.startswith("govbus.localgov.Resident"):
            continue
        if event.type.endswith("Registered"):
            expected = {"address": event.data["address"], "status": "ACTIVE"}
        elif event.type.endswith("Moved"):
            expected["address"] = event.data["new_address"]
        else:
            expected["status"] = "DECEASED"
    return expected


def test_the_step_by_step_path_works_and_down_leaves_no_process(
    user_env: dict[str, str], kafka_bootstrap: str
) -> None:
    """up answers, the simulated resident is readable over HTTP, status says all serve, down stops it all."""
    home = Path(user_env["GOVBUS_HOME"]).resolve()
    base = user_env["GOVBUS_REGISTRY_URL"].removesuffix("/registry")

    up = govbus(user_env, "up")
    assert up.returncode == 0, up.stderr
    assert "gateway: answering" in up.stdout
    assert "consumers: answering" in up.stdout
    pids = [int((home / "run" / f"{part}.pid").read_text()) for part in ("gateway", "consumers")]
    assert sorted(_stack_processes(home)) == sorted(pids)

    again = govbus(user_env, "up")
    assert again.returncode == 0, again.stderr
    assert "gateway: already running" in again.stdout
    assert sorted(_stack_processes(home)) == sorted(pids)

    simulate = govbus(user_env, "simulate", "--agency", "all", "--count", str(EVENTS))
    assert simulate.returncode == 0, simulate.stderr

    expected = _expected_resident()

    reader = govbus(user_env, "org", "credential", "ministry-of-welfare")
    assert reader.returncode == 0, reader.stderr
    ministry = {**bearer(reader.stdout.strip()), "Purpose": "benefit-eligibility"}
    assert httpx.get(f"{base}/v1/residents/{RESIDENT}", timeout=5).status_code == 401

    def resident_caught_up() -> dict[str, Any] | None:
        response = httpx.get(f"{base}/v1/residents/{RESIDENT}", timeout=5, headers=ministry)
        if response.status_code != 200:
            return None
        record: dict[str, Any] = response.json()["data"]
        caught_up = record["address"] == expected["address"] and record["status"] == expected["status"]
        return record if caught_up else None

    record = wait_for(resident_caught_up, timeout_s=60, what=f"{RESIDENT} to reach the gateway")
    assert record["registration_number"].endswith("******")

    status = govbus(user_env, "status")
    assert status.returncode == 0, status.stdout
    rows = {line.split()[0]: line.split() for line in status.stdout.splitlines()[1:]}
    assert rows["broker"][1:3] == ["external", "yes"]
    assert rows["gateway"][1:4] == ["yes", "yes", str(pids[0])]
    assert rows["consumers"][1:4] == ["yes", "yes", str(pids[1])]

    down = govbus(user_env, "down")
    assert down.returncode == 0, down.stderr
    assert _stack_processes(home) == []
    assert not any(process_alive(pid) for pid in pids)
    assert not list((home / "run").glob("*.pid"))
    assert govbus(user_env, "status").returncode == 3
    assert metadata_answers(kafka_bootstrap, timeout_s=5), "down stopped a broker up did not start"


def test_a_part_that_dies_while_starting_is_named_with_its_log(user_env: dict[str, str]) -> None:
    """A gateway that exits at start makes up fail in one line naming the gateway and its log file."""
    env = {**user_env, "GOVBUS_READMODEL_URL": "mysql://127.0.0.1/readmodel"}
    up = govbus(env, "up")
    errors = [line for line in up.stderr.splitlines() if line.startswith("govbus: error:")]
    assert up.returncode == 1
    assert len(errors) == 1
    assert "gateway: exited while starting" in errors[0]
    assert str(Path("home/logs/gateway.log")) in errors[0]
    assert govbus(env, "status").returncode == 3


def test_topics_create_is_idempotent_and_uses_the_partition_setting(
    user_env: dict[str, str], kafka_bootstrap: str
) -> None:
    """`govbus topics create` creates the catalog and DLQ topics once, then reports them as existing."""
    env = {**user_env, "GOVBUS_TOPIC_PARTITIONS": "2"}
    prefix = env["GOVBUS_TOPIC_PREFIX"]

    first = govbus(env, "topics", "create")
    assert first.returncode == 0, first.stderr
    assert f"created  {prefix}localgov.resident" in first.stdout
    assert f"created  {prefix}residents.dlq" in first.stdout

    second = govbus(env, "topics", "create")
    assert second.returncode == 0, second.stderr
    assert "created  " not in second.stdout
    assert f"existed  {prefix}localgov.resident" in second.stdout

    metadata = AdminClient({"bootstrap.servers": kafka_bootstrap}).list_topics(timeout=10)
    ours = {name: topic for name, topic in metadata.topics.items() if name.startswith(prefix)}
    assert sorted(ours) == sorted(bus_topics(Settings(topic_prefix=prefix)))
    assert {len(topic.partitions) for topic in ours.values()} == {2}


def test_topics_create_without_kafka_fails_at_once_naming_the_fix(user_env: dict[str, str]) -> None:
    """With no broker at the bootstrap address, topics create exits 1 saying to start Kafka."""
    env = {**user_env, "GOVBUS_KAFKA_BOOTSTRAP": f"127.0.0.1:{free_port()}"}
    result = govbus(env, "topics", "create", timeout_s=60)
    assert result.returncode == 1
    assert "does not answer" in result.stderr
    assert "govbus kafka up" in result.stderr
