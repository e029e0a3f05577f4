"""The schema registry: Confluent Schema Registry semantics for Avro, stored in a compacted Kafka topic.

Reads are answered from the in-memory :class:`~schemas.registry.state.RegistryState`; writes are
decided against a state that has caught up with the log, committed to the log as one transaction
and applied from the log, so every instance sharing the storage applies the same writes in the same
order. The storage is a :class:`~schemas.registry.log.RegistryLog`: a compacted Kafka topic
(:meth:`SchemaRegistry.from_kafka`) or a topic in memory (:meth:`SchemaRegistry.in_memory`). When
another instance wrote first, the commit is refused (:class:`~schemas.registry.log.FencedError`) and
the write is decided again on the caught-up state, which may then answer differently (the schema is
already registered, the subject became read-only). Refusals raise :class:`~bus.errors.RegistryError`
carrying the HTTP status and Confluent's ``error_code``; nothing is written then.

Compatibility (``NONE``, ``BACKWARD``, ``FORWARD``, ``FULL`` and their ``_TRANSITIVE`` forms) is
decided by :func:`schemas.registry.compatibility.check_resolution`: BACKWARD means the new schema reads data
written with the previous one, FORWARD the previous reads the new, FULL both; plain levels compare
with the latest live version, transitive ones with every live version. Soft-deleted versions take
part in nothing but ``?deleted=true`` queries.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import structlog

from bus.errors import InvalidSchemaError, RegistryError
from bus.kafka_config import KafkaConnection
from schemas.registry.avro_schema import parse_avro
from schemas.registry.compatibility import check_resolution
from schemas.registry.log import DEFAULT_TOPIC, FencedError, KafkaRegistryLog, RegistryLog
from schemas.registry.memory_log import MemoryRegistryLog, MemoryTopic
from schemas.registry.references import inline_references
from schemas.registry.state import (
    COMPATIBILITY_LEVELS,
    DEFAULT_COMPATIBILITY,
    MODES,
    Record,
    Reference,
    RegistryState,
    SchemaVersion,
    StoredSchema,
    config_key,
    id_high_record,
    mode_key,
    schema_key,
    schema_record,
)

log = structlog.get_logger(__name__)

T = TypeVar("T")
MAX_VERSION = 2**31 - 1
READ_SYNC_TIMEOUT_S = 5.0
"""How long a read of an id this instance has not applied waits to catch up with the storage (then 503)."""
# Instances that fence each other back off for a random pause growing to at most FENCE_BACKOFF_MAX_S,
# and keep deciding again until WRITE_DEADLINE_S has passed.
FENCE_BACKOFF_S = 0.02
FENCE_BACKOFF_MAX_S = 1.0
WRITE_DEADLINE_S = 30.0
SCHEMA_TYPES = ("AVRO",)


def not_found(what: str, code: int) -> RegistryError:
    """A 404 with Confluent's code."""
    return RegistryError(what, 404, code)


def unprocessable(what: str, code: int) -> RegistryError:
    """A 422 with Confluent's code."""
    return RegistryError(what, 422, code)


class SchemaRegistry:
    """One registry instance; :meth:`start` replays its log, :meth:`close` stops following it."""

    def __init__(self, storage: RegistryLog) -> None:
        self._log = storage
        self._state = RegistryState()
        self._state_lock = threading.RLock()
        self._write_lock = threading.Lock()

    @classmethod
    def from_kafka(cls, bootstrap: str, topic: str = DEFAULT_TOPIC) -> SchemaRegistry:
        """A registry stored in ``topic`` of the cluster at ``bootstrap`` (nothing is contacted yet)."""
        return cls(KafkaRegistryLog(KafkaConnection(bootstrap, client_id="govbus-registry"), topic))

    @classmethod
    def in_memory(cls, topic: MemoryTopic | None = None) -> SchemaRegistry:
        """A registry stored in memory; registries given one ``topic`` share it as if it were Kafka's."""
        return cls(MemoryRegistryLog(topic))

    def start(self) -> None:
        """Replay the storage log; returns once the state has caught up."""
        self._log.start(self._apply)

    def close(self) -> None:
        """Stop following the storage log."""
        self._log.close()

    def _apply(self, key: dict[str, Any], value: dict[str, Any] | None) -> None:
        with self._state_lock:
            self._state.apply(key, value)

    # -- subjects and versions ------------------------------------------------------------------

    def subjects(self, *, deleted: bool = False) -> list[str]:
        """Subject names, sorted."""
        with self._state_lock:
            return self._state.subject_names(deleted=deleted)

    def versions(self, subject: str, *, deleted: bool = False) -> list[int]:
        """The version numbers of ``subject``."""
        with self._state_lock:
            return [e.version for e in self._versions(subject, deleted=deleted)]

    def version(self, subject: str, version: str | int, *, deleted: bool = False) -> SchemaVersion:
        """One version (``latest``/``-1`` for the newest live one)."""
        number = parse_version(version)
        with self._state_lock:
            return self._pick(subject, self._versions(subject, deleted=True), number, deleted=deleted)

    def referenced_by(self, subject: str, version: str | int) -> list[int]:
        """Ids of the schemas that reference this version."""
        with self._state_lock:
            entry = self.version(subject, version)
            return self._state.referenced_by(subject, entry.version)

    def lookup(self, subject: str, body: Any, *, deleted: bool = False) -> SchemaVersion:
        """The version of ``subject`` whose schema equals the one in ``body``."""
        with self._state_lock:
            entries = self._versions(subject, deleted=deleted)
            stored, _ = self._parse(body)
            for entry in reversed(entries):
                if entry.schema.identity == stored.identity:
                    return entry
        raise not_found("Schema not found", 40403)

    def register(self, subject: str, body: Any) -> int:
        """Register the schema in ``body`` under ``subject``; return its id (the existing one if known)."""

        def decide() -> tuple[list[Record], int]:
            state = self._state
            self._refuse_read_only(subject)
            mode = state.effective_mode(subject)
            stored, schema = self._parse(body)
            live = state.versions(subject)
            for entry in live:
                if entry.schema.identity == stored.identity:
                    return [], entry.schema_id
            wanted_id, wanted_version = _import_ids(body, mode)
            problems = self._incompatibilities(state.effective_compatibility(subject), schema, live)
            if problems:
                raise RegistryError(
                    "Schema being registered is incompatible with an earlier schema for subject "
                    f'"{subject}", details: [{"; ".join(problems)}]',
                    409,
                    409,
                )
            schema_id = self._assign_id(stored, wanted_id)
            version = wanted_version or state.next_version(subject)
            if version in state.subjects.get(subject, {}):
                raise unprocessable(f"Version {version} already exists under subject {subject}", 42202)
            entry = SchemaVersion(subject, version, schema_id, stored)
            records = [schema_record(entry)]
            if schema_id > state.id_high:
                records.append(id_high_record(schema_id))
            return records, schema_id

        schema_id = self._write(decide)
        log.info("registry.registered", subject=subject, id=schema_id)
        return schema_id

    def delete_subject(self, subject: str, *, permanent: bool = False) -> list[int]:
        """Soft-delete every live version, or (``permanent``) remove soft-deleted ones for good."""

        def decide() -> tuple[list[Record], list[int]]:
            self._refuse_read_only(subject)
            every = self._versions(subject, deleted=True)
            live = [e for e in every if not e.deleted]
            if not permanent:
                if not live:
                    raise not_found(
                        f"Subject '{subject}' was soft deleted.Set permanent=true to delete permanently",
                        40404,
                    )
                self._refuse_referenced(live)
                return [schema_record(e, deleted=True) for e in live], [e.version for e in live]
            if live:
                raise not_found(
                    f"Subject '{subject}' was not deleted first before being permanently deleted", 40405
                )
            records: list[Record] = [(schema_key(e.subject, e.version), None) for e in every]
            if self._state.compatibility(subject) is not None:
                records.append((config_key(subject), None))
            if self._state.mode(subject) is not None:
                records.append((mode_key(subject), None))
            return records, [e.version for e in every]

        return self._write(decide)

    def delete_version(self, subject: str, version: str | int, *, permanent: bool = False) -> int:
        """Soft-delete one version, or (``permanent``) remove a soft-deleted one for good."""
        number = parse_version(version)

        def decide() -> tuple[list[Record], int]:
            self._refuse_read_only(subject)
            entries = self._versions(subject, deleted=True)
            entry = self._pick(subject, entries, number, deleted=True)
            self._refuse_referenced([entry])
            if not permanent:
                if entry.deleted:
                    raise not_found(
                        f"Subject '{subject}' Version {entry.version} was soft deleted.Set permanent=true "
                        "to delete permanently",
                        40406,
                    )
                return [schema_record(entry, deleted=True)], entry.version
            if not entry.deleted:
                raise not_found(
                    f"Subject '{subject}' Version {entry.version} was not deleted first before being "
                    "permanently deleted",
                    40407,
                )
            return [(schema_key(subject, entry.version), None)], entry.version

        return self._write(decide)

    # -- schemas by id ----------------------------------------------------------------------------

    def ready(self, timeout_s: float) -> None:
        """Return once this instance has applied everything committed to its storage; raise
        RegistryError (storage unreachable, or not caught up within ``timeout_s``) otherwise."""
        self._log.sync(timeout_s)

    def known_schema(self, schema_id: int) -> StoredSchema | None:
        """The schema with ``schema_id`` if this instance has applied it; never waits for the log."""
        with self._state_lock:
            return self._state.schema(schema_id)

    def schema(self, schema_id: int) -> StoredSchema:
        """The schema with ``schema_id``; catches up with the log once before answering 404."""
        for attempt in range(2):
            with self._state_lock:
                stored = self._state.schema(schema_id)
            if stored is not None:
                return stored
            if attempt == 0:
                self._log.sync(READ_SYNC_TIMEOUT_S)
        raise not_found(f"Schema {schema_id} not found", 40403)

    def schema_users(self, schema_id: int, *, deleted: bool = False) -> list[SchemaVersion]:
        """The subject versions using ``schema_id``."""
        self.schema(schema_id)
        with self._state_lock:
            return self._state.users(schema_id, deleted=deleted)

    # -- compatibility ----------------------------------------------------------------------------

    def test_compatibility(self, subject: str, version: str | int | None, body: Any) -> list[str]:
        """Why the schema in ``body`` would be refused (empty: it is compatible).

        ``version`` None compares as registration would (latest or all live versions by level);
        otherwise with that one version, ``latest`` with none at all being compatible.
        """
        number = parse_version(version) if version is not None else None
        with self._state_lock:
            live = self._state.versions(subject)
            level = self._state.effective_compatibility(subject)
            if version is None:
                against = live
            elif number is None:
                against = live[-1:]
            else:
                matches = [e for e in live if e.version == number]
                if not matches:
                    raise not_found(f"Version {number} not found.", 40402)
                against = matches
                level = level.removesuffix("_TRANSITIVE")
            _, schema = self._parse(body)
            return self._incompatibilities(level, schema, against)

    def _incompatibilities(self, level: str, schema: Any, previous: list[SchemaVersion]) -> list[str]:
        if level == "NONE" or not previous:
            return []
        targets = previous if level.endswith("_TRANSITIVE") else previous[-1:]
        base = level.removesuffix("_TRANSITIVE")
        problems: list[str] = []
        for old in reversed(targets):
            old_schema = self._resolved_json(old.schema)
            pairs = []
            if base in ("BACKWARD", "FULL"):
                pairs.append(("BACKWARD", schema, old_schema))
            if base in ("FORWARD", "FULL"):
                pairs.append(("FORWARD", old_schema, schema))
            for direction, reader, writer in pairs:
                problems.extend(
                    f"version {old.version} ({direction}): {problem}"
                    for problem in check_resolution(reader, writer)
                )
        return problems

    # -- configuration and mode -------------------------------------------------------------------

    def compatibility(self, subject: str | None, *, default_to_global: bool = False) -> str:
        """The configured level of ``subject`` (None: global)."""
        with self._state_lock:
            level = self._state.compatibility(subject)
            if level is None and (subject is None or default_to_global):
                level = self._state.compatibility(None) or DEFAULT_COMPATIBILITY
        if level is None:
            raise not_found(
                f"Subject '{subject}' does not have subject-level compatibility configured", 40408
            )
        return level

    def set_compatibility(self, subject: str | None, level: Any) -> str:
        """Set the level of ``subject`` (None: global); returns it."""
        if not isinstance(level, str) or level.upper() not in COMPATIBILITY_LEVELS:
            raise unprocessable(
                "Invalid compatibility level. Valid values are none, backward, forward, full, "
                "backward_transitive, forward_transitive, and full_transitive",
                42203,
            )
        value = level.upper()
        self._write(lambda: ([(config_key(subject), {"compatibilityLevel": value})], None))
        return value

    def delete_compatibility(self, subject: str | None) -> str:
        """Remove the level of ``subject`` (None: reset global); returns the level it had."""

        def decide() -> tuple[list[Record], str]:
            current = self._state.compatibility(subject)
            if subject is not None and current is None and not self._state.versions(subject, deleted=True):
                raise not_found(f"Subject '{subject}' not found.", 40401)
            previous = current or self._state.compatibility(None) or DEFAULT_COMPATIBILITY
            return ([(config_key(subject), None)] if current is not None else []), previous

        return self._write(decide)

    def mode(self, subject: str | None, *, default_to_global: bool = False) -> str:
        """The mode of ``subject`` (None: global)."""
        with self._state_lock:
            mode = self._state.mode(subject)
            if mode is None and (subject is None or default_to_global):
                mode = self._state.mode(None) or "READWRITE"
        if mode is None:
            raise not_found(f"Subject '{subject}' does not have subject-level mode configured", 40409)
        return mode

    def set_mode(self, subject: str | None, mode: Any) -> str:
        """Set the mode of ``subject`` (None: global); returns it."""
        if not isinstance(mode, str) or mode.upper() not in MODES:
            raise unprocessable(f"Invalid mode {mode!r}. Valid values are {', '.join(MODES)}", 42204)
        value = mode.upper()
        self._write(lambda: ([(mode_key(subject), {"mode": value})], None))
        return value

    def delete_mode(self, subject: str) -> str:
        """Remove the mode of ``subject``; returns the mode it had."""

        def decide() -> tuple[list[Record], str]:
            current = self._state.mode(subject)
            if current is None:
                raise not_found(f"Subject '{subject}' does not have subject-level mode configured", 40409)
            return [(mode_key(subject), None)], current

        return self._write(decide)

    # -- internals ----------------------------------------------------------------------------------

    def _write(self, decide: Callable[[], tuple[list[Record], T]]) -> T:
        """Decide against a caught-up state and commit; decide again while another instance got in first."""
        with self._write_lock:
            deadline = time.monotonic() + WRITE_DEADLINE_S
            attempt = 0
            while True:
                try:
                    # begin() first: once this instance is the writer, nobody else commits unseen, so
                    # the state sync() catches up to is the one the commit lands on.
                    self._log.begin()
                    self._log.sync()
                    with self._state_lock:
                        records, result = decide()
                    if records:
                        self._log.commit(records)
                    return result
                except FencedError as exc:
                    attempt += 1
                    log.info("registry.write.fenced", attempt=attempt, reason=str(exc))
                    if time.monotonic() > deadline:
                        raise RegistryError(
                            "the registry's storage is contended by other instances; retry", 500, 50001
                        ) from exc
                    # A random pause so that instances fencing each other stop doing it in lockstep.
                    pause = min(FENCE_BACKOFF_S * 2**attempt, FENCE_BACKOFF_MAX_S)
                    time.sleep(random.uniform(0, pause))  # noqa: S311 - jitter, not cryptography

    def _versions(self, subject: str, *, deleted: bool) -> list[SchemaVersion]:
        entries = self._state.versions(subject, deleted=deleted)
        if not entries:
            raise not_found(f"Subject '{subject}' not found.", 40401)
        return entries

    @staticmethod
    def _pick(
        subject: str, entries: list[SchemaVersion], number: int | None, *, deleted: bool
    ) -> SchemaVersion:
        if number is None:
            live = [e for e in entries if deleted or not e.deleted]
            if not live:
                raise not_found(f"Subject '{subject}' not found.", 40401)
            return live[-1]
        for entry in entries:
            if entry.version == number and (deleted or not entry.deleted):
                return entry
        raise not_found(f"Version {number} not found.", 40402)

    def _refuse_read_only(self, subject: str) -> None:
        if self._state.effective_mode(subject).startswith("READONLY"):
            raise unprocessable(f"Subject {subject} is in read-only mode", 42205)

    def _refuse_referenced(self, entries: list[SchemaVersion]) -> None:
        for entry in entries:
            users = self._state.referenced_by(entry.subject, entry.version)
            if users:
                raise unprocessable(
                    f"One or more references exist to the schema {{subject={entry.subject}, "
                    f"version={entry.version}}}: ids {users}",
                    42206,
                )

    def _assign_id(self, stored: StoredSchema, wanted: int | None) -> int:
        existing = self._state.id_of(stored)
        if wanted is None:
            return existing if existing is not None else self._state.id_high + 1
        other = self._state.schema(wanted)
        if other is not None and other.identity != stored.identity:
            raise unprocessable(f"Schema id {wanted} is already used by another schema", 42207)
        return wanted

    def _parse(self, body: Any) -> tuple[StoredSchema, Any]:
        """The schema of a request body, validated, canonical, with its references resolved."""
        if not isinstance(body, Mapping):
            raise unprocessable("request body must be a JSON object with a 'schema' string", 422)
        schema_type = body.get("schemaType") or "AVRO"
        if schema_type not in SCHEMA_TYPES:
            raise unprocessable(f"Unsupported schema type {schema_type!r}; this registry stores AVRO", 422)
        raw_references = body.get("references") or []
        if not isinstance(raw_references, list):
            raise unprocessable("Invalid schema: 'references' must be a list of references", 42201)
        references = tuple(self._reference(r) for r in raw_references)
        referenced = [
            self._resolved_json(self._state.subjects[r.subject][r.version].schema) for r in references
        ]
        try:
            parsed = parse_avro(body.get("schema"), referenced)
        except InvalidSchemaError as exc:
            raise unprocessable(str(exc), 42201) from exc
        stored = StoredSchema(parsed.canonical, "AVRO", references)
        return stored, inline_references(parsed.schema, referenced)

    def _reference(self, raw: Any) -> Reference:
        version = raw.get("version") if isinstance(raw, Mapping) else None
        if (
            not isinstance(raw, Mapping)
            or not isinstance(raw.get("name"), str)
            or not isinstance(raw.get("subject"), str)
            or not isinstance(version, int)
            or isinstance(version, bool)
            or not 1 <= version <= MAX_VERSION
        ):
            raise unprocessable(
                f"Invalid schema: a reference is an object with a 'name', a 'subject' and a 'version' "
                f"between 1 and 2^31-1, not {str(raw)[:200]}",
                42201,
            )
        reference = Reference(raw["name"], raw["subject"], version)
        entry = self._state.subjects.get(reference.subject, {}).get(reference.version)
        if entry is None or entry.deleted:
            raise unprocessable(
                f"Invalid schema: reference {reference.name!r} names {reference.subject} "
                f"version {reference.version}, which does not exist",
                42201,
            )
        return reference

    def _resolved_json(self, stored: StoredSchema) -> Any:
        """The JSON form of a stored schema with the named types of its references inlined."""
        referenced = [
            self._resolved_json(self._state.subjects[r.subject][r.version].schema) for r in stored.references
        ]
        return inline_references(json.loads(stored.text), referenced)


def parse_int(text: str) -> int | None:
    """``text`` as an int in [0, 2^31-1] when it is ASCII digits only (not ``²``, not 5,000 digits)."""
    if not (text.isascii() and text.isdigit()) or len(text) > len(str(MAX_VERSION)):
        return None
    number = int(text)
    return number if number <= MAX_VERSION else None


def parse_version(raw: str | int | None) -> int | None:
    """A version path segment: an int in [1, 2^31-1], or None for ``latest``/``-1``; else 42202."""
    text = str(raw)
    if text in ("latest", "-1"):
        return None
    number = parse_int(text)
    if number is not None and number >= 1:
        return number
    raise unprocessable(
        f"The specified version '{text}' is not a valid version id. Allowed values are between "
        '[1, 2^31-1] and the string "latest"',
        42202,
    )


def _import_ids(body: Mapping[str, Any], mode: str) -> tuple[int | None, int | None]:
    """The id and version a registration in IMPORT mode asks for."""
    wanted_id, wanted_version = body.get("id"), body.get("version")
    if wanted_id is None and wanted_version is None:
        return None, None
    if mode != "IMPORT":
        raise unprocessable("A schema id or version may only be given in IMPORT mode", 42205)
    try:
        return (
            None if wanted_id is None else int(wanted_id),
            None if wanted_version is None else int(wanted_version),
        )
    except (TypeError, ValueError) as exc:
        raise unprocessable("id and version must be integers", 42202) from exc
