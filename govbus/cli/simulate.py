"""``govbus simulate``: publish simulated agency activity through the publisher SDK.

Every agency publishes its own events with its own publisher (and so its own CloudEvents source);
the publisher refuses event types of other agencies, so routing by the event's agency is also a
check. ``--agency all`` publishes the four agencies' events of one world, interleaved in simulated
time order.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter as Tally
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Protocol

from bus.errors import ConfigurationError, PublishError
from bus.progress import Counter, say
from bus.settings import Settings
from govbus.bootstrap import build_publisher, build_registry_client
from govbus.cli.preflight import require_kafka, require_registry
from producers.simulators.simulation import AGENCIES, simulated_events
from producers.simulators.world import SimulatedEvent
from schemas.catalog import load_catalog

PROGRESS_STEPS = 200


def register(commands: Any) -> None:
    """Add the ``simulate`` command."""
    parser = commands.add_parser("simulate", help="publish simulated agency events")
    parser.add_argument(
        "--agency", default="localgov", choices=(*AGENCIES, "all"), help="which agency (default localgov)"
    )
    parser.add_argument("--count", type=int, default=300, help="number of events (default 300)")
    parser.add_argument("--rate", type=float, default=0.0, help="events per second; 0 = as fast as possible")
    parser.add_argument(
        "--seed", type=int, default=42, help="random seed; the same seed gives the same events"
    )
    parser.add_argument(
        "--residents",
        type=int,
        default=None,
        help="simulated population (default: sized so the run covers about three simulated years); "
        "runs of different agencies with the same seed and population come from the same world",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Publish ``--count`` events and print a summary per topic."""
    if args.count < 1:
        raise ConfigurationError("--count must be at least 1")
    if args.rate < 0:
        raise ConfigurationError("--rate must not be negative")
    if args.residents is not None and args.residents < 1:
        raise ConfigurationError("--residents must be at least 1")
    require_kafka(settings)
    require_registry(settings)
    simulate(settings, args.agency, args.count, args.seed, args.rate, residents=args.residents)
    return 0


class EventSink(Protocol):
    """Where simulated events go: a :class:`~producers.publisher.Publisher`, or a fake in tests."""

    def publish(
        self,
        event_type: str,
        payload: Mapping[str, Any],
        *,
        event_id: str | None = None,
        time: datetime | None = None,
        extensions: Mapping[str, str] | None = None,
    ) -> str:
        """Queue one event."""
        ...

    def close(self) -> None:
        """Deliver everything queued or raise."""
        ...


def simulate(
    settings: Settings,
    agency: str,
    count: int,
    seed: int,
    rate: float = 0.0,
    *,
    residents: int | None = None,
) -> Tally[str]:
    """Publish ``count`` simulated events of ``agency`` (or ``all``); return events per topic."""
    catalog = load_catalog()
    registry = build_registry_client(settings)
    publishers = {
        name: build_publisher(
            settings, name, registry=registry, catalog=catalog, client_id=f"govbus-simulate-{name}"
        )
        for name in (AGENCIES if agency == "all" else (agency,))
    }
    try:
        events = simulated_events(agency, count, seed, residents)
        return publish_events(
            events, publishers, {kind.full_name: kind.topic for kind in catalog}, count, rate
        )
    finally:
        registry.close()


def publish_events(
    events: Iterable[SimulatedEvent],
    publishers: Mapping[str, EventSink],
    topics: Mapping[str, str],
    count: int,
    rate: float = 0.0,
) -> Tally[str]:
    """Publish ``events`` through their agency's sink at ``rate`` a second (0: at once); print a summary.

    Returns events per topic; raises ConfigurationError for an event of an agency without a sink.
    """
    tally: Tally[str] = Tally()
    progress = Counter(f"publishing {', '.join(publishers)} events", count)
    # The counter redraws on every advance; advancing in steps keeps it off the hot path.
    step = max(count // PROGRESS_STEPS, 1)
    started = time.monotonic()
    published = 0
    for published, event in enumerate(events, start=1):
        if rate > 0:
            delay = started + (published - 1) / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        sink = publishers.get(event.agency)
        if sink is None:
            raise ConfigurationError(f"no publisher for agency {event.agency!r} ({event.type})")
        sink.publish(
            event.type, event.data, event_id=event.id, time=event.time, extensions=_extensions(event.data)
        )
        tally[topics[event.type]] += 1
        if published % step == 0:
            progress.advance(step)
    progress.advance(published % step)
    _close(publishers.values())
    elapsed = max(progress.finish(), 1e-9)
    target = f", target {rate:g}/s" if rate > 0 else ""
    say(f"published {published} events in {elapsed:.1f}s ({published / elapsed:.0f} events/s{target})")
    for topic, events_on_topic in sorted(tally.items()):
        print(f"    {topic}: {events_on_topic} events", flush=True)
    return tally


def _extensions(data: Mapping[str, Any]) -> dict[str, str] | None:
    """CloudEvents extensions carried in the payload: the legal basis and the causing event's id."""
    legal_basis, cause = data.get("legal_basis"), data.get("cause_event_id")
    if legal_basis is None and cause is None:
        return None
    extensions = {"legalbasis": legal_basis, "causationid": cause}
    return {name: value for name, value in extensions.items() if isinstance(value, str)}


def _close(publishers: Iterable[EventSink]) -> None:
    """Flush every publisher, even when one fails; then raise one PublishError that says what each lost."""
    failures: list[PublishError] = []
    for publisher in publishers:
        try:
            publisher.close()
        except PublishError as exc:
            failures.append(exc)
    if len(failures) == 1:
        raise failures[0]
    if failures:
        raise PublishError("; ".join(str(failure) for failure in failures))
