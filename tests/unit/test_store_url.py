"""``GOVBUS_READMODEL_URL``: only SQLite for now, and a folder that does not exist is refused, not created."""

from __future__ import annotations

from pathlib import Path

import pytest

from bus.errors import ConfigurationError
from bus.settings import Settings
from consumers.stores import open_store
from govbus.bootstrap import build_store


def test_a_url_whose_folder_does_not_exist_is_refused_and_nothing_is_created(tmp_path: Path) -> None:
    """A read-model URL in a missing folder fails naming the folder, and leaves no folder or file behind."""
    missing = tmp_path / "typo" / "readmodel.sqlite"
    with pytest.raises(ConfigurationError) as raised:
        open_store(f"sqlite:///{missing}")
    assert str(raised.value).startswith(f"read-model folder {missing.parent} does not exist")
    assert not missing.parent.exists()


def test_a_url_in_an_existing_folder_creates_the_database(tmp_path: Path) -> None:
    """A read-model URL in an existing folder opens a new database file there."""
    store = open_store(f"sqlite:///{tmp_path / 'readmodel.sqlite'}")
    store.close()
    assert (tmp_path / "readmodel.sqlite").is_file()


def test_the_embedded_default_creates_its_folder_under_home(tmp_path: Path) -> None:
    """With no read-model URL set, the store lives under GOVBUS_HOME, whose folder is created on first use."""
    settings = Settings(home=tmp_path / "fresh-home", readmodel_url="")
    store = build_store(settings)
    store.close()
    assert (tmp_path / "fresh-home" / "readmodel.sqlite").is_file()


def test_a_set_url_in_a_missing_folder_is_refused_through_the_composition_root(tmp_path: Path) -> None:
    """build_store refuses a configured URL in a missing folder instead of starting an empty read model."""
    settings = Settings(home=tmp_path, readmodel_url=f"sqlite:///{tmp_path / 'nope' / 'rm.sqlite'}")
    with pytest.raises(ConfigurationError, match=r"read-model folder .* does not exist"):
        build_store(settings)
