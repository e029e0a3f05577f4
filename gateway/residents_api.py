"""``/v1/residents``: the current record of a resident from the residents read model.

The resident registration number (classified ``sensitive`` in the catalog) is always masked, by the
hand-written :func:`mask_registration_number`; the other fields are returned as they are. Masking
driven by the catalog's classifications and per-ministry sharing agreements are not built yet.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from consumers.projections.localgov import RESIDENTS
from consumers.readmodel import PROVENANCE
from consumers.stores import Store
from gateway.auth import require
from gateway.identities import Role
from gateway.problems import Problem, documented_errors

ADDRESS = ("sido", "sigungu", "road_address", "detail", "postal_code", "admin_code")


def mask_registration_number(number: str) -> str:
    """Keep the birth date and the sex digit, hide the rest: ``900101-1******``."""
    return number[:8] + "*" * max(len(number) - 8, 0)


def residents_router(store: Store) -> APIRouter:
    """Routes reading the residents read model held by ``store``: ministries, the integration team and
    auditors may read (agencies publish; they read shared records once sharing agreements exist)."""
    router = APIRouter(
        prefix="/v1/residents",
        tags=["residents"],
        dependencies=[Depends(require(Role.MINISTRY, Role.INTEGRATION, Role.AUDITOR))],
    )
    # The gateway may start before the consumer ever ran: the (idempotent) migration lets it
    # answer "no such resident" instead of failing on a missing table.
    store.migrate([RESIDENTS])

    errors = documented_errors(
        {
            401: "no credential, or an unknown or revoked one",
            403: "the organisation's role may not read residents",
            404: "no resident with this id",
        }
    )

    @router.get("/{resident_id}", responses=errors)
    def get(resident_id: str) -> dict[str, Any]:
        with store.snapshot() as tx:
            found = store.rows(tx).load(RESIDENTS, [(resident_id,)])
        if not found:
            raise Problem(404, "Resident not found", f"no resident with id {resident_id!r}")
        record = dict(found[0])
        record["registration_number"] = mask_registration_number(record["registration_number"])
        address = {k: record.pop(k) for k in ADDRESS}
        provenance = {name: record.pop(name) for name, _ in PROVENANCE}
        return {**record, "address": address, "provenance": provenance}

    return router
