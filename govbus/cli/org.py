"""``govbus org add|revoke|list``: the organisations that may call the gateway, and their credentials.

``add NAME --role ROLE`` creates a credential and prints it once, as ``KEY:SECRET`` on its last line
(only its hash is kept, in ``GOVBUS_HOME/identities.json``); an agency's NAME must be an agency of the
catalog, a resident's NAME is their resident id (``R`` and 12 digits: the credential reads only that
resident's audit trail). An organisation keeps one role; adding again gives it another credential (for
rotation).
``revoke NAME`` revokes all its credentials, ``--key KEY`` only one. A running gateway picks changes up
within a second. ``credential NAME`` prints a development identity's ``KEY:SECRET`` (for curl).
"""

from __future__ import annotations

import argparse
from typing import Any

from bus.credentials import read_dev_credentials
from bus.errors import ConfigurationError
from bus.settings import Settings
from gateway.identities import FILE_NAME, NAME, RESIDENT_ID, IdentityFile, Role, new_credential, revoke
from govbus.cli.table import print_table
from schemas.catalog import load_catalog


def register(commands: Any) -> None:
    """Add the ``org`` command group."""
    parser = commands.add_parser("org", help="manage the organisations that may call the gateway")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = actions.add_parser("add", help="add an organisation or a new credential of one; prints KEY:SECRET")
    add.add_argument(
        "name",
        help="organisation name (an agency's is its catalog agency, e.g. localgov; a resident's is their "
        "resident id, e.g. R000000000001)",
    )
    add.add_argument("--role", required=True, choices=[r.value for r in Role], help="what it may do")
    add.set_defaults(handler=run_add)
    revoke_parser = actions.add_parser("revoke", help="revoke an organisation's credentials")
    revoke_parser.add_argument("name", help="organisation name")
    revoke_parser.add_argument("--key", help="revoke only this credential key")
    revoke_parser.set_defaults(handler=run_revoke)
    show = actions.add_parser(
        "credential", help="print the development credential (KEY:SECRET) of an organisation in GOVBUS_HOME"
    )
    show.add_argument("name", help="development organisation, e.g. ministry-of-welfare")
    show.set_defaults(handler=run_credential)
    listing = actions.add_parser("list", help="list organisations, roles and credential keys (never secrets)")
    listing.set_defaults(handler=run_list)


def run_add(args: argparse.Namespace, settings: Settings) -> int:
    """Create a credential for ``args.name`` and print it once."""
    role = Role(args.role)
    name = _resident_id(args.name) if role is Role.RESIDENT else _name(args.name)
    if role is Role.AGENCY:
        agencies = sorted({kind.agency for kind in load_catalog()})
        if name not in agencies:
            raise ConfigurationError(f"{name!r} is not a catalog agency; agencies: {', '.join(agencies)}")
    with _file(settings).changing() as credentials:
        for existing in credentials:
            if existing.organisation == name and existing.role is not role:
                raise ConfigurationError(
                    f"organisation {name!r} has role {existing.role.value!r}; an organisation keeps one role"
                )
        credential, text = new_credential(name, role)
        credentials.append(credential)
    print(f"added organisation {name!r} ({role.value}), credential key {credential.key}")
    print("the secret is shown only now; present it as Bearer KEY:SECRET or as HTTP Basic (key, secret):")
    print(text)
    return 0


def run_revoke(args: argparse.Namespace, settings: Settings) -> int:
    """Revoke the credentials of ``args.name`` (or just ``args.key``)."""
    name = args.name if RESIDENT_ID.fullmatch(args.name) else _name(args.name)
    with _file(settings).changing() as credentials:
        revoked = revoke(credentials, name, args.key)
        if not revoked:
            which = f"credential {args.key!r} of " if args.key else "credentials of "
            raise ConfigurationError(f"no active {which}organisation {name!r}")
    for credential in revoked:
        print(f"revoked {credential.key} of {name!r}")
    return 0


def run_credential(args: argparse.Namespace, settings: Settings) -> int:
    """Print the development credential of ``args.name`` (made by `govbus up` or the demo)."""
    known = read_dev_credentials(settings.home)
    if args.name not in known:
        names = ", ".join(sorted(known)) or "none (run `govbus up` first)"
        raise ConfigurationError(
            f"no development credential of {args.name!r} in {settings.home}; there are: {names}"
        )
    print(known[args.name])
    return 0


def run_list(_: argparse.Namespace, settings: Settings) -> int:
    """Print one line per credential: organisation, role, key, created, status."""
    credentials = _file(settings).read()
    if not credentials:
        print(f"no organisations in {settings.home / FILE_NAME}")
        return 0
    rows = [("ORGANISATION", "ROLE", "KEY", "CREATED", "STATUS")]
    for c in sorted(credentials, key=lambda c: (c.organisation, c.created, c.key)):
        rows.append(
            (c.organisation, c.role.value, c.key, c.created, "active" if c.active else f"revoked {c.revoked}")
        )
    print_table(rows)
    return 0


def _name(raw: str) -> str:
    if not NAME.fullmatch(raw):
        raise ConfigurationError(
            f"organisation name {raw!a} is not valid: 1 to 63 of a-z, 0-9, '.', '_' and '-', "
            "starting with a letter or digit"
        )
    return raw


def _resident_id(raw: str) -> str:
    if not RESIDENT_ID.fullmatch(raw):
        raise ConfigurationError(
            f"a resident's organisation name is their resident id, R followed by 12 digits "
            f"(e.g. R000000000001), not {raw!a}"
        )
    return raw


def _file(settings: Settings) -> IdentityFile:
    return IdentityFile(settings.home / FILE_NAME)
