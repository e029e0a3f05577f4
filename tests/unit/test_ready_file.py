"""``govbus consume --ready-file``: only the process that runs the reactions writes the file."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from govbus.cli.consume import ReadyFile


@dataclass
class _Reaction:
    name: str
    ready: threading.Event = field(default_factory=threading.Event)


def test_a_process_without_reactions_never_writes_the_ready_file(tmp_path: Path) -> None:
    """A worker running only read models leaves the file to the reactions' worker: no race, no empty list."""
    path = tmp_path / "consumers.ready"
    ReadyFile(path, [], pid=42).update()
    assert not path.exists()
    assert list(tmp_path.iterdir()) == []


def test_the_reactions_process_writes_which_reactions_are_emitting(tmp_path: Path) -> None:
    """The file names the command's pid, every reaction and those emitting, rewritten when that changes."""
    path = tmp_path / "consumers.ready"
    finance, personnel = _Reaction("finance-reactions"), _Reaction("personnel-reactions")
    ready = ReadyFile(path, cast(Any, [finance, personnel]), pid=42)
    finance.ready.set()
    ready.update()
    assert json.loads(path.read_text()) == {
        "pid": 42,
        "reactions": ["finance-reactions", "personnel-reactions"],
        "emitting": ["finance-reactions"],
    }
    personnel.ready.set()
    ready.update()
    assert json.loads(path.read_text())["emitting"] == ["finance-reactions", "personnel-reactions"]
    assert [p.name for p in tmp_path.iterdir()] == ["consumers.ready"]
