"""Gateway throughput under HTTP load from ``wrk``, each figure next to a baseline of the same run.

One gateway (:func:`govbus.bootstrap.build_gateway`, served in this process by
:func:`gateway.server.serve_in_thread` on 127.0.0.1, with its own registry topic and a temporary
``GOVBUS_HOME`` holding the bench's identities) answers every measurement; ``wrk`` runs on the same
machine over loopback, for a bounded time (a warm-up, then the measured run), with one thread and
``connections`` keep-alive connections.

- **registry by id**: ``GET /registry/schemas/ids/{id}`` cycling through the catalog's schema ids, in
  :data:`REGISTRY_ROUNDS` alternating rounds (the best of each kind reported), with
  ``Authorization: Bearer KEY:SECRET`` (an ``integration`` credential), next to the same route without
  authentication; ``auth cost = 1 - authenticated / unauthenticated`` req/s.
- **reads by key**: ``GET /v1/residents/{id}`` over a thousand stored residents with a ``ministry``
  credential and its ``Purpose``: guarded (agreement check, catalog masking, audit record written before
  the answer) next to the same route with the guard switched off (``RecordsApi.guarded``), alternating
  rounds, the best of each kind.
- **change feed**: publish-to-receipt latency on ``GET /v1/feeds/residents`` (the ministry's agreement)
  while the SDK publishes 1,000 events/s for the measurement's duration (:func:`bench.feed.feed_latency`).
- **publish API**: ``POST /v1/events`` with one event per request and with 100 per request (an ``agency``
  credential of the event type's agency), next to the publisher SDK (:class:`producers.publisher.Publisher`)
  publishing the same payloads straight to Kafka from this process, events/s until acknowledged.

The unauthenticated baseline is the very same route in the same app, process and run, with the credential
check switched off for it: the gateway authenticates in one ASGI middleware
(:class:`gateway.auth.Authentication`) whose open prefixes are read on every request, and :class:`AuthSwitch`
adds ``/registry/schemas/ids/`` to them for the baseline measurement only. Routing, handlers, the event loop
and the response are identical; the difference is exactly the credential check. Before measuring, the
benchmark checks that the route answers 401 without a credential, 200 with the same body both ways, and 401
again after the switch is back.

Every request a measurement sends is rendered once into the wrk Lua script (bodies pre-rendered in Lua
tables, cycled through); the script's ``done`` prints one JSON line with the counts, socket errors and
latency percentiles. A measurement with any socket error or any response of status 400 or more fails
(wrk counts those as status errors); the first request of each script is sent once beforehand and must
answer 2xx (not a redirect) with the expected body. After the publish measurements the benchmark checks
that the bench topic holds at least as many records as the gateway acknowledged.

Events are sent to fresh topics (``bench.{run}.gateway.`` and ``bench.{run}.sdk.`` prefixes), deleted
afterwards. JSON payloads carry dates as ISO 8601 text (``"2024-03-18"``), datetimes as RFC 3339 and
decimals as text.
"""

from __future__ import annotations

import itertools
import json
import re
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient
from pydantic import SecretStr

from bench.feed import FeedLatency, feed_latency
from bus.errors import GovbusError
from bus.kafka_config import KafkaConnection
from bus.settings import Settings
from bus.topics import ensure_topics
from bus.workers import freeze_heap
from producers.publisher import Publisher
from producers.simulators.simulation import typed_events
from schemas.catalog import Catalog, EventType
from schemas.catalog_sync import register_catalog
from schemas.registry_client import RegistryClient

if TYPE_CHECKING:
    from fastapi import FastAPI

REGISTRY_ROUTE = "/registry/schemas/ids/{schema_id}"
PUBLISH_PATH = "/v1/events"
BATCH_SIZE = 100
REGISTRY_ROUNDS = 3
"""Alternating rounds of the registry pair; the best round of each kind is reported."""
WARMUP_S = 2.0
PUBLISH_WARMUP_S = 10.0
"""Warm-up of each publish measurement at the default duration (never longer than the measurement).

A broker just started takes much longer than 2 s to reach its pace on transactional writes: on a broker
``bench gateway`` had just started itself (as ``make bench`` does on a fresh machine), 2 s of warm-up gave
441 single-event requests/s and 26,828 batched events/s; on the same broker a minute later 1,197 and
58,341, and on a broker just started but warmed up for 12 s, 1,216 and 50,805 (2026-12-02)."""
WRK_THREADS = 1
WRK_TIMEOUT_S = 10
DISTINCT_PAYLOADS = 2000
DISTINCT_SINGLE = 1000
DISTINCT_BATCHES = 40
SDK_CLOCK_EVERY = 1000
MARKER = "GOVBUS-WRK "
TARGETS = {
    "registry_req_per_s": 5000.0,
    "batch_events_per_s": 30000.0,
    "auth_cost": 0.15,
    "guarded_reads_req_per_s": 3000.0,
    "guarded_vs_unguarded": 0.70,
}
READ_MINISTRY = "bench-ministry"
READ_PURPOSE = "bench-eligibility"
READ_RESIDENTS = 1000
READ_ROUNDS = 2
READ_CONNECTIONS = 64
"""wrk's connections for the reads' capacity, the figure the guard's target is judged on: a guarded read
waits for its audit record's acknowledgement (a round trip to the broker, 1 to 2 ms here), so with few
connections each guarded request holds its connection that much longer and the measurement shows the
acknowledgement's latency more than what the guard costs the gateway. The reads are also measured with
the run's ``connections`` (16 by default) and both figures are reported."""
FEED_RATE = 1000.0
"""Events/s published while the change feed's latency is measured."""
READ_AGREEMENTS = {
    "format": "govbus-agreements/1",
    "agreements": [
        {
            "id": "bench-residents",
            "organisation": READ_MINISTRY,
            "model": "residents",
            "fields": ["name", "address"],
            "purposes": [{"name": READ_PURPOSE, "legal_basis": "the benchmark's own agreement"}],
            "valid_from": "2000-01-01",
            "valid_until": "2999-12-31",
        }
    ],
}
"""The agreement the guarded reads are made under: names and addresses in clear, the rest masked."""
"""What the gateway should reach on the development machine; printed next to the figures, never asserted."""
Progress = Callable[[str], None]


class BenchError(GovbusError):
    """A measurement that cannot give an honest figure (wrk missing, errors under load, a missing route)."""


@dataclass(frozen=True)
class Request:
    """One HTTP request a wrk script sends (headers are the script's, shared by all its requests)."""

    path: str
    body: str = ""


@dataclass(frozen=True)
class Measurement:
    """One wrk run: completed requests over its duration, and the latency percentiles."""

    name: str
    requests: int
    seconds: float
    events_per_request: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float

    @property
    def req_per_s(self) -> float:
        """Completed (2xx) requests per second."""
        return self.requests / self.seconds

    @property
    def events_per_s(self) -> float:
        """Events acknowledged per second (0 for reads)."""
        return self.req_per_s * self.events_per_request


@dataclass(frozen=True)
class SdkMeasurement:
    """The SDK publishing for a while, then flushing: events until all were acknowledged."""

    events: int
    seconds: float

    @property
    def events_per_s(self) -> float:
        """Acknowledged events per second."""
        return self.events / self.seconds


@dataclass
class Report:
    """Every figure of one run."""

    event_type: str
    duration_s: float
    warmup_s: float
    connections: int
    registry_auth: Measurement
    registry_open: Measurement
    publish_single: Measurement
    publish_batch: Measurement
    sdk: SdkMeasurement
    extra: dict[str, Any] = field(default_factory=dict)
    reads_guarded: Measurement | None = None
    """With :data:`READ_CONNECTIONS` connections (capacity)."""
    reads_open: Measurement | None = None
    reads_guarded_few: Measurement | None = None
    """With the run's ``connections``."""
    reads_open_few: Measurement | None = None
    feed: FeedLatency | None = None

    @property
    def guarded_share(self) -> float:
        """Guarded reads' capacity as a share of the same reads unguarded (0 when not measured)."""
        if self.reads_guarded is None or self.reads_open is None:
            return 0.0
        return self.reads_guarded.req_per_s / self.reads_open.req_per_s

    @property
    def guarded_share_few(self) -> float:
        """As :attr:`guarded_share`, with the run's ``connections`` (0 when not measured)."""
        if self.reads_guarded_few is None or self.reads_open_few is None:
            return 0.0
        return self.reads_guarded_few.req_per_s / self.reads_open_few.req_per_s

    @property
    def auth_cost(self) -> float:
        """The share of registry throughput authentication costs (negative: within noise)."""
        return 1 - self.registry_auth.req_per_s / self.registry_open.req_per_s


def publish_warmup(warmup_s: float, duration_s: float) -> float:
    """The warm-up of a publish measurement: as long as the measurement, at most
    :data:`PUBLISH_WARMUP_S`, at least ``warmup_s`` (none when ``warmup_s`` is 0)."""
    return max(warmup_s, min(duration_s, PUBLISH_WARMUP_S)) if warmup_s else 0.0


def find_wrk() -> str | None:
    """The wrk executable on PATH (Debian's ``wrk``; ``deploy/install-tools.sh --wrk``), or None."""
    return shutil.which("wrk")


def lua_string(text: str) -> str:
    """A Lua string literal holding ``text``'s UTF-8 bytes (printable ASCII kept, the rest as ``\\ddd``)."""
    out = ['"']
    for byte in text.encode("utf-8"):
        if 32 <= byte < 127 and byte not in (34, 92):
            out.append(chr(byte))
        else:
            out.append(f"\\{byte:03d}")
    out.append('"')
    return "".join(out)


def wrk_script(method: str, headers: dict[str, str], requests: Sequence[Request]) -> str:
    """A wrk Lua script sending ``requests`` in turn (rendered once per thread) and printing a JSON line."""
    if not requests:
        raise ValueError("a wrk script needs at least one request")
    rows = ",\n".join(f"  {{{lua_string(r.path)}, {lua_string(r.body)}}}" for r in requests)
    header_rows = ", ".join(f"[{lua_string(name)}] = {lua_string(value)}" for name, value in headers.items())
    return f"""-- Generated by bench/gateway.py: every request rendered once, then sent in turn.
local method = {lua_string(method)}
local requests = {{
{rows}
}}
local rendered = {{}}
local count = 0
local index = 0

local function headers()
  return {{{header_rows}}}
end

init = function(args)
  for i, r in ipairs(requests) do
    local body = nil
    if r[2] ~= "" then body = r[2] end
    rendered[i] = wrk.format(method, r[1], headers(), body)
  end
  count = #rendered
end

request = function()
  index = index % count + 1
  return rendered[index]
end

done = function(summary, latency, _)
  local e = summary.errors
  io.write(string.format(
    '{MARKER}{{"requests":%.0f,"duration_us":%.0f,"bytes":%.0f,"connect":%.0f,"read":%.0f,' ..
    '"write":%.0f,"status":%.0f,"timeout":%.0f,"p50_us":%.0f,"p90_us":%.0f,"p99_us":%.0f,' ..
    '"max_us":%.0f}}\\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
"""


def run_wrk(
    wrk: str,
    url: str,
    script: str,
    seconds: float,
    connections: int,
    folder: Path,
    name: str,
    events_per_request: int = 0,
) -> Measurement:
    """Run wrk for ``seconds``; the measurement, or BenchError when any request failed."""
    path = folder / f"{re.sub(r'[^a-z0-9]+', '-', name.lower())}.lua"
    path.write_text(script, encoding="utf-8")
    command = [
        wrk,
        f"--threads={WRK_THREADS}",
        f"--connections={connections}",
        f"--duration={max(1, round(seconds))}s",
        f"--timeout={WRK_TIMEOUT_S}s",
        f"--script={path}",
        url,
    ]
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=seconds + 60, check=False, cwd=folder
        )
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"{name}: wrk did not finish within {seconds + 60:g} s") from exc
    lines = [line for line in done.stdout.splitlines() if line.startswith(MARKER)]
    if done.returncode != 0 or not lines:
        raise BenchError(
            f"{name}: wrk failed (exit {done.returncode}): {(done.stderr or done.stdout).strip()[-1500:]}"
        )
    figures = json.loads(lines[-1][len(MARKER) :])
    errors = {kind: int(figures[kind]) for kind in ("connect", "read", "write", "timeout", "status")}
    if any(errors.values()):
        raise BenchError(
            f"{name}: {errors['status']} responses with status >= 400 and "
            f"{sum(errors.values()) - errors['status']} socket errors ({errors}) out of "
            f"{int(figures['requests'])} requests; no figure is reported for a run with errors"
        )
    if figures["requests"] <= 0:
        raise BenchError(f"{name}: wrk completed no request in {seconds:g} s")
    return Measurement(
        name=name,
        requests=int(figures["requests"]),
        seconds=figures["duration_us"] / 1e6,
        events_per_request=events_per_request,
        p50_ms=figures["p50_us"] / 1000,
        p90_ms=figures["p90_us"] / 1000,
        p99_ms=figures["p99_us"] / 1000,
        max_ms=figures["max_us"] / 1000,
    )


class AuthSwitch:
    """Turns the gateway's credential check off for the registry-by-id route, for the baseline measurement.

    The gateway authenticates in one ASGI middleware (:class:`gateway.auth.Authentication`); its open
    prefixes are consulted on every request, so adding the route's prefix for a while makes the very same
    route, in the same app, process and run, answer without a credential.
    """

    def __init__(self, app: FastAPI) -> None:
        from gateway.auth import Authentication  # noqa: PLC0415 - the web stack only while benchmarking

        layer: Any = app.middleware_stack  # built by the app's first request
        while layer is not None and not isinstance(layer, Authentication):
            layer = getattr(layer, "app", None)
        if layer is None:
            raise BenchError("the gateway has no gateway.auth.Authentication middleware: nothing to compare")
        self._auth: Authentication = layer

    @contextmanager
    def off(self) -> Iterator[None]:
        """The registry-by-id route needs no credential inside the block."""
        saved = self._auth.open_prefixes
        self._auth.open_prefixes = (*saved, REGISTRY_ROUTE.split("{", 1)[0])
        try:
            yield
        finally:
            self._auth.open_prefixes = saved


def json_data(value: Any) -> Any:
    """A simulator payload as JSON: dates ISO 8601, datetimes RFC 3339 (UTC as ``Z``), decimals as text."""
    if isinstance(value, dict):
        return {key: json_data(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_data(item) for item in value]
    if isinstance(value, date):  # datetimes too
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, Decimal):
        return str(value)
    return value


def _body(document: Any) -> str:
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"))


@dataclass(frozen=True)
class Identities:
    """The bench's credentials (``KEY:SECRET``) in the temporary home."""

    reader: str
    publisher: str
    ministry: str


def create_identities(home: Path, agency: str) -> Identities:
    """An ``integration`` credential (registry reads) and an ``agency`` one named ``agency``, in ``home``."""
    from bus.credentials import INTEGRATION, write_dev_credentials  # noqa: PLC0415
    from gateway.identities import FILE_NAME, IdentityFile, Role, new_credential  # noqa: PLC0415

    reader, reader_text = new_credential(INTEGRATION, Role.INTEGRATION)
    publisher, publisher_text = new_credential(agency, Role.AGENCY)
    ministry, ministry_text = new_credential(READ_MINISTRY, Role.MINISTRY)
    with IdentityFile(home / FILE_NAME).changing() as credentials:
        credentials.extend([reader, publisher, ministry])
    # As `govbus up` leaves them: whatever in the gateway acts as a client finds its credential here.
    write_dev_credentials(home, {INTEGRATION: reader_text, agency: publisher_text})
    (home / "agreements.json").write_text(json.dumps(READ_AGREEMENTS), encoding="utf-8")
    return Identities(reader=reader_text, publisher=publisher_text, ministry=ministry_text)


@dataclass(frozen=True)
class GatewayWiring:
    """How the benchmark builds what it measures (the composition root passes its own builders)."""

    gateway: Callable[[Settings], FastAPI]
    """The gateway app for these settings (its registry on the ``_schemas-bench`` topic)."""
    publisher: Callable[[Settings, str, RegistryClient, Catalog], Publisher]
    """The SDK publisher of an agency."""


class GatewayBench:
    """One gateway, one broker: the registry pair, the publish API pair and the SDK, measured in turn."""

    def __init__(
        self,
        wiring: GatewayWiring,
        settings: Settings,
        catalog: Catalog,
        event_type: str,
        duration_s: float,
        connections: int,
        wrk: str,
        progress: Progress,
        warmup_s: float = WARMUP_S,
    ) -> None:
        if duration_s <= 0 or connections <= 0 or warmup_s < 0:
            raise BenchError("--duration and --connections must be positive")
        self.wiring = wiring
        self.settings = settings
        self.catalog = catalog
        self.kind: EventType = catalog.get(event_type)
        self.duration_s = duration_s
        self.warmup_s = warmup_s
        self.connections = connections
        self.wrk = wrk
        self.say = progress
        self.run_id = uuid.uuid4().hex[:8]
        self.connection = KafkaConnection(settings.kafka_bootstrap, client_id="govbus-bench")
        self._topics: list[str] = []
        self.payloads = [
            e.data for e in typed_events(frozenset({self.kind.full_name}), DISTINCT_PAYLOADS, seed=2026)
        ]
        if not self.payloads:
            raise BenchError(f"the simulators do not generate {self.kind.full_name}")

    def run(self) -> Report:
        """Start the gateway, measure everything, stop it; the topics made are deleted."""
        from gateway.server import free_port, serve_in_thread  # noqa: PLC0415

        with ExitStack() as stack:
            stack.callback(self.cleanup)
            home = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="govbus-bench-gateway-")))
            identities = create_identities(home, self.kind.agency)
            port = free_port()
            gateway_prefix = self._fresh_prefix("gateway")
            settings = self.settings.model_copy(
                update={
                    "home": home,
                    "topic_prefix": gateway_prefix,
                    "registry_url": f"http://127.0.0.1:{port}/registry",
                    "readmodel_url": "",
                    "credentials": SecretStr(""),
                }
            )
            self.say("starting the gateway with its registry on the broker")
            app = self.wiring.gateway(settings)
            freeze_heap()  # as `govbus gateway` does once its app is built
            base = stack.enter_context(serve_in_thread(app, port))
            registry = stack.enter_context(RegistryClient(f"{base}/registry", credential=identities.reader))
            schema_ids = [entry.schema_id for entry in register_catalog(registry, self.catalog)]
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="govbus-wrk-")))
            http = stack.enter_context(httpx.Client(base_url=base, timeout=30))
            switch = AuthSwitch(app)
            self._check_switch(http, switch, schema_ids[0], identities.reader)

            registry_open, registry_auth = self._registry(
                http, base, folder, schema_ids, identities.reader, switch
            )
            reads = self._reads(http, base, folder, app, identities.ministry)
            feed = self._feed(base, identities.ministry, registry, gateway_prefix)
            single, batch = self._publish(http, base, folder, identities.publisher, gateway_prefix)
            sdk = self._sdk(registry)
        return Report(
            event_type=self.kind.full_name,
            duration_s=self.duration_s,
            warmup_s=self.warmup_s,
            connections=self.connections,
            registry_auth=registry_auth,
            registry_open=registry_open,
            publish_single=single,
            publish_batch=batch,
            sdk=sdk,
            extra={"schema_ids": len(schema_ids)},
            reads_open=reads[READ_CONNECTIONS][0],
            reads_guarded=reads[READ_CONNECTIONS][1],
            reads_open_few=reads[self.connections][0],
            reads_guarded_few=reads[self.connections][1],
            feed=feed,
        )

    def _check_switch(self, http: httpx.Client, switch: AuthSwitch, schema_id: int, reader: str) -> None:
        path = REGISTRY_ROUTE.format(schema_id=schema_id)
        closed = http.get(path)
        if closed.status_code != 401:
            raise BenchError(
                f"GET {REGISTRY_ROUTE} without a credential answered {closed.status_code}, not 401"
            )
        with switch.off():
            opened = http.get(path)
        authed = http.get(path, headers={"Authorization": f"Bearer {reader}"})
        if opened.status_code != 200 or authed.status_code != 200 or opened.content != authed.content:
            raise BenchError(
                f"without the check the route answered {opened.status_code}, with it {authed.status_code}, "
                "with different bodies: the baseline would not be the same route"
            )
        if http.get(path).status_code != 401:
            raise BenchError("the credential check did not come back on after the baseline")

    def _measure(
        self,
        http: httpx.Client,
        base: str,
        folder: Path,
        name: str,
        method: str,
        headers: dict[str, str],
        requests: Sequence[Request],
        check: Callable[[httpx.Response], None],
        events_per_request: int = 0,
        connections: int | None = None,
    ) -> Measurement:
        connections = connections or self.connections
        first = requests[0]
        answer = http.request(method, first.path, headers=headers, content=first.body.encode("utf-8") or None)
        if not 200 <= answer.status_code < 300:
            raise BenchError(
                f"{name}: {method} {first.path} answered {answer.status_code}: {answer.text[:500]}"
                + (" (the route is not in this gateway yet?)" if answer.status_code in (404, 405) else "")
            )
        check(answer)
        script = wrk_script(method, headers, requests)
        warmup_s = publish_warmup(self.warmup_s, self.duration_s) if events_per_request else self.warmup_s
        if warmup_s:
            self.say(f"{name}: warming up for {warmup_s:g} s")
            run_wrk(self.wrk, base, script, warmup_s, connections, folder, f"{name} warm-up")
        self.say(f"{name}: measuring for {self.duration_s:g} s, {connections} connections")
        return run_wrk(self.wrk, base, script, self.duration_s, connections, folder, name, events_per_request)

    def _registry(
        self,
        http: httpx.Client,
        base: str,
        folder: Path,
        schema_ids: list[int],
        reader: str,
        switch: AuthSwitch,
    ) -> tuple[Measurement, Measurement]:
        def has_schema(answer: httpx.Response) -> None:
            if "schema" not in answer.json():
                raise BenchError(f"the registry answered without a schema: {answer.text[:300]}")

        requests = [Request(REGISTRY_ROUTE.format(schema_id=i)) for i in schema_ids]
        # Alternating rounds, the best of each kind: on a shared 2-core machine one run of a few seconds
        # varies by tens of percent, which would swamp a difference of a few microseconds a request.
        opened: list[Measurement] = []
        authed: list[Measurement] = []
        for _ in range(REGISTRY_ROUNDS):
            with switch.off():
                opened.append(
                    self._measure(
                        http, base, folder, "registry by id, no auth", "GET", {}, requests, has_schema
                    )
                )
            authed.append(
                self._measure(
                    http,
                    base,
                    folder,
                    "registry by id, auth",
                    "GET",
                    {"Authorization": f"Bearer {reader}"},
                    requests,
                    has_schema,
                )
            )
        return max(opened, key=lambda m: m.req_per_s), max(authed, key=lambda m: m.req_per_s)

    def _reads(
        self, http: httpx.Client, base: str, folder: Path, app: FastAPI, ministry: str
    ) -> dict[int, tuple[Measurement, Measurement]]:
        """``GET /v1/residents/{id}`` over :data:`READ_RESIDENTS` stored residents, with the agreement
        check, masking and audit, and the same route with them switched off (``RecordsApi.guarded``);
        alternating rounds, the best of each kind; with :data:`READ_CONNECTIONS` and with the run's
        connections. Connections → (unguarded, guarded)."""
        records = app.state.records
        resident_ids = seed_residents(records.store, READ_RESIDENTS)
        requests = [Request(f"/v1/residents/{r}") for r in resident_ids]
        headers = {"Authorization": f"Bearer {ministry}", "Purpose": READ_PURPOSE}

        def masked(answer: httpx.Response) -> None:
            if not answer.json()["data"]["registration_number"].endswith("******"):
                raise BenchError(f"a guarded read answered an unmasked record: {answer.text[:300]}")

        def clear(answer: httpx.Response) -> None:
            if answer.json()["data"]["registration_number"].endswith("******"):
                raise BenchError("the unguarded baseline answered a masked record: the switch did not work")

        found: dict[int, tuple[Measurement, Measurement]] = {}
        for connections in dict.fromkeys((READ_CONNECTIONS, self.connections)):
            guarded: list[Measurement] = []
            opened: list[Measurement] = []
            for _ in range(READ_ROUNDS):
                records.guarded = False
                try:
                    opened.append(
                        self._measure(
                            http,
                            base,
                            folder,
                            f"reads, unguarded, {connections} conn.",
                            "GET",
                            headers,
                            requests,
                            clear,
                            connections=connections,
                        )
                    )
                finally:
                    records.guarded = True
                guarded.append(
                    self._measure(
                        http,
                        base,
                        folder,
                        f"reads, guarded, {connections} conn.",
                        "GET",
                        headers,
                        requests,
                        masked,
                        connections=connections,
                    )
                )
            found[connections] = (
                max(opened, key=lambda m: m.req_per_s),
                max(guarded, key=lambda m: m.req_per_s),
            )
        return found

    def _feed(self, base: str, ministry: str, registry: RegistryClient, prefix: str) -> FeedLatency:
        """Publish-to-receipt latency on the residents feed while :data:`FEED_RATE` events/s flow."""
        settings = self.settings.model_copy(update={"topic_prefix": prefix})
        publisher = self.wiring.publisher(settings, "localgov", registry, self.catalog)
        try:
            self.say(f"change feed: {FEED_RATE:,.0f} events/s for {self.duration_s:g} s")
            return feed_latency(
                base, ministry, READ_PURPOSE, publisher, rate=FEED_RATE, duration_s=self.duration_s
            )
        finally:
            publisher.close(timeout_s=120)

    def _events(self) -> Iterator[dict[str, Any]]:
        for payload in itertools.cycle(self.payloads):
            yield {"type": self.kind.full_name, "data": json_data(payload)}

    def _publish(
        self, http: httpx.Client, base: str, folder: Path, publisher: str, prefix: str
    ) -> tuple[Measurement, Measurement]:
        headers = {"Authorization": f"Bearer {publisher}", "Content-Type": "application/json"}
        events = self._events()
        singles = [Request(PUBLISH_PATH, _body(event)) for event in itertools.islice(events, DISTINCT_SINGLE)]
        batches = [
            Request(PUBLISH_PATH, _body({"events": list(itertools.islice(events, BATCH_SIZE))}))
            for _ in range(DISTINCT_BATCHES)
        ]
        accepted = 0

        def acknowledged(expected: int) -> Callable[[httpx.Response], None]:
            def check(answer: httpx.Response) -> None:
                nonlocal accepted
                ids = answer.json().get("ids") if answer.status_code == 202 else None
                if not isinstance(ids, list) or len(ids) != expected:
                    raise BenchError(
                        f"POST {PUBLISH_PATH} answered {answer.status_code} {answer.text[:300]}, "
                        f"not 202 with {expected} ids"
                    )
                accepted += expected

            return check

        single = self._measure(
            http, base, folder, "publish API, 1 event", "POST", headers, singles, acknowledged(1), 1
        )
        accepted += single.requests
        batch = self._measure(
            http,
            base,
            folder,
            f"publish API, {BATCH_SIZE} events",
            "POST",
            headers,
            batches,
            acknowledged(BATCH_SIZE),
            BATCH_SIZE,
        )
        accepted += batch.requests * BATCH_SIZE
        stored = self._records(prefix + self.kind.topic)
        if stored < accepted:
            raise BenchError(
                f"the gateway acknowledged at least {accepted} events but {prefix + self.kind.topic} "
                f"holds {stored} records: 202 before Kafka had them, or another topic?"
            )
        return single, batch

    def _sdk(self, registry: RegistryClient) -> SdkMeasurement:
        settings = self.settings.model_copy(update={"topic_prefix": self._fresh_prefix("sdk")})
        publisher = self.wiring.publisher(settings, self.kind.agency, registry, self.catalog)
        try:
            if self.warmup_s:
                self.say(f"SDK: warming up for {self.warmup_s:g} s")
                self._publish_for(publisher, self.warmup_s)
            self.say(f"SDK: measuring for {self.duration_s:g} s")
            return self._publish_for(publisher, self.duration_s)
        finally:
            publisher.close(timeout_s=120)

    def _publish_for(self, publisher: Publisher, seconds: float) -> SdkMeasurement:
        name = self.kind.full_name
        started = time.perf_counter()
        deadline = started + seconds
        sent = 0
        for payload in itertools.cycle(self.payloads):
            publisher.publish(name, payload)
            sent += 1
            if sent % SDK_CLOCK_EVERY == 0 and time.perf_counter() >= deadline:
                break
        remaining = publisher.flush(120)
        if remaining:
            raise BenchError(f"SDK: {remaining} events unacknowledged after 120 s")
        return SdkMeasurement(sent, time.perf_counter() - started)

    def _fresh_prefix(self, path: str) -> str:
        prefix = f"bench.{self.run_id}.{path}."
        topic = prefix + self.kind.topic
        ensure_topics(self.connection, [topic])
        self._topics.append(topic)
        return prefix

    def _records(self, topic: str) -> int:
        consumer = Consumer(self.connection.consumer(f"govbus-bench-{self.run_id}"))
        try:
            metadata = consumer.list_topics(topic, timeout=30).topics[topic]
            total = 0
            for partition in metadata.partitions:
                low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=30)
                total += high - low
            return total
        finally:
            consumer.close()

    def cleanup(self) -> None:
        """Delete the topics this run created."""
        if self._topics:
            AdminClient(self.connection.admin()).delete_topics(self._topics, operation_timeout=30)
            self._topics = []


def seed_residents(store: Any, count: int) -> list[str]:
    """Store ``count`` synthetic residents in the gateway's read-model store; their ids."""
    from consumers.projections.localgov import RESIDENTS  # noqa: PLC0415

    rows = []
    for n in range(count):
        resident_id = f"R9{n:011d}"
        row = {
            "resident_id": resident_id,
            "registration_number": f"{900101 + n % 28:06d}-{1 + n % 2}{n:06d}",
            "name": "홍길동",
            "birth_date": "1990-01-01",
            "sex": "MALE",
            "nationality": "KR",
            "status": "ACTIVE",
            "sido": "서울특별시",
            "sigungu": "종로구",
            "road_address": f"세종대로 {n % 300 + 1}",
            "detail": None,
            "postal_code": "03154",
            "admin_code": "1111010100",
            "registered_on": "2020-01-01",
            "moved_on": None,
            "died_on": None,
            "source_agency": "localgov",
            "event_id": f"bench-{n}",
            "event_topic": "localgov.resident",
            "event_partition": 0,
            "event_offset": n,
            "event_time": "2026-01-01T00:00:00Z",
        }
        rows.append((RESIDENTS, (resident_id,), row))
    store.migrate([RESIDENTS])
    with store.transaction() as tx:
        store.write(tx, rows)
    return [key[0] for _, key, _ in rows]


def require_wrk() -> str:
    """The wrk executable; BenchError saying how to install it when it is missing."""
    wrk = find_wrk()
    if wrk is None:
        raise BenchError(
            "wrk is not installed: bash deploy/install-tools.sh --wrk (Debian's wrk package; "
            "`make bench` does it)"
        )
    return wrk
