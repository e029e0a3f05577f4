"""``govbus readmodel rebuild NAME`` and ``govbus readmodel dump NAME [--table T]``.

``rebuild`` replays the adapter's topics from the beginning into the rebuild copies of its tables and
swaps them in atomically (:mod:`consumers.rebuild`); readers and a running ``govbus consume`` keep
using the live tables until the swap. ``dump`` prints every row as one JSON object per line, sorted
by key, with its provenance and a ``table`` field; decimals are strings so no figure is rounded.
"""

from __future__ import annotations

import argparse
import json
import time
from decimal import Decimal
from typing import Any

from bus.errors import ConfigurationError
from bus.progress import say
from bus.settings import Settings
from consumers.adapters import ADAPTERS, build_read_model
from consumers.rebuild import rebuild as rebuild_read_model
from consumers.runtime import RunStats
from govbus.bootstrap import build_registry_client, build_runner, build_store
from govbus.cli.preflight import require_kafka, require_registry
from schemas.catalog import load_catalog

PROGRESS_EVERY_S = 2.0


def register(commands: Any) -> None:
    """Add the ``readmodel`` command group."""
    parser = commands.add_parser("readmodel", help="rebuild or dump a read model")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    rebuild = actions.add_parser(
        "rebuild",
        help="replay the adapter's topics from the beginning into a copy of its tables, then swap it in",
    )
    rebuild.add_argument("name", metavar="NAME", help=f"one of {', '.join(ADAPTERS)}")
    rebuild.set_defaults(handler=run_rebuild)
    dump = actions.add_parser("dump", help="print the read model's rows as JSON lines sorted by key")
    dump.add_argument("name", metavar="NAME", help=f"one of {', '.join(ADAPTERS)}")
    dump.add_argument("--table", metavar="T", help="only this table of the read model")
    dump.set_defaults(handler=run_dump)


def run_rebuild(args: argparse.Namespace, settings: Settings) -> int:
    """Rebuild the read model, print progress and the row count of each table."""
    model = build_read_model(args.name)
    # The store first: a mistyped read-model URL is named even when Kafka is down too.
    store = build_store(settings)
    try:
        require_kafka(settings)
        require_registry(settings)
        registry = build_registry_client(settings)
        try:
            runner = build_runner(
                settings, model.name, store=store, registry=registry, catalog=load_catalog(), shadow=True
            )
            say(f"rebuilding {model.name} from the beginning of {', '.join(runner.topics)}")
            last = [time.monotonic()]

            def progress(stats: RunStats) -> None:
                if time.monotonic() - last[0] >= PROGRESS_EVERY_S:
                    last[0] = time.monotonic()
                    say(f"{stats.applied} events applied")

            result = rebuild_read_model(store, runner, progress)
        finally:
            registry.close()
    finally:
        store.close()
    dead = f", {result.dead_lettered} set aside as dead letters" if result.dead_lettered else ""
    say(f"rebuilt {model.name}: {result.applied} events applied{dead} in {result.seconds:.1f}s; swapped in")
    for table, count in result.rows.items():
        print(f"    {table}  {count} rows", flush=True)
    return 0


def run_dump(args: argparse.Namespace, settings: Settings) -> int:
    """Print every row of the read model (or one table) as JSON lines."""
    model = build_read_model(args.name)
    tables = model.tables
    if args.table is not None:
        tables = tuple(t for t in model.tables if t.name == args.table)
        if not tables:
            known = ", ".join(t.name for t in model.tables)
            raise ConfigurationError(
                f"read model {model.name} has no table {args.table!r}; its tables: {known}"
            )
    store = build_store(settings)
    try:
        store.migrate(model.tables)  # a model never consumed yet dumps as empty
        for table in tables:
            for row in store.dump(table):
                print(json.dumps({"table": table.name, **row}, default=_json, ensure_ascii=False))
    finally:
        store.close()
    return 0


def _json(value: Any) -> str:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")
