"""``govbus consume [ADAPTER...] [--until-caught-up] [--workers N]``: read models and reactions.

An ADAPTER names a read model (``consumers.adapters.ADAPTERS``) or a reaction
(``consumers.reactions.REACTIONS``: finance and personnel reacting to a reported death); without names
every read model and every reaction runs. An unknown name fails before anything starts. Each runs in its
own thread, in one of the worker processes (below). Without ``--until-caught-up`` they run until SIGINT
or SIGTERM. An adapter or reaction that stops on an error (a bug in projection or decision code, a dead
letter Kafka refused, a store that fails, a reaction fenced by a second process of itself) stops the
others, and the command exits 1 naming the error.

With ``--until-caught-up`` each stops once it has no lag, and the command exits 0 when all have. For a
read model that is every assigned partition read to its end; for a reaction, every input partition's
committed position (the group offsets it sends to its transactions, the ones ``govbus lag`` shows) at
its end, which it reaches after rebuilding its state from the log. Reactions run first, on their own,
and the read models after them: the events the reactions publish (a ``BenefitSuspended``, a
``CivilServantRetired``) are the read models' input, so when the command exits 0 the read models hold
the reactions to every event that was on the topics. Naming only read models runs no reaction.

The work is spread over worker processes (``--workers``, default one per CPU core; :mod:`bus.workers`),
so that it uses every core instead of sharing one Python interpreter; each process runs its part in
threads, with its own Kafka clients and store connections. The split is by backlog when the command
starts (each read model's lag; the reactions together, as one part, by theirs), the heaviest first into
the least loaded process. With ``--until-caught-up`` the reactions' phase runs before the read models'
as above, each phase spread over the workers. ``--workers 1`` keeps everything in one process. SIGINT
and SIGTERM reach every worker; a worker that fails stops the others.

``--ready-file PATH`` (``govbus up`` passes it) keeps a JSON file listing the reactions that have rebuilt
their state and are emitting, with the command's pid, so ``govbus status`` can tell a running reaction
from one still rebuilding; the file is removed when the command ends.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import signal
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import structlog

from bus.errors import ConfigurationError, GovbusError, KafkaUnavailableError
from bus.progress import say
from bus.settings import Settings
from bus.workers import balance, freeze_heap, run_forked
from consumers.adapters import ADAPTERS, build_read_model
from consumers.lag import measure_lag, measure_reaction_lag
from consumers.reactions import REACTIONS, RULES, ReactionAdapter
from consumers.runtime import ReadModelRunner, RunStats
from govbus.bootstrap import (
    build_connection,
    build_reaction_adapter,
    build_registry_client,
    build_runner,
    build_store,
)
from govbus.cli.preflight import START_KAFKA, require_kafka, require_registry
from schemas.catalog import load_catalog

log = structlog.get_logger(__name__)

JOIN_TIMEOUT_S = 30.0
REACTIONS_PART = "reactions"
"""How the worker split calls the reactions, which always run together in one process (one ready file)."""


def register(commands: Any) -> None:
    """Add the ``consume`` command."""
    parser = commands.add_parser(
        "consume", help="run the read-model adapters and the reactions between agencies"
    )
    parser.add_argument(
        "adapters",
        nargs="*",
        metavar="ADAPTER",
        help=f"default: all read models ({', '.join(ADAPTERS)}) and reactions ({', '.join(REACTIONS)})",
    )
    parser.add_argument(
        "--until-caught-up",
        action="store_true",
        help="stop (exit 0) once nothing is left to read: the reactions first, then the read models",
    )
    parser.add_argument(
        "--ready-file",
        type=Path,
        metavar="PATH",
        help="keep PATH listing the reactions that are emitting (govbus up uses it for govbus status)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="processes to spread the work over (default: one per CPU core)",
    )
    parser.set_defaults(handler=run)


def check_names(names: Sequence[str]) -> tuple[list[str], list[str]]:
    """The read models and the reactions among ``names``; raises naming an unknown one and the known ones."""
    unknown = [name for name in names if name not in ADAPTERS and name not in REACTIONS]
    if unknown:
        raise ConfigurationError(
            f"unknown adapter {', '.join(map(repr, unknown))}; read models: {', '.join(ADAPTERS)}; "
            f"reactions: {', '.join(REACTIONS)}"
        )
    return [n for n in names if n in ADAPTERS], [n for n in names if n in REACTIONS]


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run the read models and reactions, spread over worker processes; exit 1 when one stops on an error."""
    names = list(dict.fromkeys(args.adapters or [*ADAPTERS, *REACTIONS]))
    models, reaction_names = check_names(names)  # before anything starts
    if args.workers is not None and args.workers < 1:
        raise ConfigurationError(f"--workers must be at least 1, not {args.workers}")
    require_kafka(settings)
    require_registry(settings)
    workers = args.workers or os.cpu_count() or 1
    command = os.getpid()
    if args.until_caught_up and models and reaction_names:
        # The reactions' output is the read models' input: let them finish publishing first.
        phases = [([], reaction_names), (models, [])]
    else:
        phases = [(models, reaction_names)]
    applied = emitted = 0
    for phase_models, phase_reactions in phases:
        parts = _parts(phase_models, phase_reactions, settings, workers)
        if len(parts) == 1:
            done = [_consume(*parts[0], args, settings, command)]
        else:
            say(f"consuming in {len(parts)} processes: {'; '.join(', '.join(m + r) for m, r in parts)}")
            done = list(
                run_forked(
                    {
                        ", ".join(m + r): functools.partial(_consume, m, r, args, settings, command)
                        for m, r in parts
                    }
                ).values()
            )
        applied += sum(a for a, _ in done)
        emitted += sum(e for _, e in done)
    if args.until_caught_up:
        say(
            f"caught up: {applied} events applied by {len(models)} read models, "
            f"{emitted} events published by {len(reaction_names)} reactions"
        )
    return 0


def _parts(
    models: list[str], reactions: list[str], settings: Settings, workers: int
) -> list[tuple[list[str], list[str]]]:
    """The read models and reactions of each worker process: split by backlog, the reactions together."""
    units = len(models) + (1 if reactions else 0)
    if min(workers, units) <= 1:
        return [(models, reactions)]
    connection = build_connection(settings, "govbus-consume")
    weights: dict[str, int] = {}
    if models:
        store = build_store(settings)
        try:
            specs = [build_read_model(name) for name in models]
            lags = measure_lag(connection, store, specs, settings.topic_prefix)
        finally:
            store.close()  # nothing of it may cross the fork
        weights.update({lag.adapter: lag.total for lag in lags})
    if reactions:
        lags = measure_reaction_lag(connection, [RULES[n] for n in reactions], settings.topic_prefix)
        weights[REACTIONS_PART] = sum(lag.total for lag in lags)
    return [
        ([n for n in group if n != REACTIONS_PART], reactions if REACTIONS_PART in group else [])
        for group in balance(weights, workers)
    ]


def _consume(
    models: list[str], reaction_names: list[str], args: argparse.Namespace, settings: Settings, command: int
) -> tuple[int, int]:
    """Run these read models and reactions in threads of this process; returns (applied, emitted).

    ``command`` is the pid of the ``govbus consume`` process, which the ready file names.
    """
    names = [*models, *reaction_names]
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    catalog = load_catalog()
    registry = build_registry_client(settings)
    store = build_store(settings) if models else None
    failures: list[BaseException] = []
    runners = [
        build_runner(settings, name, store=store, registry=registry, catalog=catalog) for name in models
    ]
    reactions = [
        build_reaction_adapter(settings, name, registry=registry, catalog=catalog) for name in reaction_names
    ]
    until = bool(args.until_caught_up)
    ready = ReadyFile(args.ready_file, reactions, command)
    freeze_heap()
    try:
        say(f"consuming for {', '.join(names)}" + (" until caught up" if until else "; Ctrl-C to stop"))
        reaction_work = [_work(reaction, stop, failures, until) for reaction in reactions]
        model_work = [_work(runner, stop, failures, until) for runner in runners]
        if until:
            # The reactions' output is the read models' input: let them finish publishing first.
            _run_threads(reaction_work, stop, ready)
            if not stop.is_set():
                _run_threads(model_work, stop, ready)
        else:
            _run_threads([*reaction_work, *model_work], stop, ready)
    finally:
        ready.remove()
        registry.close()
        if store is not None:
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
    return sum(r.stats.applied for r in runners), sum(r.stats.emitted for r in reactions)


class ReadyFile:
    """The ``--ready-file``: the reactions emitting (rebuilt and consuming), rewritten on each change."""

    def __init__(self, path: Path | None, reactions: Sequence[ReactionAdapter[Any]], pid: int) -> None:
        self._path = path
        self._reactions = reactions
        self._pid = pid
        self._written: list[str] | None = None

    def update(self) -> None:
        """Rewrite the file when the set of emitting reactions changed since the last write.

        Only the process that runs the reactions writes it: a worker process without any would
        otherwise write an empty document over it, or race it for the temporary file.
        """
        if self._path is None or not self._reactions:
            return
        emitting = [reaction.name for reaction in self._reactions if reaction.ready.is_set()]
        if emitting == self._written:
            return
        document = {"pid": self._pid, "reactions": [r.name for r in self._reactions], "emitting": emitting}
        self._path.parent.mkdir(parents=True, exist_ok=True)
        partial = self._path.with_name(f"{self._path.name}.{os.getpid()}.tmp")
        partial.write_text(json.dumps(document) + "\n")
        partial.replace(self._path)  # a reader never sees half a file
        self._written = emitting

    def remove(self) -> None:
        """Remove the file: the command is ending (only the process that runs the reactions writes it)."""
        if self._path is not None and self._reactions:
            self._path.unlink(missing_ok=True)


def _run_threads(work: Sequence[Callable[[], None]], stop: threading.Event, ready: ReadyFile) -> None:
    """Run each piece of work in a thread of its own; return when all have ended or ``stop`` is set."""
    threads = [threading.Thread(target=target, daemon=True) for target in work]
    for thread in threads:
        thread.start()
    while any(t.is_alive() for t in threads) and not stop.wait(0.5):
        ready.update()
    if stop.is_set():
        for thread in threads:
            thread.join(timeout=JOIN_TIMEOUT_S)


def _work(
    adapter: ReadModelRunner | ReactionAdapter[Any],
    stop: threading.Event,
    failures: list[BaseException],
    until_caught_up: bool,
) -> Callable[[], None]:
    """Run one adapter or reaction; when it fails, keep the error for the main thread and stop the others."""

    def work() -> None:
        try:
            if isinstance(adapter, ReadModelRunner):
                adapter.run(stop, _report, until_caught_up=until_caught_up)
            else:
                adapter.run(stop, until_caught_up=until_caught_up)
        except BaseException as exc:
            failures.append(exc)
            stop.set()

    return work


def _report(stats: RunStats) -> None:
    log.info(
        "projection.batch",
        applied=stats.applied,
        skipped=stats.skipped,
        duplicates=stats.duplicates,
        dead_lettered=stats.dead_lettered,
    )
