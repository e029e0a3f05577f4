"""``govbus demo``: the whole bus on embedded defaults, from the agencies' events to a governed read.

Starts Kafka (unless it already runs), the gateway and every read-model adapter and reaction (``govbus
consume``); registers the catalog; publishes simulated events of the four agencies; reads one resident's
current address back through the gateway; then tells the governed-sharing story
(:mod:`govbus.cli.demo_story`): a death suspends a benefit through the bus, the welfare ministry reads the
citizen profile under its agreement, a read without a purpose is refused, and the resident reads their
audit trail. Everything it started is stopped before it returns.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx

from bus.credentials import client_credential
from bus.errors import ConfigurationError, GovbusError
from bus.progress import say
from bus.settings import Settings
from govbus.bootstrap import build_registry_client
from govbus.cli.demo_story import tell
from govbus.cli.gateway import listen_socket
from govbus.cli.kafka import local_broker
from govbus.cli.simulate import simulate
from govbus.dev_identities import DEV_MINISTRIES, ensure_dev_identities
from govbus.topics import create_bus_topics
from producers.simulators.simulation import simulated_events
from schemas.catalog import load_catalog
from schemas.catalog_sync import register_catalog

READY_TIMEOUT_S = 60.0
CHILD_TAIL_LINES = 20
DEMO_PURPOSE = "benefit-eligibility"
"""The purpose the demo's welfare ministry states, one of its sample agreements' purposes."""


def register(commands: Any) -> None:
    """Add the ``demo`` command."""
    parser = commands.add_parser("demo", help="run the whole bus end to end on embedded defaults")
    parser.add_argument(
        "--count", type=int, default=600, help="events of the four agencies to publish (default 600)"
    )
    parser.add_argument("--seed", type=int, default=7, help="simulation seed (default 7)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run the demo; everything started here is stopped before returning."""
    broker = local_broker(settings)
    say(f"starting Kafka on {broker.bootstrap} (jars, data and logs in {broker.home})")
    started_kafka = broker.up(progress=say)
    try:
        _demo(args, settings)
    finally:
        if started_kafka:
            broker.down(progress=say)
    return 0


def _demo(args: argparse.Namespace, settings: Settings) -> None:
    catalog = load_catalog()
    say(f"creating {len(catalog.topics())} catalog topics and the DLQ topics")
    create_bus_topics(settings, catalog)
    credentials = ensure_dev_identities(settings, catalog)
    say(f"development identities for {len(credentials)} organisations in {settings.home}")
    base = _gateway_base(settings)
    _require_free_port(base)
    with _child("gateway", ["gateway", "--port", str(urlsplit(base).port)]) as gateway:
        _wait_healthy(base, gateway)
        registry = build_registry_client(settings)
        try:
            registered = register_catalog(registry, catalog)
        finally:
            registry.close()
        say(f"registered {len(registered)} catalog schemas in the registry at {settings.registry_url}")
        with _child("read-model adapters and reactions", ["consume", "--workers", "1"]) as consumer:
            say(f"publishing {args.count} simulated events of the four agencies (seed {args.seed})")
            simulate(settings, "all", args.count, args.seed)
            resident_id, expected = _most_moved_resident(args.count, args.seed)
            say(f"reading resident {resident_id} back through the gateway")
            reader = client_credential(settings, DEV_MINISTRIES[0])
            record = _await_address(base, resident_id, expected, (gateway, consumer), reader)
            address = record["address"]
            say(f"resident {record['resident_id']} ({record['name']}, {record['status']}) now lives at:")
            parts = [address["sido"], address["sigungu"], address["road_address"], address["detail"] or ""]
            print(f"    {' '.join(parts).rstrip()} ({address['postal_code']})", flush=True)

            def alive() -> None:
                gateway.check()
                consumer.check()

            tell(base, settings, args.count, args.seed, alive)
    say("demo finished")


def _gateway_base(settings: Settings) -> str:
    parts = urlsplit(settings.registry_url)
    return f"{parts.scheme}://{parts.netloc}"


class _Child:
    """A ``govbus`` child process, with the last lines it printed kept to explain an early exit."""

    def __init__(self, label: str, process: subprocess.Popen[str]) -> None:
        self.label = label
        self.process = process
        self._tail: deque[str] = deque(maxlen=CHILD_TAIL_LINES)
        self._reader = threading.Thread(target=self._read, name=f"{label} output", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        # Drained all along, or a chatty child would block on a full pipe.
        for line in self.process.stdout or ():
            self._tail.append(line.rstrip())

    def check(self) -> None:
        """Raise GovbusError, with the child's exit code and last lines, if it has exited."""
        code = self.process.poll()
        if code is None:
            return
        self._reader.join(timeout=5)
        printed = "\n".join(f"    {line}" for line in self._tail) or "    (nothing)"
        raise GovbusError(f"the {self.label} exited with code {code}; the last lines it printed:\n{printed}")

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 20 s."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._reader.join(timeout=5)


@contextlib.contextmanager
def _child(label: str, argv: list[str]) -> Iterator[_Child]:
    """Run ``govbus ARGV`` as a child process; stop it (SIGTERM, then SIGKILL) on exit."""
    say(f"starting the {label}")
    process = subprocess.Popen(
        [sys.executable, "-m", "govbus", *argv],
        env={**os.environ, "GOVBUS_LOG_LEVEL": "warning"},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
    )
    child = _Child(label, process)
    try:
        yield child
    finally:
        say(f"stopping the {label}")
        child.stop()


def _require_free_port(base: str) -> None:
    """Fail before starting the gateway if something else holds its port (it would answer in its place)."""
    parts = urlsplit(base)
    try:
        listen_socket(parts.hostname or "127.0.0.1", parts.port or 80).close()
    except ConfigurationError as exc:
        raise ConfigurationError(
            f"{parts.netloc} is in use, and the demo serves its gateway there (the address of "
            "GOVBUS_REGISTRY_URL); stop what holds it (`govbus down` stops what `govbus up` started) "
            "or set GOVBUS_REGISTRY_URL to another port"
        ) from exc


def _wait_healthy(base: str, gateway: _Child) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        gateway.check()
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return
        time.sleep(0.3)
    raise GovbusError(f"the gateway did not answer {base}/healthz within {READY_TIMEOUT_S:.0f}s")


def _most_moved_resident(count: int, seed: int) -> tuple[str, dict[str, Any]]:
    """The simulated resident who moved most, and the address of their last move (replayed from the seed)."""
    moves: dict[str, list[dict[str, Any]]] = {}
    for event in simulated_events("all", count, seed):
        if event.type.endswith("ResidentMoved"):
            moves.setdefault(event.data["resident_id"], []).append(event.data["new_address"])
    resident_id = max(sorted(moves), key=lambda r: len(moves[r]))
    return resident_id, moves[resident_id][-1]


def _await_address(
    base: str,
    resident_id: str,
    expected: dict[str, Any],
    children: tuple[_Child, ...],
    credential: str | None,
) -> dict[str, Any]:
    deadline = time.monotonic() + READY_TIMEOUT_S
    last: Any = None
    while time.monotonic() < deadline:
        for child in children:
            child.check()
        headers = {"Purpose": DEMO_PURPOSE}
        if credential:
            headers["Authorization"] = f"Bearer {credential}"
        response = httpx.get(f"{base}/v1/residents/{resident_id}", headers=headers, timeout=5)
        if response.status_code == 200:
            last = response.json()["data"]
            if last["address"] == expected:
                return dict(last)
        time.sleep(0.3)
    raise GovbusError(f"resident {resident_id} did not reach the expected address in time; last seen: {last}")
