"""Reading librdkafka's delivery reports: only an offset confirms that Kafka holds a record.

An idempotent librdkafka producer keeps several batches of a partition in flight. When a batch fails
and a later one of the same partition succeeds, librdkafka reports the failed batch's records as
delivered too ("implicitly acked by subsequent batch success"), without an offset. That is not proof:
a broker that has just become a partition's leader refused a first batch ("not leader") and accepted
the next, having no sequence numbers to hold it to, and the first batch's records were reported
delivered and were not in the log. So govbus counts a report without an offset as a failed delivery;
whoever sends the record again relies on consumers dropping a copy by its event id.
"""

from __future__ import annotations

from confluent_kafka import KafkaError, Message

UNCONFIRMED = (
    "reported delivered without an offset (librdkafka inferred it from a later batch of the partition), "
    "which does not prove that Kafka holds it"
)
"""The failure reason of a delivery report that has no error and no offset."""


def delivery_failure(error: KafkaError | None, message: Message) -> str | None:
    """Why a delivery report does not confirm its record, or None when it does (it has an offset)."""
    if error is not None:
        return str(error.str())
    if message.offset() is None:
        return UNCONFIRMED
    return None
