"""``govbus up|down|status``: the local stack in the background (see govbus/stack.py)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from bus.progress import say
from bus.settings import Settings
from govbus.stack import PartStatus, Stack, display_path


def register(commands: Any) -> None:
    """Add the ``up``, ``down`` and ``status`` commands."""
    for name, handler, text in (
        ("up", up, "start the broker, topics, gateway, catalog, read models and reactions in the background"),
        ("down", down, "stop what `govbus up` started"),
        ("status", status, "show each part of the stack: running, answering, pid, port, log"),
    ):
        commands.add_parser(name, help=text).set_defaults(handler=handler)


def up(_: argparse.Namespace, settings: Settings) -> int:
    """Bring the stack up; return once every part answers."""
    Stack(settings).up(progress=say)
    say("the stack is up: `govbus status` shows it, `govbus down` stops it")
    return 0


def down(_: argparse.Namespace, settings: Settings) -> int:
    """Stop what ``up`` started."""
    Stack(settings).down(progress=say)
    return 0


def status(_: argparse.Namespace, settings: Settings) -> int:
    """Print the table; exit 0 when every part answers, 3 when none runs, 1 otherwise."""
    parts = Stack(settings).status()
    print(render_table(parts), flush=True)
    return exit_code(parts)


def exit_code(parts: Sequence[PartStatus]) -> int:
    """``govbus status``'s exit: 0 when every part answers, 3 when no part of the stack runs, 1 otherwise."""
    if all(part.answering for part in parts):
        return 0
    if not any(part.running for part in parts):
        return 3
    return 1


def render_table(parts: Sequence[PartStatus]) -> str:
    """``govbus status``'s table: one row per part."""
    rows = [("part", "running", "answering", "pid", "port", "log")]
    for part in parts:
        running = "external" if part.external else ("yes" if part.running else "no")
        rows.append(
            (
                part.name,
                running,
                "yes" if part.answering else "no",
                "-" if part.pid is None else str(part.pid),
                "-" if part.port is None else str(part.port),
                "-" if part.log is None else display_path(part.log),
            )
        )
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]) - 1)]
    return "\n".join(
        "  ".join([*(cell.ljust(width) for cell, width in zip(row, widths, strict=False)), row[-1]])
        for row in rows
    )
