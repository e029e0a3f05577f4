"""``govbus acl plan [--json]``: the broker ACLs the catalog and the adapters call for (:mod:`govbus.acls`).

The plan is computed from the catalog and the settings' topic prefix; nothing is sent to Kafka (the
broker enforces no ACLs yet). Text: each principal (``User:<name>``, its kind and role), then one aligned
line per ACL: permission, operation, resource type, pattern type, resource name, host. ``--json``: one
document, ``{"topic_prefix": ..., "principals": [{"principal", "name", "kind", "doc", "acls": [...]}]}``,
each ACL an object with the fields of :class:`govbus.acls.Acl` (``principal`` is the name without ``User:``).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from bus.settings import Settings
from govbus.acls import Acl, Principal, plan, principals
from schemas.catalog import load_catalog


def register(commands: Any) -> None:
    """Add the ``acl`` command group."""
    parser = commands.add_parser("acl", help="the broker ACLs each govbus principal needs (plan only)")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    planning = actions.add_parser(
        "plan",
        help="print every principal and its ACLs, from the catalog, the adapters and GOVBUS_TOPIC_PREFIX",
        description=(
            "Principals are {prefix}govbus-agency-AGENCY, -adapter-ADAPTER, -reaction-NAME, -registry, "
            "-gateway and -admin (Kafka principal User:NAME). Nothing is applied to the broker."
        ),
    )
    planning.add_argument("--json", action="store_true", help="print one JSON document")
    planning.set_defaults(handler=run_plan)


def run_plan(args: argparse.Namespace, settings: Settings) -> int:
    """Print the plan of the settings' topic prefix, grouped by principal."""
    catalog = load_catalog()
    who = principals(catalog, settings.topic_prefix)
    acls = plan(catalog, settings.topic_prefix)
    if args.json:
        print(json.dumps(as_json(settings.topic_prefix, who, acls), indent=2))
        return 0
    rows = [_row(acl) for acl in acls]
    widths = [max((len(row[i]) for row in rows), default=0) for i in range(5)]
    for principal in who:
        print(f"{principal.kafka}  ({principal.kind}: {principal.doc})")
        for acl, row in zip(acls, rows, strict=True):
            if acl.principal == principal.name:
                cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=True)]
                print("    " + "  ".join([*cells, f"host {acl.host}"]))
    return 0


def as_json(topic_prefix: str, who: list[Principal], acls: list[Acl]) -> dict[str, Any]:
    """The ``--json`` document."""
    return {
        "topic_prefix": topic_prefix,
        "principals": [
            {
                "principal": principal.kafka,
                "name": principal.name,
                "kind": principal.kind,
                "doc": principal.doc,
                "acls": [_acl_json(acl) for acl in acls if acl.principal == principal.name],
            }
            for principal in who
        ],
    }


def _acl_json(acl: Acl) -> dict[str, str]:
    return {
        "principal": acl.principal,
        "resource_type": acl.resource_type,
        "resource_name": acl.resource_name,
        "pattern_type": acl.pattern_type,
        "operation": acl.operation,
        "permission": acl.permission,
        "host": acl.host,
    }


def _row(acl: Acl) -> tuple[str, str, str, str, str]:
    return (acl.permission, acl.operation, acl.resource_type, acl.pattern_type, acl.resource_name)
