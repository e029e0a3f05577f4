"""Write throughput of the read-model stores: a micro-benchmark run by hand, and a test of its figures' basis.

Run it by hand (it starts its own throwaway PostgreSQL, as the tests do)::

    .venv/bin/python -m tests.integration.test_store_throughput [--rows 100000] [--batch 500]

It prints rows per second of :meth:`Store.write` alone (prepared working-set changes, one transaction
per batch: first every row new, then every row replaced), and of a whole batch as the projection
runtime runs it: one transaction that claims the events' ids, loads the rows through a working set,
changes them, writes them in bulk and records the position. The test below runs the same code on
fewer rows and checks what was stored, never how fast: wall-clock time is noise on shared machines.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest

from consumers.readmodel import MemoryRows, WorkingSet
from consumers.stores import Change, Store, open_store
from tests.pg import PostgresServer, create_database
from tests.unit.test_store_contract import ACCOUNTS, ADAPTER, TABLES, account, event

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class Throughput:
    """Rows per second of the store's bulk write alone (new rows, then replaced) and of a whole batch."""

    written_per_s: float
    rewritten_per_s: float
    batch_rows_per_s: float


def prepared_batches(rows: int, batch: int) -> list[list[Change]]:
    """``rows`` new accounts as working-set changes, ``batch`` per list."""
    working = WorkingSet(MemoryRows(), TABLES)
    for number in range(rows):
        working.begin(event(number))
        working.put(
            "accounts", account(f"A{number:08d}", owner=f"R{number % 5000}", balance=Decimal(number) / 100)
        )
        working.commit()
    changes = list(working.changes())
    return [changes[first : first + batch] for first in range(0, rows, batch)]


def write_pass(store: Store, batches: list[list[Change]]) -> float:
    """Write each batch of changes in a transaction of its own; returns rows per second."""
    started = time.perf_counter()
    for changes in batches:
        with store.transaction() as tx:
            store.write(tx, changes)
    return sum(len(changes) for changes in batches) / (time.perf_counter() - started)


def batch_pass(store: Store, rows: int, batch: int) -> float:
    """Add to every account in batches of ``batch`` events as the runtime would; returns rows per second."""
    started = time.perf_counter()
    for first in range(0, rows, batch):
        events = [event(offset) for offset in range(rows + first, rows + min(rows, first + batch))]
        with store.transaction() as tx:
            new = store.claim_events(tx, ADAPTER, [e.id for e in events])
            working = WorkingSet(store.rows(tx), TABLES)
            working.prefetch(("accounts", (f"A{e.offset - rows:08d}",)) for e in events)
            for item in events:
                if item.id not in new:
                    continue
                working.begin(item)
                current = working.get("accounts", f"A{item.offset - rows:08d}")
                assert current is not None
                balance = current["balance"] + Decimal(item.offset - rows) / 100
                working.put("accounts", {**current, "balance": balance, "visits": current["visits"] + 1})
                working.commit()
            store.write(tx, working.changes())
            store.record_positions(tx, ADAPTER, {("finance.test", 0): events[-1].offset})
    return rows / (time.perf_counter() - started)


def measure(url: str, rows: int, batch: int) -> Throughput:
    """Write the rows, write them again, then run the batch pass, on a fresh store at ``url``."""
    store = open_store(url)
    try:
        store.migrate(TABLES)
        batches = prepared_batches(rows, batch)
        return Throughput(
            write_pass(store, batches), write_pass(store, batches), batch_pass(store, rows, batch)
        )
    finally:
        store.close()


def check_stored(url: str, rows: int) -> None:
    """Every account is stored once, replaced once, with its exact balance and the last position."""
    store = open_store(url)
    try:
        dumped = list(store.dump(ACCOUNTS))
        assert len(dumped) == rows
        assert all(row["visits"] == 1 for row in dumped)
        assert [row["balance"] for row in dumped[:3]] == [Decimal(0), Decimal("0.02"), Decimal("0.04")]
        assert store.positions(ADAPTER) == {("finance.test", 0): 2 * rows - 1}
    finally:
        store.close()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_the_benchmark_stores_every_row_of_both_passes(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """On both stores the benchmark writes every row, then its batch pass changes each once, exactly."""
    url = (
        f"sqlite:///{tmp_path / 'bench.sqlite'}"
        if backend == "sqlite"
        else str(request.getfixturevalue("postgres_database"))
    )
    measure(url, rows=3000, batch=500)
    check_stored(url, rows=3000)


def main() -> None:
    """Print the write throughput of both stores."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=500)
    options = parser.parse_args()
    server = PostgresServer()
    server.start()
    try:
        with tempfile.TemporaryDirectory() as folder:
            urls = {
                "sqlite": f"sqlite:///{Path(folder) / 'bench.sqlite'}",
                "postgresql": create_database(server.url, "bench"),
            }
            for name, url in urls.items():
                result = measure(url, options.rows, options.batch)
                check_stored(url, options.rows)
                print(
                    f"{name:<11} {options.rows:,} rows in batches of {options.batch}: "
                    f"write new {result.written_per_s:,.0f} rows/s, "
                    f"write again {result.rewritten_per_s:,.0f} rows/s, "
                    f"whole batch {result.batch_rows_per_s:,.0f} rows/s"
                )
    finally:
        server.stop()


if __name__ == "__main__":
    main()
