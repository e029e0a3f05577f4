"""Bad input to ``/registry`` gets a Confluent error with a reason, never a 500; the next request works."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from structlog.testing import capture_logs

from consumers.stores import open_store
from gateway.app import create_app
from gateway.server import serve_in_thread
from schemas.registry import strict_json
from schemas.registry.avro_names import _fixed_digits
from schemas.registry.memory_log import MemoryRegistryLog
from schemas.registry.service import SchemaRegistry
from schemas.registry.state import Record
from tests.support import bearer, dev_identities

JSON = {"content-type": "application/json"}


def _record(doc: str = "a record") -> str:
    return json.dumps(
        {"type": "record", "name": "R", "doc": doc, "fields": [{"name": "a", "type": "string"}]}
    )


def _body(schema: str, **extra: Any) -> str:
    return json.dumps({"schema": schema, **extra})


def _nested(depth: int) -> str:
    return '{"type":"array","items":' * depth + '"string"' + "}" * depth


FIXED_5000_DIGITS = '{"type":"fixed","name":"F","size":' + "9" * 5000 + "}"
# (name, method, path, body, headers, status, error_code)
CASES: list[tuple[str, str, str, str | bytes | None, dict[str, str], int, int]] = [
    ("lone surrogate in doc", "POST", "/subjects/s/versions", _body(_record("\ud800")), JSON, 422, 42201),
    ("id ²", "GET", "/schemas/ids/%C2%B2", None, {}, 404, 404),
    ("id of 5,000 digits", "GET", "/schemas/ids/" + "9" * 5000, None, {}, 404, 40403),
    ("version ²", "GET", "/subjects/s/versions/%C2%B2", None, {}, 422, 42202),
    ("version of 5,000 digits", "GET", "/subjects/s/versions/" + "9" * 5000, None, {}, 422, 42202),
    ("references 5", "POST", "/subjects/s/versions", _body(_record(), references=5), JSON, 422, 42201),
    ("references true", "POST", "/subjects/s/versions", _body(_record(), references=True), JSON, 422, 42201),
    (
        "reference version 1e999",
        "POST",
        "/subjects/s/versions",
        '{"schema": "\\"string\\"", "references": [{"name": "x", "subject": "s", "version": 1e999}]}',
        JSON,
        422,
        422,
    ),
    (
        "reference version true",
        "POST",
        "/subjects/s/versions",
        _body(_record(), references=[{"name": "x", "subject": "s", "version": True}]),
        JSON,
        422,
        42201,
    ),
    (
        "fixed size of 5,000 digits",
        "POST",
        "/subjects/s/versions",
        _body(FIXED_5000_DIGITS),
        JSON,
        422,
        42201,
    ),
    ("schema nested 1,000 deep", "POST", "/subjects/s/versions", _body(_nested(1000)), JSON, 422, 42201),
    (
        "NaN default",
        "POST",
        "/subjects/s/versions",
        _body('{"type":"record","name":"N","fields":[{"name":"x","type":"double","default":NaN}]}'),
        JSON,
        422,
        42201,
    ),
    ("empty subject", "POST", "/subjects//versions", _body(_record()), JSON, 422, 42208),
    (
        "text/plain body",
        "POST",
        "/subjects/s/versions",
        _body(_record()),
        {"content-type": "text/plain"},
        415,
        415,
    ),
    ("body not UTF-8", "POST", "/subjects/s/versions", b"\xff\xfe{}", JSON, 422, 422),
    ("body nested 1,000 deep", "POST", "/subjects/s/versions", "[" * 1000 + "]" * 1000, JSON, 422, 422),
    ("body of a bare number", "POST", "/subjects/s/versions", "1e999", JSON, 422, 422),
    ("mode body NaN", "PUT", "/mode/s", '{"mode": NaN}', JSON, 422, 422),
    ("empty subject's mode", "PUT", "/mode/", '{"mode": "READONLY"}', JSON, 422, 42208),
]


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    """An HTTP client on one gateway with an in-memory registry."""
    store = open_store(f"sqlite:///{tmp_path_factory.mktemp('registry') / 'rm.sqlite'}")
    identities, credentials = dev_identities(tmp_path_factory.mktemp("home"))
    with (
        capture_logs(),
        serve_in_thread(create_app(SchemaRegistry.in_memory(), store, identities)) as base,
        httpx.Client(
            base_url=f"{base}/registry", timeout=30, headers=bearer(credentials["integration"])
        ) as client,
    ):
        yield client


@pytest.mark.parametrize(
    ("name", "method", "path", "body", "headers", "status", "code"), CASES, ids=[c[0] for c in CASES]
)
def test_bad_input_gets_its_confluent_error_and_the_next_registration_succeeds(
    registry: httpx.Client,
    name: str,
    method: str,
    path: str,
    body: str | bytes | None,
    headers: dict[str, str],
    status: int,
    code: int,
) -> None:
    """Each bad input answers its status and Confluent code with a message; a valid schema registers next."""
    answer = registry.request(method, path, content=body, headers=headers)
    assert (answer.status_code, answer.json()["error_code"]) == (status, code), answer.text
    assert answer.json()["message"]
    after = registry.post("/subjects/after-bad-input/versions", content=_body(_record(name)), headers=JSON)
    assert after.status_code == 200, after.text


def test_a_large_fixed_decimal_in_a_compatibility_test_answers_and_does_not_fail(
    registry: httpx.Client,
) -> None:
    """A fixed of 2,000 bytes with a decimal logicalType is judged (200), not a 500 on its digit count."""
    assert (
        registry.post("/subjects/plain/versions", content=_body('"string"'), headers=JSON).status_code == 200
    )
    fixed = {"type": "fixed", "name": "F", "size": 2000, "logicalType": "decimal", "precision": 5}
    answer = registry.post(
        "/compatibility/subjects/plain/versions/latest", content=_body(json.dumps(fixed)), headers=JSON
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["is_compatible"] is False


def test_a_body_over_the_limit_answers_413(registry: httpx.Client) -> None:
    """A body larger than the registry reads answers 413 with Confluent's body shape."""
    answer = registry.post("/subjects/big/versions", content=b" " * (8 * 1024 * 1024 + 1), headers=JSON)
    assert (answer.status_code, answer.json()["error_code"]) == (413, 413)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("NaN", "NaN is not a JSON number"),
        ("-Infinity", "-Infinity is not a JSON number"),
        ("1e999", "out of range"),
        ("1" * 101, "101 digits"),
        ('"\\udc00"', "lone surrogate"),
        ('{"\\ud800": 1}', "lone surrogate"),
        ("[" * 101 + "]" * 101, "nested more than 100"),
        ("{", "Expecting"),
    ],
)
def test_strict_json_refuses_what_the_registry_could_not_store(text: str, reason: str) -> None:
    """strict_json.loads refuses non-finite numbers, huge integers, lone surrogates and deep nesting."""
    with pytest.raises(strict_json.RefusedJSONError, match=reason):
        strict_json.loads(text)


def test_strict_json_reads_ordinary_json_and_utf8_bytes() -> None:
    """Ordinary JSON (unicode, 100 levels, 100-digit integers) parses as json.loads does."""
    text = '{"a": ["한국", 1.5, ' + "9" * 100 + "], " + '"b": ' + "[" * 99 + "]" * 99 + "}"
    assert strict_json.loads(text.encode("utf-8")) == json.loads(text)


def test_fixed_digits_are_exact_for_small_sizes_and_bounded_for_large_ones() -> None:
    """A fixed of 8 bytes holds 18 decimal digits; 2,000 bytes are counted without printing 2^16000."""
    assert [_fixed_digits(size) for size in (0, 1, 2, 8, 16)] == [0, 2, 4, 18, 38]
    assert _fixed_digits(2000) == 4816  # len(str(2**15999 - 1)) - 1, printed with the limit lifted


class _SlowLog(MemoryRegistryLog):
    """A memory log whose commits take as long as a Kafka transaction on a busy broker can."""

    def __init__(self, delay_s: float) -> None:
        super().__init__()
        self.delay_s = delay_s

    def commit(self, records: Sequence[Record]) -> None:
        time.sleep(self.delay_s)
        super().commit(records)


def test_a_slow_write_does_not_hold_up_other_requests(tmp_path: Path) -> None:
    """While one registration waits 2 s on its storage, reads of the same gateway answer at once."""
    store = open_store(f"sqlite:///{tmp_path / 'rm.sqlite'}")
    identities, credentials = dev_identities(tmp_path / "home")
    with (
        capture_logs(),
        serve_in_thread(create_app(SchemaRegistry(_SlowLog(2.0)), store, identities)) as base,
        httpx.Client(
            base_url=f"{base}/registry", timeout=30, headers=bearer(credentials["integration"])
        ) as client,
    ):
        writing = threading.Thread(
            target=client.post,
            args=("/subjects/slow/versions",),
            kwargs={"content": _body(_record()), "headers": JSON},
        )
        writing.start()
        time.sleep(0.3)  # the registration is now waiting on its commit
        ministry = bearer(credentials["ministry-of-welfare"])
        with httpx.Client(base_url=f"{base}/registry", timeout=30, headers=ministry) as reader:
            began = time.monotonic()
            assert reader.get("/schemas/types").status_code == 200
            assert reader.get("/subjects").status_code == 200
            waited = time.monotonic() - began
        assert writing.is_alive()
        writing.join(10)
        assert waited < 1.0
        assert client.get("/subjects").json() == ["slow"]
