"""``govbus up|down|status``: the local stack in the background (see govbus/stack.py)."""

from __future__ import annotations

import argparse
from typing import Any

from bus.progress import say
from bus.settings import Settings
from govbus.stack import Stack, exit_code, render_table


def register(commands: Any) -> None:
    """Add the ``up``, ``down`` and ``status`` commands."""
    for name, handler, text in (
        ("up", up, "start the broker, topics, gateway, catalog and consumers in the background"),
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
