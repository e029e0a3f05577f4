"""Authentication and roles at the gateway: 401 without a valid credential, 403 for the wrong role."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from structlog.testing import capture_logs

from consumers.stores import open_store
from gateway.agreements import FILE_NAME as AGREEMENTS
from gateway.agreements import Agreements
from gateway.app import create_app
from gateway.disclosure import Disclosures
from gateway.identities import FILE_NAME, IdentityFile, revoke
from gateway.records_api import RecordsApi
from gateway.server import serve_in_thread
from schemas.catalog import load_catalog
from schemas.registry.service import SchemaRegistry
from tests.support import bearer, dev_identities

SCHEMA = json.dumps({"schema": json.dumps({"type": "record", "name": "R", "fields": []})})
JSON = {"content-type": "application/vnd.schemaregistry.v1+json"}


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str], Path]]:
    """A served gateway (in-memory registry), the development credentials and the home holding them."""
    home = tmp_path_factory.mktemp("home")
    identities, credentials = dev_identities(home)
    store = open_store(f"sqlite:///{home / 'rm.sqlite'}")
    records = RecordsApi(store, Agreements(home / AGREEMENTS), Disclosures(load_catalog()), audit=None)
    app = create_app(SchemaRegistry.in_memory(), store, identities, records=records)
    with capture_logs(), serve_in_thread(app) as base:
        yield base, credentials, home


def _basic(credential: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(credential.encode()).decode()}


@pytest.mark.parametrize(
    "header",
    [
        None,
        "Bearer",
        "Bearer nonsense",
        "Bearer gbk_0123456789abcdef:wrong",
        "Basic !!!not-base64",
        "Basic " + base64.b64encode(b"\xff\xfe").decode(),
        "Basic " + base64.b64encode(b"gbk_0123456789abcdef:wrong").decode(),
        "Digest x",
        "Bearer \u00e9t\u00e9",
    ],
)
def test_a_request_without_a_valid_credential_gets_401_in_the_format_of_its_path(
    gateway: tuple[str, dict[str, str], Path], header: str | None
) -> None:
    """No, malformed or unknown credentials: 401 with a challenge, Confluent's body under /registry."""
    base, _, _ = gateway
    headers = {} if header is None else {"Authorization": header.encode("latin-1")}
    registry = httpx.get(f"{base}/registry/subjects", headers=headers)
    assert registry.status_code == 401
    assert registry.json()["error_code"] == 401
    assert "WWW-Authenticate" in registry.headers
    residents = httpx.get(f"{base}/v1/residents/R1", headers=headers)
    assert residents.status_code == 401
    assert residents.headers["content-type"] == "application/problem+json"
    assert residents.json()["status"] == 401


def test_bearer_and_basic_both_authenticate(gateway: tuple[str, dict[str, str], Path]) -> None:
    """The same credential works as a Bearer token and as HTTP Basic (key as user, secret as password)."""
    base, credentials, _ = gateway
    for headers in (bearer(credentials["integration"]), _basic(credentials["integration"])):
        assert httpx.get(f"{base}/registry/subjects", headers=headers).status_code == 200


def test_only_the_integration_role_writes_to_the_registry(gateway: tuple[str, dict[str, str], Path]) -> None:
    """A ministry and an agency read schemas but get 403 registering, deleting or freezing."""
    base, credentials, _ = gateway
    integration = bearer(credentials["integration"])
    ok = httpx.post(
        f"{base}/registry/subjects/auth-r/versions", content=SCHEMA, headers={**JSON, **integration}
    )
    assert ok.status_code == 200, ok.text
    for organisation in ("ministry-of-welfare", "localgov"):
        headers = {**JSON, **bearer(credentials[organisation])}
        assert httpx.get(f"{base}/registry/subjects", headers=headers).json() == ["auth-r"]
        writes = [
            httpx.post(f"{base}/registry/subjects/auth-r/versions", content=SCHEMA, headers=headers),
            httpx.put(f"{base}/registry/mode", content='{"mode": "READONLY"}', headers=headers),
            httpx.put(f"{base}/registry/config", content='{"compatibility": "NONE"}', headers=headers),
            httpx.delete(f"{base}/registry/subjects/auth-r", headers=headers),
        ]
        for answer in writes:
            assert answer.status_code == 403, answer.text
            assert answer.json()["error_code"] == 403
            assert "integration" in answer.json()["message"]
    assert httpx.get(f"{base}/registry/mode", headers=integration).json() == {"mode": "READWRITE"}


def test_shared_records_are_read_only_under_an_agreement(gateway: tuple[str, dict[str, str], Path]) -> None:
    """No agreement or no purpose answers 403 problem+json with the reason; an agreed read gets through."""
    base, credentials, _ = gateway
    agency = httpx.get(
        f"{base}/v1/residents/R1",
        headers={**bearer(credentials["localgov"]), "Purpose": "benefit-eligibility"},
    )
    assert agency.status_code == 403
    assert agency.headers["content-type"] == "application/problem+json"
    assert "has no sharing agreement for 'residents'" in agency.json()["detail"]
    welfare = bearer(credentials["ministry-of-welfare"])
    unstated = httpx.get(f"{base}/v1/residents/R1", headers=welfare)
    assert unstated.status_code == 403
    assert "Purpose header" in unstated.json()["detail"]
    agreed = httpx.get(f"{base}/v1/residents/R1", headers={**welfare, "Purpose": "benefit-eligibility"})
    assert agreed.status_code == 404


def test_health_readiness_and_the_openapi_document_are_open(
    gateway: tuple[str, dict[str, str], Path],
) -> None:
    """/healthz, /readyz and /openapi.json answer without a credential."""
    base, _, _ = gateway
    assert httpx.get(f"{base}/healthz").status_code == 200
    assert httpx.get(f"{base}/readyz").status_code == 200
    assert httpx.get(f"{base}/openapi.json").status_code == 200


def test_registry_errors_that_are_not_the_registrys_keep_confluents_format(
    gateway: tuple[str, dict[str, str], Path],
) -> None:
    """Under /registry a 404, 405 and 415 answer {error_code, message}; elsewhere a 404 is problem+json."""
    base, credentials, _ = gateway
    headers = bearer(credentials["integration"])
    for answer, status in (
        (httpx.get(f"{base}/registry/no/such/route", headers=headers), 404),
        (httpx.patch(f"{base}/registry/subjects", headers=headers), 405),
        (
            httpx.post(
                f"{base}/registry/subjects/x/versions",
                content="x",
                headers={**headers, "content-type": "text/plain"},
            ),
            415,
        ),
    ):
        assert answer.status_code == status
        assert answer.json()["error_code"] == status, answer.text
    elsewhere = httpx.get(f"{base}/v1/nothing", headers=headers)
    assert elsewhere.status_code == 404
    assert elsewhere.headers["content-type"] == "application/problem+json"


def test_a_revoked_credential_stops_working_on_the_running_gateway(
    gateway: tuple[str, dict[str, str], Path],
) -> None:
    """Revoking in the identities file takes effect within about a second, without a restart."""
    base, credentials, home = gateway
    headers = bearer(credentials["ministry-of-education"])
    assert httpx.get(f"{base}/registry/subjects", headers=headers).status_code == 200
    with IdentityFile(home / FILE_NAME).changing() as stored:
        revoke(stored, "ministry-of-education")
    answers = []
    for _ in range(40):
        answer = httpx.get(f"{base}/registry/subjects", headers=headers)
        answers.append(answer.status_code)
        if answer.status_code == 401:
            break
        time.sleep(0.1)
    assert answers[-1] == 401
    assert (
        httpx.get(f"{base}/registry/subjects", headers=bearer(credentials["integration"])).status_code == 200
    )


def test_a_405_names_every_method_of_the_path(gateway: tuple[str, dict[str, str], Path]) -> None:
    """OPTIONS /registry/config answers 405 with Allow naming GET, PUT and DELETE, not one route's."""
    base, credentials, _ = gateway
    answer = httpx.request("OPTIONS", f"{base}/registry/config", headers=bearer(credentials["integration"]))
    assert answer.status_code == 405
    assert answer.json()["error_code"] == 405
    assert answer.headers["Allow"] == "GET, PUT, DELETE"
