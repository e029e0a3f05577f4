"""The end of ``govbus demo``: a death suspends a benefit through the bus; a ministry reads under agreement.

With the gateway and every adapter and reaction running on simulated events of the four agencies:

1. a recipient of an active benefit dies: local government publishes the death report, the finance
   reaction suspends the benefit on the bus (nobody calls finance), and the benefits read model shows it;
2. the ministry of welfare reads that resident's citizen profile under its agreement (the fields it is not
   granted masked or withheld);
3. a read without a stated purpose is refused, with the reason;
4. the resident, with a credential bound to their id, reads their audit trail: exactly those accesses.

Each step prints a few readable lines; a step that does not happen in time raises GovbusError naming it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx

from bus.credentials import client_credential
from bus.errors import GovbusError
from bus.progress import say
from bus.settings import Settings
from gateway.identities import FILE_NAME, IdentityFile, Role, new_credential
from govbus.bootstrap import build_publisher
from producers.simulators.simulation import simulated_events

WELFARE = "ministry-of-welfare"
ELIGIBILITY, REVIEW = "benefit-eligibility", "benefit-review"
STEP_TIMEOUT_S = 60.0
T = TypeVar("T")


def benefit_recipient(count: int, seed: int) -> tuple[str, str]:
    """(resident id, benefit id) of the first simulated grant whose recipient the simulation keeps alive."""
    events = list(simulated_events("all", count, seed))
    dead = {e.data["resident_id"] for e in events if e.type.endswith("ResidentDeceased")}
    suspended = {e.data["benefit_id"] for e in events if e.type.endswith("BenefitSuspended")}
    for event in events:
        data = event.data
        if (
            event.type.endswith("BenefitGranted")
            and data["recipient_resident_id"] not in dead
            and data["benefit_id"] not in suspended
        ):
            return str(data["recipient_resident_id"]), str(data["benefit_id"])
    raise GovbusError(
        f"the simulation of {count} events (seed {seed}) grants no benefit; try a larger --count"
    )


def tell(base: str, settings: Settings, count: int, seed: int, alive: Callable[[], None]) -> None:
    """Run the story against the gateway at ``base``; ``alive`` raises when a child process died."""
    welfare = client_credential(settings, WELFARE) or ""
    resident_id, benefit_id = benefit_recipient(count, seed)

    def benefit() -> dict[str, Any] | None:
        answer = _get(base, welfare, REVIEW, f"/v1/benefits/{benefit_id}")
        return dict(answer.json()["data"]) if answer.status_code == 200 else None

    granted = _until(benefit, alive, f"benefit {benefit_id} to reach the benefits read model")
    say(
        f"finance granted benefit {benefit_id} ({granted['program']}) to resident {resident_id}: "
        f"{granted['status']}"
    )

    _report_death(settings, resident_id)
    say(f"local government reports the death of resident {resident_id} (an event on localgov.resident)")
    suspended = _until(
        lambda: (found := benefit()) and found["status"] == "SUSPENDED" and found,
        alive,
        f"benefit {benefit_id} to be suspended",
    )
    say(
        f"finance's reaction suspended it on the bus: {suspended['status']} from "
        f"{suspended['suspended_from']} (cause: event {suspended['suspension_cause_event_id']})"
    )

    profile = _get(base, welfare, ELIGIBILITY, f"/v1/citizen-profiles/{resident_id}")
    if profile.status_code != 200:
        raise GovbusError(
            f"the welfare ministry's profile read answered {profile.status_code}: {profile.text}"
        )
    body = profile.json()
    data, disclosure = body["data"], body["disclosure"]
    say(f"{WELFARE} reads the citizen profile of {resident_id} for {disclosure['purpose']!r}")
    print(f"    under agreement {disclosure['agreement']} ({disclosure['legal_basis']})", flush=True)
    print(f"    name {data['name']}, born {data['birth_date']}, status {data['status']}", flush=True)
    masked, withheld = ", ".join(disclosure["masked"]) or "-", ", ".join(disclosure["withheld"]) or "-"
    print(f"    masked: {masked}; withheld: {withheld}", flush=True)

    refused = _get(base, welfare, None, f"/v1/citizen-profiles/{resident_id}")
    say(f"the same read without a Purpose header: {refused.status_code}")
    print(f"    {refused.json().get('detail')}", flush=True)

    _audit_trail(base, settings, resident_id, alive)


def _report_death(settings: Settings, resident_id: str) -> None:
    publisher = build_publisher(settings, "localgov", client_id="govbus-demo-localgov")
    today = datetime.now(UTC).date()
    try:
        publisher.publish(
            "govbus.localgov.ResidentDeceased",
            {
                "resident_id": resident_id,
                "died_on": today,
                "reported_on": today,
                "place_sido": "서울특별시",
                "place_sigungu": "종로구",
                "report_type": "DEATH_REPORT",
                "reporting_office": "3000000",
            },
        )
        if publisher.flush(30):
            raise GovbusError("the death report was not acknowledged by Kafka within 30 s")
    finally:
        publisher.close()


def _audit_trail(base: str, settings: Settings, resident_id: str, alive: Callable[[], None]) -> None:
    credential, text = new_credential(resident_id, Role.RESIDENT)
    with IdentityFile(settings.home / FILE_NAME).changing() as stored:
        stored[:] = [c for c in stored if c.organisation != resident_id]
        stored.append(credential)

    def trail() -> list[dict[str, Any]] | None:
        answer = httpx.get(
            f"{base}/v1/audit/subjects/{resident_id}", headers={"Authorization": f"Bearer {text}"}, timeout=30
        )
        return list(answer.json()["records"]) if answer.status_code == 200 else None

    records = _until(trail, alive, f"resident {resident_id}'s audit trail")
    say(f"resident {resident_id} reads who accessed their data (GET /v1/audit/subjects/{resident_id}):")
    for record in records:
        why = record.get("purpose") or "-"
        outcome = record["outcome"] + (f": {record['detail'][:70]}" if record.get("detail") else "")
        print(
            f"    {record['time']}  {record['organisation']:<22} {record['action']:<10} "
            f"{record['model'] or '-':<16} purpose {why:<20} {outcome}",
            flush=True,
        )


def _get(base: str, credential: str, purpose: str | None, path: str) -> httpx.Response:
    headers = {"Authorization": f"Bearer {credential}"}
    if purpose is not None:
        headers["Purpose"] = purpose
    return httpx.get(f"{base}{path}", headers=headers, timeout=30)


def _until(condition: Callable[[], T | None], alive: Callable[[], None], what: str) -> T:
    deadline = time.monotonic() + STEP_TIMEOUT_S
    while time.monotonic() < deadline:
        alive()
        found = condition()
        if found:
            return found
        time.sleep(0.3)
    raise GovbusError(f"timed out waiting for {what}")
