"""The govbus exception tree. Every error the bus raises on purpose derives from :class:`GovbusError`.

::

    GovbusError
    ├── ConfigurationError          bad settings or a missing tool (java, mvn)
    ├── KafkaUnavailableError       no Kafka cluster answers at the bootstrap address
    ├── LocalKafkaError             the embedded broker could not start, stop or answer
    ├── SchemaError
    │   ├── InvalidSchemaError      a schema text that is not valid Avro
    │   ├── SchemaNotFoundError     an unknown subject, version or id
    │   └── IncompatibleSchemaError a change the compatibility level refuses
    ├── RegistryError               the registry answered with an error (carries status and error_code)
    ├── SerializationError          a value that does not fit its schema, or bytes that are not wire format
    ├── PublishError                Kafka refused or lost a record
    │   └── UnknownTopicError       the record's topic does not exist
    └── ProjectionError             a consumed event could not be applied to a read model

Errors carry their context as attributes so that callers can log or map them without parsing messages.
"""

from __future__ import annotations


class GovbusError(Exception):
    """Root of every error govbus raises on purpose."""


class ConfigurationError(GovbusError):
    """A setting is invalid or a required tool is missing."""


class KafkaUnavailableError(GovbusError):
    """No Kafka cluster answered at the bootstrap address within the deadline."""

    def __init__(self, message: str, bootstrap: str) -> None:
        super().__init__(message)
        self.bootstrap = bootstrap


class LocalKafkaError(GovbusError):
    """The local broker could not be fetched, started, stopped or reached."""

    def __init__(self, message: str, log_tail: str = "") -> None:
        super().__init__(message)
        self.log_tail = log_tail


class SchemaError(GovbusError):
    """A problem with a schema or the catalog."""


class InvalidSchemaError(SchemaError):
    """A schema text that is not a valid Avro schema."""


class SchemaNotFoundError(SchemaError):
    """An unknown subject, version or schema id."""


class IncompatibleSchemaError(SchemaError):
    """A schema change that the subject's compatibility level refuses."""

    def __init__(self, subject: str, messages: list[str]) -> None:
        super().__init__(f"schema for subject {subject!r} is incompatible: " + "; ".join(messages))
        self.subject = subject
        self.messages = messages


class RegistryError(GovbusError):
    """The schema registry answered a request with an error."""

    def __init__(self, message: str, status: int, error_code: int) -> None:
        super().__init__(message)
        self.status = status
        self.error_code = error_code


class SerializationError(GovbusError):
    """A value does not fit its schema, or bytes are not a valid Confluent wire-format message."""


class PublishError(GovbusError):
    """Kafka refused a record or failed to acknowledge it."""


class UnknownTopicError(PublishError):
    """A topic a client needs does not exist (the brokers do not create topics on first use)."""

    def __init__(self, message: str, topic: str) -> None:
        super().__init__(message)
        self.topic = topic


class ProjectionError(GovbusError):
    """A consumed event could not be applied to a read model."""
