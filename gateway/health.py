"""``/healthz`` (liveness) and ``/readyz`` (readiness) of the gateway.

``/healthz`` answers 200 while the process serves requests, whatever its dependencies do: an orchestrator
restarts a process that fails it. ``/readyz`` answers 200 only when the gateway can do its work: the
registry's storage answers and this instance has applied everything committed to it (Kafka), and the
read-model store answers a query. Otherwise 503 (problem+json) naming each failed check and why, so a
load balancer stops sending requests to it until it is ready again. Each check runs in a worker thread
with a deadline of :data:`CHECK_TIMEOUT_S`: a dependency that hangs makes the answer 503, never a hang.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from consumers.stores import Store
from gateway.problems import problem_response
from schemas.registry.service import SchemaRegistry

CHECK_TIMEOUT_S = 5.0


def health_router(registry: SchemaRegistry, store: Store) -> APIRouter:
    """The liveness and readiness routes."""
    router = APIRouter(tags=["health"])

    @router.get("/healthz")
    def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @router.get("/readyz", responses={503: {"description": "a dependency is not ready (problem+json)"}})
    async def readyz() -> Response:
        """Readiness: the registry's storage (Kafka) is caught up and the read-model store answers."""
        checks = {
            "registry": await _check(lambda: registry.ready(CHECK_TIMEOUT_S)),
            "store": await _check(lambda: _ping(store)),
        }
        failed = {name: reason for name, reason in checks.items() if reason != "ok"}
        if failed:
            detail = "; ".join(f"{name}: {reason}" for name, reason in failed.items())
            return problem_response(503, "Not ready", detail, "/readyz", checks=checks)
        return JSONResponse({"status": "ready", "checks": checks})

    return router


async def _check(probe: Callable[[], None]) -> str:
    """``ok``, or why ``probe`` failed or did not return within the deadline."""
    try:
        await asyncio.wait_for(run_in_threadpool(probe), CHECK_TIMEOUT_S + 1.0)
    except TimeoutError:
        return f"no answer within {CHECK_TIMEOUT_S + 1.0:g}s"
    except Exception as exc:  # any failure of a dependency is a reason to be unready, said as such
        return f"{type(exc).__name__}: {exc}"
    return "ok"


def _ping(store: Store) -> None:
    with store.snapshot() as tx:
        tx.execute("SELECT 1").fetchall()
