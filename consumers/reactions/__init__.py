"""Reactions between agencies: an agency's own events, published because of another agency's events.

A reaction adapter reads another agency's events and publishes its own agency's catalog
events with a ``causationid``: a reported death (``govbus.localgov.ResidentDeceased``) makes finance
suspend the deceased's benefits and personnel retire a deceased civil servant. The decisions are pure
functions (:mod:`consumers.reactions.finance`, :mod:`consumers.reactions.personnel`); the transactional
consume-transform-produce loop that makes them exactly once is :mod:`consumers.reactions.runtime`, and
what is published, and how, :mod:`consumers.reactions.output`.

``REACTIONS`` is the table to route by name, as ``consumers.adapters.ADAPTERS`` is for projections; each
factory takes the connection, the registry client, the catalog and the topic prefix, and returns an
adapter whose ``run(stop)`` consumes and emits until ``stop`` is set.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bus.errors import ConfigurationError
from bus.kafka_config import KafkaConnection
from consumers.reactions import finance, personnel
from consumers.reactions.core import ReactionRules
from consumers.reactions.runtime import BeforeCommit, ReactionAdapter, ReactionStats
from schemas.catalog import Catalog
from schemas.registry_client import RegistryClient

__all__ = ["REACTIONS", "ReactionAdapter", "ReactionStats", "build_reaction"]

RULES: dict[str, ReactionRules[Any]] = {rules.name: rules for rules in (finance.RULES, personnel.RULES)}


def _factory(rules: ReactionRules[Any]) -> Callable[..., ReactionAdapter[Any]]:
    def build(
        connection: KafkaConnection,
        registry: RegistryClient,
        catalog: Catalog,
        topic_prefix: str = "",
        batch_size: int = 500,
        before_commit: BeforeCommit | None = None,
    ) -> ReactionAdapter[Any]:
        return ReactionAdapter(connection, registry, catalog, rules, topic_prefix, batch_size, before_commit)

    return build


REACTIONS: dict[str, Callable[..., ReactionAdapter[Any]]] = {name: _factory(r) for name, r in RULES.items()}


def build_reaction(
    name: str, connection: KafkaConnection, registry: RegistryClient, catalog: Catalog, topic_prefix: str = ""
) -> ReactionAdapter[Any]:
    """The reaction adapter ``name`` (a key of :data:`REACTIONS`)."""
    factory = REACTIONS.get(name)
    if factory is None:
        raise ConfigurationError(f"unknown reaction {name!r}; known: {', '.join(sorted(REACTIONS))}")
    return factory(connection, registry, catalog, topic_prefix)
