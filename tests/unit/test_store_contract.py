"""The read-model store contract (tables, positions, event ids, snapshots, rebuilds), run here on SQLite.

``StoreContract`` holds the behaviour every read-model store must have; the PostgreSQL subclass lives
in tests/integration/test_store_postgres.py and runs the same tests on a real server.
"""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

import pytest

from bus.errors import ConfigurationError
from bus.urls import redact
from consumers.events import DecodedEvent
from consumers.readmodel import Table, WorkingSet
from consumers.stores import Store, StoreError, Transaction, open_store, shadow_adapter

ACCOUNTS = Table(
    "accounts",
    {
        "account_id": "text",
        "owner": "text",
        "balance": "decimal",
        "active": "bool",
        "visits": "int",
        "note": "text",
    },
    key=("account_id",),
    indexes=(("owner",),),
    nullable=frozenset({"note"}),
)
ENROLMENTS = Table(
    "enrolments",
    {"school_id": "text", "year": "int", "student_id": "text", "fee": "decimal"},
    key=("school_id", "year", "student_id"),
    indexes=(("student_id",), ("school_id", "fee")),
)
TABLES = (ACCOUNTS, ENROLMENTS)
ADAPTER = "accounts"
PASSWORD = "s3cret-pw"
"""The password a subclass puts in its URL when its database takes one: it must never show."""
WAIT_S = 20.0


def event(offset: int, event_id: str | None = None, partition: int = 0) -> DecodedEvent:
    """A finance event at ``offset`` of partition ``partition`` of ``finance.test``."""
    return DecodedEvent(
        type="govbus.finance.Test",
        id=event_id or f"e{partition}-{offset}",
        source="urn:govbus:agency:finance",
        time=datetime(2026, 3, 1, 9, 30, tzinfo=UTC),
        data={},
        topic="finance.test",
        partition=partition,
        offset=offset,
    )


def account(account_id: str, **changes: Any) -> dict[str, Any]:
    """An accounts row."""
    return {
        "account_id": account_id,
        "owner": "R1",
        "balance": Decimal(0),
        "active": True,
        "visits": 0,
        **changes,
    }


def apply(
    store: Store, tx: Transaction, change: Callable[[WorkingSet], None], offset: int = 1, shadow: bool = False
) -> WorkingSet:
    """Run ``change`` as one event on a working set over ``tx`` and write its changes."""
    rows = WorkingSet(store.rows(tx, shadow=shadow), TABLES)
    rows.begin(event(offset))
    change(rows)
    rows.commit()
    store.write(tx, rows.changes(), shadow=shadow)
    return rows


def putting(table: str, *rows: dict[str, Any]) -> Callable[[WorkingSet], None]:
    """A change that puts ``rows`` in ``table``."""

    def change(working_set: WorkingSet) -> None:
        for row in rows:
            working_set.put(table, row)

    return change


def deleting(table: str, *keys: tuple[Any, ...]) -> Callable[[WorkingSet], None]:
    """A change that deletes the rows of ``table`` with these keys."""

    def change(working_set: WorkingSet) -> None:
        for key in keys:
            working_set.delete(table, *key)

    return change


def put_accounts(store: Store, *rows: dict[str, Any], offset: int = 1, shadow: bool = False) -> None:
    """Store ``rows`` in accounts in one transaction."""
    with store.transaction() as tx:
        apply(store, tx, putting("accounts", *rows), offset, shadow)


def stored(store: Store, table: Table = ACCOUNTS) -> dict[tuple[Any, ...], dict[str, Any]]:
    """Every row of ``table`` by key."""
    return {table.key_of(row): row for row in store.dump(table)}


class InThread:
    """Runs a function on a thread of its own and keeps its result or error."""

    def __init__(self, target: Callable[[], Any]) -> None:
        self.result: Any = None
        self.error: BaseException | None = None
        self._target = target
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.result = self._target()
        except BaseException as exc:
            self.error = exc

    def join(self) -> Any:
        """Wait for the thread (failing the test after WAIT_S) and return its result or raise its error."""
        self.thread.join(WAIT_S)
        assert not self.thread.is_alive(), "the thread did not finish"
        if self.error is not None:
            raise self.error
        return self.result


class StoreContract:
    """Behaviour every read-model store must have; subclasses provide ``url`` and the hooks below."""

    swap_waits_for_readers = False
    """Whether :meth:`Store.swap` waits for open readers of the tables (PostgreSQL) or not (SQLite)."""
    sql_types: ClassVar[dict[str, str]] = {}
    """The SQL type each portable column type is stored as, as the database reports it."""

    @pytest.fixture
    def url(self) -> str:
        """The URL of an empty database."""
        raise NotImplementedError

    def wait_until_blocked(self, url: str, sessions: int = 1) -> None:
        """Return once ``sessions`` other sessions of the database wait for a lock, where that is visible."""
        raise NotImplementedError

    def index_names(self, store: Store, table: str) -> set[str]:
        """The names of the secondary indexes of stored table ``table``."""
        raise NotImplementedError

    def column_types(self, store: Store, table: str) -> dict[str, str]:
        """Column name → SQL type of stored table ``table``."""
        raise NotImplementedError

    @pytest.fixture
    def store(self, url: str) -> Iterator[Store]:
        """The store, its read-model tables created."""
        store = open_store(url)
        store.migrate(TABLES)
        yield store
        store.close()

    # -- pages ------------------------------------------------------------------------------------

    def test_pages_follow_the_key_order_and_resume_after_the_last_key(self, store: Store) -> None:
        """Keyset pages over a three-column key walk every row once, in code-point order, with filters."""
        rows = [
            {"school_id": school, "year": year, "student_id": student, "fee": Decimal(year)}
            for school in ("S-b", "S-a", "S-B", "S-가")
            for year in (2026, 2025, 9)
            for student in ("st2", "st10", "st1")
        ]
        with store.transaction() as tx:
            apply(store, tx, putting("enrolments", *rows))
        seen: list[tuple[Any, ...]] = []
        after = None
        while True:
            with store.snapshot() as tx:
                page = store.page(tx, ENROLMENTS, {}, after, 5)
            if not page:
                break
            seen.extend(ENROLMENTS.key_of(row) for row in page)
            after = ENROLMENTS.key_of(page[-1])
        assert len(seen) == len(rows)
        assert seen == sorted(seen, key=lambda key: (key[0].encode(), key[1], key[2].encode()))
        with store.snapshot() as tx:
            filtered = store.page(tx, ENROLMENTS, {"student_id": "st1"}, ("S-a", 2025, "st1"), 100)
            assert [ENROLMENTS.key_of(r) for r in filtered][:2] == [("S-a", 2026, "st1"), ("S-b", 9, "st1")]
            with pytest.raises(StoreError):
                store.page(tx, ENROLMENTS, {"nope": 1}, None, 10)

    def test_lookup_reads_one_row_by_key_outside_any_snapshot(self, store: Store) -> None:
        """lookup finds a stored row by its key (decoded), None for a missing key, in one statement."""
        put_accounts(store, account("A", balance=Decimal("12.50"), note="n"))
        found = store.lookup(ACCOUNTS, ("A",))
        assert found is not None
        assert (found["balance"], found["active"], found["note"]) == (Decimal("12.50"), True, "n")
        assert store.lookup(ACCOUNTS, ("missing",)) is None

    # -- tables -----------------------------------------------------------------------------------

    def test_migrate_is_idempotent(self, store: Store) -> None:
        """Migrating again keeps the rows and adds no index."""
        put_accounts(store, account("A"))
        indexes = self.index_names(store, "accounts")
        store.migrate(TABLES)
        store.migrate(TABLES)
        assert list(stored(store)) == [("A",)]
        assert self.index_names(store, "accounts") == indexes == {"accounts__by__owner"}

    def test_columns_have_the_sql_type_of_their_portable_type(self, store: Store) -> None:
        """text, int, decimal and bool columns are stored as the dialect's types for them."""
        types = self.column_types(store, "accounts")
        assert [types[c] for c in ("owner", "visits", "balance", "active")] == [
            self.sql_types[k] for k in ("text", "int", "decimal", "bool")
        ]

    def test_a_stored_table_with_other_columns_is_refused(self, store: Store) -> None:
        """Migrating a spec whose columns differ from the stored table names both and asks for a rebuild."""
        changed = Table("accounts", {"account_id": "text", "iban": "text"}, key=("account_id",))
        with pytest.raises(StoreError, match=r"accounts .*'iban'.*rebuild"):
            store.migrate([changed])

    def test_a_name_that_is_not_a_plain_identifier_is_refused(self, store: Store) -> None:
        """Table and column names are lower-case identifiers and may not take an internal table's name."""
        with pytest.raises(ValueError, match="usable"):
            store.migrate(
                [Table("accounts", {'id"; DROP TABLE x; --': "text"}, key=('id"; DROP TABLE x; --',))]
            )
        with pytest.raises(ValueError, match="internal"):
            store.migrate([Table("govbus_positions", {"id": "text"}, key=("id",))])

    # -- rows -------------------------------------------------------------------------------------

    def test_rows_written_from_a_working_set_load_and_select_back_as_python_types(self, store: Store) -> None:
        """Rows put in a batch come back by key, by column and through a working set, with their types."""
        put_accounts(
            store,
            account("A", owner="R1", balance=Decimal("10.50"), visits=2**40, note="기초연금"),
            account("B", owner="R1", active=False),
            account("C", owner="R2"),
        )
        with store.transaction() as tx:
            source = store.rows(tx)
            [a] = source.load(ACCOUNTS, [("A",), ("missing",)])
            assert a == {
                **account("A", owner="R1", balance=Decimal("10.50"), visits=2**40, note="기초연금"),
                "source_agency": "finance",
                "event_id": "e0-1",
                "event_topic": "finance.test",
                "event_partition": 0,
                "event_offset": 1,
                "event_time": "2026-03-01T09:30:00+00:00",
            }
            assert [type(a[c]) for c in ("balance", "active", "visits")] == [Decimal, bool, int]
            assert sorted(r["account_id"] for r in source.select(ACCOUNTS, "owner", "R1")) == ["A", "B"]
            assert [r["account_id"] for r in source.select(ACCOUNTS, "active", False)] == ["B"]
            assert sorted(r["account_id"] for r in source.select(ACCOUNTS, "note", None)) == ["B", "C"]
            rows = WorkingSet(source, TABLES)
            assert [r["account_id"] for r in rows.find("accounts", "owner", "R1")] == ["A", "B"]

    def test_selecting_by_a_column_the_table_lacks_is_a_store_error(self, store: Store) -> None:
        """A lookup by an undeclared column raises StoreError, which stops an adapter, not a KeyError."""
        with store.transaction() as tx, pytest.raises(StoreError, match="no column 'iban'"):
            store.rows(tx).select(ACCOUNTS, "iban", "x")

    def test_decimals_round_trip_exactly_and_sums_stay_exact(self, store: Store) -> None:
        """Large and fractional decimals come back equal and in the same notation; repeated sums are exact."""
        values = ["999999999999999999", "12345678901234567890.123456789", "0.10", "-0.000001", "1234567.50"]
        put_accounts(store, *(account(f"D{i}", balance=Decimal(v)) for i, v in enumerate(values)))
        assert [str(stored(store)[(f"D{i}",)]["balance"]) for i in range(len(values))] == values
        increments = [Decimal("999999999999999999.01"), Decimal("0.1")] * 10
        for offset, amount in enumerate(increments, start=10):
            with store.transaction() as tx:

                def add(rows: WorkingSet, amount: Decimal = amount) -> None:
                    current = rows.get("accounts", "SUM") or account("SUM")
                    rows.put("accounts", {**current, "balance": current["balance"] + amount})

                apply(store, tx, add, offset)
        assert stored(store)[("SUM",)]["balance"] == Decimal("9999999999999999991.10")

    def test_many_rows_with_a_composite_key_load_back(self, store: Store) -> None:
        """A batch of 2,500 rows keyed by text, int and text loads back in full by key."""
        keys = [(f"S{i % 7}", 2020 + i % 5, f"P{i:05d}") for i in range(2500)]
        with store.transaction() as tx:
            fee = Decimal("0.01")
            rows = [{"school_id": s, "year": y, "student_id": p, "fee": fee} for s, y, p in keys]
            apply(store, tx, putting("enrolments", *rows))
        with store.transaction() as tx:
            loaded = store.rows(tx).load(ENROLMENTS, [*keys, ("S0", 1999, "nobody")])
        assert sorted(ENROLMENTS.key_of(row) for row in loaded) == sorted(keys)
        assert {row["fee"] for row in loaded} == {Decimal("0.01")}

    def test_a_deleted_row_is_gone_and_deleting_a_missing_row_is_harmless(self, store: Store) -> None:
        """A working-set delete removes the row by simple or composite key; a missing row is a no-op."""
        put_accounts(store, account("A"), account("B"))
        pupils = [{"school_id": "S", "year": 2026, "student_id": p, "fee": 0} for p in ("P1", "P2")]
        with store.transaction() as tx:
            apply(store, tx, putting("enrolments", *pupils))
        with store.transaction() as tx:
            apply(store, tx, deleting("accounts", ("A",), ("nope",)), 2)
            apply(store, tx, deleting("enrolments", ("S", 2026, "P1"), ("S", 2025, "P2")), 3)
        with store.transaction() as tx:
            store.write(tx, [(ACCOUNTS, ("never-stored",), None)])
        assert list(stored(store)) == [("B",)]
        assert list(stored(store, ENROLMENTS)) == [("S", 2026, "P2")]

    def test_the_last_change_of_a_key_in_one_write_wins(self, store: Store) -> None:
        """Changes of one key in one write apply in order: a delete after a put deletes, and vice versa."""
        row = {
            **account("A"),
            **dict.fromkeys(("source_agency", "event_id", "event_topic", "event_time"), "x"),
        }
        row |= {"event_partition": 0, "event_offset": 0}
        with store.transaction() as tx:
            store.write(tx, [(ACCOUNTS, ("A",), row), (ACCOUNTS, ("A",), None)])
            store.write(tx, [(ACCOUNTS, ("B",), None), (ACCOUNTS, ("B",), {**row, "account_id": "B"})])
        assert list(stored(store)) == [("B",)]

    def test_a_failing_transaction_leaves_no_rows_positions_or_claims(self, store: Store) -> None:
        """An exception in the block undoes rows, positions and event ids, and reaches the caller as is."""

        def failing_batch() -> None:
            with store.transaction() as tx:
                apply(store, tx, lambda ws: ws.put("accounts", account("A")))
                store.record_positions(tx, ADAPTER, {("finance.test", 0): 5})
                store.claim_events(tx, ADAPTER, ["e1"])
                _ = 1 / 0

        with pytest.raises(ZeroDivisionError):
            failing_batch()
        assert stored(store) == {}
        assert store.positions(ADAPTER) == {}
        with store.transaction() as tx:
            assert store.claim_events(tx, ADAPTER, ["e1"]) == {"e1"}

    def test_a_database_error_is_a_store_error_and_rolls_back(self, store: Store) -> None:
        """A failing statement raises StoreError naming the database; the transaction's writes are undone."""

        def failing_batch() -> None:
            with store.transaction() as tx:
                apply(store, tx, lambda ws: ws.put("accounts", account("A")))
                tx.execute("SELECT * FROM no_such_table")

        with pytest.raises(StoreError) as caught:
            failing_batch()
        assert caught.value.where in str(caught.value)
        assert stored(store) == {}

    def test_placeholders_are_question_marks_and_percent_signs_are_literal(self, store: Store) -> None:
        """``?`` binds a parameter on every store, and a ``%`` in the SQL stays a ``%``."""
        with store.transaction() as tx:
            assert tx.execute("SELECT CAST(? AS TEXT) || '%'", ("50",)).fetchone()[0] == "50%"
            tx.executemany(
                "INSERT INTO govbus_positions VALUES (?, ?, ?, ?)", [("x", "t%", 0, 1), ("x", "t", 1, 2)]
            )
        assert store.positions("x") == {("t%", 0): 1, ("t", 1): 2}

    # -- positions and event ids ------------------------------------------------------------------

    def test_positions_never_move_back(self, store: Store) -> None:
        """A lower offset keeps the stored one; a higher one replaces it; each partition is separate."""
        for offsets in ({0: 10, 1: 3}, {0: 5, 1: 4}, {0: 12}):
            with store.transaction() as tx:
                store.record_positions(tx, ADAPTER, {("finance.test", p): o for p, o in offsets.items()})
        assert store.positions(ADAPTER) == {("finance.test", 0): 12, ("finance.test", 1): 4}

    def test_positions_belong_to_one_adapter_and_read_inside_a_transaction(self, store: Store) -> None:
        """Each adapter has its own positions; inside a transaction its uncommitted ones are visible."""
        with store.transaction() as tx:
            store.record_positions(tx, ADAPTER, {("finance.test", 0): 7})
            store.record_positions(tx, "other", {("finance.test", 0): 99})
            assert store.positions(ADAPTER, tx) == {("finance.test", 0): 7}
        assert store.positions(ADAPTER) == {("finance.test", 0): 7}
        assert store.positions("nobody") == {}

    def test_claim_events_dedupes_within_and_across_transactions(self, store: Store) -> None:
        """An id is new once per adapter: repeated in a call, in a later call, or in a later transaction."""
        with store.transaction() as tx:
            assert store.claim_events(tx, ADAPTER, ["a", "b", "a"]) == {"a", "b"}
            assert store.claim_events(tx, ADAPTER, ["b", "c"]) == {"c"}
            assert store.claim_events(tx, ADAPTER, []) == set()
        with store.transaction() as tx:
            assert store.claim_events(tx, ADAPTER, ["a", "c", "d"]) == {"d"}
            assert store.claim_events(tx, "other", ["a"]) == {"a"}

    def test_released_ids_are_new_again(self, store: Store) -> None:
        """An id released (its event was refused) can be claimed again; other adapters' claims stay."""
        with store.transaction() as tx:
            store.claim_events(tx, ADAPTER, ["a", "b"])
            store.claim_events(tx, "other", ["a"])
            store.release_events(tx, ADAPTER, ["a"])
        with store.transaction() as tx:
            assert store.claim_events(tx, ADAPTER, ["a", "b"]) == {"a"}
            assert store.claim_events(tx, "other", ["a"]) == set()

    def test_applied_events_reads_claims_without_making_any(self, store: Store) -> None:
        """applied_events names the ids an adapter claimed, from a snapshot too, and claims nothing."""
        with store.transaction() as tx:
            store.claim_events(tx, ADAPTER, ["a", "b"])
            store.claim_events(tx, "other", ["c"])
        with store.snapshot() as view:
            assert store.applied_events(view, ADAPTER, ["a", "c", "x", "a"]) == {"a"}
            assert store.applied_events(view, ADAPTER, []) == set()
        many = [f"id-{n}" for n in range(2500)]  # more than one statement's parameters
        with store.transaction() as tx:
            store.claim_events(tx, ADAPTER, many[::2])
        with store.snapshot() as view:
            assert store.applied_events(view, ADAPTER, many) == set(many[::2])
        with store.transaction() as tx:
            assert store.claim_events(tx, ADAPTER, ["x"]) == {"x"}

    def test_generation_counts_write_transactions_and_rolls_back(self, store: Store) -> None:
        """Each advance counts one per adapter; a rolled-back advance is not counted; a swap counts too."""
        with store.snapshot() as view:
            assert store.generation(view, ADAPTER) == 0
        with store.transaction() as tx:
            assert store.advance_generation(tx, ADAPTER) == 1
            assert store.generation(tx, ADAPTER) == 1
        with store.transaction() as tx:
            assert store.advance_generation(tx, ADAPTER) == 2
            assert store.advance_generation(tx, "other") == 1

        def failing_batch() -> None:
            with store.transaction() as tx:
                store.advance_generation(tx, ADAPTER)
                raise RuntimeError("the batch failed")

        with pytest.raises(RuntimeError):
            failing_batch()
        with store.snapshot() as view:
            assert store.generation(view, ADAPTER) == 2
        store.migrate(TABLES)
        store.shadow(TABLES, ADAPTER)
        store.swap(TABLES, ADAPTER)
        with store.snapshot() as view:
            assert store.generation(view, ADAPTER) == 3

    def test_claims_roll_back_with_their_transaction(self, store: Store) -> None:
        """Ids claimed in a transaction that rolls back are new again afterwards."""

        def failing_batch() -> None:
            with store.transaction() as tx:
                store.claim_events(tx, ADAPTER, [f"id{i}" for i in range(1500)])
                raise RuntimeError("batch failed")

        with pytest.raises(RuntimeError):
            failing_batch()
        with store.transaction() as tx:
            assert len(store.claim_events(tx, ADAPTER, [f"id{i}" for i in range(1500)])) == 1500

    @pytest.mark.parametrize("first_commits", [True, False])
    def test_a_concurrent_claim_of_the_same_id_waits_for_the_first_and_then_sees_it(
        self, store: Store, url: str, first_commits: bool
    ) -> None:
        """A second claim of an id another transaction holds waits; the id is new to it only on rollback."""
        release = threading.Event()
        claimed = threading.Event()

        def first() -> set[str]:
            with store.transaction() as tx:
                ids = store.claim_events(tx, ADAPTER, ["same", "mine"])
                claimed.set()
                release.wait(WAIT_S)
                if not first_commits:
                    raise RuntimeError("roll back")
            return ids

        def second() -> set[str]:
            with store.transaction() as tx:
                return store.claim_events(tx, ADAPTER, ["same", "theirs"])

        holder = InThread(first)
        assert claimed.wait(WAIT_S)
        contender = InThread(second)
        self.wait_until_blocked(url)
        release.set()
        if first_commits:
            assert holder.join() == {"same", "mine"}
            assert contender.join() == {"theirs"}
        else:
            with pytest.raises(RuntimeError):
                holder.join()
            assert contender.join() == {"same", "theirs"}

    def test_a_batch_that_starts_while_another_is_open_reads_what_it_committed(
        self, store: Store, url: str
    ) -> None:
        """Two batches of one adapter adding to one row both count: the second reads the first's result."""
        put_accounts(store, account("A", visits=0))
        release = threading.Event()
        loaded = threading.Event()

        def batch(event_id: str, hold: bool) -> None:
            with store.transaction() as tx:
                store.claim_events(tx, ADAPTER, [event_id])

                def visit(rows: WorkingSet) -> None:
                    current = rows.get("accounts", "A")
                    assert current is not None
                    rows.put("accounts", {**current, "visits": current["visits"] + 1})

                apply(store, tx, visit)
                if hold:
                    loaded.set()
                    release.wait(WAIT_S)

        first = InThread(lambda: batch("e1", hold=True))
        assert loaded.wait(WAIT_S)
        second = InThread(lambda: batch("e2", hold=False))
        self.wait_until_blocked(url)
        release.set()
        first.join()
        second.join()
        assert stored(store)[("A",)]["visits"] == 2

    # -- snapshots --------------------------------------------------------------------------------

    def test_a_snapshot_stays_consistent_while_a_writer_commits(self, store: Store) -> None:
        """A writer commits while a snapshot is open; the snapshot keeps seeing the state it started with."""
        put_accounts(store, account("A", visits=1))
        with store.snapshot() as view:
            source = store.rows(view)
            assert [r["visits"] for r in source.load(ACCOUNTS, [("A",)])] == [1]

            def write() -> None:
                put_accounts(store, account("A", visits=2), account("B"), offset=2)
                with store.transaction() as tx:
                    store.record_positions(tx, ADAPTER, {("finance.test", 0): 2})

            InThread(write).join()
            assert [r["visits"] for r in source.load(ACCOUNTS, [("A",), ("B",)])] == [1]
            assert store.positions(ADAPTER, view) == {}
        with store.snapshot() as view:
            assert len(store.rows(view).load(ACCOUNTS, [("A",), ("B",)])) == 2

    def test_a_snapshot_is_read_only(self, store: Store) -> None:
        """A write inside a snapshot fails and changes nothing."""
        put_accounts(store, account("A"))
        with pytest.raises(StoreError), store.snapshot() as view:
            view.execute("DELETE FROM accounts")
        assert list(stored(store)) == [("A",)]

    def test_a_transaction_inside_another_on_one_thread_is_refused(self, store: Store) -> None:
        """Opening a transaction or snapshot while one is open on the same thread raises StoreError."""
        with store.transaction(), pytest.raises(StoreError, match="already open"), store.snapshot():
            pass
        with store.snapshot(), pytest.raises(StoreError, match="already open"), store.transaction():
            pass

    # -- rebuilds ---------------------------------------------------------------------------------

    def _rebuild(self, store: Store, *rows: dict[str, Any], offset: int = 50) -> None:
        """Fill the shadow tables with ``rows`` and record the rebuild's position and an event id."""
        store.shadow(TABLES, ADAPTER)
        put_accounts(store, *rows, offset=offset, shadow=True)
        with store.transaction() as tx:
            store.record_positions(tx, shadow_adapter(ADAPTER), {("finance.test", 0): offset})
            store.claim_events(tx, shadow_adapter(ADAPTER), [f"rebuilt-{offset}"])

    def test_shadow_and_swap_replace_the_tables_positions_and_event_ids(self, store: Store) -> None:
        """Live rows stay until the swap; then the rebuild's rows, positions and event ids are live."""
        put_accounts(store, account("OLD"))
        with store.transaction() as tx:
            store.record_positions(tx, ADAPTER, {("finance.test", 0): 900})
            store.claim_events(tx, ADAPTER, ["live-only"])
        self._rebuild(store, account("NEW"))
        assert list(stored(store)) == [("OLD",)]
        assert [row["account_id"] for row in store.dump(ACCOUNTS, shadow=True)] == ["NEW"]
        store.swap(TABLES, ADAPTER)
        assert list(stored(store)) == [("NEW",)]
        assert store.positions(ADAPTER) == {("finance.test", 0): 50}
        assert store.positions(shadow_adapter(ADAPTER)) == {}
        with store.transaction() as tx:
            assert store.claim_events(tx, ADAPTER, ["rebuilt-50", "live-only"]) == {"live-only"}

    def test_rebuilds_can_follow_each_other_and_keep_the_live_index_names(self, store: Store) -> None:
        """After a swap the indexes carry live names, migrate adds none, and a second rebuild swaps in too."""
        for round_ in (1, 2):
            self._rebuild(store, account(f"R{round_}"), offset=round_)
            store.swap(TABLES, ADAPTER)
            store.migrate(TABLES)
            assert self.index_names(store, "accounts") == {"accounts__by__owner"}
            assert self.index_names(store, "enrolments") == {
                "enrolments__by__student_id",
                "enrolments__by__school_id__fee",
            }
            assert list(stored(store)) == [(f"R{round_}",)]
        put_accounts(store, account("after"), offset=3)
        assert sorted(stored(store)) == [("R2",), ("after",)]

    def test_a_reader_sees_either_the_old_tables_or_the_new_ones(self, store: Store, url: str) -> None:
        """A snapshot that read one old table reads the other old after the swap; the next sees both new."""
        put_accounts(store, account("OLD"))
        with store.transaction() as tx:
            apply(
                store,
                tx,
                lambda ws: ws.put("enrolments", {"school_id": "S", "year": 1, "student_id": "OLD", "fee": 1}),
            )
        self._rebuild(store, account("NEW"))
        with store.transaction() as tx:
            apply(
                store,
                tx,
                lambda ws: ws.put("enrolments", {"school_id": "S", "year": 1, "student_id": "NEW", "fee": 1}),
                shadow=True,
            )
        with store.snapshot() as view:
            source = store.rows(view)
            assert [r["account_id"] for r in source.select(ACCOUNTS, "owner", "R1")] == ["OLD"]
            swap = InThread(lambda: store.swap(TABLES, ADAPTER))
            if self.swap_waits_for_readers:
                self.wait_until_blocked(url)
            else:
                swap.join()
            assert [r["student_id"] for r in source.select(ENROLMENTS, "school_id", "S")] == ["OLD"]
        swap.join()
        with store.snapshot() as view:
            source = store.rows(view)
            assert [r["account_id"] for r in source.select(ACCOUNTS, "owner", "R1")] == ["NEW"]
            assert [r["student_id"] for r in source.select(ENROLMENTS, "school_id", "S")] == ["NEW"]

    def test_a_swap_without_a_rebuild_is_refused(self, store: Store) -> None:
        """Swapping tables that have no rebuild copy raises StoreError and leaves the live tables alone."""
        put_accounts(store, account("A"))
        with pytest.raises(StoreError, match="no rebuild of accounts"):
            store.swap(TABLES, ADAPTER)
        assert list(stored(store)) == [("A",)]

    # -- dumps, identity, connections -------------------------------------------------------------

    def test_dump_sorts_by_key_as_python_does_and_includes_provenance(self, store: Store) -> None:
        """Rows come sorted by key (text by code point, ints by value), with every provenance column."""
        ids = ["b", "B", "a", "가", "a2", "Z"]
        put_accounts(store, *(account(i) for i in ids))
        dumped = list(store.dump(ACCOUNTS))
        assert [row["account_id"] for row in dumped] == sorted(ids)
        assert dumped[0]["event_id"] == "e0-1"
        assert set(dumped[0]) == set(ACCOUNTS.all_columns)
        keys = [("S", 10, "x"), ("S", 9, "y"), ("R", 100, "z"), ("S", 9, "a")]
        with store.transaction() as tx:
            rows = [{"school_id": s, "year": y, "student_id": p, "fee": 0} for s, y, p in keys]
            apply(store, tx, putting("enrolments", *rows))
        assert [ENROLMENTS.key_of(row) for row in store.dump(ENROLMENTS)] == sorted(keys)

    def test_identity_is_stable_and_holds_no_credentials(self, store: Store, url: str) -> None:
        """Two stores of one database share an identity, which names no user password."""
        other = open_store(url)
        try:
            assert other.identity == store.identity
        finally:
            other.close()
        assert PASSWORD not in store.identity

    def test_close_closes_the_connections_of_every_thread(self, store: Store) -> None:
        """After close, no thread can use the store, and closing twice is harmless."""
        InThread(lambda: store.positions(ADAPTER)).join()
        store.close()
        store.close()
        with pytest.raises(StoreError, match="closed"), store.transaction():
            pass


class TestSqliteStore(StoreContract):
    """The contract on SQLite."""

    sql_types: ClassVar[dict[str, str]] = {
        "text": "TEXT",
        "int": "INTEGER",
        "decimal": "TEXT",
        "bool": "INTEGER",
    }

    @pytest.fixture
    def url(self, tmp_path: Path) -> str:
        """A new SQLite file."""
        return f"sqlite:///{tmp_path / 'readmodel.sqlite'}"

    def wait_until_blocked(self, url: str, sessions: int = 1) -> None:
        """SQLite shows no waiting writers; the contender waits anyway, as it began after BEGIN IMMEDIATE."""
        del url, sessions

    def index_names(self, store: Store, table: str) -> set[str]:
        """Indexes from sqlite_master, without the primary key's automatic one."""
        with store.snapshot() as view:
            found = view.execute(
                "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL",
                (table,),
            ).fetchall()
        return {row[0] for row in found}

    def column_types(self, store: Store, table: str) -> dict[str, str]:
        """Declared types from PRAGMA table_info."""
        with store.snapshot() as view:
            return {row[1]: row[2] for row in view.execute(f'PRAGMA table_info("{table}")').fetchall()}


def test_the_sqlite_store_runs_in_wal_mode(tmp_path: Path) -> None:
    """The file is in WAL mode once a store has opened it, so readers never block the writer."""
    store = open_store(f"sqlite:///{tmp_path / 'rm.sqlite'}")
    store.close()
    with sqlite3.connect(tmp_path / "rm.sqlite") as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def _open_new_files(folder: str, count: int, start: Any) -> None:
    """In a spawned process: open and migrate ``count`` new files, each after the barrier ``start``."""
    for number in range(count):
        start.wait(timeout=30)
        store = open_store(f"sqlite:///{folder}/new-{number}.sqlite")
        try:
            store.migrate([ACCOUNTS])
            if store.positions("bank") != {}:
                raise AssertionError("a new file has positions")
        finally:
            store.close()


def test_processes_opening_a_new_sqlite_file_together_all_open_it(tmp_path: Path) -> None:
    """Three processes that open and migrate one new file at the same moment all succeed (WAL switch race).

    Spawned, not forked: a fork of the test process (threads of earlier tests' clients and stores
    running) could copy a lock some thread held, and hang.
    """
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(3)
    processes = [context.Process(target=_open_new_files, args=(str(tmp_path), 100, start)) for _ in range(3)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
        if process.is_alive():
            process.kill()
    assert [process.exitcode for process in processes] == [0, 0, 0]


def test_the_sqlite_identity_is_the_resolved_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A relative and an absolute URL of one file give the same identity: the file's absolute path."""
    monkeypatch.chdir(tmp_path)
    relative = open_store("sqlite:///rm.sqlite")
    absolute = open_store(f"sqlite:///{tmp_path / 'rm.sqlite'}")
    try:
        assert relative.identity == absolute.identity == f"sqlite:///{(tmp_path / 'rm.sqlite').resolve()}"
    finally:
        relative.close()
        absolute.close()


def test_a_sqlite_url_whose_folder_is_missing_is_refused_in_one_line(tmp_path: Path) -> None:
    """A mistyped folder is a ConfigurationError of one line naming it, and nothing is created."""
    folder = tmp_path / "no" / "such"
    with pytest.raises(ConfigurationError, match="does not exist") as caught:
        open_store(f"sqlite:///{folder / 'rm.sqlite'}")
    assert str(folder) in str(caught.value)
    assert "\n" not in str(caught.value)
    assert not (tmp_path / "no").exists()


def test_the_embedded_default_may_create_its_folder(tmp_path: Path) -> None:
    """With create_folder the missing folder is made and the store opens."""
    store = open_store(f"sqlite:///{tmp_path / 'home' / 'rm.sqlite'}", create_folder=True)
    try:
        assert (tmp_path / "home" / "rm.sqlite").is_file()
    finally:
        store.close()


def test_an_unsupported_url_is_refused_without_its_password() -> None:
    """A URL that is neither sqlite:/// nor postgresql:// is a ConfigurationError that hides the password."""
    with pytest.raises(ConfigurationError, match="expected sqlite") as caught:
        open_store("mysql://app:hunter2@db/agency")
    assert "hunter2" not in str(caught.value)
    assert "app:***@db" in str(caught.value)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://app:pw@db.local:5433/agency", "postgresql://app:***@db.local:5433/agency"),
        ("postgresql://:pw@db/agency", "postgresql://:***@db/agency"),
        (
            "postgresql://app@db/agency?password=pw&sslmode=require",
            "postgresql://app@db/agency?password=***&sslmode=require",
        ),
        ("postgresql://app:p%40ss@db/x?sslpassword=k#f", "postgresql://app:***@db/x?sslpassword=***#f"),
        ("postgresql://app:pw@[::1/agency", "postgresql://app:***@[::1/agency"),
    ],
)
def test_redact_hides_every_password(url: str, expected: str) -> None:
    """Passwords in the user part and in query parameters are masked, also in URLs that do not parse."""
    assert redact(url) == expected


@pytest.mark.parametrize(
    "url",
    ["postgresql://db.local/agency", "postgresql://app@db:5432/agency?sslmode=require", "sqlite:///x.sqlite"],
)
def test_redact_leaves_a_url_without_secrets_as_it_is(url: str) -> None:
    """A URL without a password comes back unchanged."""
    assert redact(url) == url
