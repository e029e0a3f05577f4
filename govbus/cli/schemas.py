"""``govbus schemas register|list|check``: keep the registry in step with the catalog files.

``check`` is the gate an agency runs in its CI before deploying: it exits 1 and names each subject,
field and reason the registry would refuse, without writing anything. Each action first makes sure
the registry answers, and says how to start it when it does not.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from bus.progress import say
from bus.settings import Settings
from govbus.bootstrap import build_registry_client
from govbus.cli.preflight import require_registry
from schemas.catalog import CATALOG_DIR, load_catalog
from schemas.catalog_sync import CATALOG_COMPATIBILITY, check_catalog, register_catalog


def register(commands: Any) -> None:
    """Add the ``schemas`` command group."""
    parser = commands.add_parser("schemas", help="register, list and check the event schema catalog")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="list the registry's subjects with their latest version and id")
    listing.set_defaults(handler=list_subjects)
    for name, handler, text in (
        ("register", register_all, "register every catalog schema (idempotent)"),
        ("check", check_all, "exit 1 if the registry would refuse any local schema"),
    ):
        action = actions.add_parser(name, help=text)
        action.set_defaults(handler=handler)
        action.add_argument(
            "--catalog",
            type=Path,
            default=CATALOG_DIR,
            help="folder of <topic>/<Record>.avsc files (default: built in)",
        )


def register_all(args: argparse.Namespace, settings: Settings) -> int:
    """Register the catalog; print one line per subject."""
    catalog = load_catalog(args.catalog)
    require_registry(settings)
    client = build_registry_client(settings)
    try:
        say(
            f"registering {len(catalog)} catalog schemas at {settings.registry_url} ({CATALOG_COMPATIBILITY})"
        )
        for result in register_catalog(client, catalog):
            print(f"    {result.subject}  version {result.version}  id {result.schema_id}")
    finally:
        client.close()
    return 0


def list_subjects(_: argparse.Namespace, settings: Settings) -> int:
    """Print every subject with its latest version and schema id."""
    require_registry(settings)
    client = build_registry_client(settings)
    try:
        subjects = sorted(client.subjects())
        for subject in subjects:
            latest = client.latest(subject)
            print(f"{subject}  version {latest['version']}  id {latest['id']}")
        if not subjects:
            print("no subjects registered")
    finally:
        client.close()
    return 0


def check_all(args: argparse.Namespace, settings: Settings) -> int:
    """Exit 0 when every local schema would be accepted, 1 (naming each problem) otherwise."""
    catalog = load_catalog(args.catalog)
    require_registry(settings)
    client = build_registry_client(settings)
    try:
        refused = check_catalog(client, catalog)
    finally:
        client.close()
    if not refused:
        print(f"all {len(catalog)} catalog schemas are compatible with the registry")
        return 0
    for subject, reasons in sorted(refused.items()):
        print(f"INCOMPATIBLE {subject}")
        for reason in reasons:
            print(f"    {reason}")
    print(f"{len(refused)} of {len(catalog)} schemas would be refused")
    return 1
