"""A small client for the Confluent Schema Registry REST API (govbus's own registry or any compatible one).

Ids and schemas are cached: a producer asks once per schema, a consumer once per id. A client made with a
``credential`` (``KEY:SECRET``) sends it as HTTP Basic, as confluent-kafka's ``basic.auth.user.info`` does.
"""

from __future__ import annotations

import json
import threading
from typing import Any
from urllib.parse import quote

import httpx

from bus.errors import RegistryError

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"


class RegistryClient:
    """Talks to ``base_url`` (e.g. ``http://127.0.0.1:8080/registry``)."""

    def __init__(
        self,
        base_url: str,
        timeout_s: float = 10.0,
        transport: httpx.BaseTransport | None = None,
        credential: str | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        key, _, secret = (credential or "").partition(":")
        self._http = httpx.Client(
            base_url=self.base_url,
            timeout=timeout_s,
            transport=transport,
            headers={"Accept": CONTENT_TYPE},
            auth=httpx.BasicAuth(key, secret) if credential else None,
        )
        self._lock = threading.Lock()
        self._ids: dict[tuple[str, str], int] = {}
        self._schemas: dict[int, str] = {}

    def close(self) -> None:
        """Release the HTTP connection pool."""
        self._http.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def register(self, subject: str, schema_text: str) -> int:
        """Register ``schema_text`` under ``subject`` (idempotent) and return its global id."""
        return self._id_for("versions", subject, schema_text)

    def lookup(self, subject: str, schema_text: str) -> int:
        """The id of an already registered schema; raises RegistryError 40401/40403 when it is not."""
        return self._id_for("", subject, schema_text)

    def schema_text(self, schema_id: int) -> str:
        """The schema registered with ``schema_id``."""
        with self._lock:
            cached = self._schemas.get(schema_id)
        if cached is not None:
            return cached
        body = self._request("GET", f"/schemas/ids/{schema_id}")
        text = str(body["schema"])
        with self._lock:
            self._schemas[schema_id] = text
        return text

    def subjects(self) -> list[str]:
        """Every live subject."""
        return [str(s) for s in self._request("GET", "/subjects")]

    def versions(self, subject: str) -> list[int]:
        """The live versions of ``subject``."""
        return [int(v) for v in self._request("GET", f"/subjects/{_quote(subject)}/versions")]

    def latest(self, subject: str) -> dict[str, Any]:
        """The latest version of ``subject`` (subject, version, id, schema)."""
        body: dict[str, Any] = self._request("GET", f"/subjects/{_quote(subject)}/versions/latest")
        return body

    def set_compatibility(self, level: str, subject: str | None = None) -> None:
        """Set the compatibility level globally or for one subject."""
        path = "/config" if subject is None else f"/config/{_quote(subject)}"
        self._request("PUT", path, {"compatibility": level})

    def test_compatibility(self, subject: str, schema_text: str) -> tuple[bool, list[str]]:
        """Whether ``schema_text`` may be registered under ``subject``, with the reasons when not."""
        body = self._request(
            "POST",
            f"/compatibility/subjects/{_quote(subject)}/versions/latest",
            {"schema": schema_text},
            params={"verbose": "true"},
        )
        return bool(body["is_compatible"]), [str(m) for m in body.get("messages", [])]

    def _id_for(self, suffix: str, subject: str, schema_text: str) -> int:
        key = (subject, schema_text)
        with self._lock:
            cached = self._ids.get(key)
        if cached is not None:
            return cached
        path = f"/subjects/{_quote(subject)}" + (f"/{suffix}" if suffix else "")
        schema_id = int(self._request("POST", path, {"schema": schema_text})["id"])
        with self._lock:
            self._ids[key] = schema_id
            self._schemas.setdefault(schema_id, schema_text)
        return schema_id

    def _request(
        self, method: str, path: str, body: dict[str, Any] | None = None, params: dict[str, str] | None = None
    ) -> Any:
        content = None if body is None else json.dumps(body)
        headers = {"Content-Type": CONTENT_TYPE} if content is not None else None
        try:
            response = self._http.request(method, path, content=content, headers=headers, params=params)
        except httpx.HTTPError as exc:
            raise RegistryError(f"schema registry at {self.base_url} unreachable: {exc}", 0, 0) from exc
        if response.status_code >= 400:
            try:
                detail = response.json()
                code, message = int(detail.get("error_code", 0)), str(detail.get("message", response.text))
            except ValueError:
                code, message = 0, response.text
            raise RegistryError(f"{method} {path}: {message}", response.status_code, code)
        return response.json()


def _quote(subject: str) -> str:
    """Percent-encode a subject for a path segment (subjects may contain '/' and ':')."""
    return quote(subject, safe="")
