"""Keeping a registry in step with the catalog: register every event schema, or check that one would pass."""

from __future__ import annotations

from dataclasses import dataclass

from bus.errors import RegistryError
from schemas.catalog import Catalog
from schemas.registry_client import RegistryClient

CATALOG_COMPATIBILITY = "BACKWARD_TRANSITIVE"


@dataclass(frozen=True)
class Registered:
    """The outcome of registering one catalog subject."""

    subject: str
    schema_id: int
    version: int


def register_catalog(client: RegistryClient, catalog: Catalog) -> list[Registered]:
    """Register every catalog schema (idempotent); new subjects get BACKWARD_TRANSITIVE."""
    known = set(client.subjects())
    results: list[Registered] = []
    for event in catalog:
        if event.subject not in known:
            client.set_compatibility(CATALOG_COMPATIBILITY, event.subject)
        schema_id = client.register(event.subject, event.schema_text)
        version = int(client.latest(event.subject)["version"])
        results.append(Registered(event.subject, schema_id, version))
    return results


def check_catalog(client: RegistryClient, catalog: Catalog) -> dict[str, list[str]]:
    """Subject → reasons, for every local schema the registry would refuse (empty dict: all pass)."""
    known = set(client.subjects())
    refused: dict[str, list[str]] = {}
    for event in catalog:
        if event.subject not in known:
            continue
        try:
            compatible, messages = client.test_compatibility(event.subject, event.schema_text)
        except RegistryError as exc:
            refused[event.subject] = [str(exc)]
            continue
        if not compatible:
            refused[event.subject] = messages or ["incompatible (the registry gave no reason)"]
    return refused
