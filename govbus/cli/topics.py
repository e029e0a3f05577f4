"""``govbus topics create``: create the catalog's topics and the adapters' and reactions' DLQ topics."""

from __future__ import annotations

import argparse
from typing import Any

from bus.errors import ConfigurationError
from bus.progress import say
from bus.settings import Settings
from govbus.local_kafka import metadata_answers
from govbus.topics import create_bus_topics

BROKER_TIMEOUT_S = 10.0


def register(commands: Any) -> None:
    """Add the ``topics`` command group."""
    parser = commands.add_parser("topics", help="create the topics the bus needs")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    actions.add_parser(
        "create",
        help="create the catalog's topics and each read model's and reaction's DLQ topic (idempotent)",
    ).set_defaults(handler=create)


def create(_: argparse.Namespace, settings: Settings) -> int:
    """Create the missing topics; print what was created and what already existed."""
    require_kafka(settings)
    say(
        f"creating the bus topics on {settings.kafka_bootstrap} ({settings.topic_partitions} partitions, "
        f"replication factor {settings.topic_replication})"
    )
    result = create_bus_topics(settings)
    for topic in result.created:
        print(f"    created  {topic}", flush=True)
    for topic in result.existing:
        print(f"    existed  {topic}", flush=True)
    say(f"{len(result.created)} created, {len(result.existing)} already existed")
    return 0


def require_kafka(settings: Settings) -> None:
    """Raise a one-line error at once when the cluster at ``GOVBUS_KAFKA_BOOTSTRAP`` does not answer."""
    if not metadata_answers(settings.kafka_bootstrap, timeout_s=BROKER_TIMEOUT_S):
        raise ConfigurationError(
            f"Kafka at {settings.kafka_bootstrap} does not answer (start a local broker with "
            "`govbus kafka up`, or set GOVBUS_KAFKA_BOOTSTRAP)"
        )
