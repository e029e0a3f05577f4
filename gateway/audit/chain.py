"""The hash chain of audit records: the stored form of an entry, its hash, and checking a chain.

Each gateway instance (a *writer*, named by its writer id) keeps one chain. A stored record is a JSON
object with the entry's members (:class:`~gateway.audit.entry.AuditEntry`) plus:

- ``time``: when the request was audited, UTC ISO-8601 with milliseconds (``2026-12-02T04:30:00.123Z``);
- ``writer``: the writer id (also the record's Kafka key);
- ``seq``: 1, 2, 3... per writer;
- ``prev``: the ``hash`` of the writer's previous record, :data:`GENESIS` (64 zeros) for ``seq`` 1;
- ``hash``: SHA-256 (hex) of the canonical JSON of every other member.

Canonical JSON is the object with its keys sorted, no whitespace, UTF-8 (orjson with ``OPT_SORT_KEYS``),
so anyone can recompute a hash from the stored record alone. Changing any member breaks that record's
hash; removing or reordering records breaks ``seq``; re-hashing a changed record breaks the next
record's ``prev``. What a chain cannot show on its own: records cut off at its end, or a writer's whole
chain removed; compare a writer's last ``seq`` and ``hash`` (``govbus audit verify`` prints them) with a
copy kept elsewhere to catch those.

:class:`ChainVerifier` is fed records in log order and stops at the first broken link
(:class:`BrokenLink`: writer, seq, partition/offset and why).
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from gateway.audit.entry import AuditEntry

GENESIS = "0" * 64
"""The ``prev`` of a writer's first record."""
ENTRY_MEMBERS = tuple(AuditEntry.__dataclass_fields__)
CHAIN_MEMBERS = ("time", "writer", "seq", "prev")
HASH_LENGTH = 64


def audit_time(moment: datetime | None = None) -> str:
    """``moment`` (now when None) as UTC ISO-8601 with milliseconds and a ``Z``."""
    if moment is None:
        now = time.time()
        second = int(now)
        prefix = _SECOND.get(second)
        if prefix is None:
            _SECOND.clear()
            prefix = _SECOND[second] = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S.")
        return f"{prefix}{int((now - second) * 1000):03d}Z"
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


_SECOND: dict[int, str] = {}
"""The text of the current second (audit times are asked thousands of times a second)."""


def canonical(members: dict[str, Any]) -> bytes:
    """The canonical JSON of ``members``: keys sorted, no whitespace, UTF-8."""
    return orjson.dumps(members, option=orjson.OPT_SORT_KEYS)


def record_hash(record: dict[str, Any]) -> str:
    """SHA-256 (hex) of the canonical JSON of every member of ``record`` but ``hash``."""
    return hashlib.sha256(canonical({k: v for k, v in record.items() if k != "hash"})).hexdigest()


def chained(entry: AuditEntry, time: str, writer: str, seq: int, prev: str) -> dict[str, Any]:
    """The stored record of ``entry``: record ``seq`` of ``writer``'s chain, after the one hashed ``prev``."""
    record: dict[str, Any] = {name: getattr(entry, name) for name in ENTRY_MEMBERS}
    for name in ("keys", "subjects", "fields"):
        record[name] = list(record[name])
    record.update(time=time, writer=writer, seq=seq, prev=prev)
    record["hash"] = record_hash(record)
    return record


def link(entry: AuditEntry, time: str, writer: str, seq: int, prev: str) -> tuple[bytes, str]:
    """The stored JSON of :func:`chained` ``(entry, ...)`` and its hash, serialized once: the canonical
    JSON of the members with ``hash`` added at its end (a stored record's member order is free; the
    hash is always recomputed from the canonical form)."""
    members = dict(entry.__dict__)  # tuples serialize as the lists chained() makes
    members.update(time=time, writer=writer, seq=seq, prev=prev)
    body = canonical(members)
    digest = hashlib.sha256(body).hexdigest()
    return b'%s,"hash":"%s"}' % (body[:-1], digest.encode()), digest


@dataclass(frozen=True)
class BrokenLink:
    """The first record that does not continue its writer's chain, and why."""

    reason: str
    """``hash mismatch``, ``prev mismatch``, ``seq gap``, ``unparsable record`` or ``key mismatch``."""
    detail: str
    partition: int
    offset: int
    writer: str | None = None
    seq: int | None = None

    def describe(self) -> str:
        """One line naming the record and the reason."""
        who = f"writer {self.writer!r} seq {self.seq}" if self.writer is not None else "a record"
        return f"{who} at partition {self.partition} offset {self.offset}: {self.reason}: {self.detail}"


@dataclass
class WriterState:
    """What a verifier knows of one writer's chain so far."""

    records: int = 0
    seq: int = 0
    hash: str = GENESIS
    partition: int = -1
    offset: int = -1


@dataclass
class ChainVerifier:
    """Checks records, fed in log order, against every writer's chain; keeps the first broken link."""

    writers: dict[str, WriterState] = field(default_factory=dict)
    records: int = 0
    broken: BrokenLink | None = None

    def feed(self, key: bytes | None, value: bytes | None, partition: int, offset: int) -> BrokenLink | None:
        """Check one stored Kafka record (one audit record, or a block of them); the broken link when it
        breaks a chain (None when it fits).

        After the first broken link, later records are not checked (the same link is returned).
        """
        if self.broken is not None:
            return self.broken
        try:
            records = parse_records(value)
        except ValueError as exc:
            self.records += 1
            self.broken = BrokenLink("unparsable record", str(exc), partition, offset)
            return self.broken
        for record in records:
            self.records += 1
            found = check_link(self.writers, key, record, partition, offset)
            if found is not None:
                self.broken = found
                return found
        return None


def check_link(
    writers: dict[str, WriterState], key: bytes | None, record: dict[str, Any], partition: int, offset: int
) -> BrokenLink | None:
    """Check one parsed record against ``writers`` (updated when it fits); the broken link otherwise."""
    writer, seq = record["writer"], record["seq"]
    if key is not None and key != writer.encode():
        return BrokenLink(
            "key mismatch", f"Kafka key {key!r} is not the writer id", partition, offset, writer, seq
        )
    recomputed = record_hash(record)
    if recomputed != record["hash"]:
        return BrokenLink(
            "hash mismatch",
            f"stored {record['hash']}, recomputed {recomputed} (a member was changed)",
            partition,
            offset,
            writer,
            seq,
        )
    state = writers.setdefault(writer, WriterState())
    if seq != state.seq + 1:
        where = f" (previous at partition {state.partition} offset {state.offset})" if state.seq else ""
        return BrokenLink(
            "seq gap",
            f"expected seq {state.seq + 1}, found {seq}{where} (a record was removed or moved)",
            partition,
            offset,
            writer,
            seq,
        )
    if record["prev"] != state.hash:
        return BrokenLink(
            "prev mismatch",
            f"prev is {record['prev']}, the previous record's hash is {state.hash}",
            partition,
            offset,
            writer,
            seq,
        )
    state.records += 1
    state.seq, state.hash, state.partition, state.offset = seq, record["hash"], partition, offset
    return None


def parse_records(value: bytes | None) -> list[dict[str, Any]]:
    """The audit records of one Kafka record: a JSON object (one record) or a non-empty JSON array of them
    (a block, as the writer groups the records of one moment); ValueError saying what is wrong."""
    if value is None:
        raise ValueError("the record has no value")
    try:
        document = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc}") from exc
    if isinstance(document, list):
        if not document:
            raise ValueError("an empty block")
        return [_checked(record) for record in document]
    return [_checked(document)]


def parse_record(value: bytes | None) -> dict[str, Any]:
    """A stored single record as a dict with the chain members checked for type; ValueError otherwise."""
    if value is None:
        raise ValueError("the record has no value")
    try:
        record = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc}") from exc
    return _checked(record)


def _checked(record: Any) -> dict[str, Any]:
    if not isinstance(record, dict):
        raise ValueError("not a JSON object")
    missing = [name for name in (*ENTRY_MEMBERS, *CHAIN_MEMBERS, "hash") if name not in record]
    if missing:
        raise ValueError(f"missing members: {', '.join(missing)}")
    if not isinstance(record["writer"], str) or not record["writer"]:
        raise ValueError("writer is not a non-empty text")
    if not isinstance(record["seq"], int) or isinstance(record["seq"], bool) or record["seq"] < 1:
        raise ValueError("seq is not a positive integer")
    for name in ("prev", "hash"):
        text = record[name]
        if not isinstance(text, str) or len(text) != HASH_LENGTH or text.strip("0123456789abcdef"):
            raise ValueError(f"{name} is not 64 lowercase hex digits")
    return record
