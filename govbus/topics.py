"""The topics the bus needs: one list, used by ``govbus topics create``, ``govbus up`` and the demo.

The broker never creates a topic on its own (``auto.create.topics.enable=false``), so every topic a publisher
or a consumer adapter uses is created here first: the catalog's topics, each read-model adapter's and each
reaction's dead-letter topic, all with the settings' topic prefix, partitions and replication factor.
"""

from __future__ import annotations

from dataclasses import dataclass

from bus.settings import Settings
from bus.topics import ensure_topics
from consumers.adapters import ADAPTERS
from consumers.dlq import dlq_topic
from consumers.reactions import REACTIONS
from govbus.bootstrap import build_connection
from schemas.catalog import Catalog, load_catalog


@dataclass(frozen=True)
class TopicsCreated:
    """What :func:`create_bus_topics` did: the topics it created and the ones that already existed."""

    created: list[str]
    existing: list[str]


def bus_topics(settings: Settings, catalog: Catalog | None = None) -> list[str]:
    """Every topic the bus needs, prefixed: the catalog's topics, then each adapter's and reaction's DLQ."""
    dlqs = [dlq_topic(name) for name in (*ADAPTERS, *REACTIONS)]
    names = [*(catalog or load_catalog()).topics(), *dlqs]
    return [settings.topic_prefix + name for name in names]


def create_bus_topics(settings: Settings, catalog: Catalog | None = None) -> TopicsCreated:
    """Create the topics of :func:`bus_topics` that do not exist yet (idempotent)."""
    wanted = bus_topics(settings, catalog)
    created = ensure_topics(
        build_connection(settings, "govbus-topics"),
        wanted,
        partitions=settings.topic_partitions,
        replication_factor=settings.topic_replication,
    )
    return TopicsCreated(created=created, existing=[topic for topic in wanted if topic not in created])
