"""The gateway keeps the contract of its own OpenAPI document, checked by schemathesis over real HTTP.

Schemathesis reads ``/openapi.json`` from a served gateway (uvicorn on a socket, as ``govbus gateway``
runs it; in-memory registry, SQLite read model) and sends every operation generated requests, valid
ones and invalid ones, with an ``integration`` credential; each operation is also tried on a subject,
version and schema id that exist, so the run reaches past "not found". Every answer must pass all of
schemathesis's checks: no server error, a status code, content type, headers and body that the document
declares for the operation, valid requests accepted and invalid ones refused, no answer without the
credential. Generation is derandomized (Hypothesis derives its seed from the test), so a failure
reproduces, and bounded so the run takes well under a minute and a half on two cores.

The pytest plugin's ``schemathesis.pytest.from_fixture`` cannot load a schema from a live server here
(schemathesis 4.32 sets ``request.node._nodeid``, which pytest 9.2 no longer has), so the test drives
schemathesis's Python API itself: each operation's Hypothesis strategy, and ``Case.call_and_validate``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.core.result import Ok
from structlog.testing import capture_logs

from consumers.stores import open_store
from gateway.app import create_app
from gateway.identities import Identities, IdentityFile, Role, new_credential
from gateway.server import serve_in_thread
from schemas.registry.service import SchemaRegistry

pytestmark = pytest.mark.e2e

MAX_EXAMPLES = 15
"""Requests per operation and kind of data (about 2 x 15 x 33 in all, plus the runs on existing data)."""
SUBJECT = "contract-value"
EXISTING = {"subject": SUBJECT, "version": "1", "schema_id": "1"}
"""Path parameters naming what the fixture registered (the first schema gets id 1)."""
AVRO_BODY = {
    "POST /registry/subjects/{subject}/versions",
    "POST /registry/subjects/{subject}",
    "POST /registry/compatibility/subjects/{subject}/versions",
    "POST /registry/compatibility/subjects/{subject}/versions/{version}",
}
"""Operations whose body carries an Avro schema as text."""
CATALOG_BODY = {"POST /v1/events"}
"""Operations whose body must fit a catalog event type and its Avro schema, beyond what JSON Schema says."""
SETTINGS = settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
)


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """A served gateway holding one registered schema, and an integration credential for it."""
    home: Path = tmp_path_factory.mktemp("contract")
    credential, text = new_credential("integration", Role.INTEGRATION)
    with IdentityFile(home / "identities.json").changing() as credentials:
        credentials.append(credential)
    store = open_store(f"sqlite:///{home / 'rm.sqlite'}")
    app = create_app(SchemaRegistry.in_memory(), store, Identities(home / "identities.json"))
    with capture_logs(), serve_in_thread(app) as base:
        schema = {"type": "record", "name": "Contract", "fields": [{"name": "a", "type": "string"}]}
        registered = httpx.post(
            f"{base}/registry/subjects/{SUBJECT}/versions",
            json={"schema": json.dumps(schema)},
            headers={"Authorization": f"Bearer {text}"},
            timeout=30,
        )
        assert registered.json() == {"id": 1}, registered.text
        yield base, text


Operation = schemathesis.APIOperation[Any, Any, Any, Any]


def _run(operation: Operation, mode: GenerationMode, headers: dict[str, str], **fixed: Any) -> str | None:
    """Run the checks on ``operation``'s generated cases; the failure report, or None when all passed."""

    excluded = []
    if operation.label in AVRO_BODY | CATALOG_BODY:
        # Inapplicable: a body that matches the JSON Schema may still hold text that is no Avro schema
        # (422, 42201), or an event no catalog type has, which JSON Schema cannot express; every other
        # check still runs on these.
        excluded.append(schemathesis.checks.positive_data_acceptance)

    @SETTINGS
    @given(case=operation.as_strategy(generation_mode=mode, path_parameters=fixed or None))
    def check(case: schemathesis.Case[Operation]) -> None:
        case.call_and_validate(headers=headers, excluded_checks=excluded, timeout=30)

    try:
        check()
    except Unsatisfiable:  # no invalid request exists for an operation without parameters or a body
        return None
    except (schemathesis.errors.FailureGroup, Exception) as exc:  # a failed check or call, once shrunk
        where = f" on {fixed}" if fixed else ""
        return f"{operation.label} ({mode.value} data{where}):\n{exc}"
    return None


def test_every_operation_keeps_its_openapi_contract(gateway: tuple[str, str]) -> None:
    """Generated requests to every operation answer no 5xx, a declared status and a conforming body."""
    base, credential = gateway
    schema = schemathesis.openapi.from_url(f"{base}/openapi.json", timeout=30)
    operations: list[Operation] = []
    failures: list[str] = []
    for result in schema.get_all_operations():
        if isinstance(result, Ok):
            operations.append(result.ok())
        else:
            failures.append(f"an operation schemathesis cannot read: {result.err()}")
    assert len(operations) > 20, "the OpenAPI document lists too few operations"
    assert {op.label for op in operations} >= AVRO_BODY, "an operation of AVRO_BODY is not in the document"
    # What positive_data_acceptance would see for AVRO_BODY, and must hold everywhere: a body is documented.
    failures += [
        f"{op.label}: the document declares no request body, yet the operation reads one"
        for op in operations
        if op.method.upper() in {"POST", "PUT"} and not op.definition.raw.get("requestBody")
    ]
    # Deletions last, so the other operations still find the registered subject.
    operations.sort(key=lambda op: (op.method.upper() == "DELETE", op.path, op.method))
    headers = {"Authorization": f"Bearer {credential}"}
    writable = False
    for operation in operations:
        if operation.method.upper() == "DELETE" and not writable:
            _make_writable(base, headers)
            writable = True
        names = {parameter.name for parameter in operation.path_parameters}
        existing = {name: value for name, value in EXISTING.items() if name in names}
        runs: list[tuple[GenerationMode, dict[str, str]]] = [
            (GenerationMode.POSITIVE, existing),
            (GenerationMode.POSITIVE, {}),
            (GenerationMode.NEGATIVE, {}),
        ]
        for mode, fixed in runs if existing else runs[1:]:
            failure = _run(operation, mode, headers, **fixed)
            if failure is not None:
                failures.append(failure)
    assert not failures, f"{len(failures)} contract failures:\n\n" + "\n\n".join(failures)


def _make_writable(base: str, headers: dict[str, str]) -> None:
    """Undo a read-only mode the generated requests may have set (``PUT /registry/mode...`` with
    ``READONLY`` is valid data), so that the deletions meet a writable registry: a refusal in read-only
    mode (422, 42205) is right, but positive-data acceptance would count it as a failure."""
    with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
        assert client.put("/registry/mode", json={"mode": "READWRITE"}).status_code == 200
        assert client.delete(f"/registry/mode/{SUBJECT}").status_code in {200, 404}
