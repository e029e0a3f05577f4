"""``AtomicSender`` on a real broker: batches are committed whole, and a failed delivery commits nothing.

The sender asks librdkafka for failed delivery reports only (``delivery.report.only.error``); these
tests show a failure still reaches it and aborts the round, and that the sender serves the next one.
"""

from __future__ import annotations

import os
import threading
import uuid

import pytest

from bus.errors import PublishError
from bus.kafka_config import KafkaConnection
from bus.topics import ensure_topics
from producers.atomic import AtomicSender
from producers.publisher import PreparedEvent
from tests.integration.test_publish_api import read_committed

pytestmark = pytest.mark.integration


def _events(topic: str, count: int, size: int = 100) -> list[PreparedEvent]:
    """``count`` events of ``size`` random (incompressible) bytes, each with its own id and key."""
    return [
        PreparedEvent(
            str(uuid.uuid4()), topic, f"key-{n}", os.urandom(size), [("ce_id", f"e{n}"), ("ce_type", "t")]
        )
        for n in range(count)
    ]


@pytest.fixture
def sender(kafka_bootstrap: str, unique_name: str) -> AtomicSender:
    """A sender with its own transactional id."""
    atomic = AtomicSender(KafkaConnection(kafka_bootstrap), f"test-atomic-{unique_name}")
    yield atomic
    atomic.close()


def test_concurrent_batches_are_all_committed_and_visible(
    sender: AtomicSender, kafka_bootstrap: str, unique_name: str
) -> None:
    """Batches sent from several threads at once all commit, every event visible exactly once."""
    topic = f"t{unique_name}.atomic"
    ensure_topics(KafkaConnection(kafka_bootstrap), [topic], partitions=3)
    batches = [_events(topic, 50) for _ in range(8)]
    errors: list[BaseException] = []

    def send(batch: list[PreparedEvent]) -> None:
        try:
            sender.send(batch)
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=send, args=(batch,)) for batch in batches]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    values = sorted(m.value() for m in read_committed(kafka_bootstrap, topic))
    assert values == sorted(e.value for batch in batches for e in batch)


def test_a_delivery_the_broker_refuses_commits_nothing_and_the_next_batch_is_sent(
    sender: AtomicSender, kafka_bootstrap: str, unique_name: str
) -> None:
    """A record over the topic's size limit fails its round with the cause; nothing of it is visible."""
    topic = f"t{unique_name}.atomic-small"
    ensure_topics(
        KafkaConnection(kafka_bootstrap), [topic], partitions=1, config={"max.message.bytes": "2048"}
    )
    fits = _events(topic, 20)
    too_big = _events(topic, 1, size=8192)
    with pytest.raises(PublishError, match="not published") as refused:
        sender.send([*fits, *too_big])
    assert "too large" in str(refused.value).lower() or "MSG_SIZE_TOO_LARGE" in str(refused.value)
    after = _events(topic, 5)
    sender.send(after)
    values = [m.value() for m in read_committed(kafka_bootstrap, topic)]
    assert values == [e.value for e in after]
