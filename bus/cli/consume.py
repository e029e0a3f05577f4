"""``govbus consume [ADAPTER...]``: keep read models up to date until interrupted."""

from __future__ import annotations

import argparse
import signal
import threading
from typing import Any

import structlog

from bus.kafka_config import KafkaConnection
from bus.settings import Settings
from consumers.adapters import ADAPTERS, build_projection
from consumers.decoder import EventDecoder
from consumers.runtime import ProjectionRunner, RunStats
from consumers.store import open_store
from schemas.catalog import load_catalog
from schemas.registry_client import RegistryClient

log = structlog.get_logger(__name__)


def register(commands: Any) -> None:
    """Add the ``consume`` command."""
    parser = commands.add_parser("consume", help="run consumer adapters that keep read models up to date")
    parser.add_argument(
        "adapters", nargs="*", metavar="ADAPTER", help=f"default: all of {', '.join(ADAPTERS)}"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run each adapter in its own thread until SIGINT or SIGTERM."""
    names = args.adapters or list(ADAPTERS)
    projections = [build_projection(name) for name in names]
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    connection = KafkaConnection(settings.kafka_bootstrap, client_id="govbus-consume")
    catalog = load_catalog()
    registry = RegistryClient(settings.registry_url)
    store = open_store(settings.effective_readmodel_url)
    threads = []
    for projection in projections:
        runner = ProjectionRunner(
            connection, projection, store, EventDecoder(registry, catalog), topic_prefix=settings.topic_prefix
        )
        thread = threading.Thread(target=runner.run, args=(stop, _report), name=projection.name, daemon=True)
        thread.start()
        threads.append(thread)
    print(f"consuming for {', '.join(names)}; Ctrl-C to stop", flush=True)
    while any(t.is_alive() for t in threads) and not stop.wait(0.5):
        pass
    stop.set()
    for thread in threads:
        thread.join(timeout=30)
    registry.close()
    return 0


def _report(stats: RunStats) -> None:
    log.info(
        "projection.batch", applied=stats.applied, skipped=stats.skipped, dead_lettered=stats.dead_lettered
    )
