"""``govbus agreement list``: the agreements file as a table or JSON; a broken file is a clear error."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from bus.settings import load_settings
from govbus.cli import main

SAMPLE = Path(__file__).resolve().parents[2] / "deploy" / "agreements.sample.json"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A GOVBUS_HOME of its own (settings are read once per process: read them again)."""
    monkeypatch.setenv("GOVBUS_HOME", str(tmp_path))
    load_settings.cache_clear()
    yield tmp_path
    load_settings.cache_clear()


def test_the_list_shows_each_purpose_with_its_legal_basis_and_status(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each purpose is a line with organisation, model, validity, status and legal basis."""
    shutil.copy(SAMPLE, home / "agreements.json")
    assert main(["agreement", "list", "--on", "2026-12-02"]) == 0
    out = capsys.readouterr().out
    line = next(
        x for x in out.splitlines() if x.startswith("welfare-residents-2026") and "benefit-review" in x
    )
    assert "ministry-of-welfare" in line
    assert "residents" in line
    assert "in force" in line
    assert "Social Security Benefits Act" in line
    assert any("transport-vehicles-2024" in x and "expired" in x for x in out.splitlines())
    assert any(
        x.startswith("welfare-residents-2026") and "address, birth_date, name" in x for x in out.splitlines()
    )


def test_the_json_list_says_which_are_in_force_on_the_day(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--json prints every agreement with its purposes and whether it is in force on --on."""
    shutil.copy(SAMPLE, home / "agreements.json")
    assert main(["agreement", "list", "--json", "--on", "2025-06-01"]) == 0
    listed = {a["id"]: a for a in json.loads(capsys.readouterr().out)}
    assert listed["transport-vehicles-2024"]["in_force"] is True
    assert listed["welfare-residents-2026"]["in_force"] is False
    assert listed["welfare-residents-2026"]["purposes"][0]["name"] == "benefit-eligibility"


def test_no_file_says_where_it_belongs_and_where_the_sample_is(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without an agreements file the list says so, naming the path and the sample, and exits 0."""
    assert main(["agreement", "list"]) == 0
    out = capsys.readouterr().out
    assert str(home / "agreements.json") in out
    assert "deploy/agreements.sample.json" in out


def test_a_broken_file_exits_1_naming_the_entry(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An agreement with a bad date is reported on stderr with its index, exit code 1."""
    agreements = json.loads(SAMPLE.read_text())
    agreements["agreements"][2]["valid_until"] = "someday"
    (home / "agreements.json").write_text(json.dumps(agreements))
    assert main(["agreement", "list"]) == 1
    err = capsys.readouterr().err
    assert "agreements[2]" in err
    assert '"valid_until" must be a date' in err


def test_a_bad_day_is_a_usage_error(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--on with something that is no date exits 2 with argparse's message."""
    with pytest.raises(SystemExit) as exited:
        main(["agreement", "list", "--on", "²"])
    assert exited.value.code == 2
    assert "not a date" in capsys.readouterr().err
