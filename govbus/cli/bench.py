"""``govbus bench produce``: producer throughput next to baselines measured in the same run."""

from __future__ import annotations

import argparse
import json
import platform
from typing import Any

from bus.errors import ConfigurationError
from bus.progress import say
from bus.settings import Settings
from govbus.bootstrap import build_gateway, build_publisher, build_registry
from govbus.cli.kafka import local_broker
from govbus.local_kafka import metadata_answers


def register(commands: Any) -> None:
    """Add the ``bench`` command group."""
    parser = commands.add_parser("bench", help="benchmarks, each next to a baseline measured in the same run")
    kinds = parser.add_subparsers(dest="bench", required=True, metavar="BENCHMARK")
    produce = kinds.add_parser("produce", help="publisher SDK vs stock confluent-kafka vs raw bytes")
    produce.add_argument(
        "--events", type=int, default=200_000, help="events per measured round (default 200000)"
    )
    produce.add_argument("--rounds", type=int, default=3, help="measured rounds per path; the best counts")
    produce.add_argument(
        "--event-type", default="govbus.localgov.ResidentMoved", help="catalog event to publish"
    )
    produce.add_argument("--json", action="store_true", help="end with one JSON object on the last line")
    produce.set_defaults(handler=run_produce)


def run_produce(args: argparse.Namespace, settings: Settings) -> int:
    """Measure the three paths and print a table (and JSON)."""
    try:
        from bench.produce import ProduceBench, bench_registry, build_workload  # noqa: PLC0415 - bench only
    except ImportError as exc:  # the stock serializer baseline needs confluent-kafka's extras
        raise ConfigurationError(
            f"the benchmark needs the dev extras ({exc.name} is missing): pip install 'govbus[dev]'"
        ) from exc
    from schemas.catalog import load_catalog  # noqa: PLC0415
    from schemas.registry_client import RegistryClient  # noqa: PLC0415

    broker = None
    if not metadata_answers(settings.kafka_bootstrap, timeout_s=3.0):
        broker = local_broker(settings)
        broker.up(progress=say)
    try:
        workload = build_workload(load_catalog(), args.event_type)
        app = build_gateway(settings, build_registry(settings, topic="_schemas-bench"))
        with bench_registry(app) as registry_url, RegistryClient(registry_url) as registry:
            bench = ProduceBench(
                settings,
                registry_url,
                args.events,
                workload,
                lambda prefix: build_publisher(
                    settings.model_copy(update={"topic_prefix": prefix}),
                    workload.kind.agency,
                    registry=registry,
                    client_id="govbus-bench",
                ),
            )
            try:
                say(
                    f"measuring raw, stock and govbus: {args.events} x {workload.kind.name}, "
                    f"best of {args.rounds} interleaved rounds"
                )
                results = bench.measure(("raw", "stock", "govbus"), args.rounds)
            finally:
                bench.cleanup()
    finally:
        if broker is not None:
            broker.down(progress=say)
    rates = {path: result.events_per_s for path, result in results.items()}
    event_bytes = round(sum(len(_encoded(workload, p)) for p in workload.payloads[:500]) / 500)
    print(f"\n{'path':<8} {'events/s':>12} {'vs stock':>9} {'vs raw':>8}")
    for path in ("govbus", "stock", "raw"):
        vs_stock, vs_raw = rates[path] / rates["stock"], rates[path] / rates["raw"]
        print(f"{path:<8} {rates[path]:>12,.0f} {vs_stock:>8.2f}x {vs_raw:>7.0%}")
    print(
        f"({args.events} events of {workload.kind.full_name}, {event_bytes} bytes each, acks=all, idempotent)"
    )
    if args.json:
        summary = {
            "benchmark": "produce",
            "event_type": workload.kind.full_name,
            "events": args.events,
            "event_bytes": event_bytes,
            "rounds": args.rounds,
            "govbus_events_per_s": round(rates["govbus"]),
            "stock_events_per_s": round(rates["stock"]),
            "raw_events_per_s": round(rates["raw"]),
            "govbus_vs_stock": round(rates["govbus"] / rates["stock"], 2),
            "govbus_vs_raw": round(rates["govbus"] / rates["raw"], 3),
            "python": platform.python_version(),
            "bootstrap": settings.kafka_bootstrap,
        }
        print(json.dumps(summary))
    return 0


def _encoded(workload: Any, payload: dict[str, Any]) -> bytes:
    from schemas.codec import encode  # noqa: PLC0415

    return encode(1, workload.kind.parsed, payload)
