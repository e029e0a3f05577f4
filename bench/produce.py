"""Producer throughput: the govbus SDK next to two baselines measured in the same run, same broker.

- ``govbus``: :class:`producers.publisher.Publisher` — schema check, wire format, CloudEvents headers.
- ``stock``: confluent-kafka's ``SerializingProducer`` with its ``AvroSerializer`` (schema looked up in the
  same registry) and the same CloudEvents headers built per event, as an application using the stock
  client would.
- ``raw``: the same records pre-encoded (value, key and headers built before the clock starts) through a
  bare ``Producer``: the ceiling for a Python producer.

All three use one producer configuration (idempotent, acks=all, the SDK's linger and compression), publish
the same payloads to a fresh topic each, and stop the clock when ``flush`` returned, i.e. when every
event was acknowledged. Each path runs ``rounds`` times; the best round counts (the least disturbed by the
broker sharing the machine).
"""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from confluent_kafka import Producer, SerializingProducer
from confluent_kafka.admin import AdminClient
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.serialization import StringSerializer

from bus.kafka_config import KafkaConnection
from bus.settings import Settings
from bus.topics import ensure_topics
from producers.publisher import POLL_EVERY, Publisher
from producers.simulators.simulation import typed_events
from schemas.catalog import Catalog, EventType, load_catalog
from schemas.catalog_sync import register_catalog
from schemas.codec import encode
from schemas.envelope import CloudEvent
from schemas.registry_client import RegistryClient

if TYPE_CHECKING:
    from fastapi import FastAPI

DISTINCT_PAYLOADS = 5000
WARMUP_EVENTS = 2000


@dataclass(frozen=True)
class PathResult:
    """One measured round of one path."""

    path: str
    events: int
    seconds: float

    @property
    def events_per_s(self) -> float:
        """Acknowledged events per second."""
        return self.events / self.seconds


@dataclass(frozen=True)
class Workload:
    """What every path publishes."""

    kind: EventType
    payloads: list[dict[str, Any]]
    source: str

    def stream(self, count: int) -> Iterator[dict[str, Any]]:
        """``count`` payloads, cycling through the distinct ones."""
        return itertools.islice(itertools.cycle(self.payloads), count)


def build_workload(catalog: Catalog, event_type: str) -> Workload:
    """Distinct simulated payloads of ``event_type`` (deterministic)."""
    kind = catalog.get(event_type)
    payloads = [e.data for e in typed_events(frozenset({kind.full_name}), DISTINCT_PAYLOADS, seed=2026)]
    if not payloads:
        raise ValueError(f"the simulators do not generate {kind.full_name}")
    return Workload(kind=kind, payloads=payloads, source=f"urn:govbus:agency:{kind.agency}")


class ProduceBench:
    """Runs the three paths against one broker and one registry."""

    def __init__(
        self,
        settings: Settings,
        registry_url: str,
        events: int,
        workload: Workload,
        publisher_for: Callable[[str], Publisher],
        credential: str,
    ) -> None:
        self.connection = KafkaConnection(settings.kafka_bootstrap, client_id="govbus-bench")
        self.registry_url = registry_url
        self.credential = credential
        self.publisher_for = publisher_for
        self.events = events
        self.workload = workload
        self.run_id = uuid.uuid4().hex[:8]
        self._topics: list[str] = []

    def govbus(self, topic_prefix: str, count: int) -> float:
        """Publish through the SDK; seconds until all acknowledged."""
        publisher = self.publisher_for(topic_prefix)
        name = self.workload.kind.full_name
        started = time.perf_counter()
        for payload in self.workload.stream(count):
            publisher.publish(name, payload)
        publisher.close(timeout_s=120)
        return time.perf_counter() - started

    def stock(self, topic_prefix: str, count: int) -> float:
        """Publish through SerializingProducer + AvroSerializer; seconds until all acknowledged."""
        kind = self.workload.kind
        subject = kind.subject
        serializer = AvroSerializer(
            SchemaRegistryClient({"url": self.registry_url, "basic.auth.user.info": self.credential}),
            kind.schema_text,
            conf={"auto.register.schemas": False, "subject.name.strategy": lambda *_: subject},
        )
        config: dict[str, Any] = {
            **self.connection.producer(),
            "key.serializer": StringSerializer("utf_8"),
            "value.serializer": serializer,
        }
        producer = SerializingProducer(config)
        topic = topic_prefix + kind.topic
        started = time.perf_counter()
        for sent, payload in enumerate(self.workload.stream(count), start=1):
            envelope = CloudEvent(source=self.workload.source, type=kind.full_name, id=str(uuid.uuid4()))
            while True:
                try:
                    producer.produce(
                        topic, key=payload[kind.key_field], value=payload, headers=envelope.headers()
                    )
                    break
                except BufferError:
                    producer.poll(0.05)
            if sent % POLL_EVERY == 0:
                producer.poll(0)
        _flush_all(producer.flush, "stock")
        return time.perf_counter() - started

    def raw(self, topic_prefix: str, count: int) -> float:
        """Publish pre-encoded records through a bare Producer; seconds until all acknowledged."""
        kind = self.workload.kind
        registry = RegistryClient(self.registry_url, credential=self.credential)
        schema_id = registry.lookup(kind.subject, kind.schema_text)
        registry.close()
        now = datetime.now(UTC)
        records = [
            (
                payload[kind.key_field],
                encode(schema_id, kind.parsed, payload),
                CloudEvent(source=self.workload.source, type=kind.full_name, time=now).headers(),
            )
            for payload in self.workload.payloads
        ]
        producer = Producer(self.connection.producer())
        topic = topic_prefix + kind.topic
        started = time.perf_counter()
        for sent, (key, value, headers) in enumerate(
            itertools.islice(itertools.cycle(records), count), start=1
        ):
            while True:
                try:
                    producer.produce(topic, value=value, key=key, headers=headers)
                    break
                except BufferError:
                    producer.poll(0.05)
            if sent % POLL_EVERY == 0:
                producer.poll(0)
        _flush_all(producer.flush, "raw")
        return time.perf_counter() - started

    def measure(self, paths: tuple[str, ...], rounds: int) -> dict[str, PathResult]:
        """Best of ``rounds`` rounds per path (after a warm-up round each), on fresh topics.

        Rounds are interleaved (raw, stock, govbus, raw, ...) so that a slow spell of the broker,
        which shares the machine, does not fall on one path only.
        """
        runs: dict[str, Callable[[str, int], float]] = {path: getattr(self, path) for path in paths}
        for path, run in runs.items():
            run(self._fresh_prefix(path, "warmup"), WARMUP_EVENTS)
        best = dict.fromkeys(paths, float("inf"))
        for number in range(rounds):
            for path, run in runs.items():
                best[path] = min(best[path], run(self._fresh_prefix(path, str(number)), self.events))
        return {path: PathResult(path, self.events, seconds) for path, seconds in best.items()}

    def _fresh_prefix(self, path: str, round_name: str) -> str:
        prefix = f"bench.{self.run_id}.{path}.{round_name}."
        topic = prefix + self.workload.kind.topic
        ensure_topics(self.connection, [topic])
        self._topics.append(topic)
        return prefix

    def cleanup(self) -> None:
        """Delete the topics this run created (they hold hundreds of MB)."""
        if self._topics:
            AdminClient(self.connection.admin()).delete_topics(self._topics, operation_timeout=30)


def _flush_all(flush: Callable[[float], int], path: str) -> None:
    remaining = flush(120)
    if remaining:
        raise RuntimeError(f"{path}: {remaining} events unacknowledged after 120 s")


@contextmanager
def bench_registry(app: FastAPI, credential: str) -> Iterator[str]:
    """Serve ``app`` (a gateway with its own registry topic) in this process, with the catalog registered
    by ``credential`` (the integration team's)."""
    from gateway.server import serve_in_thread  # noqa: PLC0415 - the web stack is only needed while benchmarking

    with serve_in_thread(app) as base:
        client = RegistryClient(f"{base}/registry", credential=credential)
        register_catalog(client, load_catalog())
        client.close()
        yield f"{base}/registry"
