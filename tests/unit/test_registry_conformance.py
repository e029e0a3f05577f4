"""The registry conformance cases through the gateway's /registry HTTP API, here on the memory log.

``RegistryConformance`` runs the upstream mode scenarios, the REST expectations and the invalid
schemas over HTTP against a gateway whose registry a subclass provides; this module's subclass stores
it in memory, tests/integration/test_registry_conformance.py's on a real Kafka topic.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from structlog.testing import capture_logs

from consumers.stores import open_store
from gateway.app import create_app
from gateway.server import serve_in_thread
from schemas.registry.service import SchemaRegistry
from tests.conformance import case_ids, cases
from tests.support import bearer, dev_identities

SCENARIOS = "registry_mode_scenarios.json"
REST = "registry_rest_expectations.json"
INVALID = "invalid_schemas.json"
# confluent-kafka-python's tests/integration/schema_registry/data/basic_schema.avsc
BASIC = {
    "name": "basic",
    "type": "record",
    "doc": "basic schema for tests",
    "namespace": "python.test",
    "fields": [
        {"name": "number", "doc": "age", "type": ["long", "null"]},
        {"name": "name", "doc": "a name", "type": ["string"]},
    ],
}
# Stands in for its adv_schema.avsc: BASIC plus required fields without defaults.
ADVANCED = {
    **BASIC,
    "fields": [*BASIC["fields"], {"name": "email", "type": "string"}, {"name": "age", "type": "int"}],
}


def _path(subject: str) -> str:
    return quote(subject, safe="")


def register(client: httpx.Client, subject: str, schema: Any) -> httpx.Response:
    """POST a schema (its JSON form: a dict, or a primitive type's name) as a new version of ``subject``."""
    return client.post(f"/subjects/{_path(subject)}/versions", json={"schema": json.dumps(schema)})


def _rest_001(client: httpx.Client, s: str) -> httpx.Response:
    assert register(client, s, BASIC).status_code == 200
    return register(client, s, ADVANCED)


def _rest_005(client: httpx.Client, s: str) -> httpx.Response:
    assert register(client, s, BASIC).status_code == 200
    return client.post(f"/subjects/{s}", json={"schema": _invalid()})


def _rest_009(client: httpx.Client, s: str) -> httpx.Response:
    assert register(client, s, BASIC).status_code == 200
    assert client.put(f"/config/{s}", json={"compatibility": "FULL_TRANSITIVE"}).status_code == 200
    return client.get(f"/config/{s}")


def _rest_011(client: httpx.Client, _: str) -> httpx.Response:
    for level in ("BACKWARD", "BACKWARD_TRANSITIVE", "FORWARD", "FORWARD_TRANSITIVE"):
        assert client.put("/config", json={"compatibility": level}).json() == {"compatibility": level}
        response = client.get("/config")
        assert response.json() == {"compatibilityLevel": level}
    assert client.put("/config", json={"compatibility": "BACKWARD"}).status_code == 200
    return response


def _rest_012(client: httpx.Client, s: str) -> httpx.Response:
    assert register(client, s, BASIC).status_code == 200
    assert client.delete(f"/subjects/{s}/versions/1").json() == 1
    response = client.get("/subjects")
    assert s not in response.json()
    assert s in client.get("/subjects", params={"deleted": "True"}).json()
    return response


def _rest_013(client: httpx.Client, s: str) -> httpx.Response:
    assert register(client, s, BASIC).status_code == 200
    assert client.delete(f"/subjects/{s}/versions/1").json() == 1
    return client.delete(f"/subjects/{s}/versions/1", params={"permanent": "true"})


def _rest_014(client: httpx.Client, s: str) -> httpx.Response:
    assert client.put(f"/config/{s}", json={"compatibility": "NONE"}).status_code == 200
    for kind in ("string", "int", "long", "boolean"):
        assert register(client, s, kind).status_code == 200
    return client.get(f"/subjects/{s}/versions")


def _rest_040(client: httpx.Client, s: str) -> httpx.Response:
    assert register(client, s, "string").status_code == 200
    assert client.get(f"/config/{s}", params={"defaultToGlobal": "false"}).status_code == 404
    fallback = client.get(f"/config/{s}", params={"defaultToGlobal": "True"})
    assert fallback.json() == {"compatibilityLevel": "BACKWARD"}
    return client.get(f"/config/{s}")


def _rest_041(client: httpx.Client, s: str) -> httpx.Response:
    response = httpx.Response(200)
    for ending in ('"', "{", ":", "}", "'", "/"):
        name = f"{s}{ending}"
        response = register(client, name, "string")
        assert response.status_code == 200, (name, response.text)
        assert name in client.get("/subjects").json()
        assert client.get(f"/subjects/{_path(name)}/versions").json() == [1]
    return response


def _invalid() -> str:
    return str(cases(INVALID)[0]["schema_string"])


def _one_version(client: httpx.Client, s: str) -> None:
    assert register(client, s, "string").status_code == 200


REST_CALLS: dict[str, Callable[[httpx.Client, str], httpx.Response]] = {
    "rest-001": _rest_001,
    "rest-002": lambda c, s: c.post(f"/subjects/{s}/versions", json={"schema": _invalid()}),
    "rest-003": lambda c, s: c.get("/schemas/ids/999999"),
    "rest-004": lambda c, s: c.post("/subjects/UNKNOWN", json={"schema": '"string"'}),
    "rest-005": _rest_005,
    "rest-006": lambda c, s: c.delete("/subjects/UNKNOWN"),
    "rest-007": lambda c, s: (_one_version(c, s), c.get(f"/subjects/{s}/versions/3"))[1],
    "rest-008": lambda c, s: (_one_version(c, s), c.get(f"/subjects/{s}/versions/a"))[1],
    "rest-009": _rest_009,
    "rest-010": lambda c, s: c.put("/config", json={"compatibility": "INVALID"}),
    "rest-011": _rest_011,
    "rest-012": _rest_012,
    "rest-013": _rest_013,
    "rest-014": _rest_014,
    "rest-040": _rest_040,
    "rest-041": _rest_041,
    "rest-042": lambda c, s: c.post(f"/subjects/{s}/versions", json=-1),
    "rest-043": lambda c, s: (
        _one_version(c, s),
        c.post(
            f"/compatibility/subjects/{s}/versions/latest",
            json={"schema": '"string"', "schemaType": "AVROO"},
        ),
    )[1],
    "rest-044": lambda c, s: c.post(
        "/compatibility/subjects/UNKNOWN/versions/1", json={"schema": '"string"'}
    ),
    "rest-045": lambda c, s: c.post(f"/subjects/{s}/versions", json={"schema": ""}),
    "rest-046": lambda c, s: c.get("/schemas/ids/invalid"),
    "rest-047": lambda c, s: (_one_version(c, s), c.get(f"/subjects/{s}/versions/0"))[1],
    "rest-048": lambda c, s: (_one_version(c, s), c.get(f"/subjects/{s}/versions/15"))[1],
    "rest-049": lambda c, s: (_one_version(c, s), c.post(f"/subjects/{s}", json={"schema": '"int"'}))[1],
    "rest-050": lambda c, s: c.post("/subjects/UNKNOWN", json={"schema": '"string"'}),
}


def test_every_rest_case_has_a_call() -> None:
    """The REST table covers exactly the cases of the conformance file."""
    assert set(REST_CALLS) == set(case_ids(REST))


class RegistryConformance:
    """The cases every registry storage must pass over HTTP; subclasses provide the ``registry`` client."""

    @pytest.fixture
    def subject(self) -> str:
        """A subject name no other test uses."""
        return f"s-{uuid.uuid4().hex[:12]}"

    @pytest.mark.parametrize("case", cases(SCENARIOS), ids=case_ids(SCENARIOS))
    def test_mode_scenario(self, registry: httpx.Client, subject: str, case: dict[str, Any]) -> None:
        """Each step of the scenario answers the status or verdict the upstream suite expects."""
        assert registry.put(f"/config/{subject}", json={"compatibility": case["mode"]}).status_code == 200
        for number, step in enumerate(case["steps"], start=1):
            if step["op"] == "register":
                response = register(registry, subject, step["schema"])
                assert response.status_code == step["expect_status"], (number, response.text)
            else:
                response = registry.post(
                    f"/compatibility/subjects/{subject}/versions/latest",
                    json={"schema": json.dumps(step["schema"])},
                    params={"verbose": "true"},
                )
                assert response.status_code == 200, response.text
                verdict = response.json()
                assert verdict["is_compatible"] is step["expect_is_compatible"], (number, verdict)
                assert bool(verdict["messages"]) is not step["expect_is_compatible"]

    @pytest.mark.parametrize("case", cases(REST), ids=case_ids(REST))
    def test_rest_expectation(self, registry: httpx.Client, subject: str, case: dict[str, Any]) -> None:
        """The call answers the expected status, error code, message and body."""
        response = REST_CALLS[case["id"]](registry, subject)
        assert response.status_code == case["expect_status"], response.text
        if response.status_code >= 400:
            body = response.json()
            assert set(body) == {"error_code", "message"}
            if case.get("expect_error_code") is not None:
                assert body["error_code"] == case["expect_error_code"]
            if case.get("expect_message_regex"):
                assert re.search(case["expect_message_regex"], body["message"]), body["message"]
        expected = case.get("expect_body")
        if expected is not None and expected != {"compatibilityLevel": "<same level>"}:
            assert response.json() == expected

    @pytest.mark.parametrize("case", cases(INVALID), ids=case_ids(INVALID))
    def test_invalid_schema_is_refused_over_http(
        self, registry: httpx.Client, subject: str, case: dict[str, Any]
    ) -> None:
        """Registering or looking up an invalid schema answers 422 (error code 42201), writing nothing."""
        assert register(registry, subject, "string").status_code == 200
        for path in (f"/subjects/{subject}/versions", f"/subjects/{subject}"):
            response = registry.post(path, json={"schema": case["schema_string"]})
            assert (response.status_code, response.json()["error_code"]) == (422, 42201), response.text
            assert response.json()["message"].startswith("Invalid schema")
        assert registry.get(f"/subjects/{subject}/versions").json() == [1]


class TestRegistryConformanceInMemory(RegistryConformance):
    """The conformance cases on a gateway whose registry is stored in memory."""

    @pytest.fixture(scope="class")
    @classmethod
    def registry(cls, tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
        """An HTTP client on one gateway (in-memory registry, SQLite read models) for the whole class."""
        store = open_store(f"sqlite:///{tmp_path_factory.mktemp('registry') / 'rm.sqlite'}")
        identities, credentials = dev_identities(tmp_path_factory.mktemp("home"))
        app = create_app(SchemaRegistry.in_memory(), store, identities)
        # Log events go to a list: an earlier test may have left structlog writing to a closed stderr.
        with (
            capture_logs(),
            serve_in_thread(app) as base,
            httpx.Client(
                base_url=f"{base}/registry", timeout=30, headers=bearer(credentials["integration"])
            ) as client,
        ):
            yield client
