"""``govbus consume [ADAPTER...] [--until-caught-up] [--workers N]``: keep read models up to date.

The adapters are spread over worker processes (``--workers``, default one per CPU core and at most
one per adapter; :mod:`bus.workers`), so that they use every core instead of sharing one Python
interpreter: each process runs its adapters in threads of its own, with its own Kafka clients and
store connections. The split is by backlog: each adapter's lag when the command starts, the
heaviest first into the least loaded process. ``--workers 1`` keeps everything in one process.

Without ``--until-caught-up`` the adapters run until SIGINT or SIGTERM (passed on to every worker);
with it, each stops once every partition assigned to it has no lag, and the command exits 0 when all
have. An adapter that stops on an error (a bug in projection code, a dead letter Kafka refused, a
store that fails) stops the others, in its process and in the other processes, and the command exits
1 naming the error.
"""

from __future__ import annotations

import argparse
import functools
import os
import signal
import threading
from typing import Any

import structlog

from bus.errors import ConfigurationError, GovbusError, KafkaUnavailableError
from bus.progress import say
from bus.settings import Settings
from bus.workers import balance, run_forked
from consumers.adapters import ADAPTERS, build_read_model
from consumers.lag import measure_lag
from consumers.runtime import ReadModelRunner, RunStats
from govbus.bootstrap import build_connection, build_registry_client, build_runner, build_store
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
    parser.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="processes to spread the adapters over (default: one per CPU core, at most one per adapter)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run the adapters, spread over worker processes; exit 1 when one stops on an error."""
    names = list(dict.fromkeys(args.adapters or ADAPTERS))
    for name in names:
        build_read_model(name)  # an unknown adapter name fails here, before anything starts
    if args.workers is not None and args.workers < 1:
        raise ConfigurationError(f"--workers must be at least 1, not {args.workers}")
    require_kafka(settings)
    require_registry(settings)
    workers = min(args.workers or os.cpu_count() or 1, len(names))
    if workers == 1:
        _consume(names, args, settings)
        return 0
    groups = balance(_backlogs(names, settings), workers)
    say(f"consuming in {len(groups)} processes: {'; '.join(', '.join(g) for g in groups)}")
    results = run_forked(
        {", ".join(group): functools.partial(_consume, group, args, settings, quiet=True) for group in groups}
    )
    if args.until_caught_up:
        say(f"caught up: {sum(results.values())} events applied by {len(names)} adapters")
    return 0


def _backlogs(names: list[str], settings: Settings) -> dict[str, int]:
    """Each adapter's lag, to give the worker processes about equal work (closed again before forking)."""
    store = build_store(settings)
    try:
        lags = measure_lag(
            build_connection(settings, "govbus-consume"),
            store,
            [build_read_model(name) for name in names],
            settings.topic_prefix,
        )
    finally:
        store.close()
    return {lag.adapter: lag.total for lag in lags}


def _consume(names: list[str], args: argparse.Namespace, settings: Settings, *, quiet: bool = False) -> int:
    """Run each adapter of ``names`` in a thread of this process; returns the events they applied."""
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
    if not quiet:
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
        if not isinstance(failure, GovbusError):  # a bug: one line here, the traceback is in the log
            raise GovbusError(
                f"an adapter stopped on an unexpected error: {type(failure).__name__}: {failure}"
            ) from failure
        raise failure
    total = sum(runner.stats.applied for runner in runners)
    if args.until_caught_up and not quiet:
        say(f"caught up: {total} events applied by {len(runners)} adapters")
    return total


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
