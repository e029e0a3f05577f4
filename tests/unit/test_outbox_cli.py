"""``govbus outbox``: bad input ends with a clear message and exit code 1, before Kafka is involved."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from govbus.cli import main
from producers.outbox import Outbox, ensure_schema
from producers.simulators.localgov import LocalGovSimulator
from schemas.catalog import load_catalog


def test_an_unknown_agency_is_refused_with_the_known_ones(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Relaying for an agency the catalog does not know exits 1 and lists the agencies it knows."""
    code = main(["outbox", "relay", "--db", f"sqlite:///{tmp_path / 'x.sqlite'}", "--agency", "nasa"])
    assert code == 1
    assert "unknown agency 'nasa'" in capsys.readouterr().err


def test_a_missing_sqlite_database_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Relaying from a SQLite file that does not exist exits 1 naming the file."""
    missing = tmp_path / "missing.sqlite"
    code = main(["outbox", "relay", "--db", f"sqlite:///{missing}", "--agency", "localgov", "--once"])
    assert code == 1
    assert f"{missing} does not exist" in capsys.readouterr().err


def test_an_unreachable_postgresql_server_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    """Relaying from a PostgreSQL server nobody runs exits 1 with the driver's reason and no password."""
    url = "postgresql://agency:hunter2@127.0.0.1:1/agency"
    code = main(["outbox", "relay", "--db", url, "--agency", "localgov", "--once"])
    err = capsys.readouterr().err
    assert code == 1
    assert "outbox database postgresql://agency:***@127.0.0.1:1/agency" in err
    assert "hunter2" not in err


def test_a_batch_size_below_one_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``--batch 0`` exits 1 with the rule it breaks."""
    code = main(["outbox", "relay", "--db", "sqlite:///x", "--agency", "localgov", "--batch", "0"])
    assert code == 1
    assert "--batch must be at least 1" in capsys.readouterr().err


def test_status_counts_pending_and_sent_rows(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``outbox status`` prints how many rows wait for Kafka and how many were sent."""
    path = tmp_path / "agency.sqlite"
    connection = sqlite3.connect(path)
    ensure_schema(connection)
    outbox = Outbox(load_catalog(), "localgov")
    for event in LocalGovSimulator(seed=1).events(3):
        outbox.add(connection, event.type, event.data)
    connection.commit()
    connection.close()
    assert main(["outbox", "status", "--db", f"sqlite:///{path}"]) == 0
    assert capsys.readouterr().out.split() == ["pending", "3", "sent", "0"]
