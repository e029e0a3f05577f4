"""The working set between pure projections and a store: staging, provenance, lookups."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from consumers.events import DecodedEvent
from consumers.readmodel import MemoryRows, Table, WorkingSet

ACCOUNTS = Table(
    "accounts", {"account_id": "text", "owner": "text", "balance": "decimal"}, key=("account_id",)
)


def _event(offset: int, source: str = "urn:govbus:agency:finance") -> DecodedEvent:
    return DecodedEvent(
        type="govbus.finance.Test",
        id=f"e{offset}",
        source=source,
        time=datetime(2026, 1, 1, tzinfo=UTC),
        data={},
        topic="finance.test",
        partition=0,
        offset=offset,
    )


def _rows(*rows: dict[str, object]) -> MemoryRows:
    source = MemoryRows()
    source.tables["accounts"] = {(r["account_id"],): dict(r) for r in rows}
    return source


def test_a_committed_put_is_stamped_with_the_events_provenance() -> None:
    """A row written for an event carries its agency, id, topic, partition, offset and time."""
    rows = WorkingSet(MemoryRows(), [ACCOUNTS])
    rows.begin(_event(7))
    rows.put("accounts", {"account_id": "A", "owner": "R1", "balance": "10"})
    rows.commit()
    [(_, key, row)] = list(rows.changes())
    assert key == ("A",)
    assert row is not None
    assert row["balance"] == Decimal(10)
    assert (row["source_agency"], row["event_id"], row["event_topic"], row["event_offset"]) == (
        "finance",
        "e7",
        "finance.test",
        7,
    )
    assert row["event_time"] == "2026-01-01T00:00:00+00:00"


def test_a_rolled_back_event_leaves_no_change() -> None:
    """Writes of an event that is refused are dropped while earlier accepted writes stay."""
    rows = WorkingSet(_rows({"account_id": "A", "owner": "R1", "balance": Decimal(1)}), [ACCOUNTS])
    rows.begin(_event(1))
    rows.put("accounts", {"account_id": "B", "owner": "R2", "balance": 2})
    rows.commit()
    rows.begin(_event(2))
    rows.delete("accounts", "A")
    rows.put("accounts", {"account_id": "C", "owner": "R3", "balance": 3})
    rows.rollback()
    assert [key for _, key, _ in rows.changes()] == [("B",)]
    assert rows.get("accounts", "A") is not None
    assert rows.get("accounts", "C") is None


def test_reads_see_the_current_events_own_writes() -> None:
    """Within one event, get and find see what that event already wrote."""
    rows = WorkingSet(_rows({"account_id": "A", "owner": "R1", "balance": Decimal(1)}), [ACCOUNTS])
    rows.begin(_event(1))
    rows.put("accounts", {"account_id": "B", "owner": "R1", "balance": 5})
    assert [r["account_id"] for r in rows.find("accounts", "owner", "R1")] == ["A", "B"]
    rows.delete("accounts", "A")
    assert [r["account_id"] for r in rows.find("accounts", "owner", "R1")] == ["B"]
    assert rows.get("accounts", "A") is None


def test_find_merges_stored_rows_with_changes_of_the_batch() -> None:
    """A stored row moved to another owner earlier in the batch is no longer found under the old owner."""
    rows = WorkingSet(
        _rows(
            {"account_id": "A", "owner": "R1", "balance": Decimal(1)},
            {"account_id": "B", "owner": "R1", "balance": Decimal(2)},
        ),
        [ACCOUNTS],
    )
    rows.begin(_event(1))
    rows.put("accounts", {"account_id": "A", "owner": "R2", "balance": 1})
    rows.commit()
    rows.begin(_event(2))
    assert [r["account_id"] for r in rows.find("accounts", "owner", "R1")] == ["B"]
    assert [r["account_id"] for r in rows.find("accounts", "owner", "R2")] == ["A"]


def test_a_row_lacking_a_declared_column_is_refused() -> None:
    """put raises KeyError naming the missing column, so a projection bug never writes half a row."""
    rows = WorkingSet(MemoryRows(), [ACCOUNTS])
    rows.begin(_event(1))
    with pytest.raises(KeyError, match="balance"):
        rows.put("accounts", {"account_id": "A", "owner": "R1"})


def test_a_table_with_an_unknown_column_type_is_refused() -> None:
    """Only the portable column types are accepted when a table is declared."""
    with pytest.raises(ValueError, match="unknown column types"):
        Table("t", {"id": "text", "amount": "money"}, key=("id",))


def test_memory_rows_apply_changes() -> None:
    """MemoryRows.write upserts and deletes what a working set changed."""
    source = _rows({"account_id": "A", "owner": "R1", "balance": Decimal(1)})
    rows = WorkingSet(source, [ACCOUNTS])
    rows.begin(_event(1))
    rows.delete("accounts", "A")
    rows.put("accounts", {"account_id": "B", "owner": "R2", "balance": 2})
    rows.commit()
    source.write(rows.changes())
    assert [r["account_id"] for r in source.rows("accounts")] == ["B"]


def test_text_booleans_are_read_by_their_meaning() -> None:
    """A boolean column keeps "false" as False, and refuses text that is not a boolean."""
    flags = Table("flags", {"id": "text", "on": "bool"}, key=("id",))
    rows = WorkingSet(MemoryRows(), [flags])
    rows.begin(_event(1))
    rows.put("flags", {"id": "a", "on": "false"})
    rows.put("flags", {"id": "b", "on": "TRUE"})
    assert [(rows.get("flags", k) or {}).get("on") for k in ("a", "b")] == [False, True]
    with pytest.raises(ValueError, match="not a boolean"):
        rows.put("flags", {"id": "c", "on": "maybe"})


def test_changes_come_in_numeric_key_order() -> None:
    """Integer keys are ordered as numbers (9 before 10), not as text."""
    years = Table("years", {"year": "int", "label": "text"}, key=("year",))
    rows = WorkingSet(MemoryRows(), [years])
    rows.begin(_event(1))
    for year in (10, 9, 100):
        rows.put("years", {"year": year, "label": str(year)})
    rows.commit()
    assert [key for _, key, _ in rows.changes()] == [(9,), (10,), (100,)]


class _CountingRows(MemoryRows):
    def __init__(self) -> None:
        super().__init__()
        self.selects = 0

    def select(self, table: Table, column: str, value: object) -> list[dict[str, object]]:
        self.selects += 1
        return super().select(table, column, value)


def test_a_lookup_asks_the_source_once_per_batch() -> None:
    """Repeated finds of one value within a batch query the store once."""
    source = _CountingRows()
    rows = WorkingSet(source, [ACCOUNTS])
    rows.begin(_event(1))
    for _ in range(3):
        rows.find("accounts", "owner", "R1")
    assert source.selects == 1
