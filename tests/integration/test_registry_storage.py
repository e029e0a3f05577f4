"""The registry's Kafka storage: the log contract, restarts, instances that agree, a compacted topic."""

from __future__ import annotations

import json
import threading
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from confluent_kafka.admin import AdminClient, ConfigResource, ResourceType  # type: ignore[attr-defined]

from bus.errors import RegistryError
from bus.kafka_config import KafkaConnection
from bus.settings import Settings
from gateway.server import serve_in_thread
from govbus.bootstrap import build_gateway
from schemas.catalog import load_catalog
from schemas.catalog_sync import CATALOG_COMPATIBILITY
from schemas.registry.log import KafkaRegistryLog, RegistryLog
from schemas.registry.service import SchemaRegistry
from tests.support import bearer, dev_identities, wait_for
from tests.unit.test_registry_log import RegistryLogContract

pytestmark = pytest.mark.integration

ADDRESS = load_catalog().get("govbus.localgov.ResidentMoved").schema["fields"][1]["type"]


class TestKafkaRegistryLog(RegistryLogContract):
    """The log contract on a topic of the session's broker."""

    @pytest.fixture
    def storage(self, kafka_bootstrap: str, unique_name: str) -> tuple[str, str]:
        """The bootstrap and a topic of this test's own."""
        return kafka_bootstrap, f"_schemas-{unique_name}"

    def open_log(self, storage: tuple[str, str]) -> RegistryLog:
        """A Kafka log on the shared topic."""
        bootstrap, topic = storage
        return KafkaRegistryLog(KafkaConnection(bootstrap, client_id="govbus-registry-test"), topic)

    def compact(self, storage: tuple[str, str]) -> None:
        """Nothing: Kafka's cleaner compacts on its own schedule; the replay reads the whole history."""


def _record(name: str, *fields: dict[str, Any]) -> dict[str, Any]:
    return {
        "schema": json.dumps(
            {"type": "record", "name": name, "namespace": "t.storage", "fields": list(fields)}
        )
    }


def _primitive(kind: str) -> dict[str, Any]:
    return {"schema": json.dumps(kind)}


def _started(bootstrap: str, topic: str) -> SchemaRegistry:
    registry = SchemaRegistry.from_kafka(bootstrap, topic=topic)
    registry.start()
    return registry


def _or_missing(call: Any, *args: Any) -> Any:
    """The answer, or ("missing", error code) when the registry answers 404."""
    try:
        return call(*args)
    except RegistryError as exc:
        if exc.status != 404:
            raise
        return ("missing", exc.error_code)


def snapshot(registry: SchemaRegistry, extra_names: tuple[str, ...] = ()) -> dict[str, Any]:
    """Everything the public methods tell about subjects, versions, ids, schemas, configs and modes."""
    every = registry.subjects(deleted=True)
    versions: dict[str, Any] = {}
    ids: set[int] = set()
    for subject in every:
        entries = []
        for number in registry.versions(subject, deleted=True):
            entry = registry.version(subject, number, deleted=True)
            entries.append(
                (entry.version, entry.schema_id, entry.schema.text, entry.schema.references, entry.deleted)
            )
            ids.add(entry.schema_id)
        versions[subject] = {
            "all": entries,
            "live": _or_missing(registry.versions, subject),
            "latest": _or_missing(lambda s: registry.version(s, "latest").schema_id, subject),
        }
    names = (*every, *extra_names)
    return {
        "subjects": registry.subjects(),
        "subjects_with_deleted": every,
        "versions": versions,
        "schemas": {i: registry.schema(i) for i in sorted(ids)},
        "users": {i: registry.schema_users(i, deleted=True) for i in sorted(ids)},
        "live_users": {i: registry.schema_users(i) for i in sorted(ids)},
        "global_config": registry.compatibility(None),
        "global_mode": registry.mode(None),
        "configs": {s: _or_missing(registry.compatibility, s) for s in names},
        "modes": {s: _or_missing(registry.mode, s) for s in names},
    }


def test_state_survives_a_restart(kafka_bootstrap: str, unique_name: str) -> None:
    """A new instance on the same topic rebuilds every subject, version, id, schema, config and mode."""
    topic = f"_schemas-{unique_name}"
    registry = _started(kafka_bootstrap, topic)
    ids: list[int] = []
    try:
        for event in load_catalog():
            registry.set_compatibility(event.subject, CATALOG_COMPATIBILITY)
            ids.append(registry.register(event.subject, {"schema": event.schema_text}))

        # Several versions, one soft-deleted, under a subject of its own level.
        registry.set_compatibility("extra-primitives", "NONE")
        ids += [
            registry.register("extra-primitives", _primitive(k)) for k in ("string", "int", "long", "bytes")
        ]
        assert registry.delete_version("extra-primitives", 2) == 2

        # A record evolving backward-compatibly, and a schema that references another subject's version.
        base = {"name": "id", "type": "string"}
        ids.append(registry.register("extra-record", _record("Thing", base)))
        ids.append(
            registry.register(
                "extra-record", _record("Thing", base, {"name": "n", "type": "int", "default": 0})
            )
        )
        ids.append(registry.register("extra-address", {"schema": json.dumps(ADDRESS)}))
        ids.append(
            registry.register(
                "extra-with-ref",
                {
                    "schema": json.dumps(
                        {
                            "type": "record",
                            "name": "Home",
                            "namespace": "t.storage",
                            "fields": [{"name": "address", "type": "govbus.common.Address"}],
                        }
                    ),
                    "references": [
                        {"name": "govbus.common.Address", "subject": "extra-address", "version": 1}
                    ],
                },
            )
        )

        # A whole subject soft-deleted, with a level set and then removed again.
        ids.append(registry.register("extra-gone", _record("Gone", base)))
        registry.set_compatibility("extra-gone", "FORWARD")
        assert registry.delete_compatibility("extra-gone") == "FORWARD"
        assert registry.delete_subject("extra-gone") == [1]

        # A subject permanently deleted (its config and mode go with it).
        ids.append(registry.register("extra-purged", _record("Purged", base)))
        registry.set_compatibility("extra-purged", "FULL")
        registry.set_mode("extra-purged", "IMPORT")
        registry.delete_subject("extra-purged")
        assert registry.delete_subject("extra-purged", permanent=True) == [1]

        # Configs and modes without versions, and global ones.
        registry.set_compatibility("config-only", "FULL_TRANSITIVE")
        registry.set_mode("mode-only", "IMPORT")
        registry.set_mode("extra-record", "READONLY")
        registry.set_compatibility(None, "FORWARD_TRANSITIVE")
        registry.set_mode(None, "READWRITE")

        # Last: the highest id ever handed out, then permanently deleted.
        highest = registry.register("extra-primitives", _primitive("double"))
        ids.append(highest)
        assert highest == max(ids)
        registry.delete_version("extra-primitives", 5)
        registry.delete_version("extra-primitives", 5, permanent=True)
        with pytest.raises(RegistryError):
            registry.schema(highest)

        names = ("config-only", "mode-only", "extra-purged")
        before = snapshot(registry, names)
    finally:
        registry.close()

    assert before["configs"]["extra-purged"] == ("missing", 40408)
    assert before["modes"]["extra-record"] == "READONLY"
    assert before["versions"]["extra-primitives"]["live"] == [1, 3, 4]
    assert before["versions"]["extra-gone"]["live"] == ("missing", 40401)
    assert before["global_config"] == "FORWARD_TRANSITIVE"
    assert len(before["subjects"]) == len(load_catalog()) + 4

    restarted = _started(kafka_bootstrap, topic)
    try:
        after = snapshot(restarted, names)
        for key in before:
            assert after[key] == before[key], key
        assert after == before
        new_id = restarted.register("extra-primitives", _primitive("float"))
        assert new_id > max(ids)
        assert restarted.versions("extra-primitives") == [1, 3, 4, 5]
    finally:
        restarted.close()


def _settings(bootstrap: str, home: Path) -> Settings:
    # Gateways running at once need their own audit writer ids (the second would fence the first).
    return Settings(
        kafka_bootstrap=bootstrap,
        readmodel_url=f"sqlite:///{home / 'rm.sqlite'}",
        home=home,
        audit_writer=f"gateway-test-{home.name}",
    )


@pytest.fixture
def two_gateways(
    kafka_bootstrap: str, unique_name: str, tmp_path: Path
) -> Iterator[tuple[httpx.Client, ...]]:
    """HTTP clients on two gateways, each with its own SchemaRegistry on one shared topic."""
    topic = f"_schemas-{unique_name}"
    apps, headers = [], []
    for name in ("a", "b"):
        home = tmp_path / name
        headers.append(bearer(dev_identities(home)[1]["integration"]))
        apps.append(
            build_gateway(_settings(kafka_bootstrap, home), SchemaRegistry.from_kafka(kafka_bootstrap, topic))
        )
    with (
        serve_in_thread(apps[0]) as first,
        serve_in_thread(apps[1]) as second,
        httpx.Client(base_url=f"{first}/registry", timeout=60, headers=headers[0]) as a,
        httpx.Client(base_url=f"{second}/registry", timeout=60, headers=headers[1]) as b,
    ):
        yield a, b


def _post(client: httpx.Client, subject: str, schema: dict[str, Any]) -> int:
    response = client.post(f"/subjects/{quote(subject, safe='')}/versions", json=schema)
    assert response.status_code == 200, response.text
    return int(response.json()["id"])


def _http_snapshot(client: httpx.Client) -> dict[str, list[tuple[int, int, str]]]:
    """Subject → [(version, id, schema)] as one gateway reports it."""
    result = {}
    for subject in client.get("/subjects").json():
        path = quote(subject, safe="")
        entries = []
        for version in client.get(f"/subjects/{path}/versions").json():
            body = client.get(f"/subjects/{path}/versions/{version}").json()
            entries.append((body["version"], body["id"], body["schema"]))
        result[subject] = entries
    return result


def test_two_instances_on_one_topic_agree(two_gateways: tuple[httpx.Client, httpx.Client]) -> None:
    """Alternate and concurrent writes through two instances never hand out an id or version twice."""
    a, b = two_gateways
    assert a.put("/config", json={"compatibility": "NONE"}).status_code == 200
    registered: list[tuple[str, str, int]] = []  # (subject, schema text, id the caller got)
    lock = threading.Lock()

    # Alternating: each write goes to the other instance than the one before it.
    for i in range(6):
        client = (a, b)[i % 2]
        schema = _record(f"Alt{i}", {"name": "f", "type": "string"})
        registered.append(("alternating", schema["schema"], _post(client, "alternating", schema)))
    assert wait_for(lambda: b.get("/subjects/alternating/versions").json() == list(range(1, 7)), 20)

    failures: list[BaseException] = []

    def writer(name: str, client: httpx.Client) -> None:
        try:
            for i in range(20):
                if i % 4 == 3:  # the same schema from both instances, under each one's own subject
                    subject, schema = f"common-{name}", _record(f"Common{i}", {"name": "c", "type": "int"})
                elif i % 2:
                    subject, schema = f"own-{name}", _record(f"Own{name}{i}", {"name": "o", "type": "long"})
                else:
                    subject, schema = (
                        f"shared-{i % 3}",
                        _record(f"Shared{name}{i}", {"name": "s", "type": "long"}),
                    )
                schema_id = _post(client, subject, schema)
                with lock:
                    registered.append((subject, schema["schema"], schema_id))
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=writer, args=(n, c)) for n, c in (("a", a), ("b", b))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not failures, failures
    assert len(registered) == 6 + 2 * 20

    def agreed() -> dict[str, list[tuple[int, int, str]]] | None:
        first = _http_snapshot(a)
        return first if first == _http_snapshot(b) and sum(map(len, first.values())) == 46 else None

    state = wait_for(agreed, 20, "both instances to report the same state")

    ids_of_text: dict[str, set[int]] = defaultdict(set)
    for subject, versions in state.items():
        numbers = [v for v, _, _ in versions]
        assert numbers == list(range(1, len(numbers) + 1)), (subject, numbers)
        for _, schema_id, text in versions:
            ids_of_text[json.dumps(json.loads(text), sort_keys=True)].add(schema_id)
    assert all(len(found) == 1 for found in ids_of_text.values()), ids_of_text
    assert len({next(iter(found)) for found in ids_of_text.values()}) == len(ids_of_text)

    by_subject_text = {
        (s, json.dumps(json.loads(t), sort_keys=True)): i for s, v in state.items() for _, i, t in v
    }
    for subject, text, schema_id in registered:
        assert by_subject_text[(subject, json.dumps(json.loads(text), sort_keys=True))] == schema_id
    assert len(state["shared-0"]) + len(state["shared-1"]) + len(state["shared-2"]) == 2 * 10
    commons = {(s.split("-")[1], t) for s, t, _ in registered if s.startswith("common-")}
    assert len(commons) == 10
    common_ids = [[i for _, i, _ in state[f"common-{n}"]] for n in ("a", "b")]
    assert common_ids[0] == common_ids[1]


def test_same_schema_under_two_subjects_has_one_id(kafka_bootstrap: str, unique_name: str) -> None:
    """Registering one schema under two subjects answers one id, used by both subjects."""
    registry = _started(kafka_bootstrap, f"_schemas-{unique_name}")
    try:
        schema = _record("Twice", {"name": "x", "type": "string"})
        first = registry.register("twice-a", schema)
        # Whitespace and attribute order do not make another schema.
        again = json.loads(schema["schema"])
        second = registry.register("twice-b", {"schema": json.dumps(dict(reversed(again.items())), indent=2)})
        assert first == second
        assert [(e.subject, e.version) for e in registry.schema_users(first)] == [
            ("twice-a", 1),
            ("twice-b", 1),
        ]
        evolved = _record(
            "Twice", {"name": "x", "type": "string"}, {"name": "y", "type": "int", "default": 1}
        )
        other = registry.register("twice-b", evolved)
        assert other != first
        assert registry.register("twice-a", evolved) == other
        assert registry.versions("twice-a") == registry.versions("twice-b") == [1, 2]
    finally:
        registry.close()


def test_storage_topic_is_compacted(kafka_bootstrap: str, unique_name: str) -> None:
    """The registry creates its topic with one partition and cleanup.policy=compact."""
    topic = f"_schemas-{unique_name}"
    registry = _started(kafka_bootstrap, topic)
    registry.close()
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    resource = ConfigResource(ResourceType.TOPIC, topic)
    configs = admin.describe_configs([resource])[resource].result(timeout=30)
    assert configs["cleanup.policy"].value == "compact"
    assert len(admin.list_topics(topic, timeout=30).topics[topic].partitions) == 1
