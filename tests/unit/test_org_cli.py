"""``govbus org add`` for residents: a resident's organisation name is their resident id; other roles keep
the lowercase names."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bus.settings import load_settings
from gateway.identities import FILE_NAME, IdentityFile, Role
from govbus.cli import main


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A GOVBUS_HOME of its own (settings are read once per process: read them again)."""
    monkeypatch.setenv("GOVBUS_HOME", str(tmp_path))
    load_settings.cache_clear()
    yield tmp_path
    load_settings.cache_clear()


def test_a_resident_is_added_under_their_resident_id(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`org add R000000000001 --role resident` stores a resident credential and prints KEY:SECRET once."""
    assert main(["org", "add", "R000000000001", "--role", "resident"]) == 0
    stored = IdentityFile(home / FILE_NAME).read()
    assert [(c.organisation, c.role) for c in stored] == [("R000000000001", Role.RESIDENT)]
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith(stored[0].key + ":")


@pytest.mark.parametrize("name", ["welfare", "R12345", "r000000000001", "R0000000000012"])
def test_a_resident_name_that_is_not_a_resident_id_is_refused(
    home: Path, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A resident's name must be R and 12 digits: exit 1 with the reason on stderr, nothing stored."""
    assert main(["org", "add", name, "--role", "resident"]) == 1
    assert "resident id" in capsys.readouterr().err
    assert IdentityFile(home / FILE_NAME).read() == []


def test_other_roles_keep_lowercase_names(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A resident id is not a valid name for an auditor; a lowercase name is."""
    assert main(["org", "add", "R000000000001", "--role", "auditor"]) == 1
    assert "is not valid" in capsys.readouterr().err
    assert main(["org", "add", "national-audit-office", "--role", "auditor"]) == 0


def test_a_residents_credentials_can_be_revoked(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`org revoke R000000000001` revokes the resident's credential."""
    assert main(["org", "add", "R000000000001", "--role", "resident"]) == 0
    assert main(["org", "revoke", "R000000000001"]) == 0
    assert not IdentityFile(home / FILE_NAME).read()[0].active
