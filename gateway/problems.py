"""RFC 9457 problem details (``application/problem+json``) for every error the gateway answers.

Under ``/registry`` the same errors answer in the Confluent registry's own format instead,
``{"error_code": ..., "message": ...}`` (what stock registry clients parse), with the HTTP status as the
code for errors that are not the registry's own (401, 403, 404, 405, 415...).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

PROBLEM_JSON = "application/problem+json"
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
PROBLEM_CONTENT = {
    PROBLEM_JSON: {
        "schema": {
            "type": "object",
            "properties": {
                "type": {"type": "string"},
                "title": {"type": "string"},
                "status": {"type": "integer"},
                "detail": {"type": "string"},
                "instance": {"type": "string"},
            },
            "required": ["type", "title", "status", "detail"],
        }
    }
}
"""An OpenAPI ``content`` entry for a problem+json answer (extra members allowed)."""
REGISTRY_PREFIX = "/registry"
REGISTRY_MEDIA_TYPE = "application/vnd.schemaregistry.v1+json"
TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    413: "Request too large",
    415: "Unsupported media type",
    422: "Invalid request",
    503: "Service unavailable",
}


def documented_errors(
    reasons: Mapping[int, str], content: Mapping[str, Any] = PROBLEM_CONTENT
) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI ``responses`` of a route's error answers: each status with its reason and body."""
    return {status: {"description": reason, "content": dict(content)} for status, reason in reasons.items()}


class Problem(Exception):  # noqa: N818 - named for the RFC's concept, raised to answer with one
    """Raise to answer with a problem document (or a registry error under ``/registry``)."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str,
        headers: Mapping[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title
        self.detail = detail
        self.headers = dict(headers or {})
        self.extra = extra


def problem_response(
    status: int,
    title: str,
    detail: str,
    instance: str = "",
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    """A problem+json response."""
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    if instance:
        body["instance"] = instance
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def error_response(
    request: Request, status: int, detail: str, headers: Mapping[str, str] | None = None, **extra: Any
) -> JSONResponse:
    """The error answer for ``request``'s path: Confluent's format under /registry, problem+json elsewhere."""
    return error_for_path(request.url.path, status, detail, headers, **extra)


def under_registry(path: str) -> bool:
    """Whether ``path`` is the registry's (its errors answer in Confluent's format)."""
    return path == REGISTRY_PREFIX or path.startswith(REGISTRY_PREFIX + "/")


def error_for_path(
    path: str, status: int, detail: str, headers: Mapping[str, str] | None = None, **extra: Any
) -> JSONResponse:
    """The error answer for a request to ``path`` (see :func:`error_response`)."""
    if under_registry(path):
        return JSONResponse(
            {"error_code": status, "message": detail},
            status_code=status,
            media_type=REGISTRY_MEDIA_TYPE,
            headers=headers,
        )
    return problem_response(status, TITLES.get(status, "Error"), detail, path, headers, **extra)


def install_problem_handlers(app: FastAPI) -> None:
    """Answer Problem, HTTP and validation errors as problem+json (Confluent's format under /registry)."""

    async def on_problem(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, Problem)
        path = request.url.path
        if under_registry(path):
            return error_response(request, exc.status, exc.detail, exc.headers)
        return problem_response(exc.status, exc.title, exc.detail, path, exc.headers, **exc.extra)

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        headers = exc.headers
        if exc.status_code == 405:
            # Each method of a path is its own route, and the one that matched first names only its own.
            headers = {**(headers or {}), "Allow": ", ".join(allowed_methods(request))}
        return error_response(request, exc.status_code, str(exc.detail), headers)

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        reasons = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        return error_response(request, 422, "; ".join(reasons))

    app.add_exception_handler(Problem, on_problem)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(RequestValidationError, on_validation)


def allowed_methods(request: Request) -> list[str]:
    """Every method some route of the app serves at ``request``'s path."""
    allowed = []
    for method in METHODS:
        scope = {**request.scope, "method": method}
        if any(route.matches(scope)[0] is Match.FULL for route in request.app.router.routes):
            allowed.append(method)
    return allowed
