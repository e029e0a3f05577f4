"""The one list of topics the bus needs, and the settings its creation reads."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from bus.settings import Settings
from consumers.adapters import ADAPTERS
from consumers.reactions import REACTIONS
from govbus.topics import bus_topics
from schemas.catalog import load_catalog


def test_the_bus_needs_every_catalog_topic_and_each_adapters_dlq_with_the_prefix() -> None:
    """``bus_topics`` lists the catalog's topics, then each read model's and each reaction's DLQ, prefixed."""
    topics = bus_topics(Settings(topic_prefix="staging."))
    dlqs = [f"staging.{name}.dlq" for name in (*ADAPTERS, *REACTIONS)]
    assert topics == [f"staging.{topic}" for topic in load_catalog().topics()] + dlqs
    for dlq in ("residents.dlq", "finance-reactions.dlq", "personnel-reactions.dlq"):
        assert f"staging.{dlq}" in dlqs
    assert "staging.localgov.resident" in topics


def test_partitions_and_replication_default_to_3_and_1(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without GOVBUS_TOPIC_PARTITIONS and GOVBUS_TOPIC_REPLICATION, topics get 3 partitions and 1 replica."""
    monkeypatch.delenv("GOVBUS_TOPIC_PARTITIONS", raising=False)
    monkeypatch.delenv("GOVBUS_TOPIC_REPLICATION", raising=False)
    settings = Settings()
    assert (settings.topic_partitions, settings.topic_replication) == (3, 1)


def test_partitions_and_replication_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """GOVBUS_TOPIC_PARTITIONS and GOVBUS_TOPIC_REPLICATION set the created topics' layout."""
    monkeypatch.setenv("GOVBUS_TOPIC_PARTITIONS", "12")
    monkeypatch.setenv("GOVBUS_TOPIC_REPLICATION", "3")
    settings = Settings()
    assert (settings.topic_partitions, settings.topic_replication) == (12, 3)


def test_zero_partitions_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """A topic needs at least one partition; 0 is refused when the settings are read."""
    monkeypatch.setenv("GOVBUS_TOPIC_PARTITIONS", "0")
    with pytest.raises(ValidationError, match="topic_partitions"):
        Settings()
