"""What a command checks before it starts work: does Kafka answer, does the schema registry answer.

Each check fails within seconds with one sentence that names what is wrong and the command that fixes
it, instead of leaving librdkafka or httpx to retry (and report) for as long as the command runs.
"""

from __future__ import annotations

from bus.errors import ConfigurationError, KafkaUnavailableError, RegistryError
from bus.kafka_config import require_broker
from bus.settings import Settings
from govbus.bootstrap import build_connection, build_registry_client

START_KAFKA = (
    "start the local broker with `govbus kafka up` or the whole local stack with `govbus up`, "
    "or set GOVBUS_KAFKA_BOOTSTRAP to a running cluster"
)
START_REGISTRY = (
    "start the gateway, which serves it, with `govbus gateway` or the whole local stack with `govbus up`, "
    "or set GOVBUS_REGISTRY_URL"
)


def require_kafka(settings: Settings, why: str = "") -> None:
    """Raise KafkaUnavailableError, saying how to start Kafka, unless the cluster answers in a few seconds."""
    try:
        require_broker(build_connection(settings, "govbus-probe"))
    except KafkaUnavailableError as exc:
        because = f", and {why}" if why else ""
        raise KafkaUnavailableError(f"{exc}{because}: {START_KAFKA}", exc.bootstrap) from exc


def require_registry(settings: Settings) -> None:
    """Raise ConfigurationError, saying how to start the registry, unless it answers a listing of subjects."""
    client = build_registry_client(settings)
    try:
        client.subjects()
    except RegistryError as exc:
        if exc.status == 0:  # no HTTP answer at all
            raise ConfigurationError(
                f"the schema registry at {client.base_url} is unreachable ({exc.__cause__}): {START_REGISTRY}"
            ) from exc
        if exc.status in (401, 403):
            raise ConfigurationError(
                f"the schema registry at {client.base_url} refused this process's credential ({exc}): "
                "set GOVBUS_CREDENTIALS to one from `govbus org add`, or run `govbus up` for development "
                "identities in GOVBUS_HOME"
            ) from exc
        raise ConfigurationError(
            f"{client.base_url} does not answer as a schema registry ({exc}); check GOVBUS_REGISTRY_URL"
        ) from exc
    finally:
        client.close()
