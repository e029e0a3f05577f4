"""The registry's storage in memory: :class:`MemoryTopic`, shared by :class:`MemoryRegistryLog` instances.

It keeps the semantics of the Kafka log that the service relies on (see :mod:`schemas.registry.log`):
records are stored as JSON bytes under increasing offsets and reach every following instance in commit
order; a new instance replays what is stored; :meth:`MemoryTopic.compact` keeps only each key's latest
record, offsets unchanged, as Kafka's log cleaner does; and a topic-wide writer epoch stands in for the
transactional id, so a commit by an instance that another one has fenced (by beginning after it) writes
nothing and raises the same :class:`~schemas.registry.log.FencedError`.

Following is immediate: a commit applies its records to every instance on the topic before it returns.
That is the Kafka log's "eventually" made "at once", which every caller of the port already accepts.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Sequence

from bus.errors import RegistryError
from schemas.registry.log import SYNC_TIMEOUT_S, Apply, FencedError, apply_stored
from schemas.registry.state import Record, encode_json

StoredRecord = tuple[int, bytes, bytes | None]


class MemoryTopic:
    """One compacted, single-partition topic in memory: records by offset and the current writer's epoch."""

    def __init__(self, name: str = "_schemas") -> None:
        self.name = name
        self._lock = threading.Lock()
        self._records: list[StoredRecord] = []
        self._next_offset = 0
        self._epoch = 0
        self._followers: list[MemoryRegistryLog] = []

    def read(self, start: int) -> list[StoredRecord]:
        """The stored records from offset ``start`` on (compaction may have left gaps)."""
        with self._lock:
            index = bisect.bisect_left(self._records, start, key=lambda r: r[0])
            return self._records[index:]

    def fence(self) -> int:
        """A new writer epoch; every earlier one can no longer commit."""
        with self._lock:
            self._epoch += 1
            return self._epoch

    def append(self, epoch: int, records: Sequence[Record]) -> None:
        """Store ``records`` together, then apply them on every follower; FencedError if ``epoch`` is old."""
        encoded = [(encode_json(key) or b"null", encode_json(value)) for key, value in records]
        with self._lock:
            if epoch != self._epoch:
                raise FencedError(f"another instance began writing to {self.name} after this one")
            for key, value in encoded:
                self._records.append((self._next_offset, key, value))
                self._next_offset += 1
            followers = list(self._followers)
        # Outside the topic lock: a follower applies under its own lock only, so two committers never
        # wait for each other's followers.
        for follower in followers:
            follower.catch_up()

    def compact(self, *, drop_tombstones: bool = False) -> None:
        """Keep each key's latest record, in offset order; with ``drop_tombstones``, no tombstones."""
        with self._lock:
            latest = {key: offset for offset, key, _ in self._records}
            self._records = [
                (offset, key, value)
                for offset, key, value in self._records
                if latest[key] == offset and not (drop_tombstones and value is None)
            ]

    def follow(self, log: MemoryRegistryLog) -> None:
        """Apply future commits to ``log`` as well."""
        with self._lock:
            self._followers.append(log)

    def unfollow(self, log: MemoryRegistryLog) -> None:
        """Stop applying commits to ``log``."""
        with self._lock:
            if log in self._followers:
                self._followers.remove(log)


class MemoryRegistryLog:
    """One instance's view of a :class:`MemoryTopic`: follows it and appends to it."""

    def __init__(self, topic: MemoryTopic | None = None) -> None:
        self.topic = topic or MemoryTopic()
        self._lock = threading.Lock()
        self._apply: Apply | None = None
        self._next_offset = 0
        self._epoch: int | None = None

    def start(self, apply: Apply) -> None:
        """Replay the topic into ``apply`` and keep following it."""
        self._apply = apply
        self.topic.follow(self)
        self.catch_up()

    def close(self) -> None:
        """Stop following; this instance is no longer the writer."""
        self.topic.unfollow(self)
        with self._lock:
            self._apply = None
            self._epoch = None

    def sync(self, timeout_s: float = SYNC_TIMEOUT_S) -> None:
        """Apply every record committed before this call (there is nothing to wait for in memory)."""
        if self._apply is None:
            raise RegistryError("the registry is not started", 500, 50001)
        self.catch_up()

    def begin(self) -> None:
        """Take a new writer epoch unless this instance holds one (a stale one is found out at commit)."""
        if self._epoch is None:
            self._epoch = self.topic.fence()

    def commit(self, records: Sequence[Record]) -> None:
        """Append ``records`` atomically and apply them; FencedError if another instance began since."""
        if self._epoch is None:
            raise RegistryError("begin() before commit()", 500, 50001)
        try:
            self.topic.append(self._epoch, records)
        except FencedError:
            self._epoch = None
            raise
        self.catch_up()

    def catch_up(self) -> None:
        """Apply the records this instance has not applied yet, in offset order."""
        with self._lock:
            apply = self._apply
            if apply is None:
                return
            for offset, key, value in self.topic.read(self._next_offset):
                apply_stored(apply, key, value, {"topic": self.topic.name, "offset": offset})
                self._next_offset = offset + 1
