"""The projection runtime: consume, decode, apply, and record positions and event ids in one transaction.

Exactly once into the read model, end to end:

* a batch's row changes, its positions per ``(topic, partition)`` and the ids (CloudEvents ``ce_id``)
  of the events it applied commit in ONE store transaction;
* the runner resumes from the stored positions, not from Kafka's committed offsets (those are
  committed after the database commit, only so that standard tools show the group's lag);
* a record at or below a stored position is skipped, and so is an event whose id the adapter already
  applied, wherever the copy comes from (an outbox relay shipping a row again, a re-publish, a replay);
* a batch is decided in memory from one read snapshot (positions, applied ids, rows) and then
  written in a short write transaction that first checks the adapter's generation: when another
  writer committed in between (another process of the group during a rebalance, a replay, a
  rebuild's swap), nothing is written and the batch is decided again on what is stored now. So the
  store's writer lock (SQLite has one writer at a time) is held only for the writes, and adapters in
  other processes project their batches meanwhile;
* the rows a batch read and wrote stay in memory for the next batch (:class:`~consumers.readmodel.RowCache`)
  as long as the store's generation of the adapter shows that only this runner wrote them: every
  writer (a runner, ``govbus dlq replay``, the swap of a rebuild) advances it in its transaction;
* when the stored positions moved under the runner (a rebuild swapped its tables in, or another
  process of the group applied a batch during a rebalance), it seeks to them and drops its batch.

Bad input never blocks a partition and is never lost: a record that cannot be decoded (not wire
format, unknown schema id, missing CloudEvents headers) or that the read model's rules refuse
(:class:`~bus.errors.ProjectionError`) goes to ``{adapter}.dlq`` with its cause, and the batch commits
only once every dead letter was acknowledged. Any other exception is a bug in projection code: the
batch is rolled back, the event's coordinates are logged and the runner raises, so the adapter stops
loudly instead of emptying a read model into its DLQ.

A runner that cannot start says so instead of retrying forever: when the cluster does not answer
within ``connect_timeout_s`` it raises KafkaUnavailableError, and when one of its topics (or its DLQ)
does not exist it raises ConfigurationError naming them. Once running, it rides out broker outages.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import structlog
from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    IsolationLevel,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, OffsetSpec  # type: ignore[attr-defined]

from bus.errors import ConfigurationError, ProjectionError, SchemaNotFoundError, SerializationError
from bus.kafka_config import KafkaConnection, missing_topics
from consumers.decoder import EventDecoder
from consumers.dlq import DeadLetters
from consumers.events import DecodedEvent
from consumers.readmodel import ReadModel, RowCache, WorkingSet
from consumers.stores import Store
from consumers.stores.base import StoreError, shadow_adapter

log = structlog.get_logger(__name__)

CONNECT_TIMEOUT_S = 10.0
UNDECODABLE = (SerializationError, SchemaNotFoundError)
"""Bad input found while decoding; with :class:`ProjectionError` from a model, what goes to the DLQ."""
TRANSIENT_RETRIES = 3
CONFLICT_RETRIES = 20
"""How often a batch is decided again when another writer of the adapter committed in between."""
POLL_S = 0.2
SESSION_TIMEOUT_MS = 10_000
"""How long the group waits for a silent member: a crashed consumer's partitions pass on after it.

librdkafka's default (45 s) would stall a killed consumer's partitions, and its restart, that long;
heartbeats come from librdkafka's own thread, so a long batch does not count as silence."""

Place = tuple[str, int]


@dataclass
class RunStats:
    """Counters a runner exposes for progress and tests."""

    applied: int = 0
    skipped: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    batches: int = 0
    positions: dict[Place, int] = field(default_factory=dict)
    records: dict[Place, int] = field(default_factory=dict)
    """Records handed to this runner's committed batches, per partition, whatever became of them."""
    committed_at: list[tuple[DecodedEvent, float]] = field(default_factory=list)
    """(event, wall-clock commit time) of the last batch, for latency measurements."""


def group_id(adapter: str, store: Store, topic_prefix: str = "") -> str:
    """The consumer group of ``adapter`` writing into ``store``: the topic prefix and the store are in it.

    Two stores of one adapter (a mistyped read-model URL, a second environment) never share a group,
    so they never split the partitions between them and leave both stores incomplete.
    """
    digest = hashlib.sha256(store.identity.encode()).hexdigest()[:10]
    return f"govbus.{topic_prefix}{adapter}.{digest}"


class _ConflictError(Exception):
    """Another writer of the adapter committed between a batch's decision and its write."""


@dataclass
class _Outcome:
    """What one batch did, counted before it commits."""

    highest: dict[Place, int] = field(default_factory=dict)
    reseek: dict[Place, int] = field(default_factory=dict)
    applied: list[DecodedEvent] = field(default_factory=list)
    dead_letters: list[tuple[Message, Exception | None]] = field(default_factory=list)
    """Records that go to the DLQ (undecodable, or refused by the model), with the cause."""
    skipped: int = 0
    duplicates: int = 0
    records: dict[Place, int] = field(default_factory=dict)
    """Records of the batch per partition."""


class ReadModelRunner:
    """Keeps one read model up to date from Kafka (``shadow=True``: rebuilds it beside the live one)."""

    def __init__(
        self,
        connection: KafkaConnection,
        model: ReadModel,
        store: Store,
        decoder: EventDecoder,
        *,
        topic_prefix: str = "",
        batch_size: int = 2000,
        connect_timeout_s: float = CONNECT_TIMEOUT_S,
        shadow: bool = False,
    ) -> None:
        self.model = model
        self.name = model.name
        self._connection = connection
        self._store = store
        self._decoder = decoder
        self._batch_size = batch_size
        self._connect_timeout_s = connect_timeout_s
        self._shadow = shadow
        self._adapter = shadow_adapter(model.name) if shadow else model.name
        self._topics = [topic_prefix + topic for topic in model.topics]
        self._group = group_id(self._adapter, store, topic_prefix)
        self._dead_letters = DeadLetters(connection, model.name, topic_prefix)
        self._expected: dict[Place, int | None] = {}
        self._member = False
        """Whether the group has given this runner its share of the partitions (possibly none)."""
        self._known = RowCache()
        self._admin: AdminClient | None = None
        """Asks the partition leaders where the logs end, once the cached watermarks say caught up."""
        self._generation = -1
        """The store generation of this runner's last committed batch (-1: none, or unknown)."""
        self.stats = RunStats()
        if not shadow:
            store.migrate(model.tables)

    @property
    def topics(self) -> list[str]:
        """The topics this runner reads, with the topic prefix."""
        return list(self._topics)

    def run(
        self,
        stop: threading.Event,
        on_batch: Callable[[RunStats], None] | None = None,
        *,
        until_caught_up: bool = False,
    ) -> RunStats:
        """Consume until ``stop`` is set (with ``until_caught_up``: until every partition's lag is zero)."""
        consumer = Consumer(
            self._connection.consumer(group_id=self._group, **{"session.timeout.ms": SESSION_TIMEOUT_MS})
        )
        try:
            self._require_topics(consumer)
        except BaseException:
            consumer.close()
            raise
        consumer.subscribe(self._topics, on_assign=self._on_assign, on_revoke=self._on_revoke)
        if until_caught_up:
            self._start_admin()
        log.info("projection.started", adapter=self._adapter, topics=self._topics, group=self._group)
        try:
            while not stop.is_set():
                messages = self._next_batch(consumer)
                records = [m for m in messages if m.error() is None]
                for message in messages:
                    error = message.error()
                    if error is not None and error.code() != KafkaError._PARTITION_EOF:
                        log.warning("projection.consume.error", adapter=self._adapter, error=str(error))
                if records:
                    self._batch(consumer, records)
                    if on_batch is not None:
                        on_batch(self.stats)
                # Asked after a batch too (cheap while the cached watermarks say "behind"): a runner
                # that just read the last record stops now, not after a poll that waits for nothing.
                if until_caught_up and self._caught_up(consumer):
                    break
        finally:
            consumer.close()
            log.info("projection.stopped", adapter=self._adapter, applied=self.stats.applied)
        return self.stats

    def _next_batch(self, consumer: Consumer) -> list[Message]:
        """Wait up to :data:`POLL_S` for one record, then take the records already fetched, up to a batch.

        Waiting for a full batch would hold a record until the batch fills or the wait ends (latency at a
        low rate); taking what is there keeps batches as large as the backlog under load.
        """
        first = consumer.poll(POLL_S)
        if first is None:
            return []
        return [first, *consumer.consume(num_messages=self._batch_size - 1, timeout=0)]

    # -- assignment -------------------------------------------------------------------------------

    def _require_topics(self, consumer: Consumer) -> None:
        """The connect deadline: the cluster answers within it and has every topic this runner needs."""
        needed = [*self._topics, *([] if self._shadow else [self._dead_letters.topic])]
        missing = missing_topics(
            consumer, needed, self._connection.bootstrap_servers, self._connect_timeout_s
        )
        if missing:
            raise ConfigurationError(
                f"the {self.name} consumer needs topics that do not exist on Kafka at "
                f"{self._connection.bootstrap_servers}: {', '.join(missing)}; "
                "create the catalog's topics with `govbus topics create`"
            )

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._member = True
        stored = self._store.positions(self._adapter)
        for tp in partitions:
            last = stored.get((tp.topic, tp.partition))
            tp.offset = OFFSET_BEGINNING if last is None else last + 1
            self._expected[(tp.topic, tp.partition)] = None if last is None else last + 1
        consumer.assign(partitions)
        log.info(
            "projection.assigned",
            adapter=self._adapter,
            partitions=[f"{tp.topic}[{tp.partition}]@{tp.offset}" for tp in partitions],
        )

    def _on_revoke(self, _: Consumer, partitions: list[TopicPartition]) -> None:
        self._member = False
        # A batch is never open here (callbacks run inside consume()); forget what was expected so a
        # later assignment starts from the stored positions again.
        for tp in partitions:
            self._expected.pop((tp.topic, tp.partition), None)

    def _caught_up(self, consumer: Consumer) -> bool:
        assignment = consumer.assignment()
        if not assignment:
            # Caught up only once the group gave this member its (empty) share; before that, and between
            # a revocation and the next assignment, it is waiting for partitions, however long a busy
            # broker takes to form the group.
            return self._member

        positions: dict[Place, int] = {}
        for tp in assignment:
            place = (tp.topic, tp.partition)
            # The watermarks of the last fetch answer "not yet" cheaply; asking the broker through this
            # consumer would wait behind its pending fetch's long poll (up to fetch.wait.max.ms).
            low, high = consumer.get_watermark_offsets(tp, cached=True)
            position = consumer.position([TopicPartition(tp.topic, tp.partition)])[0].offset
            if position < 0:  # nothing consumed since the assignment: it starts at the stored position
                expected = self._expected.get(place)
                position = expected if expected is not None else low if low >= 0 else OFFSET_BEGINNING
            if position >= 0 and position < high:
                return False
            positions[place] = position
        return self._at_log_ends(positions)

    def _start_admin(self) -> None:
        """Create the admin client that confirms the log ends, and have it learn the topics' leaders now.

        Asked for the first time at the end of a pass, a new admin client first looks the leaders up,
        and that took 1 to 3 s now and then on a busy machine; the answer to this early request is not
        waited for.
        """
        self._admin_client().list_offsets(
            {TopicPartition(topic, 0): OffsetSpec.latest() for topic in self._topics},  # type: ignore[no-untyped-call]
            request_timeout=self._connect_timeout_s,
        )

    def _at_log_ends(self, positions: dict[Place, int]) -> bool:
        """Whether every position is at its partition's end, as the broker answers now.

        The cached watermarks alone are not proof: they are those of each partition's last fetch, so the
        runner confirms with the partition leaders (a ListOffsets of the last stable offsets, the end a
        ``read_committed`` consumer reaches, on an admin connection that no fetch holds up) before it
        stops. A position still unknown (nothing consumed yet, no stored position) counts as the
        partition's start.
        """
        wanted = {TopicPartition(t, p): OffsetSpec.latest() for t, p in positions}  # type: ignore[no-untyped-call]
        try:
            if any(offset < 0 for offset in positions.values()):
                starts = self._list_offsets(
                    {TopicPartition(t, p): OffsetSpec.earliest() for t, p in positions}  # type: ignore[no-untyped-call]
                )
                positions = {place: starts[place] if o < 0 else o for place, o in positions.items()}
            ends = self._list_offsets(wanted)
        except KafkaException as exc:  # the broker is away: not known to be caught up; poll on
            log.warning("projection.log_ends.unknown", adapter=self._adapter, error=str(exc))
            return False
        behind = {place: (o, ends[place]) for place, o in positions.items() if o < ends[place]}
        if behind:
            log.debug("projection.behind", adapter=self._adapter, partitions=str(behind))
        return not behind

    def _admin_client(self) -> AdminClient:
        if self._admin is None:
            self._admin = AdminClient(self._connection.admin())
        return self._admin

    def _list_offsets(self, specs: dict[TopicPartition, OffsetSpec]) -> dict[Place, int]:
        futures = self._admin_client().list_offsets(
            specs, isolation_level=IsolationLevel.READ_COMMITTED, request_timeout=self._connect_timeout_s
        )
        return {(tp.topic, tp.partition): future.result().offset for tp, future in futures.items()}

    # -- one batch --------------------------------------------------------------------------------

    def _batch(self, consumer: Consumer, records: Sequence[Message]) -> None:
        for attempt in range(TRANSIENT_RETRIES + 1):
            try:
                commits, reseek = self._apply_batch(records)
                break
            except StoreError as exc:
                if not exc.transient or attempt == TRANSIENT_RETRIES:
                    raise
                log.warning("projection.batch.retry", adapter=self._adapter, reason=str(exc))
                time.sleep(0.2 * (attempt + 1))
        for (topic, partition), offset in reseek.items():
            log.info(
                "projection.reseek", adapter=self._adapter, topic=topic, partition=partition, offset=offset
            )
            consumer.seek(TopicPartition(topic, partition, offset))
        if commits and not self._shadow:
            consumer.commit(offsets=commits, asynchronous=True)

    def _apply_batch(self, records: Sequence[Message]) -> tuple[list[TopicPartition], dict[Place, int]]:
        decoded: list[tuple[Message, DecodedEvent | None, Exception | None]] = []
        for message in records:
            try:
                decoded.append((message, self._decoder.decode(message), None))
            except UNDECODABLE as exc:
                decoded.append((message, None, exc))
        for _ in range(CONFLICT_RETRIES):
            outcome, rows, generation = self._decide(records, decoded)
            if self._commit(outcome, rows, generation):
                break
            log.info("projection.batch.conflict", adapter=self._adapter)
        else:
            raise StoreError(
                f"the {self._adapter} rows kept changing under this batch ({CONFLICT_RETRIES} tries)",
                transient=True,
            )
        self._count(outcome)
        return [TopicPartition(t, p, o + 1) for (t, p), o in outcome.highest.items()], outcome.reseek

    def _decide(
        self, records: Sequence[Message], decoded: list[tuple[Message, DecodedEvent | None, Exception | None]]
    ) -> tuple[_Outcome, WorkingSet, int]:
        """Apply the batch in memory, reading from one snapshot; nothing is written yet."""
        store = self._store
        outcome = _Outcome()
        with store.snapshot() as view:
            generation = store.generation(view, self._adapter)
            if generation != self._generation:  # someone else wrote the rows since our last batch
                self._known.clear()
            self._generation = -1  # until this batch commits, the kept rows include its uncommitted ones
            stored = store.positions(self._adapter, view)
            outcome.reseek = self._moved_positions(stored, records)
            fresh: list[tuple[Message, Place, int, DecodedEvent | None, Exception | None]] = []
            counted = outcome.records
            for message, event, error in decoded:
                place = (str(message.topic()), int(message.partition() or 0))
                offset = int(message.offset() or 0)
                counted[place] = counted.get(place, 0) + 1
                if place in outcome.reseek or offset <= stored.get(place, -1):
                    outcome.skipped += 1
                else:
                    fresh.append((message, place, offset, event, error))
            applied = store.applied_events(view, self._adapter, (e.id for *_, e, _ in fresh if e is not None))
            used: set[str] = set()
            rows = WorkingSet(store.rows(view, shadow=self._shadow), self.model.tables, self._known)
            rows.prefetch(hint for *_, e, _ in fresh if e is not None for hint in self.model.prefetch(e))
            for message, place, offset, event, error in fresh:
                outcome.highest[place] = offset
                if event is None:
                    outcome.dead_letters.append((message, error))
                elif event.id in applied or event.id in used:  # a second copy in this batch too
                    outcome.duplicates += 1
                else:
                    used.add(event.id)
                    self._apply(rows, message, event, outcome)
        return outcome, rows, generation

    def _commit(self, outcome: _Outcome, rows: WorkingSet, generation: int) -> bool:
        """Write what :meth:`_decide` decided, unless another writer changed the adapter's rows since.

        Returns False (nothing written, kept rows forgotten) when the generation moved: the batch is
        decided again on what is stored now. Only the write takes the store's writer lock, so the
        adapters of other processes decide their batches meanwhile.
        """
        store = self._store
        ids = [event.id for event in outcome.applied]
        try:
            with store.transaction() as tx:
                claimed = store.claim_events(tx, self._adapter, ids)
                current = store.advance_generation(tx, self._adapter)
                if current != generation + 1 or len(claimed) != len(ids):
                    raise _ConflictError
                store.write(tx, rows.changes(), shadow=self._shadow)
                for message, cause in outcome.dead_letters:
                    self._dead_letter(message, cause)
                if outcome.dead_letters and not self._shadow:
                    self._dead_letters.flush()
                store.record_positions(tx, self._adapter, outcome.highest)
        except _ConflictError:
            self._known.clear()
            return False
        self._generation = current
        self._known.trim()
        return True

    def _moved_positions(self, stored: dict[Place, int], records: Sequence[Message]) -> dict[Place, int]:
        """Partitions whose stored position is not where this runner left it: seek there, drop the batch."""
        reseek: dict[Place, int] = {}
        for place in {(str(m.topic()), int(m.partition() or 0)) for m in records}:
            expected, last = self._expected.get(place), stored.get(place)
            if expected is not None and (last is None or last + 1 != expected):
                reseek[place] = OFFSET_BEGINNING if last is None else last + 1
        return reseek

    def _apply(self, rows: WorkingSet, message: Message, event: DecodedEvent, outcome: _Outcome) -> None:
        rows.begin(event)
        try:
            self.model.apply(rows, event)
        except ProjectionError as exc:
            rows.rollback()
            outcome.dead_letters.append((message, exc))
        except Exception:
            log.error(
                "projection.bug",
                adapter=self._adapter,
                event_type=event.type,
                event_id=event.id,
                topic=message.topic(),
                partition=message.partition(),
                offset=message.offset(),
                exc_info=True,
            )
            raise
        else:
            rows.commit()
            outcome.applied.append(event)

    def _count(self, outcome: _Outcome) -> None:
        for place, offset in outcome.highest.items():
            self._expected[place] = offset + 1
        for place, offset in outcome.reseek.items():
            self._expected[place] = None if offset == OFFSET_BEGINNING else offset
        stats = self.stats
        stats.applied += len(outcome.applied)
        stats.skipped += outcome.skipped
        stats.duplicates += outcome.duplicates
        stats.dead_lettered += len(outcome.dead_letters)
        stats.batches += 1
        stats.positions.update(outcome.highest)
        for place, count in outcome.records.items():
            stats.records[place] = stats.records.get(place, 0) + count
        now = time.time()
        stats.committed_at = [(event, now) for event in outcome.applied]

    def _dead_letter(self, message: Message, cause: Exception | None) -> None:
        log.warning(
            "projection.dead_letter",
            adapter=self._adapter,
            topic=message.topic(),
            partition=message.partition(),
            offset=message.offset(),
            error=type(cause).__name__,
            reason=str(cause),
        )
        if not self._shadow:  # a rebuild meets the same bad records the live adapter already set aside
            self._dead_letters.send(message, cause or ProjectionError("unknown cause"))
