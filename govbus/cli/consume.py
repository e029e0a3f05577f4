"""``govbus consume [ADAPTER...] [--until-caught-up]``: keep read models up to date.

Each adapter runs in its own thread. Without ``--until-caught-up`` they run until SIGINT or SIGTERM;
with it, each stops once every partition assigned to it has no lag, and the command exits 0 when all
have. An adapter that stops on an error (a bug in projection code, a dead letter Kafka refused, a
store that fails) stops the others, and the command exits 1 naming the error.
"""

from __future__ import annotations

import argparse
import signal
import threading
from typing import Any

import structlog

from bus.errors import KafkaUnavailableError
from bus.progress import say
from bus.settings import Settings
from consumers.adapters import ADAPTERS, build_read_model
from consumers.runtime import ReadModelRunner, RunStats
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
    parser.add_argument(
        "--until-caught-up",
        action="store_true",
        help="stop (exit 0) once every assigned partition's lag is zero",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run each adapter in its own thread; exit 1 when one stops on an error."""
    names = list(dict.fromkeys(args.adapters or ADAPTERS))
    for name in names:
        build_read_model(name)  # an unknown adapter name fails here, before anything starts
    require_kafka(settings)
    require_registry(settings)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    catalog = load_catalog()
    registry = build_registry_client(settings)
    store = build_store(settings)
    failures: list[BaseException] = []
    runners = [
        build_runner(settings, name, store=store, registry=registry, catalog=catalog) for name in names
    ]
    threads = [
        threading.Thread(
            target=_run, args=(runner, stop, failures, args.until_caught_up), name=runner.name, daemon=True
        )
        for runner in runners
    ]
    for thread in threads:
        thread.start()
    say(
        f"consuming for {', '.join(names)}"
        + (" until caught up" if args.until_caught_up else "; Ctrl-C to stop")
    )
    while any(t.is_alive() for t in threads) and not stop.wait(0.5):
        pass
    stop.set()
    for thread in threads:
        thread.join(timeout=30)
    registry.close()
    store.close()
    if failures:
        failure = failures[0]
        if isinstance(failure, KafkaUnavailableError):  # Kafka went away between the check and the start
            raise KafkaUnavailableError(f"{failure}: {START_KAFKA}", failure.bootstrap) from failure
        raise failure
    if args.until_caught_up:
        total = sum(runner.stats.applied for runner in runners)
        say(f"caught up: {total} events applied by {len(runners)} adapters")
    return 0


def _run(
    runner: ReadModelRunner, stop: threading.Event, failures: list[BaseException], until_caught_up: bool
) -> None:
    """Run one adapter; when it fails, keep the error for the main thread and stop the others."""
    try:
        runner.run(stop, _report, until_caught_up=until_caught_up)
    except BaseException as exc:
        failures.append(exc)
        stop.set()


def _report(stats: RunStats) -> None:
    log.info(
        "projection.batch",
        applied=stats.applied,
        skipped=stats.skipped,
        duplicates=stats.duplicates,
        dead_lettered=stats.dead_lettered,
    )
