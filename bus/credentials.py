"""Which credential a govbus client presents to the gateway (the registry, the publish API).

``GOVBUS_CREDENTIALS`` (``KEY:SECRET``) wins when set: a deployed process is one organisation. Otherwise
the development credentials that ``govbus up``, ``govbus demo`` and ``govbus gateway`` create on the
embedded defaults are used: ``GOVBUS_HOME/credentials.json`` maps each development organisation to its
``KEY:SECRET`` (mode 0600; the gateway itself keeps only hashes, in ``identities.json``)::

    {"format": "govbus-dev-credentials/1", "credentials": {"localgov": "gbk_...:...", "integration": "..."}}

No credential found means the request goes without one, and the gateway answers 401.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from bus.settings import Settings

DEV_FORMAT = "govbus-dev-credentials/1"
DEV_FILE = "credentials.json"
INTEGRATION = "integration"
"""The organisation platform components (catalog registration, consumers) act as by default."""


def dev_credentials_path(home: Path) -> Path:
    """Where the development credentials of ``home`` live."""
    return home / DEV_FILE


def read_dev_credentials(home: Path) -> dict[str, str]:
    """Organisation → ``KEY:SECRET`` of the development identities; empty when there are none."""
    try:
        body = json.loads(dev_credentials_path(home).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(body, dict) or body.get("format") != DEV_FORMAT:
        return {}
    found = body.get("credentials")
    if not isinstance(found, dict):
        return {}
    return {str(name): str(text) for name, text in found.items() if isinstance(text, str)}


def write_dev_credentials(home: Path, credentials: dict[str, str]) -> None:
    """Write the development credentials (mode 0600, replaced atomically)."""
    path = dev_credentials_path(home)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump({"format": DEV_FORMAT, "credentials": credentials}, out, indent=2)
        out.write("\n")
    os.replace(temporary, path)


def client_credential(settings: Settings, organisation: str = INTEGRATION) -> str | None:
    """The ``KEY:SECRET`` to present: GOVBUS_CREDENTIALS, else ``organisation``'s development credential."""
    configured = settings.credentials.get_secret_value().strip()
    if configured:
        return configured
    return read_dev_credentials(settings.home).get(organisation)
