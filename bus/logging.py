"""structlog configured once: JSON lines when stderr is not a terminal, coloured console otherwise.

Kafka clients report through :data:`KAFKA_CLIENT_LOG` (see :class:`KafkaClientLog`), never on stderr directly.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

import structlog

if TYPE_CHECKING:
    from confluent_kafka import KafkaError

_configured = False


class _CurrentStderr:
    """Writes to whatever ``sys.stderr`` is at the time of writing, not the stream it was when configured.

    A test runner (or an embedding application) may swap and close stderr streams; binding the stream once
    would then make every later log line fail on a closed file.
    """

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


_CURRENT_STDERR = _CurrentStderr()


def configure_logging(level: str = "info", fmt: str = "auto") -> None:
    """Configure structlog and the stdlib root logger; later calls are no-ops."""
    global _configured  # noqa: PLW0603 - configuration is process-wide by nature
    if _configured:
        return
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        numeric = logging.INFO
    render_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer() if render_json else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=_CURRENT_STDERR),  # type: ignore[arg-type]
        cache_logger_on_first_use=True,
    )
    logging.basicConfig(level=numeric, stream=_CURRENT_STDERR, format="%(levelname)s %(name)s %(message)s")
    # httpx logs every request at INFO: noise in a CLI's output, and URLs may carry ids of citizens.
    logging.getLogger("httpx").setLevel(max(numeric, logging.WARNING))
    _configured = True


REPEAT_WINDOW_S = 30.0
_MAX_REMEMBERED = 1000
_DIGITS = re.compile(r"\d+")
_THREAD = re.compile(r"^\[thrd:[^\]]*\]: ")


class LogSink(Protocol):
    """The slice of a structlog logger that :class:`KafkaClientLog` writes to."""

    def debug(self, event: str, **fields: Any) -> Any:
        """Log at debug level."""
        ...

    def warning(self, event: str, **fields: Any) -> Any:
        """Log at warning level."""
        ...

    def error(self, event: str, **fields: Any) -> Any:
        """Log at error level."""
        ...


class KafkaClientLog:
    """librdkafka's log lines and error events, through structlog instead of raw lines on stderr.

    confluent-kafka calls :meth:`log` (it is given as the ``logger`` config key, so it receives
    ``log(level, "%s [%s] %s", facility, client, text)`` with a :mod:`logging` level) and :meth:`error`
    (the ``error_cb``), both from inside the client's poll/flush/consume calls. Lines below WARNING are
    logged at debug level. Warnings and errors are logged at warning level, but a line that repeats
    within :data:`REPEAT_WINDOW_S` is only counted: a broker that is down makes every client report the
    same refused connection several times a second, and through both the log and the error event. The
    next time the line is let through it carries ``repeated``, the count held back since.
    """

    def __init__(
        self,
        window_s: float = REPEAT_WINDOW_S,
        clock: Callable[[], float] = time.monotonic,
        sink: LogSink | None = None,
    ) -> None:
        self._window_s = window_s
        self._clock = clock
        self._lock = threading.Lock()
        # Per line (digits blanked, so "after 0ms" and "after 3ms" are one line): when it was last
        # let through, and how many times it was held back since.
        self._seen: dict[str, tuple[float, int]] = {}
        self._log: LogSink = sink or structlog.get_logger("librdkafka")

    def log(self, level: int, message: str, *args: object) -> None:
        """A librdkafka log line (confluent-kafka's ``logger`` interface)."""
        if len(args) == 3:
            facility, client, text = (str(arg) for arg in args)
        else:
            facility, client, text = "", "", message % args
        # The internal thread's name says nothing to a reader, and without it a line matches the
        # error event that reports the same failure.
        text = _THREAD.sub("", text, count=1)
        if level < logging.WARNING:
            self._log.debug("kafka.client.log", client=client, facility=facility, message=text)
            return
        repeated = self._admit(text)
        if repeated is not None:
            self._log.warning(
                "kafka.client.log", client=client, facility=facility, message=text, **_repeats(repeated)
            )

    def error(self, error: KafkaError) -> None:
        """A librdkafka error event (confluent-kafka's ``error_cb``); a fatal one is never held back."""
        if error.fatal():
            self._log.error("kafka.client.error", code=error.name(), message=error.str(), fatal=True)
            return
        repeated = self._admit(error.str())
        if repeated is not None:
            self._log.warning(
                "kafka.client.error", code=error.name(), message=error.str(), **_repeats(repeated)
            )

    def _admit(self, text: str) -> int | None:
        """How many times ``text`` was held back since it was last let through, or None to hold it back."""
        key = _DIGITS.sub("#", text)
        now = self._clock()
        with self._lock:
            last = self._seen.get(key)
            if last is not None and now - last[0] < self._window_s:
                self._seen[key] = (last[0], last[1] + 1)
                return None
            if len(self._seen) >= _MAX_REMEMBERED:
                self._seen.clear()
            self._seen[key] = (now, 0)
            return 0 if last is None else last[1]


def _repeats(count: int) -> dict[str, Any]:
    return {"repeated": count} if count else {}


#: The one log every Kafka client of this process reports to (see :mod:`bus.kafka_config`).
KAFKA_CLIENT_LOG = KafkaClientLog()
