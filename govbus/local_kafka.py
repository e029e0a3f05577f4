"""A real Apache Kafka broker on this machine, without Docker.

The jars come from Maven Central (``deploy/kafka/pom.xml``); storage is formatted with
``kafka.tools.StorageTool format --standalone`` and the broker runs as one combined KRaft
broker/controller (``kafka.Kafka``). Everything lives under ``{home}/kafka``: ``libs/`` (jars),
``data/`` (log dirs), ``logs/`` (server.log, stdout), ``config/``, ``kafka.pid`` and ``ports.json`` (the
client and controller ports the running broker was started on).

Only the process recorded in ``kafka.pid`` is ever stopped, and only after checking that it is
still a ``kafka.Kafka`` JVM started from this home. A home runs one broker: when its broker runs on
other ports than the ones asked for, ``up``, ``down`` and ``status`` say so instead of taking it for
the broker on the asked-for ports.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import structlog
from confluent_kafka.admin import AdminClient

from bus.errors import ConfigurationError, LocalKafkaError
from bus.kafka_config import ConfigValue
from deploy import KAFKA_DIR

log = structlog.get_logger(__name__)

DEPLOY_DIR = KAFKA_DIR
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
_LOG_TAIL_LINES = 25

Progress = Callable[[str], None]


def _silent(_: str) -> None:
    """Default progress sink: say nothing."""


@dataclass(frozen=True)
class BrokerStatus:
    """What ``govbus kafka status`` reports."""

    running: bool
    serving: bool
    pid: int | None
    bootstrap: str
    other_port: int | None = None
    """The port this home's broker runs on when that is not the asked-for one (``pid`` is then its pid)."""


class LocalKafka:
    """The local broker rooted at ``home`` (usually ``.govbus/kafka``) listening on 127.0.0.1:``port``."""

    def __init__(self, home: Path, port: int = 9092, controller_port: int | None = None) -> None:
        self.home = home.resolve()
        self.port = port
        self.controller_port = controller_port or port + 1
        self.libs = self.home / "libs"
        self.data = self.home / "data"
        self.logs = self.home / "logs"
        self.config = self.home / "config"
        self.pid_file = self.home / "kafka.pid"
        self.ports_file = self.home / "ports.json"

    @property
    def bootstrap(self) -> str:
        """The address clients use."""
        return f"127.0.0.1:{self.port}"

    # -- jars -----------------------------------------------------------------------------------

    def fetch_jars(self, progress: Progress = _silent) -> None:
        """Copy the pinned broker jars from Maven Central into ``libs/``; a no-op when already there."""
        pom = DEPLOY_DIR / "pom.xml"
        stamp = self.libs / ".pom-sha256"
        digest = hashlib.sha256(pom.read_bytes()).hexdigest()
        if stamp.exists() and stamp.read_text().strip() == digest:
            return
        mvn = shutil.which("mvn")
        if mvn is None:
            raise ConfigurationError(
                "Maven (mvn) is not on PATH; it is needed once to fetch the Kafka jars "
                "(Debian: apt-get install maven)"
            )
        progress("fetching Kafka jars from Maven Central (first run only)")
        self.libs.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(
            [mvn, "-B", "-q", "-f", str(pom), "dependency:copy-dependencies", f"-Dkafka.libs={self.libs}"],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            tail = "\n".join((result.stdout + result.stderr).splitlines()[-_LOG_TAIL_LINES:])
            raise LocalKafkaError(f"mvn could not fetch the Kafka jars (exit {result.returncode})", tail)
        stamp.write_text(digest + "\n")

    # -- lifecycle --------------------------------------------------------------------------------

    def up(self, progress: Progress = _silent, timeout_s: float = START_TIMEOUT_S) -> bool:
        """Start the broker unless ours already runs; return True when this call started it.

        Returns only once a metadata request is answered. Raises :class:`LocalKafkaError` when
        the port is held by another program or the broker dies or stays silent while starting.
        """
        self.home.mkdir(parents=True, exist_ok=True)
        with self._lock():
            pid = self._our_pid()
            if pid is not None:
                progress(f"Kafka already running (pid {pid}) on {self.bootstrap}")
                self._wait_serving(pid, timeout_s)
                return False
            self._refuse_if_running_elsewhere()
            for port in (self.port, self.controller_port):
                if port_open(port):
                    raise LocalKafkaError(
                        f"port {port} on 127.0.0.1 is held by another program, not by govbus's broker "
                        f"in {self.home}; stop it or point GOVBUS_KAFKA_BOOTSTRAP at that cluster"
                    )
            java = _require_java()
            self.fetch_jars(progress)
            self._write_config()
            if not (self.data / "meta.properties").exists():
                progress("formatting KRaft storage")
                self._format_storage(java)
            progress(f"starting Kafka on {self.bootstrap}")
            pid = self._spawn(java)
            self._wait_serving(pid, timeout_s)
            progress(f"Kafka is serving on {self.bootstrap} (pid {pid})")
            return True

    def down(self, progress: Progress = _silent, timeout_s: float = STOP_TIMEOUT_S) -> bool:
        """Stop the broker this home started; return False when none was running."""
        with self._lock():
            pid = self._our_pid()
            if pid is None:
                self._refuse_if_running_elsewhere()
                self.pid_file.unlink(missing_ok=True)
                self.ports_file.unlink(missing_ok=True)
                progress("Kafka is not running")
                return False
            progress(f"stopping Kafka (pid {pid})")
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout_s
            while process_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.2)
            if process_alive(pid):
                log.warning("kafka.stop.forced", pid=pid, waited_s=timeout_s)
                os.kill(pid, signal.SIGKILL)
                while process_alive(pid):
                    time.sleep(0.1)
            reap(pid)
            self.pid_file.unlink(missing_ok=True)
            self.ports_file.unlink(missing_ok=True)
            progress("Kafka stopped")
            return True

    def status(self) -> BrokerStatus:
        """Whether our broker process runs on the asked-for ports and answers metadata requests."""
        running = self._home_broker()
        if running is None:
            return BrokerStatus(running=False, serving=False, pid=None, bootstrap=self.bootstrap)
        pid, port = running
        if not self._is_asked_for(port):
            return BrokerStatus(
                running=False, serving=False, pid=pid, bootstrap=self.bootstrap, other_port=port
            )
        serving = metadata_answers(self.bootstrap, timeout_s=3.0)
        return BrokerStatus(running=True, serving=serving, pid=pid, bootstrap=self.bootstrap)

    def recorded_port(self) -> int | None:
        """The client port recorded when this home's broker was last started (None: nothing recorded)."""
        try:
            return int(json.loads(self.ports_file.read_text())["port"])
        except (FileNotFoundError, ValueError, KeyError, TypeError):
            return None

    def log_tail(self, lines: int = _LOG_TAIL_LINES) -> str:
        """The last lines of the broker's logs, for error messages."""
        chunks: list[str] = []
        for name in ("kafka.out", "server.log"):
            path = self.logs / name
            if path.exists():
                text = path.read_text(errors="replace").splitlines()[-lines:]
                chunks.append(f"--- {path} ---\n" + "\n".join(text))
        return "\n".join(chunks)

    # -- internals --------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        """Serialise up/down between processes (several test sessions may share one broker)."""
        with (self.home / ".lock").open("w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _our_pid(self) -> int | None:
        """The recorded pid if that process is still our ``kafka.Kafka`` JVM, on the asked-for ports."""
        running = self._home_broker()
        if running is None or not self._is_asked_for(running[1]):
            return None
        return running[0]

    def _home_broker(self) -> tuple[int, int | None] | None:
        """The pid of this home's running ``kafka.Kafka`` JVM and the client port recorded for it."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return None
        args = [part.decode(errors="replace") for part in cmdline]
        if "kafka.Kafka" in args and str(self.config / "server.properties") in args:
            return pid, self.recorded_port()
        return None

    def _is_asked_for(self, port: int | None) -> bool:
        # A broker started before govbus recorded ports has no record; it was started on the asked-for
        # port then, because nothing else could start it.
        return port is None or port == self.port

    def _refuse_if_running_elsewhere(self) -> None:
        running = self._home_broker()
        if running is not None and not self._is_asked_for(running[1]):
            pid, port = running
            raise LocalKafkaError(
                f"the broker of {self.home} runs on 127.0.0.1:{port} (pid {pid}), not on {self.bootstrap}; "
                f"stop it with `GOVBUS_KAFKA_BOOTSTRAP=127.0.0.1:{port} govbus kafka down`, or give a "
                "second broker a GOVBUS_HOME of its own"
            )

    def _write_config(self) -> None:
        self.config.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(parents=True, exist_ok=True)
        template = (DEPLOY_DIR / "server.properties").read_text()
        rendered = template.format(
            port=self.port, controller_port=self.controller_port, data_dir=self.data.as_posix()
        )
        (self.config / "server.properties").write_text(rendered)
        shutil.copyfile(DEPLOY_DIR / "log4j2.properties", self.config / "log4j2.properties")

    def _classpath(self) -> str:
        if not any(self.libs.glob("kafka_2.13-*.jar")):
            raise LocalKafkaError(f"no Kafka jars in {self.libs}; run `make setup` or `govbus kafka up`")
        return f"{self.libs}/*"

    def _java_args(self, java: str) -> list[str]:
        return [
            java,
            "-Xms256m",
            "-Xmx1g",
            # Kafka's own start script's JVM options (KAFKA_JVM_PERFORMANCE_OPTS): G1 aiming at 20 ms
            # pauses instead of its default 200 ms, which a consumer waits out as latency.
            "-server",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-XX:InitiatingHeapOccupancyPercent=35",
            "-XX:+ExplicitGCInvokesConcurrent",
            "-XX:MaxInlineLevel=15",
            "-Djava.awt.headless=true",
            f"-Dkafka.logs.dir={self.logs}",
            f"-Dlog4j2.configurationFile={self.config / 'log4j2.properties'}",
            "-cp",
            self._classpath(),
        ]

    def _format_storage(self, java: str) -> None:
        args = storage_format_args(new_cluster_id(), self.config / "server.properties")
        result = subprocess.run(
            [*self._java_args(java), *args],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            tail = "\n".join((result.stdout + result.stderr).splitlines()[-_LOG_TAIL_LINES:])
            raise LocalKafkaError(f"formatting KRaft storage failed (exit {result.returncode})", tail)

    def _spawn(self, java: str) -> int:
        self.ports_file.write_text(
            json.dumps({"port": self.port, "controller_port": self.controller_port}) + "\n"
        )
        out = (self.logs / "kafka.out").open("ab")
        with out:
            process = subprocess.Popen(
                [*self._java_args(java), "kafka.Kafka", str(self.config / "server.properties")],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.home,
                start_new_session=True,
            )
        self.pid_file.write_text(f"{process.pid}\n")
        return process.pid

    def _wait_serving(self, pid: int, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not process_alive(pid):
                reap(pid)
                self.pid_file.unlink(missing_ok=True)
                raise LocalKafkaError("Kafka exited while starting", self.log_tail())
            if port_open(self.port) and metadata_answers(self.bootstrap, timeout_s=2.0):
                return
            time.sleep(0.3)
        raise LocalKafkaError(
            f"Kafka did not answer on {self.bootstrap} within {timeout_s:.0f}s", self.log_tail()
        )


def local_port(bootstrap: str) -> int | None:
    """The port of the first bootstrap address when it is on this machine (127.0.0.1 or localhost)."""
    parts = urlsplit(f"//{bootstrap.split(',', maxsplit=1)[0].strip()}")
    try:
        port = parts.port
    except ValueError:
        return None
    return port if parts.hostname in ("127.0.0.1", "localhost") else None


def new_cluster_id() -> str:
    """A fresh KRaft cluster id: 16 random bytes in url-safe base64 (22 characters, may begin with ``-``)."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()


def storage_format_args(cluster_id: str, config: Path) -> list[str]:
    """The ``kafka.tools.StorageTool`` arguments that format a standalone KRaft node's storage.

    Each value is joined to its option with ``=``: a cluster id beginning with ``-`` (one in 64 generated
    ids) would otherwise be read as an option, and formatting would fail.
    """
    return [
        "kafka.tools.StorageTool",
        "format",
        "--standalone",
        f"--cluster-id={cluster_id}",
        f"--config={config}",
    ]


def probe_admin(config: Mapping[str, ConfigValue]) -> AdminClient:
    """An admin client for probes (is it up? who consumes?) whose librdkafka log lines are dropped.

    A probe asks while the cluster may still be starting: librdkafka reports every refused connection,
    and purged background events when the client is destroyed; none of that is news to the caller.
    """
    # The stubs type config values as scalars, but librdkafka's binding accepts a logging.Logger here.
    return AdminClient({**config, "logger": _QUIET})  # type: ignore[dict-item]


def metadata_answers(bootstrap: str, timeout_s: float) -> bool:
    """True when a cluster at ``bootstrap`` answers a metadata request in time."""
    try:
        probe_admin({"bootstrap.servers": bootstrap}).list_topics(timeout=timeout_s)
    except Exception:
        return False
    return True


_QUIET = logging.getLogger("govbus.kafka.probe")
_QUIET.addHandler(logging.NullHandler())
_QUIET.propagate = False


def _require_java() -> str:
    java = shutil.which("java")
    if java is None:
        raise ConfigurationError(
            "Java is not on PATH; Kafka needs a JDK 17+ (Debian: apt-get install openjdk-17-jre)"
        )
    return java


def port_open(port: int) -> bool:
    """True when something accepts TCP connections on 127.0.0.1:``port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def reap(pid: int) -> None:
    """Collect the exit status when ``pid`` was this process's child (no zombie left behind)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


def process_alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie, exited but not yet collected, counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie child still answers kill(0); treat it as dead.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0]
    except (OSError, IndexError):
        return False
    return state != "Z"
