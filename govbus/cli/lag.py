"""``govbus lag [ADAPTER...]``: per adapter and partition, the applied offset, the end offset and the lag.

The applied offset comes from the positions the adapter recorded in the read-model store, so the
command works for adapters that are not running; the end offset is the partition's high watermark.
"""

from __future__ import annotations

import argparse
from typing import Any

from bus.settings import Settings
from consumers.adapters import ADAPTERS, build_read_model
from consumers.lag import measure_lag
from govbus.bootstrap import build_connection, build_store
from govbus.cli.preflight import require_kafka


def register(commands: Any) -> None:
    """Add the ``lag`` command."""
    parser = commands.add_parser(
        "lag", help="how far each adapter is behind its topics (also for adapters not running)"
    )
    parser.add_argument(
        "adapters", nargs="*", metavar="ADAPTER", help=f"default: all of {', '.join(ADAPTERS)}"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Print one line per partition and a total per adapter."""
    models = [build_read_model(name) for name in dict.fromkeys(args.adapters or ADAPTERS)]
    require_kafka(settings)
    store = build_store(settings)
    try:
        lags = measure_lag(build_connection(settings, "govbus-lag"), store, models, settings.topic_prefix)
    finally:
        store.close()
    for adapter in lags:
        print(adapter.adapter)
        width = max((len(f"{p.topic}[{p.partition}]") for p in adapter.partitions), default=0)
        for p in adapter.partitions:
            applied = "-" if p.applied is None else str(p.applied)
            place = f"{p.topic}[{p.partition}]"
            print(f"    {place:<{width}}  applied {applied:>8}  end {p.end:>8}  lag {p.lag:>8}")
        print(f"    total lag {adapter.total}", flush=True)
    return 0
