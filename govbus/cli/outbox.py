"""``govbus outbox relay|status``: ship an agency's transactional outbox to Kafka (see producers/outbox.py).

``relay`` runs until SIGTERM/SIGINT (it finishes and marks the batch in flight first), or with
``--once`` until the outbox is empty. The agency identity comes from ``--agency`` (and ``--source``);
Kafka, the registry and the topic prefix from the usual ``GOVBUS_`` settings.
"""

from __future__ import annotations

import argparse
import signal
import threading
import time
from typing import Any

from bus.errors import ConfigurationError
from bus.progress import say
from bus.settings import Settings
from govbus.bootstrap import build_publisher, build_registry_client
from govbus.cli.preflight import require_kafka, require_registry
from producers.outbox_relay import OutboxRelay, RelayStats
from producers.outbox_store import open_database
from schemas.catalog import load_catalog

PROGRESS_EVERY_S = 5.0
# Kafka's verdict on each record within a minute (librdkafka's default is five), so a broken broker
# shows up as a retry in the relay's log rather than as a silent wait.
MESSAGE_TIMEOUT_MS = 60_000


def register(commands: Any) -> None:
    """Add the ``outbox`` command group."""
    parser = commands.add_parser("outbox", help="ship an agency's transactional outbox table to Kafka")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    relay = actions.add_parser(
        "relay", help="publish outbox rows in order; mark them sent once Kafka has them"
    )
    relay.add_argument("--db", required=True, metavar="URL", help="sqlite:///PATH or postgresql://...")
    relay.add_argument("--agency", required=True, help="the agency whose events the outbox holds")
    relay.add_argument("--source", help="CloudEvents source (default: urn:govbus:agency:AGENCY)")
    relay.add_argument("--batch", type=int, default=500, help="rows per round trip to Kafka (default 500)")
    relay.add_argument("--once", action="store_true", help="ship what is there, then exit")
    relay.add_argument(
        "--poll-interval", type=float, default=1.0, metavar="S", help="seconds between polls when idle"
    )
    relay.set_defaults(handler=run_relay)
    status = actions.add_parser("status", help="count pending and sent outbox rows")
    status.add_argument("--db", required=True, metavar="URL", help="sqlite:///PATH or postgresql://...")
    status.set_defaults(handler=run_status)


def run_relay(args: argparse.Namespace, settings: Settings) -> int:
    """Run the relay in the foreground; exit 0 when stopped or drained."""
    if args.batch < 1:
        raise ConfigurationError("--batch must be at least 1")
    if args.poll_interval <= 0:
        raise ConfigurationError("--poll-interval must be positive")
    catalog = load_catalog()
    agencies = sorted({event.agency for event in catalog})
    if args.agency not in agencies:
        raise ConfigurationError(
            f"unknown agency {args.agency!r}; the catalog has events of: {', '.join(agencies)}"
        )
    source = args.source or f"urn:govbus:agency:{args.agency}"
    # Open once up front so that a wrong URL or an unreachable database fails at once, with exit 1;
    # then Kafka and the registry, so that a stack that is not up fails at once too, not after retries.
    open_database(args.db).close()
    require_kafka(settings)
    require_registry(settings)
    registry = build_registry_client(settings)
    relay = OutboxRelay(
        lambda: open_database(args.db),
        catalog,
        args.agency,
        lambda: build_publisher(
            settings,
            args.agency,
            registry=registry,
            catalog=catalog,
            client_id=f"govbus-outbox-relay-{args.agency}",
            extra={"message.timeout.ms": MESSAGE_TIMEOUT_MS},
            source=source,
        ),
        batch_size=args.batch,
        poll_interval_s=args.poll_interval,
        on_progress=_Reporter(),
    )
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    say(f"relaying the {args.agency} outbox ({'until empty' if args.once else 'until stopped'})")
    try:
        stats = relay.run(stop, once=args.once)
    finally:
        registry.close()
    say(f"outbox relay stopped: shipped {stats.shipped} events in {stats.batches} batches")
    return 0


def run_status(args: argparse.Namespace, _: Settings) -> int:
    """Print the pending and sent counts."""
    database = open_database(args.db)
    try:
        counts = database.counts()
    finally:
        database.close()
    print(f"    pending {counts.pending}\n    sent {counts.sent}")
    return 0


class _Reporter:
    """Progress lines: on standby, every few seconds while shipping, and when the outbox runs empty."""

    def __init__(self) -> None:
        self._last = ""
        self._next = 0.0
        self._shipped = 0

    def __call__(self, stats: RelayStats) -> None:
        now = time.monotonic()
        if stats.state == self._last and (
            stats.state == "standby" or now < self._next or stats.shipped == self._shipped
        ):
            return
        if stats.state == "shipping" and now < self._next:
            return
        self._last, self._next, self._shipped = stats.state, now + PROGRESS_EVERY_S, stats.shipped
        if stats.state == "standby":
            say("another relay is active on this outbox; waiting as a standby")
        elif stats.state == "idle":
            say(f"shipped {stats.shipped} events; the outbox is empty")
        else:
            rate = stats.shipped / max(now - stats.started, 1e-9)
            say(f"shipped {stats.shipped} events ({stats.batches} batches, {rate:.0f} events/s)")
