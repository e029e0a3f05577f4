"""``govbus agreement list``: the sharing agreements in ``GOVBUS_HOME/agreements.json``.

One line per purpose of each agreement: its id, organisation, model, purpose, validity, whether it is in
force on the day (today, or ``--on DATE``), and the legal basis; then the fields each agreement discloses
in clear. ``--json`` prints the whole file as parsed. A file that does not parse is an error naming the
entry and the problem (a running gateway keeps its last good agreements meanwhile).
"""

from __future__ import annotations

import argparse
import json
from datetime import date
from typing import Any

from bus.errors import ConfigurationError
from bus.settings import Settings
from gateway.agreements import FILE_NAME, SHAREABLE_MODELS, Agreement, parse_agreements
from govbus.cli.table import print_table

SAMPLE = "deploy/agreements.sample.json"


def register(commands: Any) -> None:
    """Add the ``agreement`` command group."""
    parser = commands.add_parser("agreement", help="show the sharing agreements ministries read under")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="list agreements: organisation, model, purposes, legal basis")
    listing.add_argument("--on", type=_day, help="say which are in force on this day (default today)")
    listing.add_argument("--json", action="store_true", help="print them as JSON")
    listing.set_defaults(handler=run_list)


def run_list(args: argparse.Namespace, settings: Settings) -> int:
    """Print the agreements of the agreements file."""
    path = settings.home / FILE_NAME
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        print(f"no sharing agreements: {path} does not exist (a sample set: {SAMPLE})")
        return 0
    except OSError as exc:
        raise ConfigurationError(f"cannot read {path}: {exc.strerror}") from exc
    agreements = parse_agreements(raw, path, SHAREABLE_MODELS)
    day = args.on or date.today()
    if args.json:
        print(json.dumps([_as_json(a, day) for a in agreements], indent=2, ensure_ascii=False))
        return 0
    if not agreements:
        print(f"no sharing agreements in {path}")
        return 0
    rows = [("ID", "ORGANISATION", "MODEL", "PURPOSE", "VALID", "STATUS", "LEGAL BASIS")]
    for agreement in sorted(agreements, key=lambda a: (a.organisation, a.model, a.id)):
        for purpose in agreement.purposes:
            rows.append(
                (
                    agreement.id,
                    agreement.organisation,
                    agreement.model,
                    purpose.name,
                    f"{agreement.valid_from}..{agreement.valid_until}",
                    _status(agreement, day),
                    purpose.legal_basis,
                )
            )
    print_table(rows)
    print()
    print_table(
        [("ID", "FIELDS IN CLEAR (personal or sensitive)")]
        + [(a.id, ", ".join(sorted(a.fields)) or "none") for a in sorted(agreements, key=lambda a: a.id)]
    )
    return 0


def _status(agreement: Agreement, day: date) -> str:
    if agreement.in_force(day):
        return "in force"
    return "expired" if day > agreement.valid_until else f"from {agreement.valid_from}"


def _as_json(agreement: Agreement, day: date) -> dict[str, Any]:
    return {
        "id": agreement.id,
        "organisation": agreement.organisation,
        "model": agreement.model,
        "fields": sorted(agreement.fields),
        "purposes": [{"name": p.name, "legal_basis": p.legal_basis} for p in agreement.purposes],
        "valid_from": agreement.valid_from.isoformat(),
        "valid_until": agreement.valid_until.isoformat(),
        "in_force": agreement.in_force(day),
    }


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a date like 2026-12-01: {text!r}") from exc
