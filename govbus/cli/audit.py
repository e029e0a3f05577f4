"""``govbus audit verify``: check every writer's hash chain in the audit topic.

Reads the audit topic (``{GOVBUS_TOPIC_PREFIX}govbus.audit``, or ``--topic``) from its beginning to its
end, committed records only, with librdkafka's CRC checks on, and checks each writer's chain
(:mod:`gateway.audit.chain`): seq consecutive from 1, ``prev`` the previous record's hash, ``hash``
recomputed. Prints the records, the writers (each with its last seq and hash: keep those elsewhere to
notice a chain cut off at its end later) and OK, and exits 0. At the first broken link it prints on stderr
which record (writer, seq, partition and offset) and why, and exits 1. ``--json`` prints the summary as
JSON on stdout too. Kafka not answering within 5 s, or going silent for 10 s while read, is an error
(exit 1), never a hang.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from bus.kafka_config import require_broker
from bus.settings import Settings
from gateway.audit.chain import ChainVerifier
from gateway.audit.topic import audit_topic, read_all, reader
from govbus.bootstrap import build_connection


def register(commands: Any) -> None:
    """Add the ``audit`` command group."""
    parser = commands.add_parser("audit", help="check the gateway's audit log")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    verify = actions.add_parser("verify", help="check every writer's hash chain in the audit topic")
    verify.add_argument("--topic", help="the audit topic (default: the topic prefix + govbus.audit)")
    verify.add_argument("--json", action="store_true", help="print the summary as JSON")
    verify.set_defaults(handler=run_verify)


def run_verify(args: argparse.Namespace, settings: Settings) -> int:
    """Read the audit topic to its end and check every chain; 0 when all are intact, 1 otherwise."""
    topic = args.topic or audit_topic(settings.topic_prefix)
    connection = build_connection(settings, "govbus-audit-verify")
    require_broker(connection)
    verifier = ChainVerifier()
    consumer = reader(connection, **{"check.crcs": True})
    try:
        for message in read_all(consumer, topic):
            if verifier.feed(message.key(), message.value(), message.partition() or 0, message.offset() or 0):
                break
    finally:
        consumer.close()
    summary = _summary(topic, verifier)
    if args.json:
        print(json.dumps(summary, indent=2))
    broken = verifier.broken
    if broken is not None:
        print(f"govbus: audit chain broken in {topic}: {broken.describe()}", file=sys.stderr)
        return 1
    if not args.json:
        print(f"{topic}: {verifier.records} records, {len(verifier.writers)} writers, every chain OK")
        for writer, state in sorted(verifier.writers.items()):
            print(f"  {writer}: seq 1..{state.seq}, last hash {state.hash}")
    return 0


def _summary(topic: str, verifier: ChainVerifier) -> dict[str, Any]:
    broken = verifier.broken
    return {
        "topic": topic,
        "records": verifier.records,
        "writers": {
            writer: {"records": state.records, "last_seq": state.seq, "last_hash": state.hash}
            for writer, state in sorted(verifier.writers.items())
        },
        "ok": broken is None,
        "broken": None
        if broken is None
        else {
            "writer": broken.writer,
            "seq": broken.seq,
            "partition": broken.partition,
            "offset": broken.offset,
            "reason": broken.reason,
            "detail": broken.detail,
        },
    }
