"""``POST /v1/events``: agencies without a Kafka client publish through the gateway.

The body is one event or a batch (``{"events": [...]}``, at most :data:`MAX_EVENTS`). Each event names
its catalog type and carries its payload as JSON (dates, decimals and times as text:
:mod:`schemas.json_datum`). The gateway checks every event against the catalog and encodes it exactly as
the publisher SDK does (Confluent wire format, CloudEvents headers), with ``ce_source`` the
authenticated agency, never anything from the body. It answers 202 with the event ids only after Kafka
committed the whole batch in one transaction (:class:`~producers.atomic.AtomicSender`), so a batch is
all-or-nothing:

- an event of another agency's type → 403 naming the type; nothing is published;
- an event that does not fit → 422 naming the item (``events[3]``) and why; nothing is published;
- Kafka down or refusing → 503 with the reason; nothing is published. When the commit was sent but not
  confirmed, the 503 says the outcome is unknown: retry with the same ``Idempotency-Key`` (or the same
  event ``id``s) and consumers drop whatever copy arrives.

``Idempotency-Key`` (:mod:`gateway.idempotency`): a repeated request returns the first answer and
publishes nothing new. With a key, an event without an ``id`` gets one derived from the agency, the key
and its position, so a retry after an unknown outcome writes the same ids.

Audit (:mod:`gateway.audit`): each publish request whose events were checked gets one audit record
(action ``publish``; ``model`` the topics; ``keys`` the event ids, the first :data:`AUDIT_MAX_KEYS`, the
detail saying how many there were beyond; ``subjects`` the events' keys that are resident ids; outcome
``published``, ``refused`` for a 403 or 422, ``failed`` for a 503), written before the answer leaves.
Kafka commits the events first and the audit record after, in the audit log's own transaction: when
the events were committed but their audit record could not be written, the answer is **503 with
``outcome: "published"`` and the ids**: the events are in the log (consumers apply them), the request is
not acknowledged as 202 because it is not audited. Publishing them again makes copies that consumers drop
by event id; a retry with the same ``Idempotency-Key`` writes the same ids and is audited. When a refused
or failed request cannot be audited, its own error answer stands (nothing was published). A replayed
answer (same ``Idempotency-Key``) publishes nothing and is not audited again.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import re
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any

import orjson
from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import Response
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, SkipValidation, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from bus.errors import GovbusError, PublishError, SchemaNotFoundError, SerializationError
from gateway.audit.entry import AuditEntry, AuditLog, AuditUnavailable
from gateway.auth import require
from gateway.bodies import read_body
from gateway.idempotency import IdempotencyKeys, fingerprint
from gateway.identities import RESIDENT_ID, Identity, Role
from gateway.problems import Problem, documented_errors, problem_response
from producers.atomic import SEND_TIMEOUT_S, AtomicSender, OutcomeUnknownError, give_up
from producers.publisher import PreparedEvent, Publisher
from schemas.catalog import Catalog, EventType
from schemas.json_datum import DatumError, compile_converter
from schemas.registry.service import SchemaRegistry

MAX_EVENTS = 1000
MAX_BODY_BYTES = 4 * 1024 * 1024
IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,255}")
EVENT_ID = r"^[\x21-\x7e]{1,128}$"
ID_NAMESPACE = uuid.UUID("9b0c8f1e-5c2a-4d0e-9a51-6f1d3c2b7a10")
AUDIT_MAX_KEYS = 1000
"""Event ids (and resident ids) one publish's audit record keeps at most."""


class EventIn(BaseModel):
    """One event to publish."""

    model_config = ConfigDict(extra="forbid")

    type: str = Field(
        description="The catalog event type (the record's full name), e.g. govbus.localgov.ResidentMoved"
    )
    # Taken as parsed (a copy of every nested object would cost more than the rest of the validation);
    # _prepare checks that it is an object, the catalog schema checks the rest.
    data: SkipValidation[dict[str, Any]] = Field(
        description="The payload, as the catalog schema describes it; dates as 2024-03-01, decimals as "
        'strings ("1250000.00"), times as RFC 3339 with an offset'
    )
    id: str | None = Field(
        default=None,
        pattern=EVENT_ID,
        description="The CloudEvents id; generated when absent (derived from the Idempotency-Key when given)",
    )
    time: AwareDatetime | None = Field(
        default=None, description="When it happened (RFC 3339 with an offset); now when absent"
    )
    correlationid: str | None = Field(
        default=None, max_length=256, description="One citizen request across agencies"
    )
    causationid: str | None = Field(
        default=None, max_length=256, description="The event that caused this one"
    )
    legalbasis: str | None = Field(
        default=None, max_length=512, description="The statute that allows the processing"
    )


class BatchIn(BaseModel):
    """Several events, published all-or-nothing."""

    model_config = ConfigDict(extra="forbid")

    events: list[EventIn] = Field(min_length=1, max_length=MAX_EVENTS)


class Accepted(BaseModel):
    """The events Kafka committed, in the order sent."""

    ids: list[str] = Field(description="The CloudEvents id of each event")


def _request_body() -> dict[str, Any]:
    """The body as the OpenAPI document shows it: one event, or a batch of them (schemas inline)."""
    event = EventIn.model_json_schema()
    batch = {
        "title": "BatchIn",
        "description": BatchIn.__doc__,
        "type": "object",
        "properties": {"events": {"type": "array", "items": event, "minItems": 1, "maxItems": MAX_EVENTS}},
        "required": ["events"],
        "additionalProperties": False,
    }
    return {"required": True, "content": {"application/json": {"schema": {"anyOf": [event, batch]}}}}


class LocalSchemaIds:
    """Schema ids from the gateway's own registry (no HTTP round trip to itself)."""

    def __init__(self, registry: SchemaRegistry) -> None:
        self._registry = registry

    def lookup(self, subject: str, schema_text: str) -> int:
        """The id of ``schema_text`` under ``subject``; RegistryError 40401/40403 when not registered."""
        return self._registry.lookup(subject, {"schema": schema_text}).schema_id

    def schema_text(self, schema_id: int) -> str:
        """The schema registered with ``schema_id``; RegistryError 40403 when there is none."""
        return self._registry.schema(schema_id).text


class Publishing:
    """What the publish API needs: the catalog, an SDK publisher per agency (to check and encode), the
    transactional senders and the idempotency keys.

    Requests take the senders in turn: each commits one transaction at a time (a commit waits for the
    broker to write its markers), so several senders keep several transactions in flight.
    """

    def __init__(
        self,
        catalog: Catalog,
        publishers: dict[str, Publisher],
        senders: Sequence[AtomicSender],
        keys: IdempotencyKeys,
    ) -> None:
        self.catalog = catalog
        self.publishers = publishers
        self.senders = list(senders)
        self.keys = keys
        self._turn = itertools.cycle(self.senders)
        self._converters: dict[str, Callable[[Any], Any]] = {}

    def converter(self, kind: EventType) -> Callable[[Any], Any]:
        """The JSON-to-Avro converter of ``kind``'s payloads, compiled on first use."""
        found = self._converters.get(kind.full_name)
        if found is None:
            found = self._converters[kind.full_name] = compile_converter(kind.schema)
        return found

    def submit(self, events: Sequence[PreparedEvent]) -> Future[None]:
        """Hand ``events`` to the next sender to commit all-or-nothing (:meth:`AtomicSender.submit`)."""
        return next(self._turn).submit(events)

    def warm(self, agency: str, events: Sequence[EventIn]) -> bool:
        """Whether preparing ``events`` is pure computation: the agency's publisher knows every type's
        topic and schema id already, so no call to Kafka or the registry is needed."""
        publisher = self.publishers.get(agency)
        return publisher is not None and all(publisher.ready(event.type) for event in events)

    def close(self) -> None:
        """Stop the senders and release the publishers' Kafka clients (they only check and encode)."""
        for sender in self.senders:
            sender.close()
        for publisher in self.publishers.values():
            publisher.close(timeout_s=0)


def publish_router(publishing: Publishing, audit: AuditLog | None = None) -> APIRouter:
    """The publish route; each request is recorded in ``audit`` when given."""
    router = APIRouter(prefix="/v1/events", tags=["publish"])
    agency = require(Role.AGENCY)

    @router.post(
        "",
        status_code=202,
        response_model=Accepted,
        openapi_extra={"requestBody": _request_body()},
        responses=documented_errors(
            {
                401: "no credential, or an unknown or revoked one",
                403: "the caller is not an agency, or an event is another agency's type",
                409: "a request with this Idempotency-Key is still being published",
                413: "the body is larger than 4 MiB",
                415: "the body is not JSON",
                422: "the body or an event does not fit (the problem names the item and why)",
                503: "Kafka did not commit the batch (nothing published, or outcome unknown), or the "
                'events were published (outcome "published", with their ids) but could not be audited',
            }
        ),
    )
    async def publish(
        request: Request,
        caller: Identity = Depends(agency),  # noqa: B008 - FastAPI's way to declare a dependency
        idempotency_key: str | None = Header(
            default=None,
            description="Makes a retry safe: the same key returns the first answer (kept 24 h)",
        ),
    ) -> Response:
        """Publish one event or a batch of the caller's agency; 202 with the ids once Kafka committed."""
        return await publish_answer(publishing, request, caller, idempotency_key, audit)

    return router


async def publish_answer(
    publishing: Publishing,
    request: Request,
    caller: Identity,
    idempotency_key: str | None,
    audit: AuditLog | None = None,
) -> Response:
    """The answer to one publish request of ``caller`` (an agency); raises Problem for an error answer."""
    raw = await read_body(request, MAX_BODY_BYTES)
    if idempotency_key is not None and not IDEMPOTENCY_KEY.fullmatch(idempotency_key):
        raise Problem(422, "Invalid request", "Idempotency-Key must be 1 to 255 visible ASCII characters")
    events = _parse(raw)
    agency_name = caller.organisation
    if idempotency_key is None:
        return _accepted(await _publish(publishing, caller, events, None, audit))
    claimed = await run_in_threadpool(publishing.keys.claim, agency_name, idempotency_key, fingerprint(raw))
    if claimed is not None:
        return _replay(claimed.fingerprint == fingerprint(raw), claimed.answer)
    try:
        answer = await _publish(publishing, caller, events, idempotency_key, audit)
    except BaseException:
        await run_in_threadpool(publishing.keys.release, agency_name, idempotency_key)
        raise
    await run_in_threadpool(publishing.keys.record, agency_name, idempotency_key, answer)
    return _accepted(answer)


class PublishFastPath:
    """ASGI middleware serving ``POST /v1/events`` without FastAPI's routing and parameter resolution.

    It runs what the route runs (:func:`publish_answer`, after the same role check) and answers a Problem
    as the app's handler does; anything unexpected propagates as from a route. The route stays the
    OpenAPI document's description and serves the request when this middleware is not installed. The
    publish API is the gateway's busiest write: matching the route among the registry's and resolving its
    parameters took about a sixth of the CPU of a 100-event request. It sits behind
    :class:`gateway.auth.Authentication`: only authenticated requests reach it.
    """

    PATH = "/v1/events"

    def __init__(self, app: ASGIApp, publishing: Publishing, audit: AuditLog | None = None) -> None:
        self.app = app
        self.publishing = publishing
        self.audit = audit
        self._agency = require(Role.AGENCY)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != self.PATH or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive, send)
        response: Response
        try:
            caller = await self._agency(request)
            key = request.headers.get("idempotency-key")
            response = await publish_answer(self.publishing, request, caller, key, self.audit)
        except Problem as problem:
            response = problem_response(
                problem.status, problem.title, problem.detail, self.PATH, problem.headers, **problem.extra
            )
        await response(scope, receive, send)


def _accepted(answer: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(answer), status_code=202, media_type="application/json", headers=headers)


def _replay(same_request: bool, answer: dict[str, Any] | None) -> Response:
    if not same_request:
        raise Problem(422, "Invalid request", "this Idempotency-Key was used for another request body")
    if answer is None:
        raise Problem(
            409, "Conflict", "a request with this Idempotency-Key is still being published; retry later"
        )
    return _accepted(answer, {"Idempotent-Replayed": "true"})


def _parse(raw: bytes) -> list[EventIn]:
    """The events of a body. orjson is strict JSON (UTF-8, no NaN or infinities, no lone surrogates) and
    several times faster than the standard parser on a batch; it refuses nesting beyond 1,024 levels, and
    the catalog schemas bound what a payload may nest below that."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise Problem(422, "Invalid request", f"the body is not JSON: {exc}") from exc
    except RecursionError as exc:
        raise Problem(422, "Invalid request", "the body is nested too deep") from exc
    if not isinstance(body, dict):
        raise Problem(422, "Invalid request", 'the body must be an event object or {"events": [...]}')
    try:
        if "events" in body:
            return BatchIn.model_validate(body).events
        return [EventIn.model_validate(body)]
    except ValidationError as exc:
        raise Problem(422, "Invalid request", _reasons(exc, "events" in body)) from exc


def _reasons(exc: ValidationError, batch: bool) -> str:
    reasons = []
    for error in exc.errors()[:5]:
        location = error["loc"]
        if batch and len(location) >= 2 and location[0] == "events" and isinstance(location[1], int):
            where = f"events[{location[1]}]" + "".join(f".{p}" for p in location[2:])
        else:
            where = ".".join(str(p) for p in location) or "body"
        reasons.append(f"{where}: {error['msg']}")
    return "; ".join(reasons)


async def _publish(
    publishing: Publishing,
    caller: Identity,
    events: list[EventIn],
    idempotency_key: str | None,
    audit: AuditLog | None,
) -> dict[str, Any]:
    """Publish ``events`` (:func:`_publish_events`) and record the request in ``audit`` before answering."""
    if audit is None:
        return {
            "ids": [
                event.event_id for event in await _publish_events(publishing, caller, events, idempotency_key)
            ]
        }
    prepared: list[PreparedEvent] = []
    try:
        prepared = await _publish_events(publishing, caller, events, idempotency_key, prepared)
    except Problem as problem:
        outcome = "failed" if problem.status >= 500 else "refused"
        with contextlib.suppress(AuditUnavailable):  # the error answer stands: nothing was published
            await audit.record(_publish_entry(caller, prepared, outcome, problem.detail))
        raise
    ids = [event.event_id for event in prepared]
    try:
        await audit.record(_publish_entry(caller, prepared, "published"))
    except AuditUnavailable as exc:
        raise Problem(
            503,
            "Service unavailable",
            f"the events were published (their ids are in 'ids') but the publish could not be audited: "
            f"{exc}; publishing them again makes copies, which consumers drop by event id",
            outcome="published",
            ids=ids,
        ) from exc
    return {"ids": ids}


def _publish_entry(
    caller: Identity, prepared: list[PreparedEvent], outcome: str, detail: str | None = None
) -> AuditEntry:
    """The audit record of one publish request: its topics, event ids and resident ids (capped)."""
    if len(prepared) > AUDIT_MAX_KEYS:
        kept = f"{len(prepared)} events, the first {AUDIT_MAX_KEYS} ids kept"
        detail = f"{detail}; {kept}" if detail else kept
    subjects = dict.fromkeys(e.key for e in prepared if len(e.key) == 13 and RESIDENT_ID.fullmatch(e.key))
    return AuditEntry.by(
        caller,
        "publish",
        ",".join(sorted({e.topic for e in prepared})) or None,
        keys=tuple(e.event_id for e in prepared[:AUDIT_MAX_KEYS]),
        subjects=tuple(subjects)[:AUDIT_MAX_KEYS],
        outcome=outcome,
        detail=detail[:1000] if detail else None,
    )


async def _publish_events(
    publishing: Publishing,
    caller: Identity,
    events: list[EventIn],
    idempotency_key: str | None,
    prepared_out: list[PreparedEvent] | None = None,
) -> list[PreparedEvent]:
    """Prepare ``events`` and wait for their commit on the event loop, not in a worker thread.

    Checking and encoding is pure computation (about 6 µs an event) once the types' topics and schema ids
    are known: under the GIL a worker thread would add handoffs, not parallelism (a thread per step cost
    a fifth of the publish API's throughput). The first use of a type may ask Kafka for its topic, so it
    goes to a worker thread. The commit is awaited as a future the sender thread completes.
    ``prepared_out``, when given, receives the prepared events before they are sent (for the audit).
    """
    agency = caller.organisation
    if publishing.warm(agency, events):
        prepared = _prepare_all(publishing, agency, events, idempotency_key)
    else:
        prepared = await run_in_threadpool(_prepare_all, publishing, agency, events, idempotency_key)
    if prepared_out is not None:
        prepared_out.extend(prepared)
    try:
        await _committed(publishing.submit(prepared))
    except OutcomeUnknownError as exc:
        raise Problem(
            503,
            "Service unavailable",
            f"{exc}; retry with the same Idempotency-Key or event ids, consumers drop copies",
            outcome="unknown",
        ) from exc
    except PublishError as exc:
        raise Problem(503, "Service unavailable", str(exc), outcome="not published") from exc
    return prepared


async def _committed(outcome: Future[None]) -> None:
    """Wait for a submitted batch's round, at most :data:`SEND_TIMEOUT_S`; raise what the round raised,
    PublishError when Kafka never took the batch, OutcomeUnknownError when its commit is unconfirmed."""
    waiting = asyncio.wrap_future(outcome)
    # Whatever the round ends with after we stopped waiting is retrieved here, not logged as lost.
    waiting.add_done_callback(lambda done: done.cancelled() or done.exception())
    finished, _ = await asyncio.wait({waiting}, timeout=SEND_TIMEOUT_S)
    if not finished:
        give_up(outcome, SEND_TIMEOUT_S)
    outcome.result()


def _prepare_all(
    publishing: Publishing, agency: str, events: list[EventIn], idempotency_key: str | None
) -> list[PreparedEvent]:
    """Check and encode every event (raising Problem for the first that fails); nothing is sent here.

    Each distinct type of the batch is looked up and checked once (a batch is usually of one or two)."""
    publisher = publishing.publishers.get(agency)
    if publisher is None:
        raise Problem(403, "Forbidden", f"organisation {agency!r} is not an agency of the catalog")
    kinds: dict[str, _Resolved] = {}
    prepared = []
    for index, event in enumerate(events):
        try:
            resolved = kinds.get(event.type)
            if resolved is None:
                resolved = kinds[event.type] = _resolve(publishing, publisher, agency, event.type)
            prepared.append(_prepare(resolved, agency, event, index, idempotency_key))
        except Problem as problem:
            where = f"events[{index}]" if len(events) > 1 else "event"
            problem.detail = f"{where}: {problem.detail}"
            raise
    return prepared


_Resolved = tuple[Callable[[Any], Any], Callable[..., PreparedEvent]]
"""A type's payload converter and its publisher's :meth:`~producers.publisher.Publisher.preparer`."""


def _resolve(publishing: Publishing, publisher: Publisher, agency: str, event_type: str) -> _Resolved:
    """How to prepare events of a type ``agency`` may publish (Problem 422, 403 or 503 if it cannot)."""
    try:
        kind = publishing.catalog.get(event_type)
    except SchemaNotFoundError as exc:
        raise Problem(422, "Invalid request", f"{event_type[:200]!r} is not a catalog event type") from exc
    if kind.agency != agency:
        raise Problem(
            403,
            "Forbidden",
            f"agency {agency!r} may not publish {kind.full_name} (an event of {kind.agency!r})",
        )
    try:
        return publishing.converter(kind), publisher.preparer(kind.full_name)
    except GovbusError as exc:  # the topic is missing, Kafka or the registry does not answer
        raise Problem(503, "Service unavailable", str(exc), outcome="not published") from exc


def _prepare(
    resolved: _Resolved, agency: str, event: EventIn, index: int, idempotency_key: str | None
) -> PreparedEvent:
    if not isinstance(event.data, dict):
        raise Problem(422, "Invalid request", "data must be a JSON object")
    converter, prepare = resolved
    event_id = event.id
    if event_id is None and idempotency_key is not None:
        event_id = str(uuid.uuid5(ID_NAMESPACE, f"{agency}\n{idempotency_key}\n{index}"))
    extensions = None
    if event.correlationid or event.causationid or event.legalbasis:
        extensions = {
            "correlationid": event.correlationid or "",
            "causationid": event.causationid or "",
            "legalbasis": event.legalbasis or "",
        }
    try:
        return prepare(converter(event.data), event_id=event_id, time=event.time, extensions=extensions)
    except (DatumError, SerializationError) as exc:
        raise Problem(422, "Invalid request", str(exc)) from exc
