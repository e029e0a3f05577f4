"""Every ```python block of README.md runs as written, as a user would run it, against a real bus.

Each example is saved as a script in an empty folder and run by this virtualenv's Python with only
``GOVBUS_`` settings pointing at the session's broker and a real gateway (registry with the catalog
registered, the catalog's topics created under a prefix of the test's own). Where a section's example
has an observable outcome, the test checks it too: the publisher's events are in Kafka, and the outbox's
row is shipped by the relay command the README shows.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Message, TopicPartition

from bus.kafka_config import KafkaConnection
from bus.settings import Settings
from bus.topics import ensure_topics
from consumers.decoder import EventDecoder
from schemas.catalog import load_catalog
from schemas.registry_client import RegistryClient

pytestmark = pytest.mark.e2e

README = Path(__file__).resolve().parents[2] / "README.md"
PARTITIONS = 3
EXAMPLE_TIMEOUT_S = 120
PYTHON_BLOCK = re.compile(r"^```python\n(.*?)^```$", re.DOTALL | re.MULTILINE)
HEADING = re.compile(r"^#+ (.+)$", re.MULTILINE)
PUBLISHER_SECTION = "The publisher SDK"
OUTBOX_SECTION = "The transactional outbox"


@dataclass(frozen=True)
class Example:
    """One ```python block of the README and the heading of the section it stands in."""

    section: str
    code: str


@dataclass(frozen=True)
class Bus:
    """What an example runs against: its environment, its working folder and the test's settings."""

    env: dict[str, str]
    cwd: Path
    settings: Settings
    registry: RegistryClient


def readme_examples() -> list[Example]:
    """The README's Python examples in document order."""
    text = README.read_text(encoding="utf-8")
    examples = []
    for block in PYTHON_BLOCK.finditer(text):
        headings = HEADING.findall(text, 0, block.start())
        examples.append(Example(headings[-1] if headings else "", block.group(1)))
    return examples


@pytest.fixture
def bus(bus_settings: Settings, gateway_url: str, registry: RegistryClient, tmp_path: Path) -> Bus:
    """A user's shell: GOVBUS_ settings at the test's broker, gateway and topics, in an empty folder."""
    topics = [bus_settings.topic_prefix + topic for topic in load_catalog().topics()]
    ensure_topics(KafkaConnection(bus_settings.kafka_bootstrap), topics, partitions=PARTITIONS)
    env = {name: value for name, value in os.environ.items() if not name.startswith("GOVBUS_")}
    env.pop("PYTHONPATH", None)
    env.update(
        GOVBUS_KAFKA_BOOTSTRAP=bus_settings.kafka_bootstrap,
        GOVBUS_REGISTRY_URL=f"{gateway_url}/registry",
        GOVBUS_TOPIC_PREFIX=bus_settings.topic_prefix,
        GOVBUS_HOME=str(tmp_path / "home"),
        GOVBUS_LOG_LEVEL="warning",
    )
    cwd = tmp_path / "work"
    cwd.mkdir()
    return Bus(env, cwd, bus_settings, registry)


def run(command: list[str], bus: Bus) -> subprocess.CompletedProcess[str]:
    """Run a command in the example's folder and environment; fail with its output if it fails."""
    result = subprocess.run(
        command,
        cwd=bus.cwd,
        env=bus.env,
        capture_output=True,
        text=True,
        timeout=EXAMPLE_TIMEOUT_S,
        check=False,
    )
    assert result.returncode == 0, (
        f"{shlex.join(command)} exited {result.returncode}\n{result.stdout}\n{result.stderr}"
    )
    assert "Traceback" not in result.stderr, result.stderr
    return result


def read_topic(bootstrap: str, topic: str, timeout_s: float = 30.0) -> list[Message]:
    """Every record now in ``topic`` (the watermarks say how many), in log order per partition."""
    consumer = Consumer(KafkaConnection(bootstrap).consumer(group_id=f"readme-check-{time.monotonic_ns()}"))
    try:
        partitions = [TopicPartition(topic, p, 0) for p in range(PARTITIONS)]
        total = sum(consumer.get_watermark_offsets(tp, timeout=10)[1] for tp in partitions)
        consumer.assign(partitions)
        records: list[Message] = []
        deadline = time.monotonic() + timeout_s
        while len(records) < total and time.monotonic() < deadline:
            records.extend(m for m in consumer.consume(num_messages=100, timeout=0.5) if m.error() is None)
    finally:
        consumer.close()
    assert len(records) == total, f"read {len(records)} of {total} records from {topic}"
    return sorted(records, key=lambda m: (m.partition(), m.offset()))


def _headers(message: Message) -> dict[str, str]:
    return {name: value.decode() for name, value in message.headers() or [] if value is not None}


def _publisher_events_arrived(bus: Bus, output: str) -> None:
    """Both moves are in localgov.resident in order, keyed by the resident, the first with its legal basis."""
    records = read_topic(bus.settings.kafka_bootstrap, bus.settings.topic_prefix + "localgov.resident")
    assert "2 events delivered" in output
    decoder = EventDecoder(bus.registry, load_catalog())
    events = [decoder.decode(message) for message in records]
    assert [event.name for event in events] == ["ResidentMoved", "ResidentMoved"]
    assert {message.key() for message in records} == {b"R000000004217"}
    assert [event.data["new_address"]["sigungu"] for event in events] == ["마포구", "종로구"]
    assert [_headers(m).get("ce_legalbasis") for m in records] == ["주민등록법 제16조", None]
    assert {_headers(m)["ce_source"] for m in records} == {"urn:govbus:agency:localgov"}


def _outbox_row_ships(bus: Bus, output: str) -> None:
    """The README's relay command (with --once) ships the example's row, with the event id it printed."""
    found = re.search(r"`(govbus outbox relay --db sqlite:///[^`]+)`", README.read_text(encoding="utf-8"))
    assert found, "the README no longer shows the SQLite relay command"
    command = shlex.split(found.group(1))
    run([str(Path(sys.executable).with_name("govbus")), *command[1:], "--once"], bus)
    event_id = re.search(r"event (\S+) is in the outbox", output)
    assert event_id, output
    records = read_topic(bus.settings.kafka_bootstrap, bus.settings.topic_prefix + "localgov.resident")
    assert [_headers(m)["ce_id"] for m in records] == [event_id.group(1)]
    event = EventDecoder(bus.registry, load_catalog()).decode(records[0])
    assert (event.name, event.data["resident_id"]) == ("ResidentMoved", "R000000004217")


OUTCOMES: dict[str, Callable[[Bus, str], None]] = {
    PUBLISHER_SECTION: _publisher_events_arrived,
    OUTBOX_SECTION: _outbox_row_ships,
}


def test_the_publishing_sections_show_python_examples() -> None:
    """The publisher SDK and outbox sections each hold one Python example, so neither goes untested."""
    sections = [example.section for example in readme_examples()]
    assert sections.count(PUBLISHER_SECTION) == 1
    assert sections.count(OUTBOX_SECTION) == 1


@pytest.mark.parametrize(
    "example", readme_examples(), ids=lambda example: re.sub(r"\W+", "-", example.section).strip("-")
)
def test_readme_example_runs_as_written(example: Example, bus: Bus) -> None:
    """The example exits 0 without a traceback and, where its section says what it does, does it."""
    script = bus.cwd / "example.py"
    script.write_text(example.code, encoding="utf-8")
    result = run([sys.executable, script.name], bus)
    check = OUTCOMES.get(example.section)
    if check is not None:
        check(bus, result.stdout)
