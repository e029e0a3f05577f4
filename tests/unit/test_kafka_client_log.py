"""librdkafka's log lines and error events go through structlog: quiet, de-duplicated, never raw on stderr."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from confluent_kafka import KafkaError, Producer

from bus.kafka_config import KafkaConnection
from bus.logging import KafkaClientLog
from gateway.server import free_port

REFUSED = (
    "[thrd:127.0.0.1:9/bootstrap]: 127.0.0.1:9/bootstrap: Connect to ipv4#127.0.0.1:9 failed: "
    "Connection refused (after {ms}ms in state CONNECT)"
)


class RecordingSink:
    """A structlog stand-in that keeps (level, event, fields) of every call."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str, dict[str, Any]]] = []

    def debug(self, event: str, **fields: Any) -> None:
        self.lines.append(("debug", event, fields))

    def warning(self, event: str, **fields: Any) -> None:
        self.lines.append(("warning", event, fields))

    def error(self, event: str, **fields: Any) -> None:
        self.lines.append(("error", event, fields))


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _log_line(client_log: KafkaClientLog, level: int, text: str) -> None:
    """Call the bridge exactly as confluent-kafka's log callback does."""
    client_log.log(level, "%s [%s] %s", "FAIL", "govbus#producer-1", text)


def test_a_repeated_warning_is_logged_once_per_window_with_the_count_held_back() -> None:
    """A refused connection reported 50 times in a window is one line; the next window's line counts 49."""
    sink, clock = RecordingSink(), FakeClock()
    client_log = KafkaClientLog(window_s=30.0, clock=clock, sink=sink)
    for attempt in range(50):
        _log_line(client_log, logging.ERROR, REFUSED.format(ms=attempt % 3))
        clock.now += 0.1
    clock.now += 30.0
    _log_line(client_log, logging.ERROR, REFUSED.format(ms=0))
    assert [(level, fields.get("repeated")) for level, _, fields in sink.lines] == [
        ("warning", None),
        ("warning", 49),
    ]
    assert sink.lines[0][2]["message"] == REFUSED.format(ms=0).split("]: ", 1)[1]


def test_the_error_event_of_a_logged_failure_is_held_back_as_a_repeat() -> None:
    """A log line and the error_cb event for one refused connection make one warning, not two."""
    sink = RecordingSink()
    client_log = KafkaClientLog(sink=sink)
    _log_line(client_log, logging.ERROR, REFUSED.format(ms=0))
    client_log.error(KafkaError(KafkaError._TRANSPORT, REFUSED.format(ms=1).split("]: ", 1)[1]))
    assert len(sink.lines) == 1


def test_informational_lines_are_debug_and_never_held_back() -> None:
    """Lines below WARNING go to debug level every time, whatever repeats."""
    sink = RecordingSink()
    client_log = KafkaClientLog(sink=sink)
    for _ in range(3):
        _log_line(client_log, logging.INFO, "[thrd:main]: Group coordinator changed")
    assert [level for level, _, _ in sink.lines] == ["debug", "debug", "debug"]


def test_a_fatal_error_is_logged_at_error_level_every_time() -> None:
    """A fatal error event is never de-duplicated and is logged as an error."""
    sink = RecordingSink()
    client_log = KafkaClientLog(sink=sink)
    fatal = KafkaError(KafkaError._FENCED, "Producer fenced by newer instance", fatal=True)
    client_log.error(fatal)
    client_log.error(fatal)
    assert [(level, fields["fatal"]) for level, _, fields in sink.lines] == [("error", True), ("error", True)]


def test_a_client_with_the_rendered_config_writes_nothing_raw_on_stderr(
    capfd: pytest.CaptureFixture[str],
) -> None:
    """A real producer that cannot reach any broker leaves no librdkafka line on the process's stderr."""
    producer = Producer(KafkaConnection(f"127.0.0.1:{free_port()}").producer())
    producer.produce("anything", b"value")
    producer.flush(2.0)
    del producer
    captured = capfd.readouterr()
    # librdkafka's own format is "%LEVEL|TIMESTAMP|FACILITY|CLIENT| text".
    assert "|FAIL|" not in captured.err + captured.out
