"""Change-feed latency: from the moment an event is published to the moment a feed subscriber has it.

:func:`feed_latency` subscribes to ``GET /v1/feeds/{model}`` of a running gateway (a ``ministry``
credential and a purpose its agreement names), waits for the feed's opening block (so the subscription's
start positions are fixed), then publishes events of one catalog type through the SDK publisher it is
given at a steady rate (``rate`` events/s in 10 ms ticks) for ``duration_s`` seconds, and waits (at most
``drain_s``) until the feed has delivered every one of them. Each event's latency is the time from just
before ``Publisher.publish`` queued it to the moment the subscriber's reader thread parsed it off the
stream, on one clock (both ends run in this process). The figures include the producer's batching
(``linger.ms``), the broker, the gateway's consumer, decoding, disclosure, the audit record of each batch
and HTTP. Target: p99 ≤ 1 s at 1,000 events/s.

The reader reconnects with ``Last-Event-ID`` when the stream is cut, so a reconnection shows as latency,
not as a loss; events it never receives make the run fail (:class:`FeedBenchError`).
``bench/gateway.py`` calls it with the gateway it started (see its :class:`GatewayBench`).
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from bus.errors import GovbusError
from producers.publisher import Publisher
from producers.simulators.simulation import typed_events

MAX_DURATION_S = 120.0
TICK_S = 0.01
DRAIN_S = 30.0
WARMUP_S = 2.0
"""Seconds of publishing at the measured rate before the measurement starts."""
READ_TIMEOUT_S = 2.0
DEFAULT_EVENT_TYPE = "govbus.localgov.ResidentRegistered"
TARGET_P99_MS = 1000.0
Progress = Callable[[str], None]


class FeedBenchError(GovbusError):
    """The feed could not be measured honestly (refused, events lost, bad arguments)."""


@dataclass(frozen=True)
class FeedLatency:
    """Latencies of one run, publish to receipt."""

    published: int
    received: int
    seconds: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    reconnections: int

    @property
    def meets_target(self) -> bool:
        """Whether p99 is within :data:`TARGET_P99_MS`."""
        return self.p99_ms <= TARGET_P99_MS


class _Reader:
    """Reads a feed in a thread, noting when each event id arrives; reconnects with Last-Event-ID."""

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        self.url = url
        self.headers = headers
        self.arrived: dict[str, float] = {}
        self.opened = threading.Event()
        self.stop = threading.Event()
        self.failure: str | None = None
        self.reconnections = -1
        self.last_id = ""
        self.thread = threading.Thread(target=self._run, name="bench-feed-reader", daemon=True)

    def _run(self) -> None:
        timeout = httpx.Timeout(30.0, read=READ_TIMEOUT_S)
        with httpx.Client(timeout=timeout) as http:
            while not self.stop.is_set():
                self.reconnections += 1
                headers = {**self.headers, **({"Last-Event-ID": self.last_id} if self.last_id else {})}
                try:
                    with http.stream("GET", self.url, headers=headers) as answer:
                        if answer.status_code != 200:
                            self.failure = f"the feed answered {answer.status_code}: {answer.read()[:300]!r}"
                            self.opened.set()
                            return
                        self._read(answer)
                except (httpx.TransportError, httpx.StreamError):
                    continue

    def _read(self, answer: httpx.Response) -> None:
        for line in answer.iter_lines():
            if self.stop.is_set():
                return
            if line.startswith("id:"):
                self.last_id = line[3:].strip()
                self.opened.set()
            elif line.startswith("data:"):
                now = time.monotonic()
                self.arrived[orjson.loads(line[5:])["id"]] = now


def feed_latency(
    base_url: str,
    credential: str,
    purpose: str,
    publisher: Publisher,
    *,
    model: str = "residents",
    event_type: str = DEFAULT_EVENT_TYPE,
    payloads: Sequence[Mapping[str, Any]] | None = None,
    rate: float = 1000.0,
    duration_s: float = 10.0,
    drain_s: float = DRAIN_S,
    progress: Progress | None = None,
    warmup_s: float = WARMUP_S,
) -> FeedLatency:
    """Publish ``rate`` events/s of ``event_type`` for ``duration_s`` (at most :data:`MAX_DURATION_S`)
    through ``publisher`` while following ``model``'s feed at ``base_url`` as ``credential`` (``KEY:SECRET``
    of a ministry) for ``purpose``; the publish-to-receipt latencies.

    ``publisher`` must publish ``event_type`` to a topic of ``model`` on the gateway's cluster, with the
    gateway's topic prefix; ``payloads`` default to 2,000 simulated events of the type. The first
    ``warmup_s`` seconds publish at the same rate without being measured (a fresh publisher's first events
    wait for its metadata and schema ids; a consumer's first fetches for its connections).
    """
    if not 0 < duration_s <= MAX_DURATION_S or rate <= 0 or drain_s <= 0:
        raise FeedBenchError(f"duration must be in (0, {MAX_DURATION_S:g}] s and rate and drain positive")
    say = progress or (lambda _: None)
    data = list(payloads) if payloads is not None else _payloads(event_type)
    url = f"{base_url.rstrip('/')}/v1/feeds/{model}"
    reader = _Reader(url, {"Authorization": f"Bearer {credential}", "Purpose": purpose})
    reader.thread.start()
    try:
        if not reader.opened.wait(30) or reader.failure:
            raise FeedBenchError(reader.failure or f"{url} did not open within 30 s")
        if warmup_s > 0:
            say(f"feed: warming up for {warmup_s:g} s")
            _publish(publisher, event_type, data, rate, warmup_s)
        say(f"feed: publishing {rate:g} events/s for {duration_s:g} s")
        sent, seconds = _publish(publisher, event_type, data, rate, duration_s)
        remaining = publisher.flush(drain_s)
        if remaining:
            raise FeedBenchError(f"{remaining} events unacknowledged by Kafka after {drain_s:g} s")
        deadline = time.monotonic() + drain_s
        while time.monotonic() < deadline and not sent.keys() <= reader.arrived.keys():
            time.sleep(0.05)
        missing = len(sent.keys() - reader.arrived.keys())
        if missing:
            raise FeedBenchError(f"the feed delivered {len(sent) - missing} of {len(sent)} events")
    finally:
        reader.stop.set()
        reader.thread.join(timeout=READ_TIMEOUT_S + 5)
    latencies = sorted((reader.arrived[i] - t) * 1000 for i, t in sent.items())
    return FeedLatency(
        published=len(sent),
        received=len(latencies),
        seconds=seconds,
        p50_ms=_percentile(latencies, 0.50),
        p99_ms=_percentile(latencies, 0.99),
        max_ms=latencies[-1] if latencies else 0.0,
        reconnections=max(reader.reconnections, 0),
    )


def _payloads(event_type: str) -> list[Mapping[str, Any]]:
    found: list[Mapping[str, Any]] = [e.data for e in typed_events(frozenset({event_type}), 2000, seed=2026)]
    if not found:
        raise FeedBenchError(f"the simulators do not generate {event_type}")
    return found


def _publish(
    publisher: Publisher,
    event_type: str,
    payloads: Sequence[Mapping[str, Any]],
    rate: float,
    duration_s: float,
) -> tuple[dict[str, float], float]:
    """Event id → the moment just before it was published, at ``rate`` per second for ``duration_s``."""
    sent: dict[str, float] = {}
    cycle = itertools.cycle(payloads)
    started = time.monotonic()
    due = 0.0
    tick = started
    while (now := time.monotonic()) < started + duration_s:
        due += rate * (now - tick)
        tick = now
        while due >= 1:
            moment = time.monotonic()
            sent[publisher.publish(event_type, next(cycle))] = moment
            due -= 1
        time.sleep(max(TICK_S - (time.monotonic() - now), 0))
    return sent, time.monotonic() - started


def _percentile(ordered: Sequence[float], fraction: float) -> float:
    if not ordered:
        return 0.0
    return ordered[min(int(fraction * (len(ordered) - 1) + 0.5), len(ordered) - 1)]
