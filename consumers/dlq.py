"""Dead letters: a record a projection cannot apply goes to ``{adapter}.dlq`` with its cause, unchanged.

The original key, value and headers are kept so the record can be replayed once the cause is
fixed; ``govbus_dlq_*`` headers say where it came from and why it was set aside.
"""

from __future__ import annotations

from confluent_kafka import KafkaError, Message, Producer

from bus.errors import PublishError
from bus.kafka_config import KafkaConnection


def dlq_topic(adapter: str) -> str:
    """The dead-letter topic of ``adapter``."""
    return f"{adapter}.dlq"


class DeadLetters:
    """Produces dead letters and waits for their acknowledgement before the caller moves on.

    Every dead letter's delivery report is checked: :meth:`flush` raises when one is still unanswered
    or was refused (a missing DLQ topic, an authorization error), so the caller never records the
    position of a record whose dead letter Kafka does not hold.
    """

    def __init__(self, connection: KafkaConnection, adapter: str, topic_prefix: str = "") -> None:
        self.topic = topic_prefix + dlq_topic(adapter)
        self._adapter = adapter
        self._connection = connection
        self._producer: Producer | None = None
        self._refused: list[KafkaError] = []
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
        self._producer.produce(
            self.topic, key=message.key(), value=message.value(), headers=headers, on_delivery=self._report
        )
        self.count += 1

    def _report(self, error: KafkaError | None, _: Message) -> None:
        if error is not None:
            self._refused.append(error)

    def flush(self, timeout_s: float = 30.0) -> None:
        """Block until every dead letter is acknowledged; raise if one was refused or is still unanswered."""
        if self._producer is None:
            return
        unanswered = self._producer.flush(timeout_s)
        refused, self._refused = self._refused, []
        if unanswered > 0:
            raise PublishError(f"{unanswered} dead letters to {self.topic} unacknowledged after {timeout_s}s")
        if refused:
            raise PublishError(
                f"Kafka refused {len(refused)} dead letters to {self.topic}: {refused[0].str()}"
                " (does the topic exist? `govbus topics create` creates it)"
            )
