"""finance-reactions killed by SIGKILL between producing its suspensions and committing them, then restarted.

The kill is placed exactly: the adapter runs in a process of its own (this module run with
``python -m``), whose ``before_commit`` hook, at the chosen transaction that holds suspensions,
writes a marker file and blocks. The suspensions are then produced and the offsets sent, but the
transaction is not committed; the test kills the process at that moment. The first process dies
in its first deciding transaction; the second, which must first abort the open transaction and
rebuild its state, commits one and dies in the next; a third runs to the end. The topic must then
hold exactly one suspension per benefit running at its recipient's death, while a
``read_uncommitted`` reader sees the aborted copies the kills left behind.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from bus.credentials import client_credential
from bus.kafka_config import KafkaConnection
from bus.settings import Settings
from bus.topics import ensure_topics
from consumers.reactions import REACTIONS
from schemas.catalog import load_catalog
from schemas.registry_client import RegistryClient
from tests.integration.test_reactions import (
    TOPICS,
    adapter,
    assert_each_running_benefit_suspended_once,
    deceased_suspensions,
    finance_world,
    publish,
    read_topic,
    running,
    wait_until_caught_up,
)
from tests.support import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.e2e]
ROOT = Path(__file__).resolve().parents[2]


def kill_before_commit(settings: Settings, gateway_url: str, marker: Path, deciding_transaction: int) -> None:
    """Run the adapter in a process and SIGKILL it when it is about to commit that deciding transaction."""
    log = marker.with_suffix(".log")
    with log.open("wb") as output:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.integration.test_reactions_crash",
                settings.kafka_bootstrap,
                f"{gateway_url}/registry",
                settings.topic_prefix,
                str(marker),
                str(deciding_transaction),
            ],
            cwd=ROOT,
            env={**os.environ, "GOVBUS_CREDENTIALS": client_credential(settings) or ""},
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for(
            lambda: marker.exists() or process.poll() is not None,
            timeout_s=90,
            what=f"the reaction to reach commit number {deciding_transaction} (its log: {log})",
        )
        assert process.poll() is None, log.read_text()
        assert marker.read_text() == str(process.pid)
        process.send_signal(signal.SIGKILL)
        assert process.wait(timeout=30) == -signal.SIGKILL
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_a_reaction_killed_between_produce_and_commit_suspends_nothing_twice_and_forgets_nothing(
    bus_settings: Settings,
    kafka_bootstrap: str,
    gateway_url: str,
    registry: RegistryClient,
    tmp_path: Path,
) -> None:
    """After two kills before a commit and a restart, each running benefit is suspended exactly once."""
    connection = KafkaConnection(kafka_bootstrap)
    ensure_topics(connection, [bus_settings.topic_prefix + t for t in TOPICS])
    events = finance_world()
    publish(bus_settings, connection, registry, events)
    kill_before_commit(bus_settings, gateway_url, tmp_path / "first", deciding_transaction=1)
    kill_before_commit(bus_settings, gateway_url, tmp_path / "second", deciding_transaction=2)
    with running(adapter("finance-reactions", bus_settings, connection, registry)) as last:
        wait_until_caught_up(connection, last)
    topic = bus_settings.topic_prefix + "finance.benefit"
    assert last.stats.rebuilt > 0
    assert_each_running_benefit_suspended_once(read_topic(connection, registry, topic), events)
    committed = len(deceased_suspensions(read_topic(connection, registry, topic)))
    uncommitted = len(deceased_suspensions(read_topic(connection, registry, topic, committed_only=False)))
    # Both killed transactions had produced suspensions, which Kafka keeps as aborted records.
    assert uncommitted >= committed + 2


def main(bootstrap: str, registry_url: str, prefix: str, marker: str, deciding_transaction: str) -> None:
    """The adapter process: runs finance-reactions and blocks before the chosen deciding commit."""
    deciding = itertools.count(1)

    def before_commit(records: int) -> None:
        if records and next(deciding) == int(deciding_transaction):
            Path(marker).write_text(str(os.getpid()))
            while True:  # hold the open transaction until the test kills this process
                time.sleep(60)

    reaction = REACTIONS["finance-reactions"](
        KafkaConnection(bootstrap),
        RegistryClient(registry_url, credential=os.environ["GOVBUS_CREDENTIALS"]),
        load_catalog(),
        topic_prefix=prefix,
        # Small batches spread the suspensions over many transactions, so there is always a second one.
        batch_size=25,
        before_commit=before_commit,
    )
    reaction.run(threading.Event())


if __name__ == "__main__":
    main(*sys.argv[1:])
