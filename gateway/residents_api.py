"""``/v1/residents``: the current record of a resident from the residents read model.

The resident registration number (classified ``sensitive`` in the catalog) is always masked, by the
hand-written :func:`mask_registration_number`; the other fields are returned as they are. Masking
driven by the catalog's classifications and per-ministry sharing agreements are not built yet.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter

from consumers.projections.residents import ResidentProjection, get_resident
from consumers.store import SqliteStore
from gateway.problems import Problem


def mask_registration_number(number: str) -> str:
    """Keep the birth date and the sex digit, hide the rest: ``900101-1******``."""
    return number[:8] + "*" * max(len(number) - 8, 0)


def residents_router(store: SqliteStore) -> APIRouter:
    """Routes reading the residents read model held by ``store``."""
    router = APIRouter(prefix="/v1/residents", tags=["residents"])
    # The gateway may start before the consumer ever ran: the (idempotent) migration lets it
    # answer "no such resident" instead of failing on a missing table.
    with store.transaction() as tx:
        ResidentProjection().migrate(tx)

    @router.get("/{resident_id}")
    def get(resident_id: str) -> dict[str, Any]:
        with store.snapshot() as tx:
            resident = get_resident(tx, resident_id)
        if resident is None:
            raise Problem(404, "Resident not found", f"no resident with id {resident_id!r}")
        record = asdict(resident)
        record["registration_number"] = mask_registration_number(resident.registration_number)
        address = {
            k: record.pop(k)
            for k in ("sido", "sigungu", "road_address", "detail", "postal_code", "admin_code")
        }
        return {**record, "address": address}

    return router
