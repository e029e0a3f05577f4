"""Consumer throughput and latency: the projection runtime into each store, next to a baseline of one run.

- ``sqlite`` and ``postgres``: every read-model adapter (:data:`consumers.adapters.ADAPTERS`) runs a
  :class:`~consumers.runtime.ReadModelRunner` into one fresh store, exactly once (positions and applied
  event ids in each batch's transaction), until every partition's lag is zero, as ``govbus consume
  --until-caught-up`` does: the adapters split by backlog over ``workers`` forked processes
  (:func:`bus.workers.balance`), a thread each within its process. The figure is the records the
  adapters consumed, summed over adapters (a topic two adapters read counts twice), divided by the
  wall time from the first fork to the last process's end, group join included. A pass fails unless
  every adapter's stored positions reached the end of its topics and every record of them reached
  the adapter.
- ``baseline``: the same records, split over the same processes, one plain consumer per adapter reading
  that adapter's topics, decoded by :class:`~consumers.decoder.EventDecoder` and upserted into one
  SQLite file as JSON keyed by topic and Kafka key with ``executemany``: no positions, no event ids, no
  working set, no projection. The cost floor of getting an event from Kafka into a database.
- ``e2e``: the benchmark's process publishes the residents' and benefits' events at a constant rate, each
  with its CloudEvents time set when it is published, while those two runners, in the worker processes,
  keep a SQLite store up to date; an event's latency is the wall time its batch committed
  (:attr:`RunStats.committed_at`) minus its ``ce_time`` (kept to the millisecond). A warm-up second comes
  first (group join, first fetches) and is not counted; the publisher waits for the store's positions to
  reach the end of the topics after each phase. Where Linux reports CPU pressure, the share of the window
  in which some ready task waited for a CPU is reported beside the latencies, so that a run on a crowded
  machine can be told from a slow one.

The benchmark publishes simulated events of every agency
(:func:`producers.simulators.simulation.simulated_events`) to topics under a fresh prefix, created with
their dead-letter topics, and deletes those topics at the end. Kafka and the registry are wired by the
caller (:class:`Wiring`), as the CLI does with ``govbus.bootstrap``.
"""

from __future__ import annotations

import functools
import itertools
import json
import math
import os
import signal
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition
from confluent_kafka.admin import AdminClient

from bus.errors import GovbusError
from bus.kafka_config import KafkaConnection
from bus.workers import Forked, balance, freeze_heap, run_forked
from consumers.adapters import build_read_model
from consumers.decoder import EventDecoder
from consumers.lag import AdapterLag, measure_lag
from consumers.runtime import Place, ReadModelRunner, RunStats
from consumers.stores import Store
from producers.publisher import Publisher
from producers.simulators.simulation import simulated_events, typed_events
from schemas.catalog import Catalog

SEED = 2026
BATCH = 2000
E2E_ADAPTERS = ("residents", "benefits")
CATCH_UP_TIMEOUT_S = 120.0
WARMUP_S = 1.0


@dataclass(frozen=True)
class Wiring:
    """What the benchmark needs from the composition root (``bench`` never imports ``govbus``)."""

    connection: KafkaConnection
    catalog: Catalog
    create_topics: Callable[[str], list[str]]
    """Create the bus's topics (catalog and dead letters) under a prefix; return their names."""
    publisher_for: Callable[[str, str], Publisher]
    """A publisher of an agency (second argument) under a topic prefix (first)."""
    runner_for: Callable[[str, str, Store], ReadModelRunner]
    """The runner of an adapter (second argument) under a topic prefix (first) writing into a store."""
    store_for: Callable[[str], Store]
    """The store of a read-model URL."""
    decoder: Callable[[], EventDecoder]
    forked: Callable[[], Wiring]
    """The same wiring with clients of its own, for a forked worker process (clients never cross a fork)."""


@dataclass(frozen=True)
class Pass:
    """Records consumed by each adapter in one pass, and how long each took."""

    records: dict[str, int]
    seconds: dict[str, float]
    wall_s: float
    partitions: dict[str, dict[Place, int]] = field(default_factory=dict)
    """Each adapter's records per partition."""

    @property
    def total(self) -> int:
        """Records consumed, summed over adapters."""
        return sum(self.records.values())

    @property
    def events_per_s(self) -> float:
        """Records consumed per second of wall time."""
        return self.total / self.wall_s

    def adapter_rate(self, adapter: str) -> float:
        """One adapter's records per second of its own run time."""
        return self.records[adapter] / self.seconds[adapter] if self.seconds[adapter] else 0.0


@dataclass
class Latency:
    """End-to-end latencies (ms) of the events of the measured window."""

    rate_per_s: float
    published: int
    samples: list[float] = field(default_factory=list)
    cpu_pressure: float | None = None
    """Share of the measured window in which some ready task waited for a CPU (Linux PSI), if known."""

    def percentile(self, fraction: float) -> float:
        """The ``fraction`` quantile (nearest rank)."""
        ordered = sorted(self.samples)
        return ordered[max(math.ceil(fraction * len(ordered)) - 1, 0)] if ordered else 0.0


@dataclass(frozen=True)
class Report:
    """Every figure of one run: a pass per store (and the baseline) per size, and the latency."""

    events: int
    passes: dict[int, dict[str, Pass]]
    latency: Latency

    @property
    def main(self) -> dict[str, Pass]:
        """The passes over ``events`` events, the baseline among them."""
        return self.passes[self.events]


class ConsumeBench:
    """Publishes the workloads and measures the passes, on one broker and one registry."""

    def __init__(self, wiring: Wiring, adapters: Sequence[str], workers: int = 1) -> None:
        self.wiring = wiring
        self.adapters = list(adapters)
        self.workers = max(1, workers)
        self.run_id = uuid.uuid4().hex[:8]
        self._topics: list[str] = []

    def measure(
        self,
        events: int,
        rebuild_sizes: Iterable[int],
        folder: Path,
        postgres_database: Callable[[str], str],
        rate: float,
        seconds: float,
        progress: Callable[[str], None],
    ) -> Report:
        """Each size published and consumed into a fresh SQLite file (in ``folder``) and a fresh PostgreSQL
        database (``postgres_database(name)`` creates one and returns its URL); the baseline over ``events``;
        then the latency on SQLite."""
        passes: dict[int, dict[str, Pass]] = {}
        for size in sorted({events, *rebuild_sizes}):
            prefix = self.prefix(f"n{size}")
            progress(f"publishing {size} simulated events of every agency")
            self.publish(prefix, size)
            passes[size] = {}
            groups = self.groups(prefix, f"sqlite:///{folder}/n{size}.sqlite")
            if size == events:
                progress(f"baseline: decode and upsert into SQLite, no tracking, in {len(groups)} processes")
                passes[size]["baseline"] = self.baseline(prefix, folder / f"baseline-{size}.sqlite", groups)
            for kind, url in (
                ("sqlite", f"sqlite:///{folder}/n{size}.sqlite"),
                ("postgres", postgres_database(f"bench_{size}")),
            ):
                progress(
                    f"{kind}: {len(self.adapters)} adapters in {len(groups)} processes, exactly once, "
                    "until caught up"
                )
                passes[size][kind] = self.project(prefix, url, groups)
        progress(f"latency: {' and '.join(E2E_ADAPTERS)} at {rate:g} events/s for {seconds:g}s")
        # The passes leave hundreds of megabytes (SQLite, PostgreSQL, Kafka's logs) for the kernel to
        # write back; written now, that is not measured as the latency of the next ten seconds.
        os.sync()
        latency = self.latency(self.prefix("e2e"), f"sqlite:///{folder}/e2e.sqlite", rate, seconds)
        return Report(events=events, passes=passes, latency=latency)

    # -- workloads ------------------------------------------------------------------------------

    def prefix(self, name: str) -> str:
        """A fresh topic prefix with the bus's topics created under it."""
        prefix = f"bench.{self.run_id}.{name}."
        self._topics.extend(self.wiring.create_topics(prefix))
        return prefix

    def publish(self, prefix: str, count: int) -> int:
        """Publish ``count`` simulated events of every agency once; return how many were published."""
        publishers: dict[str, Publisher] = {}
        published = 0
        try:
            for event in simulated_events("all", count, SEED):
                publisher = publishers.get(event.agency)
                if publisher is None:
                    publisher = publishers[event.agency] = self.wiring.publisher_for(prefix, event.agency)
                publisher.publish(event.type, event.data, event_id=event.id, time=event.time)
                published += 1
        finally:
            for publisher in publishers.values():
                publisher.close(timeout_s=120)
        return published

    # -- passes ---------------------------------------------------------------------------------

    def groups(self, prefix: str, empty_store_url: str) -> list[list[str]]:
        """The adapters split over the worker processes by backlog, as ``govbus consume`` splits them."""
        return balance({lag.adapter: lag.total for lag in self._lags(prefix, empty_store_url)}, self.workers)

    def _lags(self, prefix: str, url: str) -> list[AdapterLag]:
        """Each adapter's lag on the topics under ``prefix`` by the positions in the store at ``url``."""
        store = self.wiring.store_for(url)
        try:
            models = [build_read_model(name) for name in self.adapters]
            return measure_lag(self.wiring.connection, store, models, prefix)
        finally:
            store.close()

    def project(self, prefix: str, url: str, groups: list[list[str]]) -> Pass:
        """Every adapter into the store at ``url`` until caught up: a thread each, in the worker processes."""

        def group(adapters: list[str]) -> tuple[dict[str, dict[Place, int]], dict[str, float]]:
            wiring = self.wiring.forked()
            store = wiring.store_for(url)
            try:
                work: dict[str, Callable[[threading.Event], dict[Place, int]]] = {}
                for name in adapters:
                    work[name] = functools.partial(_run_counted, wiring.runner_for(prefix, name, store))
                freeze_heap()
                part = _threads(work)
            finally:
                store.close()
            return part.partitions, part.seconds

        result = _forked(groups, group)
        lags = self._lags(prefix, url)
        _require_caught_up(lags)
        self._require_every_record(lags, result)
        return result

    def _require_every_record(self, lags: list[AdapterLag], result: Pass) -> None:
        """Every record of every adapter's topics reached the adapter: a pass that missed one fails.

        The benchmark's publishers are not transactional, so a partition's offsets have no gaps and it
        holds as many records as its end offset. Where an adapter saw fewer, the partition is read
        again with a plain consumer, so the error tells a record missing from the topic from a record
        the runner never got.
        """
        short: list[str] = []
        for lag in lags:
            seen = result.partitions.get(lag.adapter, {})
            for p in lag.partitions:
                got = seen.get((p.topic, p.partition), 0)
                if got < p.end:
                    held = _count_records(self.wiring.connection, p.topic, p.partition)
                    short.append(
                        f"{lag.adapter} got {got} records of {p.topic}[{p.partition}], "
                        f"which ends at offset {p.end} and holds {held}"
                    )
        if short:
            raise GovbusError(f"a pass missed records: {'; '.join(short)}")

    def baseline(self, prefix: str, path: Path, groups: list[list[str]]) -> Pass:
        """Every adapter's records decoded and upserted into SQLite at ``path``, without tracking."""
        connection = sqlite3.connect(path, isolation_level=None)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
        topics = sorted({prefix + t for name in self.adapters for t in build_read_model(name).topics})
        for topic in topics:
            connection.execute(f'CREATE TABLE IF NOT EXISTS "{topic}" (key TEXT PRIMARY KEY, data TEXT)')
        connection.close()

        def group(adapters: list[str]) -> tuple[dict[str, dict[Place, int]], dict[str, float]]:
            wiring = self.wiring.forked()
            work: dict[str, Callable[[threading.Event], dict[Place, int]]] = {}
            for name in adapters:
                work[name] = functools.partial(self._baseline_adapter, wiring, prefix, name, path)
            freeze_heap()  # the same process settings as the measured passes
            part = _threads(work)
            return part.partitions, part.seconds

        return _forked(groups, group)

    def _baseline_adapter(
        self, wiring: Wiring, prefix: str, adapter: str, path: Path, _: threading.Event
    ) -> dict[Place, int]:
        topics = [prefix + t for t in build_read_model(adapter).topics]
        decoder = wiring.decoder()
        connection = sqlite3.connect(path, timeout=60, isolation_level=None)
        connection.execute("PRAGMA synchronous=NORMAL")
        consumer = Consumer(wiring.connection.consumer(group_id=f"bench.{self.run_id}.baseline"))
        try:
            remaining = _assign_from_beginning(consumer, topics)
            consumed: dict[Place, int] = {}
            while remaining:
                records = [m for m in consumer.consume(num_messages=BATCH, timeout=0.5) if m.error() is None]
                rows: dict[str, list[tuple[str, str]]] = {}
                for message in records:
                    event = decoder.decode(message)
                    key = message.key()
                    rows.setdefault(event.topic, []).append(
                        (key.decode() if isinstance(key, bytes) else str(key), _json(event.data))
                    )
                    place = (event.topic, event.partition)
                    consumed[place] = consumed.get(place, 0) + 1
                    if event.offset + 1 >= remaining.get(place, 0):
                        remaining.pop(place, None)
                connection.execute("BEGIN IMMEDIATE")
                for topic, values in rows.items():
                    # The topic names are the benchmark's own.
                    upsert = f'INSERT INTO "{topic}" (key, data) VALUES (?, ?) '  # noqa: S608
                    connection.executemany(
                        upsert + "ON CONFLICT (key) DO UPDATE SET data = excluded.data", values
                    )
                connection.execute("COMMIT")
            return consumed
        finally:
            consumer.close()
            connection.close()

    def latency(self, prefix: str, url: str, rate: float, seconds: float) -> Latency:
        """Publish the e2e adapters' events at ``rate`` while their runners run; latencies after warm-up.

        The runners run in the worker processes (split as ``govbus consume`` splits them), not beside the
        publisher: each returns, when stopped, the (event time, commit time) of every event it applied.
        """
        models = [build_read_model(name) for name in E2E_ADAPTERS]
        topics = {prefix + topic for model in models for topic in model.topics}
        kinds = frozenset(k.full_name for k in self.wiring.catalog if prefix + k.topic in topics)
        topic_of = {k.full_name: prefix + k.topic for k in self.wiring.catalog}
        warmup = int(rate * WARMUP_S)
        measured = int(rate * seconds)
        events = iter(typed_events(kinds, warmup + measured, SEED))
        result = Latency(rate_per_s=rate, published=measured)
        groups = balance(dict.fromkeys(E2E_ADAPTERS, 1), self.workers)

        def group(adapters: list[str]) -> list[tuple[float, float]]:
            stop = threading.Event()
            signal.signal(signal.SIGTERM, lambda *_: stop.set())  # first: stop() must find it installed
            wiring = self.wiring.forked()
            child_store = wiring.store_for(url)
            committed: list[tuple[float, float]] = []

            def collect(stats: RunStats) -> None:
                committed.extend((event.time.timestamp(), at) for event, at in stats.committed_at)

            runners = [wiring.runner_for(prefix, name, child_store) for name in adapters]
            freeze_heap()  # as govbus consume does once its adapters are built
            failures: list[BaseException] = []
            threads = [
                threading.Thread(target=_guarded, args=(runner.run, failures, stop, collect), daemon=True)
                for runner in runners
            ]
            for thread in threads:
                thread.start()
            while not stop.wait(0.1) and not failures:
                pass
            stop.set()
            for thread in threads:
                thread.join(timeout=60)
            child_store.close()
            if failures:
                raise failures[0]
            return committed

        forked = Forked({", ".join(adapters): functools.partial(group, adapters) for adapters in groups})
        store = self.wiring.store_for(url)  # opened after the fork; read here only to see what is applied
        publishers: dict[str, Publisher] = {}
        try:
            phase = functools.partial(
                self._phase, prefix, events, rate, publishers, topic_of, models, store, forked
            )
            phase(warmup)
            window_start = time.time() - 0.001  # ce_time keeps milliseconds: never drop a later event
            pressure = _CpuPressure()
            phase(measured)
            result.cpu_pressure = pressure.share()
        except BaseException:
            forked.close()  # the children are stopped and reaped; their results are not wanted
            raise
        finally:
            forked.stop()
            for publisher in publishers.values():
                publisher.close(timeout_s=30)
            store.close()
        for committed in forked.results().values():
            result.samples.extend((at - made) * 1000 for made, at in committed if made >= window_start)
        return result

    def _phase(
        self,
        prefix: str,
        events: Iterable[Any],
        rate: float,
        publishers: dict[str, Publisher],
        topic_of: dict[str, str],
        models: Sequence[Any],
        store: Store,
        forked: Forked[Any],
        count: int,
    ) -> None:
        """Publish ``count`` events at ``rate``; wait until they are acknowledged, then applied."""
        self._paced(prefix, events, count, rate, publishers, topic_of)
        _flush(publishers)
        self._wait_applied(prefix, models, store, forked)

    def _paced(
        self,
        prefix: str,
        events: Iterable[Any],
        count: int,
        rate: float,
        publishers: dict[str, Publisher],
        topic_of: dict[str, str],
    ) -> None:
        started = time.monotonic()
        for number, event in enumerate(itertools.islice(events, count)):
            delay = started + number / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            publisher = publishers.get(event.agency)
            if publisher is None:
                publisher = publishers[event.agency] = self.wiring.publisher_for(prefix, event.agency)
            publisher.publish(event.type, event.data, event_id=event.id, time=datetime.now(UTC))

    def _wait_applied(self, prefix: str, models: Sequence[Any], store: Store, forked: Forked[Any]) -> None:
        """Wait until the store's positions reach every partition's end (what was published is applied)."""
        deadline = time.monotonic() + CATCH_UP_TIMEOUT_S
        while True:
            forked.check()
            lags = measure_lag(self.wiring.connection, store, models, prefix)
            if all(lag.total == 0 for lag in lags):
                return
            if time.monotonic() > deadline:
                behind = ", ".join(f"{lag.adapter} {lag.total}" for lag in lags)
                raise RuntimeError(f"events still not applied after {CATCH_UP_TIMEOUT_S:g}s: {behind}")
            time.sleep(0.05)

    def cleanup(self) -> None:
        """Delete the topics this run created."""
        if self._topics:
            AdminClient(self.wiring.connection.admin()).delete_topics(self._topics, operation_timeout=30)
            self._topics.clear()


def _require_caught_up(lags: list[AdapterLag]) -> None:
    """Every adapter's stored positions are at the end of its topics: a pass that stopped early fails."""
    behind = [
        f"{lag.adapter} {p.topic}[{p.partition}] at {p.applied} of {p.end}"
        for lag in lags
        for p in lag.partitions
        if p.lag
    ]
    if behind:
        raise GovbusError(f"a pass stopped before the end of its topics: {'; '.join(behind)}")


def _run_counted(runner: ReadModelRunner, stop: threading.Event) -> dict[Place, int]:
    """Run ``runner`` until caught up; return the records it consumed per partition."""
    return dict(runner.run(stop, until_caught_up=True).records)


def _guarded(
    run: Callable[..., Any],
    failures: list[BaseException],
    stop: threading.Event,
    on_batch: Callable[[RunStats], None],
) -> None:
    try:
        run(stop, on_batch)
    except BaseException as exc:
        failures.append(exc)
        stop.set()


def _forked(
    groups: list[list[str]],
    group: Callable[[list[str]], tuple[dict[str, dict[Place, int]], dict[str, float]]],
) -> Pass:
    """Run each group of adapters in a forked process; the wall time is the parent's, forks included."""
    started = time.perf_counter()
    parts = run_forked({", ".join(adapters): functools.partial(group, adapters) for adapters in groups})
    wall = time.perf_counter() - started
    partitions: dict[str, dict[Place, int]] = {}
    seconds: dict[str, float] = {}
    for part_partitions, part_seconds in parts.values():
        partitions.update(part_partitions)
        seconds.update(part_seconds)
    records = {name: sum(counts.values()) for name, counts in partitions.items()}
    return Pass(records=records, seconds=seconds, wall_s=wall, partitions=partitions)


def _threads(work: dict[str, Callable[[threading.Event], dict[Place, int]]]) -> Pass:
    """Run each piece of work in a thread; stop them all when one fails and raise its error."""
    stop = threading.Event()
    failures: list[BaseException] = []
    partitions: dict[str, dict[Place, int]] = {}
    seconds: dict[str, float] = {}

    def one(name: str, job: Callable[[threading.Event], dict[Place, int]]) -> None:
        began = time.perf_counter()
        try:
            partitions[name] = job(stop)
        except BaseException as exc:
            failures.append(exc)
            stop.set()
        seconds[name] = time.perf_counter() - began

    threads = [threading.Thread(target=one, args=item, name=item[0], daemon=True) for item in work.items()]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    if failures:
        raise failures[0]
    records = {name: sum(counts.values()) for name, counts in partitions.items()}
    return Pass(records=records, seconds=seconds, wall_s=wall, partitions=partitions)


def _assign_from_beginning(consumer: Consumer, topics: list[str]) -> dict[tuple[str, int], int]:
    """Assign every partition of ``topics`` from its start; return the non-empty ones' high watermarks."""
    metadata = consumer.list_topics(timeout=30)
    partitions = [
        TopicPartition(topic, number, OFFSET_BEGINNING)
        for topic in topics
        for number in metadata.topics[topic].partitions
    ]
    consumer.assign(partitions)
    remaining: dict[tuple[str, int], int] = {}
    for tp in partitions:
        low, high = consumer.get_watermark_offsets(tp, timeout=30)
        if high > low:
            remaining[(tp.topic, tp.partition)] = high
    return remaining


class _CpuPressure:
    """Linux's CPU pressure (``/proc/pressure/cpu``) from the moment this is made."""

    def __init__(self) -> None:
        self._stalled, self._began = _cpu_stall_us(), time.monotonic()

    def share(self) -> float | None:
        """The share of the time since then in which some ready task waited for a CPU (None: unknown)."""
        stalled = _cpu_stall_us()
        if stalled is None or self._stalled is None:
            return None
        return (stalled - self._stalled) / 1e6 / max(time.monotonic() - self._began, 1e-9)


def _cpu_stall_us() -> int | None:
    """Microseconds in which some ready task waited for a CPU, since boot; None where not reported."""
    try:
        with open("/proc/pressure/cpu", encoding="ascii") as pressure:
            some = pressure.readline().split()
    except OSError:
        return None
    fields = dict(part.split("=", 1) for part in some[1:] if "=" in part)
    return int(fields["total"]) if fields.get("total", "").isdigit() else None


def _count_records(connection: KafkaConnection, topic: str, partition: int) -> int:
    """The records a ``read_committed`` reader finds in one partition now, read from its start."""
    consumer = Consumer(connection.consumer(group_id="govbus-bench-count", **{"enable.partition.eof": True}))
    count = 0
    try:
        consumer.assign([TopicPartition(topic, partition, OFFSET_BEGINNING)])
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None:
                continue
            error = message.error()
            if error is None:
                count += 1
            elif error.code() == KafkaError._PARTITION_EOF:
                break
    finally:
        consumer.close()
    return count


def _flush(publishers: dict[str, Publisher]) -> None:
    for publisher in publishers.values():
        remaining = publisher.flush(60)
        if remaining:
            raise RuntimeError(f"{remaining} events unacknowledged after 60 s")


def _json(data: dict[str, Any]) -> str:
    return json.dumps(data, default=str, separators=(",", ":"))
