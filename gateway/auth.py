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
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.identities import Identities, Identity, Role, split_credential
from gateway.problems import Problem, error_for_path

CHALLENGE = {"WWW-Authenticate": 'Basic realm="govbus", Bearer realm="govbus"'}
OPEN_PATHS = frozenset({"/healthz", "/readyz", "/openapi.json", "/docs"})
"""Paths that need no credential, besides the docs page's assets under ``/docs/`` (:mod:`gateway.docs`)."""
NO_CREDENTIAL = "a credential is required: Bearer KEY:SECRET or HTTP Basic (key, secret)"
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


class Authentication:
    """ASGI middleware: every request but the open paths needs a valid credential (401 otherwise).

    The caller's :class:`~gateway.identities.Identity` goes to the request's state
    (``request.state.identity``) for the routes' role checks (:func:`require`). Authentication is one pass
    over the headers and, for a credential seen before, a dictionary lookup and one keyed hash: cheaper
    here than as a FastAPI dependency of every route. ``open_prefixes`` adds paths that need no
    credential (the gateway has none; the benchmark's unauthenticated twin of a route uses it).
    """

    def __init__(self, app: ASGIApp, identities: Identities, open_prefixes: tuple[str, ...] = ()) -> None:
        self.app = app
        self.identities = identities
        self.open_prefixes = ("/docs/", *open_prefixes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or path in OPEN_PATHS or path.startswith(self.open_prefixes):
            await self.app(scope, receive, send)
            return
        header = b""
        for name, value in scope["headers"]:
            if name == b"authorization":
                header = value
                break
        identity = self.identities.by_header(header) if header else None
        if identity is None:
            found = presented(header.decode("latin-1"))
            if found is None:
                await error_for_path(path, 401, NO_CREDENTIAL, CHALLENGE)(scope, receive, send)
                return
            key, secret = found
            identity = await run_in_threadpool(self.identities.authenticate, key, secret)
            if identity is None:
                await error_for_path(path, 401, "unknown or revoked credential", CHALLENGE)(
                    scope, receive, send
                )
                return
            self.identities.remember(header, identity)
        scope.setdefault("state", {})["identity"] = identity
        await self.app(scope, receive, send)


def require(*roles: Role) -> Dependency:
    """A route dependency: the authenticated caller, who must have one of ``roles`` (403 otherwise)."""
    needed = ", ".join(sorted(roles))

    async def check(request: Request) -> Identity:
        identity = getattr(request.state, "identity", None)
        if not isinstance(identity, Identity):  # only behind a misconfigured app: refuse, never open
            raise Problem(401, "Unauthorized", NO_CREDENTIAL, CHALLENGE)
        if identity.role not in roles:
            raise Problem(
                403,
                "Forbidden",
                f"organisation {identity.organisation!r} has role {identity.role.value!r}; "
                f"this needs role {needed}",
            )
        return identity

    return check


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
