"""The query API: every read-model table and the citizen profile, governed by sharing agreements.

Routes, one set per table of :data:`consumers.projections.READ_MODELS` (``residents``, ``vehicles``,
``benefits``, ``budget_programs``...):

- ``GET /v1/{table}/{key}``: one record by its key (tables with a one-column key);
- ``GET /v1/{table}?{column}=...&limit=&cursor=``: records in key order, filtered by equality on the key
  columns and the indexed columns (``/v1/benefits?recipient_resident_id=R000000000001``), in pages of
  ``limit`` (1 to 500, default 100) with an opaque ``next_cursor`` to pass as ``cursor`` for the next page
  (keyset pagination: stable while rows change, nothing skipped or repeated);
- ``GET /v1/citizen-profiles/{resident_id}``: the resident's record joined across every agency
  (:mod:`gateway.profile_view`).

Every request states its purpose in the ``Purpose`` header and is decided by the caller's agreements
for the table's read model (:mod:`gateway.agreements`): no agreement, no or an unknown purpose, or an
agreement not in force answers 403 with the reason. What is shown follows the catalog
(:mod:`gateway.disclosure`): protected fields the agreement does not grant are masked or withheld, and
each answer's ``disclosure`` says which, under which agreement, purpose and legal basis. A filter may
name only a column the caller sees in clear (filtering on a masked column would reveal it).

Every answer, refusals included, is recorded in the audit log first (:mod:`gateway.audit`): if the record
cannot be written, the answer is 503 and no data leaves. Any authenticated organisation may ask; the
agreements decide (an agency reads another agency's records under an agreement like a ministry).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import date
from typing import Any

import orjson
from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field, create_model
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from consumers.projections.profile import citizen_profile
from consumers.readmodel import PROVENANCE, Key, Row
from consumers.stores import Store, StoreError
from gateway.agreements import CITIZEN_PROFILE, AccessRefused, Agreements, Grant
from gateway.audit.entry import AuditEntry, AuditLog, AuditUnavailable
from gateway.disclosure import Contract, Disclosures, Plan
from gateway.identities import Identity
from gateway.problems import Problem, documented_errors, problem_response
from gateway.profile_view import ProfileView

PURPOSE_HEADER = "Purpose"
DEFAULT_LIMIT, MAX_LIMIT = 100, 500
_UNSTORABLE = re.compile("[\ud800-\udfff\x00]")
"""Characters no stored text holds: lone surrogates and NUL."""
MAX_FILTER_TEXT = 256
PROFILE_PREFIX = "/v1/citizen-profiles"
KINDS: dict[str, type] = {"text": str, "int": int, "decimal": str, "bool": bool}
Today = Callable[[], date]

ERRORS = documented_errors(
    {
        400: "a malformed filter, limit or cursor",
        401: "no credential, or an unknown or revoked one",
        403: "no agreement for the model, no or an unknown purpose, an agreement not in force, "
        "or a filter on a field the agreement masks",
        503: "the audit record could not be written, or the read-model store is unavailable: nothing "
        "was disclosed",
    }
)
PURPOSE_PARAMETER = {
    "name": PURPOSE_HEADER,
    "in": "header",
    "required": True,
    "description": "The purpose of this request: one of the purposes of your agreement for the model.",
    "schema": {"type": "string"},
}


class Disclosure(BaseModel):
    """Under which agreement, purpose and legal basis the answer was given, and what it hides."""

    agreement: str = Field(description="The sharing agreement that allowed the read.")
    purpose: str = Field(description="The purpose stated in the Purpose header.")
    legal_basis: str = Field(description="The law the agreement names for that purpose.")
    masked: list[str] = Field(description="Fields replaced by their catalog mask.")
    withheld: list[str] = Field(
        description="Fields left out (null) because the agreement does not grant them."
    )


class RecordsApi:
    """The state the routes share: store, agreements, disclosure plans, audit log and clock."""

    def __init__(
        self,
        store: Store,
        agreements: Agreements,
        disclosures: Disclosures,
        audit: AuditLog | None,
        today: Today = date.today,
    ) -> None:
        self.store = store
        self.agreements = agreements
        self.disclosures = disclosures
        self.audit = audit
        self.today = today
        self.profiles = ProfileView(disclosures)
        self.by_key: dict[str, Callable[[Request], Awaitable[Response]]] = {}
        """Table name → its by-key route's handler (for :class:`RecordsFastPath`)."""
        self.guarded = True
        """False only for the benchmark's baseline: reads by key answer every field in clear, with no
        agreement check and no audit (``govbus bench gateway`` measures the same route both ways)."""

    def grant(self, identity: Identity, model: str, purpose: str | None) -> Grant:
        """The agreement allowing this read; AccessRefused with the reason otherwise."""
        return self.agreements.decide(identity.organisation, model, purpose, self.today())

    async def record(self, entry: AuditEntry) -> None:
        """Append ``entry`` to the audit log; 503 (and nothing disclosed) when it cannot be written."""
        if self.audit is None:
            return
        try:
            await self.audit.record(entry)
        except AuditUnavailable as exc:
            raise Problem(
                503, "Service unavailable", f"the access could not be audited, so nothing is disclosed: {exc}"
            ) from exc

    async def refused(
        self,
        identity: Identity,
        action: str,
        model: str,
        purpose: str | None,
        keys: tuple[str, ...],
        subjects: tuple[str, ...],
        reason: str,
    ) -> Problem:
        """Audit a refused request and return the 403 to raise."""
        await self.record(
            AuditEntry.by(
                identity,
                action,
                model,
                keys=keys,
                subjects=subjects,
                purpose=purpose,
                outcome="refused",
                detail=reason,
            )
        )
        return Problem(403, "Forbidden", reason)

    async def lookup(self, contract: Contract, key: Key) -> Row | None:
        """One row by key: on the event loop where the store says that is quick (SQLite), else in a
        worker thread; 503 when the store fails."""
        if not self.store.quick_lookups:
            found: Row | None = await self.read(lambda: self.store.lookup(contract.table, key))
            return found
        try:
            row: Row | None = self.store.lookup(contract.table, key)
        except StoreError as exc:
            raise _store_unavailable(exc) from exc
        return row

    async def read(self, query: Callable[[], Any]) -> Any:
        """Run a store query in a worker thread; 503 when the store fails."""
        try:
            return await run_in_threadpool(query)
        except StoreError as exc:
            raise _store_unavailable(exc) from exc


def _store_unavailable(exc: StoreError) -> Problem:
    return Problem(503, "Service unavailable", f"the read-model store is unavailable: {exc}")


def records_router(api: RecordsApi) -> APIRouter:
    """The query API's routes over every read-model table and the citizen profile."""
    router = APIRouter(tags=["records"])
    # The gateway may start before any consumer ran: the (idempotent) migration lets it answer
    # "not found" instead of failing on a missing table.
    api.store.migrate([c.table for c in api.disclosures.contracts.values()])
    for contract in api.disclosures.contracts.values():
        _table_routes(router, api, contract)
    _profile_route(router, api)
    return router


def _identity(request: Request) -> Identity:
    identity = getattr(request.state, "identity", None)
    if not isinstance(identity, Identity):
        raise Problem(401, "Unauthorized", "a credential is required")
    return identity


def _answer(body: Any) -> Response:
    return Response(orjson.dumps(body), media_type="application/json")


def _disclosure(grant: Grant, plan_masked: list[str], plan_withheld: list[str]) -> dict[str, Any]:
    return {
        "agreement": grant.agreement.id,
        "purpose": grant.purpose.name,
        "legal_basis": grant.purpose.legal_basis,
        "masked": plan_masked,
        "withheld": plan_withheld,
    }


def _key_text(key: Key) -> str:
    return "/".join(str(part) for part in key)


def _table_routes(router: APIRouter, api: RecordsApi, contract: Contract) -> None:  # noqa: PLR0915 - one closure set per table
    table = contract.table
    model = contract.model
    row_model, one_model, page_model = _response_models(contract)
    filterable = tuple(dict.fromkeys([*table.key, *(index[0] for index in table.indexes)]))
    key_subject = len(table.key) == 1 and contract.column(table.key[0]).subject

    async def decide(
        request: Request, action: str, keys: tuple[str, ...], subjects: tuple[str, ...]
    ) -> tuple[Identity, Grant, Plan]:
        identity = _identity(request)
        purpose = request.headers.get(PURPOSE_HEADER)
        try:
            grant = api.grant(identity, model, purpose)
        except AccessRefused as exc:
            raise await api.refused(identity, action, model, purpose, keys, subjects, str(exc)) from exc
        return identity, grant, api.disclosures.plan(table.name, grant.agreement)

    def entry(
        identity: Identity,
        grant: Grant,
        action: str,
        keys: tuple[str, ...],
        subjects: tuple[str, ...],
        fields: tuple[str, ...],
        outcome: str,
    ) -> AuditEntry:
        return AuditEntry.by(
            identity,
            action,
            model,
            grant,
            keys=keys,
            subjects=subjects,
            fields=fields,
            outcome=outcome,
        )

    if len(table.key) == 1:
        key_column = table.key[0]
        key_kind = table.columns[key_column]

        async def get_one(request: Request) -> Response:
            raw = request.path_params["key"]
            if not api.guarded:
                return await unguarded(raw)
            subjects = (raw,) if key_subject else ()
            identity, grant, plan = await decide(request, "read", (raw,), subjects)
            key = (_parse(key_column, key_kind, raw),)
            row = await api.lookup(contract, key)
            if row is None:
                await api.record(entry(identity, grant, "read", (raw,), subjects, (), "not-found"))
                raise Problem(404, "Not found", f"no {table.name} record with {key_column} {raw!r}")
            await api.record(
                entry(
                    identity, grant, "read", (raw,), tuple(plan.subjects_of(row)), plan.disclosed, "disclosed"
                )
            )
            return _answer(
                {
                    "data": plan.apply(row),
                    "disclosure": _disclosure(grant, list(plan.masked), list(plan.withheld)),
                }
            )

        async def unguarded(raw: str) -> Response:
            key = (_parse(key_column, key_kind, raw),)
            row = await api.lookup(contract, key)
            if row is None:
                raise Problem(404, "Not found", f"no {table.name} record with {key_column} {raw!r}")
            return _answer({"data": api.disclosures.plan(table.name, None).apply(row)})

        api.by_key[table.name] = get_one
        router.add_api_route(
            f"/v1/{table.name}/{{key}}",
            get_one,
            methods=["GET"],
            name=f"get_{table.name}",
            summary=f"One {table.name} record by {key_column}",
            description=f"The current {table.name} record of the `{model}` read model, as your agreement "
            "shows it.",
            response_model=one_model,
            responses={**ERRORS, 404: ERRORS[400] | {"description": f"no record with this {key_column}"}},
            openapi_extra={
                "parameters": [
                    PURPOSE_PARAMETER,
                    {
                        "name": "key",
                        "in": "path",
                        "required": True,
                        "description": f"The {key_column}.",
                        "schema": {"type": "string"},
                    },
                ]
            },
        )

    async def list_rows(request: Request) -> Response:
        params = request.query_params
        equal = {c: _parse(c, table.all_columns[c], params[c]) for c in filterable if c in params}
        keys = tuple(f"{c}={params[c]}" for c in equal)
        subjects = tuple(str(v) for c, v in equal.items() if contract.column(c).subject)
        identity, grant, plan = await decide(request, "query", keys, subjects)
        hidden = [c for c in equal if not plan.visible(c)]
        if hidden:
            raise await api.refused(
                identity,
                "query",
                model,
                grant.purpose.name,
                keys,
                subjects,
                f"your agreement masks {', '.join(hidden)}: you may not filter on it",
            )
        limit = _limit(params.get("limit"))
        after = _cursor(params.get("cursor"), contract)
        rows: list[Row] = await api.read(lambda: _page(api.store, contract, equal, after, limit + 1))
        more = len(rows) > limit
        rows = rows[:limit]
        subjects_found = tuple(dict.fromkeys(s for row in rows for s in plan.subjects_of(row)))
        row_keys = tuple(_key_text(table.key_of(row)) for row in rows)
        await api.record(
            entry(
                identity,
                grant,
                "query",
                keys + row_keys,
                subjects_found,
                plan.disclosed if rows else (),
                "disclosed",
            )
        )
        next_cursor = _encode_cursor(table.key_of(rows[-1])) if more else None
        return _answer(
            {
                "data": [plan.apply(row) for row in rows],
                "next_cursor": next_cursor,
                "disclosure": _disclosure(grant, list(plan.masked), list(plan.withheld)),
            }
        )

    filters = [
        {
            "name": c,
            "in": "query",
            "required": False,
            "description": f"Only records whose {c} equals this. {contract.column(c).doc}",
            "schema": {"type": "integer" if table.all_columns[c] == "int" else "string"},
        }
        for c in filterable
    ]
    router.add_api_route(
        f"/v1/{table.name}",
        list_rows,
        methods=["GET"],
        name=f"list_{table.name}",
        summary=f"{table.name} records by filter, in key order",
        description=f"Records of the `{model}` read model's {table.name} table in key order, as your "
        "agreement shows them; pass `next_cursor` as `cursor` for the next page.",
        response_model=page_model,
        responses=ERRORS,
        openapi_extra={
            "parameters": [
                PURPOSE_PARAMETER,
                *filters,
                {
                    "name": "limit",
                    "in": "query",
                    "required": False,
                    "description": f"Records per page, 1 to {MAX_LIMIT} (default {DEFAULT_LIMIT}).",
                    "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
                },
                {
                    "name": "cursor",
                    "in": "query",
                    "required": False,
                    "description": "The `next_cursor` of the previous page.",
                    "schema": {"type": "string"},
                },
            ]
        },
    )
    del row_model


class RecordsFastPath:
    """ASGI middleware serving ``GET /v1/{table}/{key}`` without FastAPI's routing.

    It calls the route's own handler (same agreement check, disclosure and audit) and answers a Problem as
    the app's handler does; the routes stay the OpenAPI document's description and serve the request
    when this middleware is not installed. Matching a path among the gateway's hundred routes cost more
    than the read itself. It sits behind :class:`gateway.auth.Authentication`.
    """

    def __init__(self, app: ASGIApp, records: RecordsApi) -> None:
        self.app = app
        self.records = records

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] != "http" or scope["method"] != "GET" or not path.startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        _, _, table, *rest = path.split("/", 4)
        handler = self.records.by_key.get(table)
        if handler is None or len(rest) != 1 or not rest[0]:
            await self.app(scope, receive, send)
            return
        scope["path_params"] = {"key": rest[0]}
        response: Response
        try:
            response = await handler(Request(scope, receive, send))
        except Problem as problem:
            response = problem_response(
                problem.status, problem.title, problem.detail, path, problem.headers, **problem.extra
            )
        await response(scope, receive, send)


def _profile_route(router: APIRouter, api: RecordsApi) -> None:
    async def get_profile(request: Request) -> Response:
        identity = _identity(request)
        resident_id = _parse("resident_id", "text", request.path_params["resident_id"])
        purpose = request.headers.get(PURPOSE_HEADER)
        try:
            grant = api.grant(identity, CITIZEN_PROFILE, purpose)
        except AccessRefused as exc:
            raise await api.refused(
                identity, "read", CITIZEN_PROFILE, purpose, (resident_id,), (resident_id,), str(exc)
            ) from exc

        def query() -> Any:
            with api.store.snapshot() as tx:
                return citizen_profile(api.store.rows(tx), resident_id)

        profile = await api.read(query)
        base = AuditEntry.by(
            identity, "read", CITIZEN_PROFILE, grant, keys=(resident_id,), subjects=(resident_id,)
        )
        if profile is None:
            await api.record(replace(base, outcome="not-found"))
            raise Problem(404, "Not found", f"no resident with id {resident_id!r}")
        view = api.profiles.show(profile, grant.agreement)
        await api.record(replace(base, subjects=view.subjects, fields=view.disclosed, outcome="disclosed"))
        disclosure = _disclosure(grant, list(view.masked), list(view.withheld))
        return _answer({"data": view.data, "disclosure": disclosure})

    router.add_api_route(
        PROFILE_PREFIX + "/{resident_id}",
        get_profile,
        methods=["GET"],
        name="get_citizen_profile",
        summary="A resident's record joined across every agency",
        description="The citizen profile (identity, address, household, vehicles, enrolment, public "
        "service, benefits), each part shown as your `citizen_profile` agreement allows.",
        responses={**ERRORS, 404: {"description": "no resident with this id"}},
        openapi_extra={
            "parameters": [
                PURPOSE_PARAMETER,
                {"name": "resident_id", "in": "path", "required": True, "schema": {"type": "string"}},
            ]
        },
    )


# -- parsing -------------------------------------------------------------------------------------


def _parse(column: str, kind: str, raw: str) -> Any:
    """A filter or key value of a column, from its text; 400 when it cannot be one."""
    if len(raw) > MAX_FILTER_TEXT:
        raise Problem(400, "Bad request", f"{column}: at most {MAX_FILTER_TEXT} characters")
    if kind == "int":
        if not raw.lstrip("-").isascii() or not raw.lstrip("-").isdigit() or len(raw) > 19:
            raise Problem(400, "Bad request", f"{column} must be an integer, got {raw[:40]!r}")
        value = int(raw)
        if not -(2**63) <= value < 2**63:
            raise Problem(400, "Bad request", f"{column} is out of range")
        return value
    if kind == "bool":
        if raw not in ("true", "false"):
            raise Problem(400, "Bad request", f"{column} must be true or false")
        return raw == "true"
    if _UNSTORABLE.search(raw):
        raise Problem(400, "Bad request", f"{column} holds characters no record can hold")
    return raw


def _limit(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_LIMIT
    if not raw.isascii() or not raw.isdigit() or len(raw) > 4 or not 1 <= int(raw) <= MAX_LIMIT:
        raise Problem(400, "Bad request", f"limit must be an integer from 1 to {MAX_LIMIT}")
    return int(raw)


def _encode_cursor(key: Key) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(list(key))).decode().rstrip("=")


def _cursor(raw: str | None, contract: Contract) -> Key | None:
    if raw is None:
        return None
    kinds = [contract.table.all_columns[c] for c in contract.table.key]
    try:
        if len(raw) > 2048:
            raise ValueError
        parts = orjson.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
        if not isinstance(parts, list) or len(parts) != len(kinds):
            raise ValueError
        for part, kind in zip(parts, kinds, strict=True):
            expected = int if kind == "int" else str
            if type(part) is not expected:
                raise ValueError
    except (ValueError, binascii.Error, orjson.JSONDecodeError) as exc:
        raise Problem(400, "Bad request", "cursor is not a next_cursor this API gave") from exc
    return tuple(parts)


def _page(
    store: Store, contract: Contract, equal: dict[str, Any], after: Key | None, limit: int
) -> list[Row]:
    with store.snapshot() as tx:
        return store.page(tx, contract.table, equal, after, limit)


# -- response models (the OpenAPI document's contract of each record) ------------------------------


def _response_models(contract: Contract) -> tuple[type[BaseModel], type[BaseModel], type[BaseModel]]:
    """Pydantic models of a record, one answer and a page, described from the catalog's docs."""
    name = "".join(part.title() for part in contract.name.split("_"))
    provenance = {n for n, _ in PROVENANCE}
    address_columns = {"sido", "sigungu", "road_address", "detail", "postal_code", "admin_code"}
    nested = contract.nested_address

    def field(column: Any) -> Any:
        kind = KINDS[column.kind]
        note = f" Classification: {column.classification}."
        if column.protected:
            note += (
                f" Masked ({column.mask}) unless your agreement grants it."
                if column.mask
                else " Null unless your agreement grants it."
            )
        typ: Any = (str if column.mask else kind) | None
        return (typ, Field(None, description=column.doc + note))

    address_model = (
        create_model(
            f"{name}Address",
            __doc__="The address.",
            **{c.name: field(c) for c in contract.columns if c.name in address_columns},
        )
        if nested
        else None
    )
    provenance_model = create_model(
        f"{name}Provenance",
        __doc__="Where the row's current state came from.",
        **{c.name: field(c) for c in contract.columns if c.name in provenance},
    )
    members: dict[str, Any] = {
        c.name: field(c)
        for c in contract.columns
        if c.name not in provenance and not (nested and c.name in address_columns)
    }
    if address_model is not None:
        members["address"] = (address_model, Field(description="The address."))
    members["provenance"] = (provenance_model, Field(description="Where the row's current state came from."))
    row: Any = create_model(f"{name}Record", __doc__=f"A record of {contract.name}.", **members)
    one = create_model(f"{name}Answer", data=(row, ...), disclosure=(Disclosure, ...))
    page = create_model(
        f"{name}Page",
        data=(list[row], ...),
        next_cursor=(
            str | None,
            Field(None, description="Pass as `cursor` for the next page; null on the last."),
        ),
        disclosure=(Disclosure, ...),
    )
    return row, one, page
