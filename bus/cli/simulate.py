"""``govbus simulate``: publish realistic administrative events through the publisher SDK."""

from __future__ import annotations

import argparse
import time
from collections import Counter as Tally
from typing import Any

from bus.cli.progress import Counter, say
from bus.errors import ConfigurationError
from bus.kafka_config import KafkaConnection
from bus.settings import Settings
from producers.publisher import Publisher
from producers.simulators.localgov import LocalGovSimulator
from schemas.catalog import load_catalog
from schemas.registry_client import RegistryClient

AGENCY_SOURCES = {"localgov": "urn:govbus:agency:localgov"}


def register(commands: Any) -> None:
    """Add the ``simulate`` command."""
    parser = commands.add_parser("simulate", help="publish simulated agency events")
    parser.add_argument("--agency", default="localgov", choices=sorted(AGENCY_SOURCES), help="which agency")
    parser.add_argument("--count", type=int, default=300, help="number of events (default 300)")
    parser.add_argument("--rate", type=float, default=0.0, help="events per second; 0 = as fast as possible")
    parser.add_argument(
        "--seed", type=int, default=42, help="random seed; the same seed gives the same events"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Publish ``--count`` events and print a summary per topic."""
    if args.count < 1:
        raise ConfigurationError("--count must be at least 1")
    tally = simulate(settings, args.agency, args.count, args.seed, args.rate)
    for topic, count in sorted(tally.items()):
        print(f"    {topic}: {count} events")
    return 0


def simulate(settings: Settings, agency: str, count: int, seed: int, rate: float = 0.0) -> Tally[str]:
    """Publish simulated events of ``agency``; return events per event type."""
    catalog = load_catalog()
    registry = RegistryClient(settings.registry_url)
    publisher = Publisher(
        KafkaConnection(settings.kafka_bootstrap, client_id=f"govbus-simulate-{agency}"),
        registry,
        catalog,
        agency=agency,
        source=AGENCY_SOURCES[agency],
        topic_prefix=settings.topic_prefix,
    )
    tally: Tally[str] = Tally()
    progress = Counter(f"publishing {agency} events", count)
    started = time.monotonic()
    try:
        for index, event in enumerate(LocalGovSimulator(seed=seed).events(count)):
            if rate > 0:
                time.sleep(max(0.0, started + index / rate - time.monotonic()))
            publisher.publish(event.type, event.data, event_id=event.id, time=event.time)
            tally[catalog.get(event.type).topic] += 1
            progress.advance()
        publisher.close()
    finally:
        registry.close()
    elapsed = progress.finish()
    say(f"published {count} events in {elapsed:.1f}s ({count / max(elapsed, 1e-9):.0f} events/s)")
    return tally
