"""Settings read from the environment (prefix ``GOVBUS_``), once, in one place.

Nothing here touches the network or the disk at import; :func:`load_settings` is the only reader.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from bus.errors import ConfigurationError

TOPIC_PREFIX = re.compile(r"[A-Za-z0-9._-]{0,100}")
"""What a topic prefix may hold: at most 100 of the characters of a Kafka topic name."""


class Settings(BaseSettings):
    """Everything a govbus process may be configured with."""

    model_config = SettingsConfigDict(env_prefix="GOVBUS_", frozen=True, extra="ignore")

    home: Path = Field(
        default=Path(".govbus"),
        description="Working folder for Kafka jars, data and logs, and the embedded read-model database.",
    )
    kafka_bootstrap: str = Field(default="127.0.0.1:9092", description="Kafka bootstrap servers.")
    registry_url: str = Field(
        default="http://127.0.0.1:8080/registry", description="Base URL of the schema registry API."
    )
    readmodel_url: str = Field(
        default="",
        description=(
            "Read-model store: sqlite:///PATH or postgresql://USER:PASSWORD@HOST:PORT/DB; "
            "empty = SQLite in home."
        ),
    )
    topic_prefix: str = Field(
        default="",
        description="Prefix of every topic name, so environments can share a cluster (e.g. 'staging.').",
        pattern=f"^{TOPIC_PREFIX.pattern}$",
    )
    topic_partitions: int = Field(
        default=3, ge=1, description="Partitions of each topic `govbus topics create` and `govbus up` create."
    )
    topic_replication: int = Field(
        default=1,
        ge=1,
        description="Replication factor of each topic they create (at most the cluster's number of brokers).",
    )
    audit_writer: str = Field(
        default="",
        description=(
            "This gateway's audit writer id (its hash chain in the audit topic); empty = "
            "gateway-<hostname>-<pid>. Two gateways running at once must have distinct ids "
            "(one id would fork its chain)."
        ),
    )
    credentials: SecretStr = Field(
        default=SecretStr(""),
        description=(
            "This process's gateway credential, KEY:SECRET (from `govbus org add`); empty = the development "
            "identity of the organisation from GOVBUS_HOME/credentials.json."
        ),
    )
    log_level: str = Field(default="info", description="Minimum log level: debug, info, warning, error.")
    log_format: str = Field(default="auto", description="auto (JSON unless a TTY), json or console.")

    @property
    def kafka_home(self) -> Path:
        """Where the local broker's jars, data and logs live."""
        return self.home / "kafka"

    @property
    def effective_readmodel_url(self) -> str:
        """The read-model URL, defaulting to an SQLite file under ``home``."""
        return self.readmodel_url or f"sqlite:///{self.home / 'readmodel.sqlite'}"


@lru_cache(maxsize=1)
def load_settings() -> Settings:
    """Read the environment once; later calls return the same object. ConfigurationError naming each
    invalid setting by its variable."""
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"GOVBUS_{'_'.join(str(part) for part in error['loc']).upper()}: {error['msg']}"
            for error in exc.errors()
        )
        raise ConfigurationError(f"invalid settings: {problems}") from None
