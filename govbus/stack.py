"""The local stack ``govbus up`` runs in the background: the broker, the gateway and the consumer adapters.

``up`` brings the parts up in order (broker, topics, gateway, catalog, consumers: every read model and
every reaction in one ``govbus consume`` process) and returns when each answers; the processes it starts
run detached, each with its pid file in ``{home}/run/`` and its log in ``{home}/logs/``. ``down`` stops
exactly those processes: a pid file is believed only while its process is still ``python -m govbus
COMMAND`` run with this ``GOVBUS_HOME`` (read from ``/proc``), so a pid the system has handed to another
program is never signalled. The broker is stopped only when ``up`` started it: ``run/broker.json``
records its pid and port, and lives only as long as that broker does.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from bus.errors import ConfigurationError, GovbusError
from bus.settings import Settings
from consumers.adapters import ADAPTERS, build_read_model
from consumers.reactions import REACTIONS
from govbus.bootstrap import build_connection, build_registry_client
from govbus.dev_identities import ensure_dev_identities
from govbus.local_kafka import (
    LocalKafka,
    local_port,
    metadata_answers,
    port_open,
    probe_admin,
    process_alive,
    reap,
)
from govbus.topics import create_bus_topics
from schemas.catalog import load_catalog
from schemas.catalog_sync import register_catalog

READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 20.0
PROBE_TIMEOUT_S = 3.0

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Service:
    """A process of the stack: its name (of its pid and log files) and its ``govbus`` arguments."""

    name: str
    args: tuple[str, ...]


@dataclass(frozen=True)
class PartStatus:
    """One line of ``govbus status``."""

    name: str
    running: bool
    answering: bool
    pid: int | None
    port: int | None
    log: Path | None
    external: bool = False
    """A broker this stack does not run (another home's, or a remote cluster) answers at the bootstrap."""


def gateway_port(settings: Settings) -> int:
    """The port ``up`` serves the gateway on: the one of ``GOVBUS_REGISTRY_URL``, which must be local."""
    parts = urlsplit(settings.registry_url)
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.scheme != "http" or parts.hostname not in ("127.0.0.1", "localhost") or port is None:
        raise ConfigurationError(
            f"GOVBUS_REGISTRY_URL={settings.registry_url!r} is not an http://127.0.0.1:PORT/registry "
            "address; `govbus up` serves the gateway on this machine, on that port"
        )
    return port


def is_stack_process(cmdline: Sequence[str], environ: dict[str, str], command: str, home: Path) -> bool:
    """True when a process's command line and environment are those of ``govbus COMMAND`` run by ``up``."""
    return list(cmdline[1:4]) == ["-m", "govbus", command] and environ.get("GOVBUS_HOME") == str(home)


class Stack:
    """The stack of one ``GOVBUS_HOME``: its broker, gateway and consumer adapters."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        # Absolute, because it is also the children's GOVBUS_HOME and the mark that a process is ours.
        self.home = settings.home.resolve()
        self.run_dir = self.home / "run"
        self.log_dir = self.home / "logs"
        self.broker_record = self.run_dir / "broker.json"
        self.gateway_port = gateway_port(settings)
        self.gateway = Service(
            "gateway", ("gateway", "--host", "127.0.0.1", "--port", str(self.gateway_port))
        )
        self.consumers_ready = self.run_dir / "consumers.ready"
        self.consumers = Service("consumers", ("consume", "--ready-file", str(self.consumers_ready)))

    def pid_file(self, service: Service) -> Path:
        """Where ``up`` records the pid of ``service``."""
        return self.run_dir / f"{service.name}.pid"

    def log_file(self, service: Service) -> Path:
        """Where ``service`` writes its output."""
        return self.log_dir / f"{service.name}.log"

    # -- the commands --------------------------------------------------------------------------

    def up(self, progress: Progress) -> None:
        """Bring every part up (leaving alone the ones already answering); return when all answer."""
        with self._lock():
            self._broker_up(progress)
            result = create_bus_topics(self.settings)
            progress(f"topics: {len(result.created)} created, {len(result.existing)} existed already")
            organisations = ensure_dev_identities(self.settings)
            progress(f"identities: development credentials of {len(organisations)} organisations ready")
            self._service_up(self.gateway, self._gateway_answers, progress)
            registry = build_registry_client(self.settings)
            try:
                registered = register_catalog(registry, load_catalog())
            finally:
                registry.close()
            progress(f"catalog: {len(registered)} schemas registered at {self.settings.registry_url}")
            self._service_up(self.consumers, self._consumers_answer, progress)

    def down(self, progress: Progress) -> None:
        """Stop what ``up`` started: the consumers, the gateway, and the broker if ``up`` started it."""
        with self._lock():
            for service in (self.consumers, self.gateway):
                self._stop(service, progress)
            self.consumers_ready.unlink(missing_ok=True)  # left behind only by a consumers process killed
            self._broker_down(progress)

    def status(self) -> list[PartStatus]:
        """Each part: whether it runs, whether it answers, its pid, port and log."""
        broker = self._broker_status()
        gateway_pid = self._find(self.gateway)
        gateway = PartStatus(
            "gateway",
            running=gateway_pid is not None,
            answering=gateway_pid is not None and self._gateway_answers(),
            pid=gateway_pid,
            port=self.gateway_port,
            log=self.log_file(self.gateway),
        )
        consumers_pid = self._find(self.consumers)
        consumers = PartStatus(
            "consumers",
            running=consumers_pid is not None,
            answering=consumers_pid is not None and broker.answering and self._consumers_answer(),
            pid=consumers_pid,
            port=None,
            log=self.log_file(self.consumers),
        )
        return [broker, gateway, consumers]

    # -- the broker ----------------------------------------------------------------------------

    def _local_broker(self) -> LocalKafka | None:
        port = local_port(self.settings.kafka_bootstrap)
        return None if port is None else LocalKafka(self.settings.kafka_home, port=port)

    def _broker_up(self, progress: Progress) -> None:
        bootstrap = self.settings.kafka_bootstrap
        broker = self._local_broker()
        if broker is not None:
            state = broker.status()
            if state.running or state.other_port is not None or not _kafka_answers(bootstrap):
                if broker.up(progress=lambda line: progress(f"broker: {line}")):
                    self.run_dir.mkdir(parents=True, exist_ok=True)
                    pid = broker.status().pid
                    self.broker_record.write_text(json.dumps({"pid": pid, "port": broker.port}) + "\n")
                return
        elif not _kafka_answers(bootstrap):
            raise ConfigurationError(
                f"Kafka at {bootstrap} does not answer, and `govbus up` starts a broker only on "
                "127.0.0.1; start that cluster or set GOVBUS_KAFKA_BOOTSTRAP=127.0.0.1:PORT"
            )
        progress(f"broker: using the Kafka cluster at {bootstrap} (govbus down will leave it running)")

    def _broker_down(self, progress: Progress) -> None:
        try:
            record = json.loads(self.broker_record.read_text())
            pid, port = int(record["pid"]), int(record["port"])
        except (FileNotFoundError, ValueError, KeyError, TypeError):
            progress("broker: left alone (govbus up did not start it)")
            return
        broker = LocalKafka(self.settings.kafka_home, port=port)
        if broker.status().pid == pid:
            broker.down(progress=lambda line: progress(f"broker: {line}"))
        else:
            progress(f"broker: the one govbus up started (pid {pid}) is no longer running")
        self.broker_record.unlink()

    def _broker_status(self) -> PartStatus:
        bootstrap = self.settings.kafka_bootstrap
        broker = self._local_broker()
        if broker is not None:
            state = broker.status()
            if state.running:
                log = broker.logs / "server.log"
                return PartStatus("broker", True, state.serving, state.pid, broker.port, log)
        answering = _kafka_answers(bootstrap)
        return PartStatus("broker", False, answering, None, local_port(bootstrap), None, external=answering)

    # -- the gateway and the consumers ---------------------------------------------------------

    @functools.cached_property
    def _admin(self) -> AdminClient:
        return probe_admin(build_connection(self.settings, "govbus-status").admin())

    def _gateway_answers(self) -> bool:
        url = f"http://127.0.0.1:{self.gateway_port}/healthz"
        try:
            return httpx.get(url, timeout=PROBE_TIMEOUT_S, trust_env=False).status_code == 200
        except httpx.HTTPError:
            return False

    def _consumers_answer(self) -> bool:
        """True when every reaction emits and every read model's topics are assigned to a group member.

        A reaction joins no group (it assigns itself every partition), so its word comes from the ready
        file the consumers process keeps: written by that very process, naming every reaction as emitting.
        """
        if not self._reactions_emit():
            return False
        prefix = self.settings.topic_prefix
        wanted = {prefix + topic for name in ADAPTERS for topic in build_read_model(name).topics}
        admin = self._admin
        try:
            listing = admin.list_consumer_groups(request_timeout=PROBE_TIMEOUT_S).result()
            group_ids = [group.group_id for group in listing.valid]
            if not group_ids:
                return False
            futures = admin.describe_consumer_groups(group_ids, request_timeout=PROBE_TIMEOUT_S)
        except KafkaException:
            return False
        assigned: set[str] = set()
        for future in futures.values():
            with contextlib.suppress(KafkaException):
                for member in future.result().members:
                    if member.assignment is not None:
                        assigned.update(tp.topic for tp in member.assignment.topic_partitions)
        return wanted <= assigned

    def _reactions_emit(self) -> bool:
        try:
            ready = json.loads(self.consumers_ready.read_text())
            pid, emitting = int(ready["pid"]), set(ready["emitting"])
        except (FileNotFoundError, ValueError, KeyError, TypeError):
            return False
        return pid == self._find(self.consumers) and emitting >= set(REACTIONS)

    def _service_up(self, service: Service, answers: Callable[[], bool], progress: Progress) -> None:
        log = self.log_file(service)
        pid = self._find(service)
        if pid is not None:
            running_args = _cmdline(pid)[3:]
            if running_args != list(service.args):
                raise GovbusError(
                    f"{service.name}: already running as `govbus {' '.join(running_args)}` (pid {pid}), "
                    f"not as `govbus {' '.join(service.args)}`; run `govbus down` first"
                )
            progress(f"{service.name}: already running (pid {pid})")
        else:
            if service is self.gateway and port_open(self.gateway_port):
                raise GovbusError(
                    f"gateway: port {self.gateway_port} on 127.0.0.1 is held by another program; "
                    "point GOVBUS_REGISTRY_URL at a free port"
                )
            progress(f"{service.name}: starting `govbus {' '.join(service.args)}` (log: {display_path(log)})")
        log_start = log.stat().st_size if log.exists() else 0
        if pid is None:
            pid = self._spawn(service)
        self._wait_answering(service, pid, answers, log_start)
        progress(f"{service.name}: answering (pid {pid})")

    def _spawn(self, service: Service) -> int:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with self.log_file(service).open("ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "govbus", *service.args],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, "GOVBUS_HOME": str(self.home)},
                start_new_session=True,
            )
        self.pid_file(service).write_text(f"{process.pid}\n")
        return process.pid

    def _wait_answering(
        self, service: Service, pid: int, answers: Callable[[], bool], log_start: int
    ) -> None:
        log = self.log_file(service)
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if not process_alive(pid):
                reap(pid)
                self.pid_file(service).unlink(missing_ok=True)
                raise GovbusError(
                    f"{service.name}: exited while starting{_last_error(log, log_start)}; "
                    f"its log: {display_path(log)}"
                )
            if answers():
                return
            time.sleep(0.3)
        raise GovbusError(
            f"{service.name}: did not answer within {READY_TIMEOUT_S:.0f}s; its log: {display_path(log)}"
        )

    def _stop(self, service: Service, progress: Progress) -> None:
        pid = self._find(service)
        if pid is None:
            self.pid_file(service).unlink(missing_ok=True)
            progress(f"{service.name}: not running")
            return
        progress(f"{service.name}: stopping (pid {pid})")
        with contextlib.suppress(ProcessLookupError):  # it may have exited since it was found
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while process_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if process_alive(pid):
            progress(f"{service.name}: still running after {STOP_TIMEOUT_S:.0f}s; killing pid {pid}")
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            while process_alive(pid):
                time.sleep(0.1)
        reap(pid)
        self.pid_file(service).unlink(missing_ok=True)
        progress(f"{service.name}: stopped")

    def _find(self, service: Service) -> int | None:
        """The pid in ``service``'s pid file while that process is still the one ``up`` started."""
        try:
            pid = int(self.pid_file(service).read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        if not process_alive(pid):
            return None
        command = service.args[0]
        return pid if is_stack_process(_cmdline(pid), _environ(pid), command, self.home) else None

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        """Serialise ``up`` and ``down`` of one home, so two of them never start a part twice."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with (self.run_dir / ".lock").open("w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def _kafka_answers(bootstrap: str) -> bool:
    return metadata_answers(bootstrap, timeout_s=PROBE_TIMEOUT_S)


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0")[:-1]]


def _environ(pid: int) -> dict[str, str]:
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return {}
    pairs = (entry.decode(errors="replace").partition("=") for entry in raw.split(b"\0") if entry)
    return {name: value for name, _, value in pairs}


def _last_error(log: Path, offset: int) -> str:
    """``: REASON`` from the last ``govbus: error:`` line the process wrote after ``offset``, if any."""
    try:
        with log.open("rb") as handle:
            handle.seek(offset)
            lines = handle.read().decode(errors="replace").splitlines()
    except OSError:
        return ""
    errors = [line.removeprefix("govbus: error: ") for line in lines if line.startswith("govbus: error: ")]
    return f": {errors[-1]}" if errors else ""


def display_path(path: Path) -> str:
    """``path`` relative to the working folder when it lies inside it (shorter to read), else absolute."""
    with contextlib.suppress(ValueError):
        return str(path.relative_to(Path.cwd()))
    return str(path)
