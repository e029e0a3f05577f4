"""``govbus consume [ADAPTER...]``: keep read models up to date until interrupted."""

from __future__ import annotations

import argparse
import signal
import threading
from typing import Any

import structlog

from bus.errors import KafkaUnavailableError
from bus.settings import Settings
from consumers.adapters import ADAPTERS, build_projection
from consumers.runtime import ProjectionRunner, RunStats
from govbus.bootstrap import build_registry_client, build_runner, build_store
from govbus.cli.preflight import START_KAFKA, require_kafka, require_registry
from schemas.catalog import load_catalog

log = structlog.get_logger(__name__)


def register(commands: Any) -> None:
    """Add the ``consume`` command."""
    parser = commands.add_parser("consume", help="run consumer adapters that keep read models up to date")
    parser.add_argument(
        "adapters", nargs="*", metavar="ADAPTER", help=f"default: all of {', '.join(ADAPTERS)}"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run each adapter in its own thread until SIGINT or SIGTERM; exit 1 when one cannot run."""
    names = args.adapters or list(ADAPTERS)
    for name in names:
        build_projection(name)  # an unknown adapter name fails here, before anything starts
    require_kafka(settings)
    require_registry(settings)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    catalog = load_catalog()
    registry = build_registry_client(settings)
    store = build_store(settings)
    failures: list[BaseException] = []
    threads = []
    for name in names:
        runner = build_runner(settings, name, store=store, registry=registry, catalog=catalog)
        thread = threading.Thread(target=_run, args=(runner, stop, failures), name=name, daemon=True)
        thread.start()
        threads.append(thread)
    print(f"consuming for {', '.join(names)}; Ctrl-C to stop", flush=True)
    while any(t.is_alive() for t in threads) and not stop.wait(0.5):
        pass
    stop.set()
    for thread in threads:
        thread.join(timeout=30)
    registry.close()
    if failures:
        failure = failures[0]
        if isinstance(failure, KafkaUnavailableError):  # Kafka went away between the check and the start
            raise KafkaUnavailableError(f"{failure}: {START_KAFKA}", failure.bootstrap) from failure
        raise failure
    return 0


def _run(runner: ProjectionRunner, stop: threading.Event, failures: list[BaseException]) -> None:
    """Run one adapter; when it fails, keep the error for the main thread and stop the others."""
    try:
        runner.run(stop, _report)
    except BaseException as exc:
        failures.append(exc)
        stop.set()


def _report(stats: RunStats) -> None:
    log.info(
        "projection.batch", applied=stats.applied, skipped=stats.skipped, dead_lettered=stats.dead_lettered
    )
