"""``govbus lag [ADAPTER...]``: per adapter and partition, the applied offset, the end offset and the lag.

An ADAPTER names a read model or a reaction; without names every read model and every reaction is
shown. A read model's applied offset comes from the positions it recorded in the read-model store, a
reaction's from its consumer group's committed offsets (which its transactions commit), so the command
works for adapters and reactions that are not running; the end offset is the partition's high watermark.
"""

from __future__ import annotations

import argparse
from typing import Any

from bus.settings import Settings
from consumers.adapters import ADAPTERS, build_read_model
from consumers.lag import AdapterLag, measure_lag, measure_reaction_lag
from consumers.reactions import REACTIONS, RULES
from govbus.bootstrap import build_connection, build_store
from govbus.cli.consume import check_names
from govbus.cli.preflight import require_kafka


def register(commands: Any) -> None:
    """Add the ``lag`` command."""
    parser = commands.add_parser(
        "lag", help="how far each adapter and reaction is behind its topics (also when not running)"
    )
    parser.add_argument(
        "adapters",
        nargs="*",
        metavar="ADAPTER",
        help=f"default: all read models ({', '.join(ADAPTERS)}) and reactions ({', '.join(REACTIONS)})",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Print one line per partition and a total per adapter or reaction."""
    names, reactions = check_names(list(dict.fromkeys(args.adapters or [*ADAPTERS, *REACTIONS])))
    models = [build_read_model(name) for name in names]
    require_kafka(settings)
    connection = build_connection(settings, "govbus-lag")
    lags: list[AdapterLag] = []
    if models:
        store = build_store(settings)
        try:
            lags += measure_lag(connection, store, models, settings.topic_prefix)
        finally:
            store.close()
    lags += measure_reaction_lag(connection, [RULES[name] for name in reactions], settings.topic_prefix)
    for adapter in lags:
        print(adapter.adapter)
        width = max((len(f"{p.topic}[{p.partition}]") for p in adapter.partitions), default=0)
        for p in adapter.partitions:
            applied = "-" if p.applied is None else str(p.applied)
            place = f"{p.topic}[{p.partition}]"
            print(f"    {place:<{width}}  applied {applied:>8}  end {p.end:>8}  lag {p.lag:>8}")
        print(f"    total lag {adapter.total}", flush=True)
    return 0
