"""A typed, frozen Kafka connection config rendered to librdkafka keys; clients are created by callers."""

from __future__ import annotations

from dataclasses import dataclass, field

ConfigValue = str | int | float | bool
Config = dict[str, ConfigValue]


@dataclass(frozen=True)
class KafkaConnection:
    """How to reach a Kafka cluster, plus the settings every govbus client shares."""

    bootstrap_servers: str
    client_id: str = "govbus"
    extra: Config = field(default_factory=dict)

    def common(self) -> Config:
        """Keys shared by producers, consumers and admin clients."""
        return {"bootstrap.servers": self.bootstrap_servers, "client.id": self.client_id, **self.extra}

    def producer(self, **overrides: ConfigValue) -> Config:
        """An idempotent, acks=all producer: no loss, no duplicates from retries, order kept per key."""
        return {
            **self.common(),
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 5,
            "compression.type": "lz4",
            **overrides,
        }

    def consumer(self, group_id: str, **overrides: ConfigValue) -> Config:
        """A consumer that never auto-commits: positions are stored by the caller (with the read model)."""
        return {
            **self.common(),
            "group.id": group_id,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
            **overrides,
        }

    def admin(self) -> Config:
        """Admin client keys."""
        return self.common()
