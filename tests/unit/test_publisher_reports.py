"""How the publisher reads librdkafka's delivery reports: only an offset confirms a delivery."""

from __future__ import annotations

from typing import cast

import pytest
from confluent_kafka import Message

from bus.delivery import UNCONFIRMED
from bus.errors import PublishError
from bus.kafka_config import KafkaConnection
from producers.publisher import Publisher, _per_event
from schemas.catalog import load_catalog
from schemas.registry_client import RegistryClient


def _publisher() -> Publisher:
    registry = cast(RegistryClient, object())  # never asked: no event is published here
    return Publisher(
        KafkaConnection("127.0.0.1:1"), registry, load_catalog(), "localgov", "urn:govbus:agency:localgov"
    )


def test_a_report_without_an_offset_counts_as_a_failed_delivery_and_close_names_it() -> None:
    """A report with no error and no offset (an implicit ack) is a failed delivery, named by close."""
    publisher = _publisher()
    publisher._on_delivery(None, Message(topic="localgov.resident", partition=2, offset=7))
    assert publisher.failed == 0
    publisher._on_delivery(None, Message(topic="localgov.resident", partition=2))
    assert publisher.failed == 1
    assert publisher.failure_summary() == [f"1 event to localgov.resident failed: {UNCONFIRMED}"]
    with pytest.raises(PublishError, match="without an offset"):
        publisher.close()


def test_an_event_callback_hears_of_a_report_without_an_offset_as_a_failure() -> None:
    """A per-event callback gets None for a report with an offset and a PublishError for one without."""
    outcomes: dict[str, PublishError | None] = {}
    report = _per_event("event-1", "localgov.resident", outcomes.__setitem__)
    report(None, Message(topic="localgov.resident", partition=0, offset=3))
    assert outcomes == {"event-1": None}
    report(None, Message(topic="localgov.resident", partition=0))
    failure = outcomes["event-1"]
    assert isinstance(failure, PublishError)
    assert "without an offset" in str(failure)
