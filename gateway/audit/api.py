"""``GET /v1/audit/subjects/{resident_id}``: who processed a resident's data, why, and with which outcome.

Allowed for the ``auditor`` role and for a ``resident`` credential bound to that very resident id (its
organisation *is* the resident id); anyone else gets 403, and so does a resident asking about another
resident. Decisions:

- **The view is audited first.** Its own ``audit-read`` record (``subjects`` = the resident id) is written
  before anything is read; when it cannot be written the answer is 503 and holds no data. A resident's own
  lookups are therefore in their trail, never hidden, including the lookup being answered.
- **Read-your-writes.** Before answering, the trail waits (at most 5 s) until it has read past the last
  record this gateway's audit log committed: a read audited a moment before is in the answer. A trail
  that cannot catch up answers 503.
- **Paging.** ``limit`` (1 to 1,000, default 100) records, oldest first, the newest last. Without
  ``before`` the page ends at the newest record; ``before`` (the ``previous`` cursor of an answer) asks for
  the records before that position. A cursor is a position in this gateway's index, meaningful for
  this gateway instance.
- A refused request is recorded too (``outcome`` ``refused``), without ``subjects``: a resident is never
  shown which other resident tried to look at their trail.
"""

from __future__ import annotations

import contextlib
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, Field

from gateway.audit.entry import AuditEntry, AuditLog, AuditUnavailable, Positioned
from gateway.audit.trail import CATCH_UP_S, AuditTrail
from gateway.auth import require
from gateway.identities import RESIDENT_ID, Identity, Role
from gateway.problems import Problem, documented_errors

MAX_LIMIT = 1000


class TrailRecord(BaseModel):
    """One audited request about the resident."""

    time: str = Field(description="When it was audited (UTC, ISO-8601 with milliseconds)")
    writer: str = Field(description="The gateway instance that audited it")
    seq: int = Field(description="Its position in that gateway's hash chain")
    organisation: str
    role: str
    action: str = Field(description="read, query, feed, publish, registry-write or audit-read")
    model: str | None = None
    fields: list[str] = Field(default_factory=list, description="Fields disclosed in clear (names only)")
    purpose: str | None = None
    legal_basis: str | None = None
    agreement: str | None = None
    outcome: str
    detail: str | None = None


class SubjectTrail(BaseModel):
    """The audited requests about one resident, oldest first."""

    subject: str
    records: list[TrailRecord]
    previous: int | None = Field(
        description="Pass as `before` to get the older records; null when there are none"
    )


def audit_router(trail: AuditTrail, log: AuditLog) -> APIRouter:
    """The subject view over ``trail``; its own reads are recorded in ``log``."""
    router = APIRouter(prefix="/v1/audit", tags=["audit"])
    allowed = require(Role.AUDITOR, Role.RESIDENT)

    @router.get(
        "/subjects/{resident_id}",
        response_model=SubjectTrail,
        responses=documented_errors(
            {
                401: "no credential, or an unknown or revoked one",
                403: "not an auditor, or a resident asking about another resident",
                422: "the resident id is not R followed by 12 digits, or a bad limit or cursor",
                503: "the audit record of this view could not be written, or the trail has not caught up",
            }
        ),
    )
    async def subject(
        resident_id: Annotated[str, Path(pattern=RESIDENT_ID.pattern, description="e.g. R004200000001")],
        caller: Identity = Depends(allowed),  # noqa: B008 - FastAPI's way to declare a dependency
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="records per page")] = 100,
        before: Annotated[int | None, Query(ge=0, description="the `previous` cursor of an answer")] = None,
    ) -> dict[str, Any]:
        """The audited requests about a resident, oldest first; audited itself before it answers."""
        if caller.role is Role.RESIDENT and caller.organisation != resident_id:
            await _refused(log, caller, resident_id)
            raise Problem(403, "Forbidden", "a resident may read only their own audit trail")
        entry = AuditEntry.by(caller, "audit-read", "audit", subjects=(resident_id,), outcome="disclosed")
        try:
            await log.record(entry)
        except AuditUnavailable as exc:
            raise Problem(503, "Service unavailable", f"{exc}; no data was returned") from exc
        targets = log.committed() if isinstance(log, Positioned) else {}
        if not await trail.caught_up(targets, CATCH_UP_S):
            raise Problem(
                503,
                "Service unavailable",
                f"the audit trail did not catch up with the audit log within {CATCH_UP_S:g}s",
            )
        records = trail.subject(resident_id)
        end = len(records) if before is None else min(before, len(records))
        start = max(0, end - limit)
        return {"subject": resident_id, "records": records[start:end], "previous": start or None}

    return router


async def _refused(log: AuditLog, caller: Identity, asked: str) -> None:
    """Record a refused view (best effort: the answer is a refusal either way)."""
    entry = AuditEntry.by(
        caller,
        "audit-read",
        "audit",
        keys=(asked,),
        outcome="refused",
        detail="a resident may read only their own audit trail",
    )
    with contextlib.suppress(AuditUnavailable):
        await log.record(entry)
