"""Development identities: on the embedded defaults nothing is open, and there is nothing extra to type.

``govbus up``, ``govbus demo`` and ``govbus gateway`` (when ``GOVBUS_HOME`` has no identities file and the
gateway listens on loopback) create one identity for each catalog agency, for two ministries and for the
integration team: the gateway's identities file gets their hashes, and ``GOVBUS_HOME/credentials.json``
(mode 0600) their ``KEY:SECRET`` for the CLI, the SDK, the simulators and the demo to pick up
(:func:`bus.credentials.client_credential`). Run again, it keeps the identities that still work and
replaces only missing or revoked ones. A deployment makes its identities with ``govbus org add`` instead.

The development ministries need sharing agreements to read anything: when ``GOVBUS_HOME`` has no
agreements file, the sample set (``deploy/agreements.sample.json``, the one a deployment starts from) is
copied there. An existing agreements file is never touched.
"""

from __future__ import annotations

from importlib.resources import files

from bus.credentials import INTEGRATION, read_dev_credentials, write_dev_credentials
from bus.settings import Settings
from gateway.agreements import FILE_NAME as AGREEMENTS_FILE
from gateway.identities import FILE_NAME, IdentityFile, Role, new_credential, split_credential
from schemas.catalog import Catalog, load_catalog

DEV_MINISTRIES = ("ministry-of-welfare", "ministry-of-education")


def dev_organisations(catalog: Catalog) -> dict[str, Role]:
    """The development organisations and their roles."""
    wanted = {kind.agency: Role.AGENCY for kind in catalog}
    wanted.update(dict.fromkeys(DEV_MINISTRIES, Role.MINISTRY))
    wanted[INTEGRATION] = Role.INTEGRATION
    return dict(sorted(wanted.items()))


def ensure_dev_identities(settings: Settings, catalog: Catalog | None = None) -> dict[str, str]:
    """Make sure every development organisation has a working credential; organisation → ``KEY:SECRET``."""
    known = read_dev_credentials(settings.home)
    with IdentityFile(settings.home / FILE_NAME).changing() as credentials:
        active = {c.key: c for c in credentials if c.active}
        for organisation, role in dev_organisations(catalog or load_catalog()).items():
            parts = split_credential(known.get(organisation, ""))
            stored = active.get(parts[0]) if parts else None
            if stored is not None and stored.organisation == organisation and stored.role == role:
                continue
            credential, text = new_credential(organisation, role)
            credentials.append(credential)
            known[organisation] = text
        write_dev_credentials(settings.home, known)
    ensure_dev_agreements(settings)
    return known


def ensure_dev_agreements(settings: Settings) -> None:
    """Copy the sample agreements to ``GOVBUS_HOME`` unless an agreements file is there already."""
    target = settings.home / AGREEMENTS_FILE
    if target.exists():
        return
    sample = files("deploy").joinpath("agreements.sample.json").read_bytes()
    temporary = target.with_name(f".{target.name}.tmp")
    temporary.write_bytes(sample)
    temporary.replace(target)
