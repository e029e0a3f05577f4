"""``/registry``: the Confluent Schema Registry REST API (Avro), so stock clients work unchanged.

Errors (:class:`~bus.errors.RegistryError`, answered by the handler :func:`install_registry_errors`
installs) use the registry's own format, ``{"error_code": ..., "message": ...}`` with Confluent's
codes, not problem+json: that is what SchemaRegistryClient parses. Subject names are taken from the
decoded path, so percent-encoded ``/`` and ``:`` work; an empty subject, or one that is not valid
UTF-8, is refused (42208). Query booleans accept ``true`` in any case.

Request bodies must be JSON: a content type, when given, must be a JSON one (clients send
``application/vnd.schemaregistry.v1+json``, ``application/json`` or none), otherwise 415, so a
cross-site ``text/plain`` form cannot register a schema. A body is parsed strictly
(:mod:`schemas.registry.strict_json`: UTF-8, no ``NaN``, no lone surrogates, bounded nesting and
numbers) and may hold at most :data:`MAX_BODY_BYTES`; anything else answers 422 (413 when too large)
with the reason, before the registry is asked.

Every write (registering a schema, deleting a version or a subject, setting or deleting a compatibility
level or a mode) is audited when the router has an audit log (:mod:`gateway.audit`): one record, action
``registry-write``, ``model`` the subject (None for the global config or mode), ``detail`` the method and
path, outcome ``registered``, ``deleted`` or ``changed`` (``refused`` for a 4xx, ``failed`` for a 5xx),
written before the answer leaves. When a change was made but its record cannot be written, the answer is
503 with code 50001 saying so (the change stands); when a refused or failed write cannot be audited, its
own error answer stands.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Coroutine
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, FastAPI, Path, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from bus.errors import RegistryError
from gateway.audit.entry import AuditEntry, AuditLog, AuditUnavailable
from gateway.auth import require
from gateway.bodies import read_body
from gateway.identities import Identity, Role
from gateway.problems import Problem, documented_errors
from schemas.registry import strict_json
from schemas.registry.service import SchemaRegistry, not_found, parse_int, unprocessable
from schemas.registry.state import COMPATIBILITY_LEVELS, MODES, StoredSchema

MEDIA_TYPE = "application/vnd.schemaregistry.v1+json"
MAX_BODY_BYTES = 8 * 1024 * 1024
"""The largest request body the registry reads: ample for any schema with its references."""
Endpoint = Callable[..., Awaitable[Response]]
_ERROR_BODY = {
    "application/vnd.schemaregistry.v1+json": {
        "schema": {
            "type": "object",
            "properties": {"error_code": {"type": "integer"}, "message": {"type": "string"}},
            "required": ["error_code", "message"],
        }
    }
}
REGISTRY_ERRORS = documented_errors(
    {
        401: "no credential, or an unknown or revoked one",
        403: "the organisation's role may not do this (writes need the integration role)",
        404: "no such subject, version or schema (40401, 40402, 40403)",
        409: "the schema is incompatible with the subject's earlier versions",
        413: "the request body is too large",
        415: "the body is not JSON",
        422: "an invalid schema, version, body or compatibility level (42201, 42202...)",
        503: "the registry's storage (Kafka) does not answer or has not caught up (50002)",
    },
    _ERROR_BODY,
)
T = TypeVar("T")


class RegistryJSONResponse(JSONResponse):
    """Documents the registry's media type for its answers (the routes build their responses themselves)."""

    media_type = MEDIA_TYPE


VERSION_PATTERN = (
    r"^(latest|-1|[1-9][0-9]{0,8}|1[0-9]{9}|20[0-9]{8}|21[0-3][0-9]{7}|214[0-6][0-9]{6}|2147[0-3][0-9]{5}"
    r"|21474[0-7][0-9]{4}|214748[0-2][0-9]{3}|2147483[0-5][0-9]{2}|21474836[0-3][0-9]|214748364[0-7])$"
)
# Documented only (json_schema_extra does not validate): the registry answers 42202 itself.
Version = Annotated[
    str,
    Path(
        description="a version number (1 to 2^31-1), or latest (also -1)",
        json_schema_extra={"pattern": VERSION_PATTERN},
    ),
]
_REFERENCES = {
    "type": "array",
    "items": {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "subject": {"type": "string"},
            "version": {"type": "integer"},
        },
        "required": ["name", "subject", "version"],
    },
}
SCHEMA_BODY = {
    "type": "object",
    "properties": {
        "schema": {"type": "string", "description": "the Avro schema, as JSON text"},
        "schemaType": {"type": "string", "enum": ["AVRO"]},
        "references": _REFERENCES,
    },
    "required": ["schema"],
}
CONFIG_BODY = {
    "type": "object",
    "properties": {"compatibility": {"type": "string", "enum": list(COMPATIBILITY_LEVELS)}},
    "required": ["compatibility"],
}
MODE_BODY = {
    "type": "object",
    "properties": {"mode": {"type": "string", "enum": list(MODES)}},
    "required": ["mode"],
}


def _request_body(schema: dict[str, Any]) -> dict[str, Any]:
    content = {"schema": schema}
    return {"requestBody": {"required": True, "content": {MEDIA_TYPE: content, "application/json": content}}}


def registry_response(body: Any, status: int = 200) -> JSONResponse:
    """A registry answer."""
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE)


def registry_error(exc: RegistryError) -> JSONResponse:
    """A registry error body with Confluent's code."""
    return registry_response({"error_code": exc.error_code, "message": str(exc)}, exc.status)


def install_registry_errors(app: FastAPI) -> None:
    """Answer every RegistryError in the registry's error format."""

    async def on_registry_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, RegistryError)
        return registry_error(exc)

    app.add_exception_handler(RegistryError, on_registry_error)


def _flag(request: Request, name: str) -> bool:
    return request.query_params.get(name, "false").strip().lower() == "true"


async def _body(request: Request) -> Any:
    raw = await read_body(request, MAX_BODY_BYTES)
    try:
        return strict_json.loads(raw or b"null")
    except strict_json.RefusedJSONError as exc:
        raise unprocessable(f"request body is not JSON: {exc}", 422) from exc


def _subject(subject: str) -> str:
    """A subject a request may write: not empty, and valid UTF-8 (42208 otherwise)."""
    try:
        subject.encode("utf-8")
    except UnicodeEncodeError:
        subject = ""
    if not subject.strip():
        raise unprocessable(f"The specified subject {subject!a} is not valid.", 42208)
    return subject


def _prefixed(subjects: list[str], request: Request) -> list[str]:
    # SchemaRegistryClient.get_subjects(subject_prefix=...) sends subjectPrefix; ":*:" means all.
    prefix = request.query_params.get("subjectPrefix", "")
    if not prefix or prefix == ":*:":
        return subjects
    return [s for s in subjects if s.startswith(prefix)]


def _schema_id(raw: str) -> int:
    if not (raw.isascii() and raw.isdigit()):
        raise RegistryError("HTTP 404 Not Found", 404, 404)
    number = parse_int(raw)
    if number is None:
        raise not_found(f"Schema {raw[:20]} not found", 40403)
    return number


async def _off(call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a registry call that may wait on Kafka (a transaction, catching up with the log) in a worker
    thread, so that the event loop goes on serving the other requests meanwhile."""
    return await run_in_threadpool(call, *args, **kwargs)


async def _schema(registry: SchemaRegistry, schema_id: int) -> StoredSchema:
    """A schema by id: from memory on the event loop, or off it when the log must be caught up first."""
    known = registry.known_schema(schema_id)
    if known is not None:
        return known
    stored: StoredSchema = await _off(registry.schema, schema_id)
    return stored


def registry_router(registry: SchemaRegistry, audit: AuditLog | None = None) -> APIRouter:
    """The registry's routes (mounted under ``/registry``); most specific paths first.

    Every organisation may read; only the integration role writes (registers, deletes, sets config
    and mode): 403 otherwise. Writes are recorded in ``audit`` when given.
    """
    router = APIRouter(tags=["schema registry"], responses=REGISTRY_ERRORS)
    # Authentication is the gateway's (gateway.auth.Authentication): reads need nothing more.
    writer = [Depends(require(Role.INTEGRATION))]

    route = _route_adder(router, writer, _audited_route(audit) if audit is not None else None)

    @route("GET", "/")
    async def root() -> Response:
        return registry_response({})

    @route("GET", "/schemas/types")
    async def schema_types() -> Response:
        return registry_response(["AVRO"])

    @route("GET", "/schemas/ids/{schema_id}/schema")
    async def raw_schema_by_id(schema_id: str) -> Response:
        return Response((await _schema(registry, _schema_id(schema_id))).text, media_type=MEDIA_TYPE)

    @route("GET", "/schemas/ids/{schema_id}/versions")
    async def id_versions(schema_id: str, request: Request) -> Response:
        users = await _off(registry.schema_users, _schema_id(schema_id), deleted=_flag(request, "deleted"))
        return registry_response([{"subject": e.subject, "version": e.version} for e in users])

    @route("GET", "/schemas/ids/{schema_id}/subjects")
    async def id_subjects(schema_id: str, request: Request) -> Response:
        users = await _off(registry.schema_users, _schema_id(schema_id), deleted=_flag(request, "deleted"))
        return registry_response(sorted({e.subject for e in users}))

    @route("GET", "/schemas/ids/{schema_id}")
    async def schema_by_id(schema_id: str) -> Response:
        stored = await _schema(registry, _schema_id(schema_id))
        return registry_response(schema_body(stored))

    @route("GET", "/subjects")
    async def subjects(request: Request) -> Response:
        return registry_response(_prefixed(registry.subjects(deleted=_flag(request, "deleted")), request))

    @route("GET", "/subjects/{subject:path}/versions/{version}/schema")
    async def raw_version_schema(subject: str, version: Version, request: Request) -> Response:
        entry = registry.version(subject, version, deleted=_flag(request, "deleted"))
        return Response(entry.schema.text, media_type=MEDIA_TYPE)

    @route("GET", "/subjects/{subject:path}/versions/{version}/referencedby")
    async def referenced_by(subject: str, version: Version) -> Response:
        return registry_response(registry.referenced_by(subject, version))

    @route("GET", "/subjects/{subject:path}/versions/{version}")
    async def get_version(subject: str, version: Version, request: Request) -> Response:
        return registry_response(
            registry.version(subject, version, deleted=_flag(request, "deleted")).to_json()
        )

    @route("DELETE", "/subjects/{subject:path}/versions/{version}", write=True)
    async def delete_version(subject: str, version: Version, request: Request) -> Response:
        return registry_response(
            await _off(registry.delete_version, subject, version, permanent=_flag(request, "permanent"))
        )

    @route("GET", "/subjects/{subject:path}/versions")
    async def list_versions(subject: str, request: Request) -> Response:
        return registry_response(registry.versions(subject, deleted=_flag(request, "deleted")))

    @route("POST", "/subjects/{subject:path}/versions", write=True, body=SCHEMA_BODY)
    async def register(subject: str, request: Request) -> Response:
        return registry_response(
            {"id": (await _off(registry.register, _subject(subject), await _body(request)))}
        )

    @route("POST", "/subjects/{subject:path}", body=SCHEMA_BODY)
    async def lookup(subject: str, request: Request) -> Response:
        body = await _body(request)
        entry = await _off(registry.lookup, subject, body, deleted=_flag(request, "deleted"))
        return registry_response(entry.to_json())

    @route("DELETE", "/subjects/{subject:path}", write=True)
    async def delete_subject(subject: str, request: Request) -> Response:
        return registry_response(
            await _off(registry.delete_subject, subject, permanent=_flag(request, "permanent"))
        )

    @route("POST", "/compatibility/subjects/{subject:path}/versions/{version}", body=SCHEMA_BODY)
    async def compatibility_with_version(subject: str, version: Version, request: Request) -> Response:
        problems = await _off(registry.test_compatibility, subject, version, await _body(request))
        return _compatibility(problems, request)

    @route("POST", "/compatibility/subjects/{subject:path}/versions", body=SCHEMA_BODY)
    async def compatibility_with_all(subject: str, request: Request) -> Response:
        problems = await _off(registry.test_compatibility, subject, None, await _body(request))
        return _compatibility(problems, request)

    @route("GET", "/config")
    async def get_global_config() -> Response:
        return registry_response({"compatibilityLevel": registry.compatibility(None)})

    @route("PUT", "/config", write=True, body=CONFIG_BODY)
    async def put_global_config(request: Request) -> Response:
        level = await _off(registry.set_compatibility, None, _field(await _body(request), "compatibility"))
        return registry_response({"compatibility": level})

    @route("DELETE", "/config", write=True)
    async def delete_global_config() -> Response:
        return registry_response({"compatibilityLevel": (await _off(registry.delete_compatibility, None))})

    @route("GET", "/config/{subject:path}")
    async def get_config(subject: str, request: Request) -> Response:
        level = registry.compatibility(subject, default_to_global=_flag(request, "defaultToGlobal"))
        return registry_response({"compatibilityLevel": level})

    @route("PUT", "/config/{subject:path}", write=True, body=CONFIG_BODY)
    async def put_config(subject: str, request: Request) -> Response:
        level = await _off(
            registry.set_compatibility, _subject(subject), _field(await _body(request), "compatibility")
        )
        return registry_response({"compatibility": level})

    @route("DELETE", "/config/{subject:path}", write=True)
    async def delete_config(subject: str) -> Response:
        return registry_response({"compatibilityLevel": (await _off(registry.delete_compatibility, subject))})

    @route("GET", "/mode")
    async def get_global_mode() -> Response:
        return registry_response({"mode": registry.mode(None)})

    @route("PUT", "/mode", write=True, body=MODE_BODY)
    async def put_global_mode(request: Request) -> Response:
        return registry_response(
            {"mode": (await _off(registry.set_mode, None, _field(await _body(request), "mode")))}
        )

    @route("GET", "/mode/{subject:path}")
    async def get_mode(subject: str, request: Request) -> Response:
        mode = registry.mode(subject, default_to_global=_flag(request, "defaultToGlobal"))
        return registry_response({"mode": mode})

    @route("PUT", "/mode/{subject:path}", write=True, body=MODE_BODY)
    async def put_mode(subject: str, request: Request) -> Response:
        mode = await _off(registry.set_mode, _subject(subject), _field(await _body(request), "mode"))
        return registry_response({"mode": mode})

    @route("DELETE", "/mode/{subject:path}", write=True)
    async def delete_mode(subject: str) -> Response:
        return registry_response({"mode": (await _off(registry.delete_mode, subject))})

    @route("GET", "/associations/{rest:path}")
    async def associations(rest: str) -> Response:
        # Subject-to-topic associations are not supported; stock clients treat 404 as "none".
        raise not_found(f"No associations for {rest}", 40401)

    @route("GET", "/{rest:path}")
    async def unknown(rest: str) -> Response:
        raise RegistryError("HTTP 404 Not Found", 404, 404)

    return router


Handler = Callable[[Request], Coroutine[Any, Any, Response]]


def _route_adder(
    router: APIRouter, writer: list[Any], audited: type[APIRoute] | None
) -> Callable[..., Callable[[Endpoint], Endpoint]]:
    """``route(method, path, write=False, body=None)``: a decorator adding a registry route (writes need
    the integration role and are audited when ``audited`` is given)."""

    def route(
        method: str, path: str, write: bool = False, body: dict[str, Any] | None = None
    ) -> Callable[[Endpoint], Endpoint]:
        def add(endpoint: Endpoint) -> Endpoint:
            router.add_api_route(
                path,
                endpoint,
                methods=[method],
                dependencies=writer if write else None,
                response_class=RegistryJSONResponse,
                openapi_extra=_request_body(body) if body else None,
                route_class_override=audited if write else None,
            )
            return endpoint

        return add

    return route


def _audited_route(audit: AuditLog) -> type[APIRoute]:
    """A route class whose requests are recorded in ``audit`` (one record each) before the answer leaves."""

    class AuditedRoute(APIRoute):
        def get_route_handler(self) -> Handler:
            handler = super().get_route_handler()

            async def audited(request: Request) -> Response:
                try:
                    response = await handler(request)
                except Exception as exc:
                    status = _status_of(exc)
                    outcome = "failed" if status >= 500 else "refused"
                    with contextlib.suppress(AuditUnavailable):  # the error answer stands
                        await audit.record(_registry_entry(request, outcome, f"{status}: {exc}"))
                    raise
                try:
                    await audit.record(_registry_entry(request, _done(request.method)))
                except AuditUnavailable as exc:
                    raise RegistryError(
                        f"the change was made but could not be audited: {exc}", 503, 50001
                    ) from exc
                return response

            return audited

    return AuditedRoute


def _done(method: str) -> str:
    return {"POST": "registered", "DELETE": "deleted"}.get(method, "changed")


def _status_of(exc: Exception) -> int:
    if isinstance(exc, (RegistryError, Problem)):
        return exc.status
    if isinstance(exc, HTTPException):
        return exc.status_code
    if isinstance(exc, RequestValidationError):
        return 422
    return 500


def _registry_entry(request: Request, outcome: str, reason: str | None = None) -> AuditEntry:
    identity = getattr(request.state, "identity", None)
    who = identity if isinstance(identity, Identity) else Identity("unknown", Role.INTEGRATION, "")
    subject = request.path_params.get("subject")
    what = f"{request.method} {request.url.path}"
    return AuditEntry.by(
        who,
        "registry-write",
        subject if isinstance(subject, str) else None,
        outcome=outcome,
        detail=f"{what}: {reason}"[:1000] if reason else what,
    )


def _field(body: Any, name: str) -> Any:
    if not isinstance(body, dict):
        raise unprocessable(f"request body must be a JSON object with {name!r}", 422)
    return body.get(name)


def _compatibility(problems: list[str], request: Request) -> Response:
    body: dict[str, Any] = {"is_compatible": not problems}
    if _flag(request, "verbose"):
        body["messages"] = problems
    return registry_response(body)


def schema_body(stored: StoredSchema) -> dict[str, Any]:
    """The answer of ``GET /schemas/ids/{id}``."""
    body: dict[str, Any] = {"schema": stored.text}
    if stored.references:
        body["references"] = [r.to_json() for r in stored.references]
    return body


class SchemaByIdFastPath:
    """ASGI middleware answering ``GET /registry/schemas/ids/{id}`` for a schema this instance knows.

    Every consumer and serializer resolves ids here, so it is the registry's hottest read; a schema's id
    never changes its schema, so the answer's bytes are kept per id (checked against the registry's
    current schema object on each request, so a permanently deleted or replaced entry is never served).
    Anything else (an id not applied yet, which waits for the log; a malformed id; other paths) goes on to
    the routes. It sits behind :class:`gateway.auth.Authentication`: only authenticated requests reach it.
    """

    PREFIX = "/registry/schemas/ids/"

    def __init__(self, app: ASGIApp, registry: SchemaRegistry) -> None:
        self.app = app
        self.registry = registry
        self._answers: dict[int, tuple[StoredSchema, bytes]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and scope["method"] == "GET" and path.startswith(self.PREFIX):
            digits = path[len(self.PREFIX) :]
            if digits.isascii() and digits.isdigit() and len(digits) <= 10:
                body = self._answer(int(digits))
                if body is not None:
                    await send(
                        {
                            "type": "http.response.start",
                            "status": 200,
                            "headers": [
                                (b"content-type", MEDIA_TYPE.encode()),
                                (b"content-length", str(len(body)).encode()),
                            ],
                        }
                    )
                    await send({"type": "http.response.body", "body": body})
                    return
        await self.app(scope, receive, send)

    def _answer(self, schema_id: int) -> bytes | None:
        stored = self.registry.known_schema(schema_id)
        if stored is None:
            return None
        cached = self._answers.get(schema_id)
        if cached is not None and cached[0] is stored:
            return cached[1]
        body = registry_response(schema_body(stored)).body
        self._answers[schema_id] = (stored, bytes(body))
        return bytes(body)
