"""``govbus dlq list ADAPTER [--json]`` and ``govbus dlq replay ADAPTER [--id EVENT_ID ...]``.

``list`` reads ``{prefix}{adapter}.dlq`` from the beginning to its end offset without joining a group
or committing anything; ADAPTER is a read model or a reaction. ``replay`` re-applies the chosen dead
letters (default: all) through the read model (:mod:`consumers.replay`): an event already applied is
skipped and reported, one that fails again is reported with its reason and the command exits 1 after
applying the others.

``replay`` refuses a reaction, in one line, exit 1. A reaction decides in Kafka transactions on a state
rebuilt from its input topics, under a ``transactional.id`` that a second writer would fence, so a dead
letter cannot be decided on beside the running reaction. Its way back is the log itself: after the
fix, with the reaction stopped, move its group's committed offset on the dead letter's partition back
to the letter's offset (``kafka-consumer-groups.sh --reset-offsets``); on its next start the reaction
rebuilds its state up to there and decides again from there. What it decided before is in its state
by then (its own topic is input too), and a decision made again carries the same event id.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from bus.errors import ConfigurationError
from bus.progress import say
from bus.settings import Settings
from consumers.adapters import ADAPTERS, build_read_model
from consumers.decoder import EventDecoder
from consumers.dlq import DeadLetter, read_dead_letters
from consumers.reactions import REACTIONS
from consumers.reactions.runtime import group_id
from consumers.replay import replay_dead_letters
from govbus.bootstrap import build_connection, build_registry_client, build_store
from govbus.cli.consume import check_names
from govbus.cli.preflight import require_kafka, require_registry
from schemas.catalog import load_catalog


def register(commands: Any) -> None:
    """Add the ``dlq`` command group."""
    parser = commands.add_parser("dlq", help="list or replay an adapter's dead letters")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="show every dead letter of the adapter with its cause")
    listing.add_argument(
        "adapter", metavar="ADAPTER", help=f"one of {', '.join(ADAPTERS)}, {', '.join(REACTIONS)}"
    )
    listing.add_argument("--json", action="store_true", help="one JSON object per dead letter")
    listing.set_defaults(handler=run_list)
    replay = actions.add_parser(
        "replay", help="re-apply dead letters after a fix (already applied events are skipped)"
    )
    replay.add_argument("adapter", metavar="ADAPTER", help=f"one of {', '.join(ADAPTERS)} (not a reaction)")
    replay.add_argument(
        "--id",
        dest="ids",
        action="append",
        metavar="EVENT_ID",
        help="replay only the dead letters of this event id (repeatable; default: all)",
    )
    replay.set_defaults(handler=run_replay)


def run_list(args: argparse.Namespace, settings: Settings) -> int:
    """Print the adapter's dead letters, oldest first per DLQ partition."""
    letters = _letters(args.adapter, settings)
    for letter in letters:
        if args.json:
            print(json.dumps(letter.summary(), ensure_ascii=False))
        else:
            print(
                f"{letter.dlq_partition}:{letter.dlq_offset}  {_place(letter)}  id {letter.event_id or '-'}  "
                f"type {letter.event_type or '-'}  {letter.error}: {letter.reason}"
            )
    if not args.json:
        say(f"{len(letters)} dead letters in {settings.topic_prefix}{args.adapter}.dlq")
    return 0


def run_replay(args: argparse.Namespace, settings: Settings) -> int:
    """Re-apply the chosen dead letters; exit 1 when one fails again."""
    if args.adapter in REACTIONS:
        raise ConfigurationError(
            f"govbus dlq replay does not re-apply a reaction's dead letters ({args.adapter} decides in "
            "Kafka transactions on a state rebuilt from its topics); after the fix, stop it and move the "
            f"offset of its group {group_id(args.adapter, settings.topic_prefix)} on the letter's "
            "partition back to the letter's offset (kafka-consumer-groups.sh --reset-offsets), and it "
            "decides again from there when it starts"
        )
    model = build_read_model(args.adapter)
    require_registry(settings)
    letters = _letters(model.name, settings)
    if args.ids is not None:
        wanted = list(dict.fromkeys(args.ids))
        unknown = [i for i in wanted if i not in {letter.event_id for letter in letters}]
        if unknown:
            raise ConfigurationError(
                f"no dead letter of {model.name} has event id {', '.join(map(repr, unknown))}; "
                f"`govbus dlq list {model.name}` shows them"
            )
        letters = [letter for letter in letters if letter.event_id in wanted]
    store = build_store(settings)
    registry = build_registry_client(settings)
    try:
        report = replay_dead_letters(store, model, EventDecoder(registry, load_catalog()), letters)
    finally:
        registry.close()
        store.close()
    for letter in report.applied:
        print(f"    applied          {letter.event_id}  {_place(letter)}", flush=True)
    for letter in report.already_applied:
        print(f"    already applied  {letter.event_id}  {_place(letter)}", flush=True)
    for letter, reason in report.failed:
        print(f"    failed           {letter.event_id or '-'}  {_place(letter)}  {reason}", flush=True)
    say(
        f"{len(report.applied)} applied, {len(report.already_applied)} already applied, "
        f"{len(report.failed)} failed again"
    )
    if report.failed:
        print(
            f"govbus: error: {len(report.failed)} dead letters of {model.name} failed again (see above)",
            file=sys.stderr,
        )
        return 1
    return 0


def _letters(adapter: str, settings: Settings) -> list[DeadLetter]:
    check_names([adapter])
    require_kafka(settings)
    return read_dead_letters(build_connection(settings, "govbus-dlq"), adapter, settings.topic_prefix)


def _place(letter: DeadLetter) -> str:
    return f"{letter.topic}[{letter.partition}]@{letter.offset}"
