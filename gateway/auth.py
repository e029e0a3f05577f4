"""Who is calling: the credential on each request, checked against :class:`~gateway.identities.Identities`.

A request presents ``KEY:SECRET`` as a Bearer token (``Authorization: Bearer KEY:SECRET``) or as HTTP
Basic with the key as user name and the secret as password (what confluent-kafka's
``basic.auth.user.info`` sends). No credential, an unknown or revoked one, or a malformed header answers
401 with ``WWW-Authenticate``; an authenticated caller whose role may not do what it asks gets 403
naming the role needed. Only ``/healthz``, ``/readyz``, the OpenAPI document and the docs page are open.

A credential that verified once is checked on the event loop in microseconds; the first check of a
credential (scrypt, tens of milliseconds) runs in a worker thread so it never stalls other requests.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from starlette.concurrency import run_in_threadpool

from gateway.identities import Identities, Identity, Role, split_credential
from gateway.problems import Problem

CHALLENGE = {"WWW-Authenticate": 'Basic realm="govbus", Bearer realm="govbus"'}
OPEN_PATHS = frozenset({"/healthz", "/readyz", "/openapi.json"})
"""Paths that need no credential (besides the docs page and its assets, see :mod:`gateway.docs`)."""
SECURITY_SCHEMES = {
    "basic": {
        "type": "http",
        "scheme": "basic",
        "description": "HTTP Basic: the credential's key as user, its secret as password "
        "(what confluent-kafka's basic.auth.user.info sends)",
    },
    "bearer": {
        "type": "http",
        "scheme": "bearer",
        "description": "Bearer token: the credential as KEY:SECRET",
    },
}
Dependency = Callable[..., Awaitable[Identity]]


def presented(header: str) -> tuple[str, str] | None:
    """``(key, secret)`` from an Authorization header value, or None when it holds no usable credential."""
    scheme, _, value = header.strip().partition(" ")
    scheme = scheme.lower()
    value = value.strip()
    if scheme == "bearer":
        return split_credential(value)
    if scheme == "basic":
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            return None
        return split_credential(decoded)
    return None


def authenticator(identities: Identities, *roles: Role) -> Dependency:
    """A route dependency: the caller's identity (401 without a valid credential; 403 unless in ``roles``)."""
    needed = ", ".join(sorted(roles))

    async def identify(request: Request) -> Identity:
        found = presented(request.headers.get("authorization", ""))
        if found is None:
            raise Problem(
                401, "Unauthorized", "a credential is required: Bearer KEY:SECRET or Basic", CHALLENGE
            )
        key, secret = found
        identity = identities.cached(key, secret) or await run_in_threadpool(
            identities.authenticate, key, secret
        )
        if identity is None:
            raise Problem(401, "Unauthorized", "unknown or revoked credential", CHALLENGE)
        if roles and identity.role not in roles:
            raise Problem(
                403,
                "Forbidden",
                f"organisation {identity.organisation!r} has role {identity.role.value!r}; "
                f"this needs role {needed}",
            )
        request.state.identity = identity
        return identity

    return identify


def document_security(app: FastAPI) -> None:
    """Declare the credential in the OpenAPI document: both schemes, required by every route not open.

    Declared on the document rather than as FastAPI security dependencies, which would be resolved again
    on every request only to be ignored (the header is parsed by :func:`presented`).
    """
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = build()
        document.setdefault("components", {})["securitySchemes"] = SECURITY_SCHEMES
        for path, operations in document.get("paths", {}).items():
            if path in OPEN_PATHS:
                continue
            for operation in operations.values():
                operation["security"] = [{"basic": []}, {"bearer": []}]
                operation.setdefault("responses", {}).setdefault(
                    "401", {"description": "no credential, or an unknown or revoked one"}
                )
        app.openapi_schema = document
        return document

    app.openapi = openapi  # type: ignore[method-assign]
