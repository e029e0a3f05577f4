"""Organisations and their credentials: who may call the gateway, in which role.

An organisation (an agency, a ministry, the integration team, an auditor, or a resident, whose
organisation name is their resident id) holds one or more credentials.
A credential is a key and a secret, shown to its owner once as ``KEY:SECRET``; only the key and an
scrypt hash of the secret are kept, in the identities file (``GOVBUS_HOME/identities.json``)::

    {
      "format": "govbus-identities/1",
      "credentials": [
        {"key": "gbk_5f1c0a9e2b7d4e63", "organisation": "localgov", "role": "agency",
         "secret_hash": "scrypt$16384$8$1$<salt, base64>$<hash, base64>",
         "created": "2026-12-02T04:30:00Z", "revoked": null}
      ]
    }

``revoked`` holds the time a credential was revoked; a revoked credential is kept (so ``org list`` shows
it) but never authenticates again. A sample is ``deploy/identities.sample.json``.

:class:`Identities` answers "who is this?" for the gateway. It re-reads the file when it changed (looked
at most once a second), so ``govbus org add|revoke`` takes effect on a running gateway without a restart.
Hashing a secret with scrypt takes tens of milliseconds on purpose; a credential that verified once is
remembered for the life of the file version as a keyed SHA-256 of the secret (the key is random per
process), so later requests cost microseconds and the plain secret is never held.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import hmac
import json
import os
import re
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from bus.errors import ConfigurationError
from gateway.watched import RELOAD_CHECK_S, WatchedFile

FORMAT = "govbus-identities/1"
FILE_NAME = "identities.json"
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
MAX_REMEMBERED = 10_000
"""Authorization headers remembered at most (the memory starts over beyond that)."""
NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,62}")
KEY = re.compile(r"gbk_[0-9a-f]{16}")
RESIDENT_ID = re.compile(r"R[0-9]{12}")
"""A resident id: the organisation name of a ``resident`` credential (bound to that one resident)."""


class Role(StrEnum):
    """What an organisation may do at the gateway."""

    AGENCY = "agency"
    """Publishes its own event types; reads schemas."""
    MINISTRY = "ministry"
    """Reads shared records; reads schemas."""
    INTEGRATION = "integration"
    """Registers and evolves schemas, sets registry config and mode."""
    AUDITOR = "auditor"
    """Reads the audit trail; reads schemas."""
    RESIDENT = "resident"
    """One resident (the organisation name is the resident id): reads their own audit trail."""


@dataclass(frozen=True)
class Credential:
    """One stored credential of an organisation (never the secret itself)."""

    key: str
    organisation: str
    role: Role
    secret_hash: str
    created: str
    revoked: str | None = None

    @property
    def active(self) -> bool:
        """Whether it may still authenticate."""
        return self.revoked is None


@dataclass(frozen=True)
class Identity:
    """An authenticated caller: the organisation, its role and the key it used."""

    organisation: str
    role: Role
    key: str


def new_credential(organisation: str, role: Role) -> tuple[Credential, str]:
    """A fresh credential and its ``KEY:SECRET`` text, to be shown to its owner once."""
    key = "gbk_" + secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    stored = Credential(key, organisation, role, hash_secret(secret), _now())
    return stored, f"{key}:{secret}"


def hash_secret(secret: str) -> str:
    """``scrypt$N$r$p$salt$hash`` of ``secret`` with a random salt."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(secret.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32)
    return "$".join(["scrypt", str(SCRYPT_N), str(SCRYPT_R), str(SCRYPT_P), _b64(salt), _b64(digest)])


def verify_secret(secret: str, stored: str) -> bool:
    """Whether ``secret`` hashes to ``stored`` (constant-time comparison)."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(
            secret.encode("utf-8", "surrogatepass"),
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(expected),
            maxmem=256 * 1024 * 1024,
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


def split_credential(text: str) -> tuple[str, str] | None:
    """``(key, secret)`` of a ``KEY:SECRET`` text, or None when it is not shaped like one."""
    key, colon, secret = text.strip().partition(":")
    if not colon or not KEY.fullmatch(key) or not secret:
        return None
    return key, secret


class IdentityFile:
    """The identities file: read, and changed under an exclusive lock so concurrent commands lose nothing."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def read(self) -> list[Credential]:
        """Every stored credential; none when the file does not exist yet."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise ConfigurationError(f"cannot read the identities file {self.path}: {exc.strerror}") from exc
        return parse_identities(raw, self.path)

    @contextmanager
    def changing(self) -> Iterator[list[Credential]]:
        """Yield the credentials to change in place; written back (atomically, mode 0600) on success."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock_path = self.path.with_name(self.path.name + ".lock")
        with open(lock_path, "a", encoding="utf-8") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            credentials = self.read()
            yield credentials
            self._write(credentials)

    def _write(self, credentials: list[Credential]) -> None:
        body = {"format": FORMAT, "credentials": [asdict(c) for c in credentials]}
        temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(body, out, indent=2)
            out.write("\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, self.path)


def parse_identities(raw: bytes, origin: Path | str = "identities") -> list[Credential]:
    """The credentials of an identities document; ConfigurationError naming what is wrong."""
    try:
        body = json.loads(raw)
        if not isinstance(body, dict) or body.get("format") != FORMAT:
            raise ValueError(f"not a {FORMAT} document")
        entries = body["credentials"]
        if not isinstance(entries, list):
            raise ValueError("credentials must be a list")
        return [_credential(entry) for entry in entries]
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigurationError(f"the identities file {origin} is not valid: {exc}") from exc


def _credential(entry: Any) -> Credential:
    if not isinstance(entry, dict):
        raise ValueError("each credential must be an object")
    fields = {name: entry[name] for name in ("key", "organisation", "role", "secret_hash", "created")}
    if not all(isinstance(value, str) for value in fields.values()):
        raise ValueError(f"credential {entry.get('key')!r}: key, organisation, role, hash and time are text")
    revoked = entry.get("revoked")
    if revoked is not None and not isinstance(revoked, str):
        raise ValueError(f"credential {fields['key']!r}: revoked must be a time or null")
    return Credential(**{**fields, "role": Role(fields["role"])}, revoked=revoked)


def revoke(credentials: list[Credential], organisation: str, key: str | None = None) -> list[Credential]:
    """Revoke the organisation's active credentials (only ``key`` when given); return those revoked."""
    revoked = []
    for index, credential in enumerate(credentials):
        if credential.organisation != organisation or not credential.active:
            continue
        if key is not None and credential.key != key:
            continue
        credentials[index] = replace(credential, revoked=_now())
        revoked.append(credentials[index])
    return revoked


class Identities:
    """Authenticates ``KEY:SECRET`` credentials against the identities file (re-read when it changes)."""

    def __init__(self, path: Path, reload_check_s: float = RELOAD_CHECK_S) -> None:
        none: list[Credential] = []
        self._file = WatchedFile(path, parse_identities, none, reload_check_s)
        self._lock = threading.Lock()
        self._pepper = secrets.token_bytes(32)
        self._loaded: list[Credential] | None = None
        self._by_key: dict[str, Credential] = {}
        self._verified: dict[str, bytes] = {}
        self._by_header: dict[bytes, Identity] = {}
        self._refresh()

    @property
    def path(self) -> Path:
        """The identities file."""
        return self._file.path

    def organisations(self) -> int:
        """How many organisations have an active credential."""
        self._refresh()
        return len({c.organisation for c in self._by_key.values() if c.active})

    def cached(self, key: str, secret: str) -> Identity | None:
        """The identity when this credential verified before (no hashing: safe on an event loop)."""
        self._refresh()
        credential = self._by_key.get(key)
        remembered = self._verified.get(key)
        if credential is None or not credential.active or remembered is None:
            return None
        if not hmac.compare_digest(remembered, self._digest(secret)):
            return None
        return Identity(credential.organisation, credential.role, key)

    def authenticate(self, key: str, secret: str) -> Identity | None:
        """The identity of an active credential whose secret matches, or None (runs scrypt: blocking)."""
        found = self.cached(key, secret)
        if found is not None:
            return found
        credential = self._by_key.get(key)
        if credential is None or not credential.active or not verify_secret(secret, credential.secret_hash):
            return None
        with self._lock:
            if self._by_key.get(key) is credential:
                self._verified[key] = self._digest(secret)
        return Identity(credential.organisation, credential.role, key)

    def by_header(self, header: bytes) -> Identity | None:
        """The identity an Authorization header value authenticated before (see :meth:`remember`)."""
        self._refresh()
        return self._by_header.get(self._header_digest(header))

    def remember(self, header: bytes, identity: Identity) -> None:
        """Keep that ``header`` authenticates ``identity`` until the identities file changes.

        Kept as a keyed BLAKE2 digest of the header (the key random per process), never the header: a
        repeated request then costs one digest and one lookup.
        """
        with self._lock:
            current = self._by_key.get(identity.key)
            if current is None or not current.active:  # revoked by a reload since it verified
                return
            if len(self._by_header) >= MAX_REMEMBERED:
                self._by_header.clear()
            self._by_header[self._header_digest(header)] = identity

    def _header_digest(self, header: bytes) -> bytes:
        return hashlib.blake2b(header, key=self._pepper, digest_size=20).digest()

    def _digest(self, secret: str) -> bytes:
        return hmac.new(self._pepper, secret.encode("utf-8", "surrogatepass"), hashlib.sha256).digest()

    def _refresh(self) -> None:
        """Start over from the file's credentials when it changed (forgetting what verified before)."""
        credentials = self._file.current()
        if credentials is self._loaded:
            return
        with self._lock:
            if credentials is self._loaded:
                return
            self._by_key = {c.key: c for c in credentials}
            self._verified = {}
            self._by_header = {}
            self._loaded = credentials


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
