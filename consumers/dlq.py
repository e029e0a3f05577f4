"""Dead letters: a record a projection cannot apply goes to ``{adapter}.dlq`` with its cause, unchanged.

The original key, value and headers are kept so the record can be replayed once the cause is
fixed; ``govbus_dlq_*`` headers say where it came from and why it was set aside.
"""

from __future__ import annotations

from confluent_kafka import Message, Producer

from bus.errors import PublishError
from bus.kafka_config import KafkaConnection


def dlq_topic(adapter: str) -> str:
    """The dead-letter topic of ``adapter``."""
    return f"{adapter}.dlq"


class DeadLetters:
    """Produces dead letters and waits for their acknowledgement before the caller moves on."""

    def __init__(self, connection: KafkaConnection, adapter: str, topic_prefix: str = "") -> None:
        self.topic = topic_prefix + dlq_topic(adapter)
        self._adapter = adapter
        self._connection = connection
        self._producer: Producer | None = None
        self.count = 0

    def send(self, message: Message, cause: BaseException) -> None:
        """Queue ``message`` with ``cause``; call :meth:`flush` before committing its offset."""
        if self._producer is None:
            self._producer = Producer(self._connection.producer())
        original = message.headers() or []
        pairs = original.items() if isinstance(original, dict) else original
        headers: list[tuple[str, str | bytes | None]] = list(pairs)
        headers += [
            ("govbus_dlq_adapter", self._adapter.encode()),
            ("govbus_dlq_topic", str(message.topic()).encode()),
            ("govbus_dlq_partition", str(message.partition()).encode()),
            ("govbus_dlq_offset", str(message.offset()).encode()),
            ("govbus_dlq_error", type(cause).__name__.encode()),
            ("govbus_dlq_reason", str(cause).encode()),
        ]
        self._producer.produce(self.topic, key=message.key(), value=message.value(), headers=headers)
        self.count += 1

    def flush(self, timeout_s: float = 30.0) -> None:
        """Block until every dead letter is acknowledged; raise if Kafka did not take them all."""
        if self._producer is not None and self._producer.flush(timeout_s) > 0:
            raise PublishError(f"dead letters to {self.topic} were not acknowledged within {timeout_s}s")
