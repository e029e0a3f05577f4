"""Bad input to ``govbus readmodel rebuild|dump NAME`` and ``govbus consume NAME``, run as a user runs them.

Every case must end within seconds with exit code 1 and one line on stderr naming the problem: never
a traceback, never a hang, and never the password of a read-model URL. Adapter names come as argv
(empty, percent-encoded, bytes that are not UTF-8, 5,000 characters, unknown); read-model URLs as
``GOVBUS_READMODEL_URL``. ``consume`` asks Kafka and the registry before it opens the store, so its URL
cases run against the session's broker and a gateway of this module's own; everything else has nothing
listening at the Kafka and registry addresses.

The commands of a group start together (a few at a time) when its first test asks for its result, so
the Python start-ups and the 5 s broker probes overlap and the whole file stays well under a minute.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from bus.settings import Settings
from gateway.server import free_port, serve_in_thread
from govbus.bootstrap import build_gateway, build_registry
from tests.support import dev_identities

pytestmark = pytest.mark.e2e

QUICK_S = 15.0
"""Python's start-up and a 5 s broker probe fit well inside this on a busy two-core machine."""
PASSWORD = "s3cretPW"
Arg = str | bytes


@dataclass(frozen=True)
class Run:
    """What a user sees of one command: exit code, stderr and how long it took."""

    code: int
    stdout: str
    stderr: str
    seconds: float


def _govbus(env: dict[str, str], *args: Arg) -> Run:
    """``python -m govbus ARGS`` in a fresh process; a hang fails the test after 30 s."""
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "govbus", *args],
        capture_output=True,
        env={**os.environ, **env},
        timeout=30,
        check=False,
    )
    return Run(result.returncode, _text(result.stdout), _text(result.stderr), time.monotonic() - started)


def _text(output: bytes) -> str:
    return output.decode("utf-8", "backslashreplace")


def _assert_one_line_error(run: Run, phrase: str) -> None:
    assert run.code == 1, (run.code, run.stderr[-2000:])
    assert "Traceback" not in run.stderr, run.stderr[-2000:]
    assert len(run.stderr.splitlines()) == 1, run.stderr[-2000:]
    assert run.stderr.startswith("govbus: error: ")
    assert phrase in run.stderr, run.stderr[:1000]
    assert PASSWORD not in run.stderr
    assert PASSWORD not in run.stdout
    assert run.seconds < QUICK_S


def _nothing_listening(home: Path, readmodel_url: str) -> dict[str, str]:
    return {
        "GOVBUS_HOME": str(home),
        "GOVBUS_KAFKA_BOOTSTRAP": f"127.0.0.1:{free_port()}",
        "GOVBUS_REGISTRY_URL": f"http://127.0.0.1:{free_port()}/registry",
        "GOVBUS_READMODEL_URL": readmodel_url,
        "GOVBUS_TOPIC_PREFIX": "",
        "GOVBUS_LOG_LEVEL": "info",
    }


COMMANDS = {"rebuild": ("readmodel", "rebuild"), "dump": ("readmodel", "dump"), "consume": ("consume",)}
NAMES: dict[str, tuple[Arg, str]] = {
    "empty": ("", "unknown adapter ''"),
    "percent-encoded": ("resid%65nts", "unknown adapter 'resid%65nts'"),
    "lone-surrogate": (os.fsencode("residents\udcff"), "unknown adapter 'residents\\udcff'"),
    "invalid-utf8": (b"\xed\xa0\x80", "unknown adapter '\\udced\\udca0\\udc80'"),
    "5000-chars": ("r" * 5000, "unknown adapter 'rrrr"),
    "unknown": ("nope", "unknown adapter 'nope'; {known}residents"),
}
CLOSED_PORT = free_port()
URLS: dict[str, tuple[str, str]] = {
    "postgres-no-host": ("postgresql://", "cannot connect"),
    "sqlite-no-folder": ("sqlite:////nonexistent-govbus-battery/rm.sqlite", "does not exist"),
    "mysql": ("mysql://x", "unsupported read-model URL 'mysql://x'"),
    "postgres-down-with-password": (
        f"postgresql://app:{PASSWORD}@127.0.0.1:{CLOSED_PORT}/db",
        f"postgresql://app:***@127.0.0.1:{CLOSED_PORT}/db: cannot connect",
    ),
}
"""Run with every command."""
MORE_URLS: dict[str, tuple[str, str]] = {
    "sqlite-no-file": ("sqlite:///", "names no file"),
    "password-in-query": (
        f"postgresql://app@127.0.0.1:{CLOSED_PORT}/db?password={PASSWORD}",
        "?password=***: cannot connect",
    ),
    "unclosed-bracket": (f"postgresql://app:{PASSWORD}@[::1/db", "has a host part that does not parse"),
    "bad-escape": (f"postgresql://app:{PASSWORD}%ZZ@h/db", "invalid percent-encoded token"),
    "5000-char-host": (f"postgresql://app:{PASSWORD}@{'h' * 5000}/db", "is not a valid host name"),
    "not-utf8": (f"postgresql://app:{PASSWORD}@db\udcff/x", "is not valid UTF-8"),
}
"""Run with ``readmodel dump`` only: every command opens its store through the same ``open_store``."""
KAFKA_DOWN = "does not answer within 5s: start the local broker with `govbus kafka up`"


class Battery:
    """Commands started together, a few at a time; each test waits for the result of its own."""

    def __init__(self, workers: int = 4) -> None:
        self._pool = ThreadPoolExecutor(workers)
        self._runs: dict[str, Future[Run]] = {}

    def start(self, case: str, env: dict[str, str], *args: Arg) -> None:
        """Queue ``govbus ARGS`` under ``case``."""
        self._runs[case] = self._pool.submit(_govbus, env, *args)

    def result(self, case: str) -> Run:
        """What the command of ``case`` did, once it has ended."""
        return self._runs[case].result()

    def close(self) -> None:
        """Wait for every command."""
        self._pool.shutdown(wait=True)


@pytest.fixture(scope="module")
def offline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Battery]:
    """Every case with nothing listening at the Kafka and registry addresses, started together."""
    battery = Battery()
    for command in ("rebuild", "consume"):  # the two 5 s probes first, so they overlap the rest
        home = tmp_path_factory.mktemp(f"kafka-down-{command}")
        env = _nothing_listening(home, f"sqlite:///{home / 'rm.sqlite'}")
        battery.start(f"kafka-down-{command}", env, *COMMANDS[command], "residents")
    for name, (arg, _) in NAMES.items():
        for command, argv in COMMANDS.items():
            home = tmp_path_factory.mktemp("name")
            battery.start(
                f"name-{name}-{command}",
                _nothing_listening(home, f"sqlite:///{home / 'rm.sqlite'}"),
                *argv,
                arg,
            )
    for case, (url, _) in URLS.items():
        for command in ("rebuild", "dump"):
            home = tmp_path_factory.mktemp("url")
            battery.start(
                f"url-{case}-{command}", _nothing_listening(home, url), *COMMANDS[command], "residents"
            )
    for case, (url, _) in MORE_URLS.items():
        battery.start(
            f"url-{case}-dump",
            _nothing_listening(tmp_path_factory.mktemp("url"), url),
            *COMMANDS["dump"],
            "residents",
        )
    yield battery
    battery.close()


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize("case", list(NAMES))
def test_a_bad_adapter_name_fails_in_one_line(offline: Battery, case: str, command: str) -> None:
    """A name that is no adapter exits 1 with one line quoting it, before any broker or store is reached."""
    # consume also runs the reactions, so it lists the read models and the reactions apart.
    known = "read models: " if command == "consume" else "known: "
    _assert_one_line_error(offline.result(f"name-{case}-{command}"), NAMES[case][1].replace("{known}", known))


@pytest.mark.parametrize(
    ("case", "command"),
    [
        *((case, command) for case in URLS for command in ("rebuild", "dump")),
        *((c, "dump") for c in MORE_URLS),
    ],
)
def test_a_bad_readmodel_url_fails_in_one_line_without_its_password(
    offline: Battery, case: str, command: str
) -> None:
    """A malformed or unreachable read-model URL is named (password masked) before Kafka is asked."""
    _assert_one_line_error(offline.result(f"url-{case}-{command}"), {**URLS, **MORE_URLS}[case][1])


@pytest.mark.parametrize("command", ["rebuild", "consume"])
def test_kafka_down_fails_in_one_line_naming_the_fix(offline: Battery, command: str) -> None:
    """With nothing at the Kafka address the command says within seconds that Kafka does not answer."""
    _assert_one_line_error(offline.result(f"kafka-down-{command}"), KAFKA_DOWN)


@pytest.fixture(scope="module")
def online(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Battery]:
    """``consume residents`` with each bad URL, with the session's broker and a registry of its own up."""
    name = uuid.uuid4().hex[:10]
    settings = Settings(
        kafka_bootstrap=kafka_bootstrap, topic_prefix=f"t{name}.", home=tmp_path_factory.mktemp("home")
    )
    registry = build_registry(settings, topic=f"_schemas-{name}")
    _, credentials = dev_identities(settings.home)
    with serve_in_thread(build_gateway(settings, registry)) as base:
        battery = Battery()
        for case, (url, _) in URLS.items():
            env = {
                **_nothing_listening(tmp_path_factory.mktemp("consume"), url),
                "GOVBUS_KAFKA_BOOTSTRAP": kafka_bootstrap,
                "GOVBUS_REGISTRY_URL": f"{base}/registry",
                "GOVBUS_CREDENTIALS": credentials["integration"],
            }
            battery.start(case, env, "consume", "residents")
        yield battery
        battery.close()


@pytest.mark.integration
@pytest.mark.parametrize("case", list(URLS))
def test_consume_with_a_bad_readmodel_url_fails_in_one_line_without_its_password(
    online: Battery, case: str
) -> None:
    """With Kafka and the registry up, ``consume`` names a bad read-model URL (password masked)."""
    _assert_one_line_error(online.result(case), URLS[case][1])
