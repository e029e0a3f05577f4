"""The registry's state, rebuilt by applying the records of its compacted Kafka topic in log order.

Pure: no I/O. :class:`RegistryState` answers every query of the REST API from memory, and
:meth:`RegistryState.apply` is the only way it changes. Every instance applies the same log, so
every instance ends in the same state.

The records follow Confluent Schema Registry's ``_schemas`` layout (JSON key and value):

- ``{"keytype": "SCHEMA", "subject": s, "version": v, "magic": 1}`` →
  ``{"subject", "version", "id", "schema", "schemaType"?, "references"?, "deleted"}``
  (``deleted``: soft-deleted); a tombstone (``null``): permanently deleted;
- ``{"keytype": "CONFIG", "subject": s | null, "magic": 0}`` → ``{"compatibilityLevel": L}``; ``null``: unset;
- ``{"keytype": "MODE", "subject": s | null, "magic": 0}`` → ``{"mode": M}``; ``null``: unset;
- ``{"keytype": "ID_HIGH", "magic": 0}`` → ``{"id": n}``: the highest id ever assigned.

Each key's latest value is self-contained, so the state after compaction equals the state before it.
``ID_HIGH`` (not in Confluent's layout) keeps ids from being reused once every version of the
highest id was permanently deleted and compaction removed its records.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

DEFAULT_COMPATIBILITY = "BACKWARD"
DEFAULT_MODE = "READWRITE"
COMPATIBILITY_LEVELS = (
    "NONE",
    "BACKWARD",
    "BACKWARD_TRANSITIVE",
    "FORWARD",
    "FORWARD_TRANSITIVE",
    "FULL",
    "FULL_TRANSITIVE",
)
MODES = ("READWRITE", "READONLY", "READONLY_OVERRIDE", "IMPORT")

Record = tuple[dict[str, Any], dict[str, Any] | None]


@dataclass(frozen=True)
class Reference:
    """A named type this schema uses, defined by ``version`` of ``subject``."""

    name: str
    subject: str
    version: int

    def to_json(self) -> dict[str, Any]:
        """The REST and storage form."""
        return {"name": self.name, "subject": self.subject, "version": self.version}


@dataclass(frozen=True)
class StoredSchema:
    """A schema as the registry keeps it: its canonical text, type and references."""

    text: str
    schema_type: str = "AVRO"
    references: tuple[Reference, ...] = ()

    @property
    def identity(self) -> tuple[str, str, tuple[Reference, ...]]:
        """What makes two registrations the same schema (and so the same id)."""
        return (self.schema_type, self.text, self.references)


@dataclass(frozen=True)
class SchemaVersion:
    """One version of a subject."""

    subject: str
    version: int
    schema_id: int
    schema: StoredSchema
    deleted: bool = False

    def to_json(self) -> dict[str, Any]:
        """The REST form of ``GET /subjects/{s}/versions/{v}``."""
        body: dict[str, Any] = {
            "subject": self.subject,
            "version": self.version,
            "id": self.schema_id,
            "schema": self.schema.text,
        }
        if self.schema.schema_type != "AVRO":
            body["schemaType"] = self.schema.schema_type
        if self.schema.references:
            body["references"] = [r.to_json() for r in self.schema.references]
        return body


@dataclass
class RegistryState:
    """Subjects, versions, ids, configs and modes, as the log has defined them so far."""

    subjects: dict[str, dict[int, SchemaVersion]] = field(default_factory=dict)
    configs: dict[str | None, str] = field(default_factory=dict)
    modes: dict[str | None, str] = field(default_factory=dict)
    id_high: int = 0
    # Derived from ``subjects``; kept up to date by ``apply``.
    _ids: dict[int, StoredSchema] = field(default_factory=dict)
    _by_identity: dict[tuple[str, str, tuple[Reference, ...]], int] = field(default_factory=dict)
    _id_users: dict[int, set[tuple[str, int]]] = field(default_factory=dict)

    # -- applying the log ---------------------------------------------------------------------

    def apply(self, key: Mapping[str, Any], value: Mapping[str, Any] | None) -> None:
        """Apply one record of the log; unknown key types are ignored (written by a newer version)."""
        keytype = key.get("keytype")
        if keytype == "SCHEMA":
            self._apply_schema(str(key["subject"]), int(key["version"]), value)
        elif keytype == "CONFIG":
            self._apply_setting(self.configs, key.get("subject"), value, "compatibilityLevel")
        elif keytype == "MODE":
            self._apply_setting(self.modes, key.get("subject"), value, "mode")
        elif keytype == "ID_HIGH" and value is not None:
            self.id_high = max(self.id_high, int(value["id"]))

    def _apply_schema(self, subject: str, version: int, value: Mapping[str, Any] | None) -> None:
        versions = self.subjects.setdefault(subject, {})
        old = versions.pop(version, None)
        if old is not None:
            self._forget_user(old)
        if value is None:
            if not versions:
                del self.subjects[subject]
            return
        stored = StoredSchema(
            text=str(value["schema"]),
            schema_type=str(value.get("schemaType") or "AVRO"),
            references=tuple(
                Reference(str(r["name"]), str(r["subject"]), int(r["version"]))
                for r in value.get("references") or ()
            ),
        )
        schema_id = int(value["id"])
        entry = SchemaVersion(subject, version, schema_id, stored, bool(value.get("deleted", False)))
        versions[version] = entry
        self._ids.setdefault(schema_id, stored)
        self._by_identity.setdefault(stored.identity, schema_id)
        self._id_users.setdefault(schema_id, set()).add((subject, version))
        self.id_high = max(self.id_high, schema_id)

    def _forget_user(self, entry: SchemaVersion) -> None:
        users = self._id_users.get(entry.schema_id)
        if users is None:
            return
        users.discard((entry.subject, entry.version))
        if not users:
            del self._id_users[entry.schema_id]
            stored = self._ids.pop(entry.schema_id)
            self._by_identity.pop(stored.identity, None)

    @staticmethod
    def _apply_setting(
        table: dict[str | None, str], subject: Any, value: Mapping[str, Any] | None, name: str
    ) -> None:
        target = None if subject is None else str(subject)
        if value is None:
            table.pop(target, None)
        else:
            table[target] = str(value[name])

    # -- queries ------------------------------------------------------------------------------

    def schema(self, schema_id: int) -> StoredSchema | None:
        """The schema with ``schema_id`` while any version (live or soft-deleted) uses it."""
        return self._ids.get(schema_id)

    def id_of(self, schema: StoredSchema) -> int | None:
        """The id an identical schema already has."""
        return self._by_identity.get(schema.identity)

    def users(self, schema_id: int, *, deleted: bool = False) -> list[SchemaVersion]:
        """The subject versions that use ``schema_id``, sorted by subject and version."""
        entries = [self.subjects[s][v] for s, v in self._id_users.get(schema_id, ())]
        return sorted((e for e in entries if deleted or not e.deleted), key=lambda e: (e.subject, e.version))

    def subject_names(self, *, deleted: bool = False) -> list[str]:
        """Subjects with a live version (or any version, with ``deleted``), sorted."""
        return sorted(s for s in self.subjects if self.versions(s, deleted=deleted))

    def versions(self, subject: str, *, deleted: bool = False) -> list[SchemaVersion]:
        """The versions of ``subject`` in order; soft-deleted ones only with ``deleted``."""
        entries = self.subjects.get(subject, {})
        return [entries[v] for v in sorted(entries) if deleted or not entries[v].deleted]

    def next_version(self, subject: str) -> int:
        """The number the next version of ``subject`` gets (soft-deleted numbers are not reused)."""
        versions = self.subjects.get(subject)
        return (max(versions) if versions else 0) + 1

    def compatibility(self, subject: str | None) -> str | None:
        """The level set for ``subject`` (None: the global one), or None when none is set."""
        return self.configs.get(subject)

    def effective_compatibility(self, subject: str) -> str:
        """The level that governs ``subject``: its own, else the global one, else BACKWARD."""
        return self.configs.get(subject) or self.configs.get(None) or DEFAULT_COMPATIBILITY

    def mode(self, subject: str | None) -> str | None:
        """The mode set for ``subject`` (None: the global one), or None when none is set."""
        return self.modes.get(subject)

    def effective_mode(self, subject: str) -> str:
        """The mode that governs ``subject``."""
        return self.modes.get(subject) or self.modes.get(None) or DEFAULT_MODE

    def referenced_by(self, subject: str, version: int) -> list[int]:
        """Ids of live schemas that reference ``version`` of ``subject``."""
        found = {
            entry.schema_id
            for versions in self.subjects.values()
            for entry in versions.values()
            if not entry.deleted
            and any(r.subject == subject and r.version == version for r in entry.schema.references)
        }
        return sorted(found)


def schema_key(subject: str, version: int) -> dict[str, Any]:
    """The log key of one subject version."""
    return {"keytype": "SCHEMA", "subject": subject, "version": version, "magic": 1}


def schema_record(entry: SchemaVersion, *, deleted: bool | None = None) -> Record:
    """The log record that stores ``entry`` (optionally with another ``deleted`` flag)."""
    value: dict[str, Any] = {
        "subject": entry.subject,
        "version": entry.version,
        "id": entry.schema_id,
        "schema": entry.schema.text,
        "deleted": entry.deleted if deleted is None else deleted,
    }
    if entry.schema.schema_type != "AVRO":
        value["schemaType"] = entry.schema.schema_type
    if entry.schema.references:
        value["references"] = [r.to_json() for r in entry.schema.references]
    return schema_key(entry.subject, entry.version), value


def config_key(subject: str | None) -> dict[str, Any]:
    """The log key of a compatibility setting."""
    return {"keytype": "CONFIG", "subject": subject, "magic": 0}


def mode_key(subject: str | None) -> dict[str, Any]:
    """The log key of a mode setting."""
    return {"keytype": "MODE", "subject": subject, "magic": 0}


def id_high_record(schema_id: int) -> Record:
    """The record that keeps ``schema_id`` from ever being handed out again."""
    return {"keytype": "ID_HIGH", "magic": 0}, {"id": schema_id}


def encode_json(document: Mapping[str, Any] | None) -> bytes | None:
    """Keys and values as compact JSON bytes (None stays None: a tombstone)."""
    if document is None:
        return None
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()
