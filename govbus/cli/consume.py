"""``govbus consume [ADAPTER...]``: keep read models up to date until interrupted."""

from __future__ import annotations

import argparse
import signal
import threading
from typing import Any

import structlog

from bus.settings import Settings
from consumers.adapters import ADAPTERS, build_projection
from consumers.runtime import RunStats
from govbus.bootstrap import build_registry_client, build_runner, build_store
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
    """Run each adapter in its own thread until SIGINT or SIGTERM."""
    names = args.adapters or list(ADAPTERS)
    for name in names:
        build_projection(name)  # an unknown adapter name fails here, before anything starts
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    catalog = load_catalog()
    registry = build_registry_client(settings)
    store = build_store(settings)
    threads = []
    for name in names:
        runner = build_runner(settings, name, store=store, registry=registry, catalog=catalog)
        thread = threading.Thread(target=runner.run, args=(stop, _report), name=name, daemon=True)
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
