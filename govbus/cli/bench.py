"""``govbus bench produce``, ``consume`` and ``gateway``: figures next to baselines of the same run."""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
from pathlib import Path
from typing import Any

from bus.credentials import INTEGRATION
from bus.errors import ConfigurationError
from bus.progress import say
from bus.settings import Settings
from govbus.bootstrap import (
    build_connection,
    build_gateway,
    build_publisher,
    build_registry,
    build_runner,
    build_store,
)
from govbus.cli.kafka import local_broker
from govbus.dev_identities import ensure_dev_identities
from govbus.local_kafka import metadata_answers
from govbus.topics import bus_topics, create_bus_topics


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
    consume = kinds.add_parser(
        "consume", help="read models from Kafka into SQLite and PostgreSQL vs a plain upsert; e2e latency"
    )
    consume.add_argument(
        "--events",
        type=int,
        default=100_000,
        help="simulated events of every agency (default 100000)",
    )
    consume.add_argument(
        "--rebuild-sizes",
        type=_sizes,
        default=[],
        metavar="N,N,...",
        help="also time a replay of these many events into an empty store of each kind (e.g. 100000,1000000)",
    )
    consume.add_argument(
        "--rate", type=float, default=5000.0, help="events/s published while measuring latency (default 5000)"
    )
    consume.add_argument(
        "--seconds", type=float, default=10.0, help="how long latency is measured (default 10)"
    )
    consume.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        metavar="N",
        help="processes the adapters are spread over, as govbus consume does (default: CPU cores)",
    )
    consume.add_argument("--json", action="store_true", help="end with one JSON object on the last line")
    consume.set_defaults(handler=run_consume)
    gateway = kinds.add_parser(
        "gateway", help="gateway under wrk: registry with vs without auth; publish API vs the SDK"
    )
    gateway.add_argument(
        "--duration",
        type=float,
        default=10.0,
        help="seconds per measurement, after a warm-up of 2 s (publish: as long as the measurement, "
        "at most 10 s) (default 10)",
    )
    gateway.add_argument(
        "--connections", type=int, default=16, help="wrk's keep-alive connections (default 16)"
    )
    gateway.add_argument(
        "--event-type", default="govbus.localgov.ResidentMoved", help="catalog event to publish"
    )
    gateway.add_argument("--json", action="store_true", help="end with one JSON object on the last line")
    gateway.set_defaults(handler=run_gateway)


def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected sizes like 100000,1000000, got {text!r}") from exc
    if any(size <= 0 for size in sizes):
        raise argparse.ArgumentTypeError("sizes must be positive")
    return sizes


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
    if not metadata_answers(settings.kafka_bootstrap, timeout_s=BROKER_PROBE_S):
        broker = local_broker(settings)
        broker.up(progress=say)
    try:
        workload = build_workload(load_catalog(), args.event_type)
        credential = ensure_dev_identities(settings)[INTEGRATION]
        app = build_gateway(settings, build_registry(settings, topic="_schemas-bench"))
        with (
            bench_registry(app, credential) as registry_url,
            RegistryClient(registry_url, credential=credential) as registry,
        ):
            bench = ProduceBench(
                settings,
                registry_url,
                args.events,
                workload,
                credential=credential,
                publisher_for=lambda prefix: build_publisher(
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


def run_consume(args: argparse.Namespace, settings: Settings) -> int:
    """Measure the stores, the baseline, the rebuild sizes and the latency; print tables (and JSON)."""
    from bench.consume import ConsumeBench, Wiring  # noqa: PLC0415 - bench only
    from bench.pg import PostgresServer, PostgresUnavailableError, create_database  # noqa: PLC0415
    from bench.produce import bench_registry  # noqa: PLC0415
    from consumers.adapters import ADAPTERS  # noqa: PLC0415
    from consumers.decoder import EventDecoder  # noqa: PLC0415
    from schemas.catalog import load_catalog  # noqa: PLC0415
    from schemas.registry_client import RegistryClient  # noqa: PLC0415

    if args.events <= 0 or args.rate <= 0 or args.seconds <= 0 or args.workers <= 0:
        raise ConfigurationError("--events, --rate, --seconds and --workers must be positive")
    try:
        postgres = PostgresServer()
    except PostgresUnavailableError as exc:
        raise ConfigurationError(str(exc)) from exc
    catalog = load_catalog()

    def prefixed(prefix: str, url: str = "") -> Settings:
        return settings.model_copy(update={"topic_prefix": prefix, "readmodel_url": url})

    def create_topics(prefix: str) -> list[str]:
        create_bus_topics(prefixed(prefix), catalog)
        return bus_topics(prefixed(prefix), catalog)

    broker = None
    if not metadata_answers(settings.kafka_bootstrap, timeout_s=BROKER_PROBE_S):
        broker = local_broker(settings)
        broker.up(progress=say)
    try:
        credential = ensure_dev_identities(settings)[INTEGRATION]
        app = build_gateway(settings, build_registry(settings, topic="_schemas-bench"))
        with (
            bench_registry(app, credential) as registry_url,
            RegistryClient(registry_url, credential=credential) as registry,
            tempfile.TemporaryDirectory(prefix="govbus-bench-") as folder,
        ):

            def wiring(registry: RegistryClient) -> Wiring:
                return Wiring(
                    connection=build_connection(settings, "govbus-bench"),
                    catalog=catalog,
                    create_topics=create_topics,
                    publisher_for=lambda prefix, agency: build_publisher(
                        prefixed(prefix), agency, registry=registry, catalog=catalog, client_id="govbus-bench"
                    ),
                    runner_for=lambda prefix, adapter, store: build_runner(
                        prefixed(prefix), adapter, store=store, registry=registry, catalog=catalog
                    ),
                    store_for=lambda url: build_store(prefixed("", url)),
                    decoder=lambda: EventDecoder(registry, catalog),
                    forked=lambda: wiring(RegistryClient(registry_url, credential=credential)),
                )

            bench = ConsumeBench(wiring(registry), list(ADAPTERS), args.workers)
            say("starting a throwaway PostgreSQL")
            postgres.start()
            try:
                report = bench.measure(
                    args.events,
                    args.rebuild_sizes,
                    Path(folder),
                    lambda name: create_database(postgres.url, name),
                    args.rate,
                    args.seconds,
                    say,
                )
            finally:
                postgres.stop()
                bench.cleanup()
    finally:
        if broker is not None:
            broker.down(progress=say)
    _print_consume(report, list(ADAPTERS))
    if args.json:
        print(json.dumps(_consume_summary(report, list(ADAPTERS), args, settings)))
    return 0


KINDS = ("sqlite", "postgres", "baseline")
BROKER_PROBE_S = 10.0
"""How long a benchmark waits for the configured broker before it starts one of its own: a broker that
has just started, or that other jobs keep busy, took more than 3 s to answer in one test run, and the
benchmark then tried to start a second broker on its port."""


def _print_consume(report: Any, adapters: list[str]) -> None:
    main = report.main
    baseline = main["baseline"].events_per_s
    print(f"\n{'path':<9} {'records':>9} {'seconds':>8} {'events/s':>10} {'vs baseline':>12}")
    for kind in KINDS:
        result = main[kind]
        print(
            f"{kind:<9} {result.total:>9} {result.wall_s:>8.2f} {result.events_per_s:>10,.0f} "
            f"{result.events_per_s / baseline:>11.0%}"
        )
    print(f"({report.events} simulated events of every agency; records summed over {len(adapters)} adapters)")
    print(f"\n{'adapter':<18} {'records':>9} {'sqlite/s':>10} {'postgres/s':>11} {'baseline/s':>11}")
    for name in adapters:
        rates = "".join(f" {main[kind].adapter_rate(name):>10,.0f}" for kind in KINDS)
        print(f"{name:<18} {main['sqlite'].records[name]:>9}{rates}")
    print(f"\n{'rebuild':<9} {'records':>9} {'sqlite s':>9} {'postgres s':>11}")
    for size, passes in report.passes.items():
        print(
            f"{size:<9} {passes['sqlite'].total:>9} {passes['sqlite'].wall_s:>9.1f} "
            f"{passes['postgres'].wall_s:>11.1f}"
        )
    latency = report.latency
    print(
        f"\ne2e at {latency.rate_per_s:g} events/s: p50 {latency.percentile(0.5):.1f} ms, "
        f"p99 {latency.percentile(0.99):.1f} ms, max {latency.percentile(1.0):.1f} ms "
        f"({len(latency.samples)} events)"
        + ("" if latency.cpu_pressure is None else f"; CPU pressure {latency.cpu_pressure:.0%} of the window")
    )


def _consume_summary(
    report: Any, adapters: list[str], args: argparse.Namespace, settings: Settings
) -> dict[str, Any]:
    main, latency = report.main, report.latency
    return {
        "benchmark": "consume",
        "events": report.events,
        "records": main["sqlite"].total,
        "sqlite_events_per_s": round(main["sqlite"].events_per_s),
        "postgres_events_per_s": round(main["postgres"].events_per_s),
        "baseline_events_per_s": round(main["baseline"].events_per_s),
        "per_adapter_events_per_s": {
            name: {kind: round(main[kind].adapter_rate(name)) for kind in KINDS} for name in adapters
        },
        "rebuild_s": {
            str(size): {kind: round(passes[kind].wall_s, 2) for kind in ("sqlite", "postgres")}
            for size, passes in report.passes.items()
        },
        "workers": args.workers,
        "e2e_rate_per_s": latency.rate_per_s,
        "e2e_seconds": args.seconds,
        "e2e_samples": len(latency.samples),
        "e2e_p50_ms": round(latency.percentile(0.5), 1),
        "e2e_p99_ms": round(latency.percentile(0.99), 1),
        "e2e_cpu_pressure": None if latency.cpu_pressure is None else round(latency.cpu_pressure, 3),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "bootstrap": settings.kafka_bootstrap,
    }


def run_gateway(args: argparse.Namespace, settings: Settings) -> int:
    """Measure the gateway under wrk next to its baselines; print a table (and JSON)."""
    from bench.gateway import GatewayBench, GatewayWiring, require_wrk  # noqa: PLC0415 - bench only
    from schemas.catalog import load_catalog  # noqa: PLC0415

    if args.duration <= 0 or args.connections <= 0:
        raise ConfigurationError("--duration and --connections must be positive")
    wrk = require_wrk()
    catalog = load_catalog()
    broker = None
    if not metadata_answers(settings.kafka_bootstrap, timeout_s=BROKER_PROBE_S):
        broker = local_broker(settings)
        broker.up(progress=say)
    try:
        wiring = GatewayWiring(
            gateway=lambda s: build_gateway(s, build_registry(s, topic="_schemas-bench")),
            publisher=lambda s, agency, registry, catalog: build_publisher(
                s, agency, registry=registry, catalog=catalog, client_id="govbus-bench"
            ),
        )
        bench = GatewayBench(
            wiring, settings, catalog, args.event_type, args.duration, args.connections, wrk, say
        )
        report = bench.run()
    finally:
        if broker is not None:
            broker.down(progress=say)
    _print_gateway(report)
    if args.json:
        print(json.dumps(_gateway_summary(report, settings)))
    return 0


def _print_gateway(report: Any) -> None:
    from bench.gateway import BATCH_SIZE, READ_CONNECTIONS, TARGETS, publish_warmup  # noqa: PLC0415

    sdk = report.sdk.events_per_s
    rows = [
        (report.registry_open, "", "baseline"),
        (report.registry_auth, "", f"target >= {TARGETS['registry_req_per_s']:,.0f} req/s"),
        (report.publish_single, f"{report.publish_single.events_per_s / sdk:.0%}", ""),
        (
            report.publish_batch,
            f"{report.publish_batch.events_per_s / sdk:.0%}",
            f"target >= {TARGETS['batch_events_per_s']:,.0f} events/s",
        ),
    ]
    print(
        f"\n{'measurement':<28} {'req/s':>9} {'events/s':>10} {'p50 ms':>7} {'p99 ms':>7} {'vs SDK':>7}  note"
    )
    for measured, vs_sdk, note in rows:
        events = f"{measured.events_per_s:,.0f}" if measured.events_per_request else "-"
        print(
            f"{measured.name:<28} {measured.req_per_s:>9,.0f} {events:>10} {measured.p50_ms:>7.2f} "
            f"{measured.p99_ms:>7.2f} {vs_sdk:>7}  {note}".rstrip()
        )
    print(f"{'SDK Publisher.publish':<28} {'-':>9} {sdk:>10,.0f} {'-':>7} {'-':>7} {'100%':>7}  baseline")
    if report.reads_guarded is not None and report.reads_open is not None:
        for measured, note in (
            (report.reads_open, "baseline"),
            (report.reads_guarded, f"target >= {TARGETS['guarded_reads_req_per_s']:,.0f} req/s"),
            (report.reads_open_few, "baseline"),
            (report.reads_guarded_few, ""),
        ):
            if measured is None:
                continue
            print(
                f"{measured.name:<28} {measured.req_per_s:>9,.0f} {'-':>10} {measured.p50_ms:>7.2f} "
                f"{measured.p99_ms:>7.2f} {'':>7}  {note}"
            )
        print(
            f"\nguarded reads run at {report.guarded_share:.0%} of unguarded with {READ_CONNECTIONS} "
            f"connections (target >= {TARGETS['guarded_vs_unguarded']:.0%}), "
            f"{report.guarded_share_few:.0%} with {report.connections}"
        )
    if report.feed is not None:
        feed = report.feed
        print(
            f"change feed at 1,000 events/s: p50 {feed.p50_ms:.0f} ms, p99 {feed.p99_ms:.0f} ms, "
            f"max {feed.max_ms:.0f} ms ({feed.received:,} of {feed.published:,} events received; "
            "target p99 <= 1,000 ms)"
        )
    print(
        f"\nauthentication costs {report.auth_cost:.1%} of registry throughput "
        f"(target <= {TARGETS['auth_cost']:.0%})"
    )
    print(
        f"({report.event_type}; wrk on loopback, {report.connections} connections, "
        f"{report.duration_s:g} s per measurement after {report.warmup_s:g} s of warm-up "
        f"(publish: {publish_warmup(report.warmup_s, report.duration_s):g} s); "
        f"batches of {BATCH_SIZE}; one gateway process)"
    )


def _gateway_summary(report: Any, settings: Settings) -> dict[str, Any]:
    from bench.gateway import BATCH_SIZE, READ_CONNECTIONS, TARGETS  # noqa: PLC0415

    summary: dict[str, Any] = {
        "benchmark": "gateway",
        "event_type": report.event_type,
        "duration_s": report.duration_s,
        "warmup_s": report.warmup_s,
        "connections": report.connections,
        "batch_size": BATCH_SIZE,
    }
    measured = {
        "registry_auth": report.registry_auth,
        "registry_noauth": report.registry_open,
        "publish_single": report.publish_single,
        "publish_batch": report.publish_batch,
    }
    if report.reads_guarded is not None and report.reads_open is not None:
        measured["reads_guarded"] = report.reads_guarded
        measured["reads_unguarded"] = report.reads_open
        summary["guarded_vs_unguarded"] = round(report.guarded_share, 4)
        summary["read_connections"] = READ_CONNECTIONS
        if report.reads_guarded_few is not None and report.reads_open_few is not None:
            measured["reads_guarded_few"] = report.reads_guarded_few
            measured["reads_unguarded_few"] = report.reads_open_few
            summary["guarded_vs_unguarded_few"] = round(report.guarded_share_few, 4)
    if report.feed is not None:
        summary["feed_p50_ms"] = round(report.feed.p50_ms, 1)
        summary["feed_p99_ms"] = round(report.feed.p99_ms, 1)
        summary["feed_received"] = report.feed.received
    for name, result in measured.items():
        summary[f"{name}_req_per_s"] = round(result.req_per_s, 1)
        if result.events_per_request:
            summary[f"{name}_events_per_s"] = round(result.events_per_s, 1)
        summary[f"{name}_p50_ms"] = round(result.p50_ms, 3)
        summary[f"{name}_p99_ms"] = round(result.p99_ms, 3)
        summary[f"{name}_requests"] = result.requests
    sdk = report.sdk.events_per_s
    summary.update(
        {
            "sdk_events_per_s": round(sdk, 1),
            "sdk_events": report.sdk.events,
            "auth_cost": round(report.auth_cost, 4),
            "publish_single_vs_sdk": round(report.publish_single.events_per_s / sdk, 4),
            "publish_batch_vs_sdk": round(report.publish_batch.events_per_s / sdk, 4),
            "errors": 0,
            "targets": TARGETS,
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "bootstrap": settings.kafka_bootstrap,
        }
    )
    return summary
