"""Created topics are served when ``ensure_topics`` returns: first writes meet their partitions' leaders."""

from __future__ import annotations

import logging

import pytest
from confluent_kafka import KafkaError, Producer

from bus.kafka_config import KafkaConnection
from bus.topics import ensure_topics

pytestmark = pytest.mark.integration
TOPICS = 40


class _Lines(logging.Handler):
    """Keeps librdkafka's log lines."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def test_writes_right_after_ensure_topics_meet_no_not_leader_answer(
    kafka_bootstrap: str, unique_name: str
) -> None:
    """An idempotent producer's first batches to just-created topics are accepted at once, with offsets."""
    connection = KafkaConnection(kafka_bootstrap)
    topics = [f"served.{unique_name}.{number}" for number in range(TOPICS)]
    assert sorted(ensure_topics(connection, topics, partitions=3)) == sorted(topics)
    lines = _Lines()
    logger = logging.getLogger(f"rdkafka.{unique_name}")
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    logger.addHandler(lines)
    reports: list[tuple[KafkaError | None, int | None]] = []
    config = connection.producer(debug="msg")
    config["logger"] = logger
    config["on_delivery"] = lambda err, message: reports.append((err, message.offset()))
    producer = Producer(config)
    for topic in topics:
        for key in range(30):
            producer.produce(topic, key=str(key), value=b"served")
    assert producer.flush(60) == 0
    refused = [line for line in lines.lines if "Not leader" in line or "Unknown topic" in line]
    assert refused == []
    assert len(reports) == TOPICS * 30
    assert all(err is None and offset is not None for err, offset in reports)
