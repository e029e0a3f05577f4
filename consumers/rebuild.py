"""Rebuilding a read model from the beginning of its topics: ``govbus readmodel rebuild``.

The rebuild fills the ``{table}__rebuild`` copies (:meth:`~consumers.stores.Store.shadow`) with a
runner built with ``shadow=True``, which records its positions and event ids under the rebuild's own
name, then puts the copies, positions and event ids in place of the live ones in one transaction
(:meth:`~consumers.stores.Store.swap`). Until then readers (the gateway) see the live tables, and a
live runner of the adapter keeps applying to them; after the swap that runner finds the stored
positions moved and seeks to them, so it continues from where the rebuild stopped.

Dead letters are not sent again by a rebuild (the live adapter already set them aside), and records
that were dead-lettered and later replayed with ``govbus dlq replay`` are not in the rebuilt tables:
replay them again after the rebuild.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from bus.errors import GovbusError
from consumers.readmodel import Table
from consumers.runtime import ReadModelRunner, RunStats
from consumers.stores import Store


@dataclass(frozen=True)
class RebuildResult:
    """What a rebuild did: events applied and dead-lettered, rows per table after the swap, seconds."""

    applied: int
    dead_lettered: int
    rows: dict[str, int]
    seconds: float


def rebuild(
    store: Store,
    runner: ReadModelRunner,
    on_batch: Callable[[RunStats], None] | None = None,
    stop: threading.Event | None = None,
) -> RebuildResult:
    """Replay ``runner``'s topics (a runner built with ``shadow=True`` on ``store``), then swap.

    Setting ``stop`` before the rebuild caught up abandons it: the live tables stay as they were.
    """
    started = time.monotonic()
    stop = stop or threading.Event()
    tables = runner.model.tables
    store.migrate(tables)  # the live tables the swap replaces
    store.shadow(tables, runner.name)
    stats = runner.run(stop, on_batch, until_caught_up=True)
    if stop.is_set():
        raise GovbusError(f"the rebuild of {runner.name} was stopped; the live tables are unchanged")
    store.swap(tables, runner.name)
    return RebuildResult(
        stats.applied, stats.dead_lettered, row_counts(store, tables), time.monotonic() - started
    )


def row_counts(store: Store, tables: tuple[Table, ...]) -> dict[str, int]:
    """The number of rows of each live table (counted through the store port, table by table)."""
    return {table.name: sum(1 for _ in store.dump(table)) for table in tables}
