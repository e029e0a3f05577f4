"""Finance read models: ``budget`` (execution by program) and ``benefits`` (grants, payments, suspensions).

Amounts are exact ``decimal`` KRW throughout: never floats, so a sum is the sum of the events.
``budget_programs`` and ``benefit_recipients`` sum events of several keys (a program's lines, a
recipient's benefits), which may sit in different partitions: their figures do not depend on the
order in which the partitions are read, but their provenance names whichever of those events was
applied last.

``budget`` (finance.budget → tables ``budget_lines`` and ``budget_programs``):
    * A budget line (the topic's key) belongs to one program of one fiscal year: the dBrain program
      and unit project of a ministry. ``budget_lines`` keeps each line's program, allocated, executed
      and remaining amounts, so an expenditure (which names only its line) finds its program;
      ``budget_programs`` sums the lines of a program and year (original, supplementary and
      carried-over allocations, each year's carry-over being a new line of the same program).
    * BudgetAllocated opens a line or adds to it (a supplementary budget). Refused: an amount that is
      not positive, and a known line named with another fiscal year, ministry, program or unit project.
    * ExpenditureExecuted adds to the line's and the program's executed amount. Refused: an unknown
      line (the topic is keyed by line, so the allocation always comes first), another fiscal year or
      ministry than the line's, an amount that is not positive, and an amount beyond what remains on
      the line (spending beyond the allocation is unlawful; the DLQ keeps it for review). The same
      ``expenditure_id`` as the line's last expenditure is a copy and changes nothing.

``benefits`` (finance.benefit → tables ``benefits`` and ``benefit_recipients``):
    * ``benefits``: one row per benefit: recipient, program, monthly amount, status ACTIVE or
      SUSPENDED, payments and total paid, and the suspension's reason, date and cause.
      ``benefit_recipients``: one row per recipient: grants, active grants, suspended grants, total
      paid and a ``suspended`` flag (some grant of theirs is suspended).
    * BenefitGranted opens the benefit as ACTIVE. A grant of a known benefit is a copy when it names
      the same recipient, program and start (ignored); otherwise it is refused, as replacing the row
      would erase what was paid.
    * BenefitPaid adds the amount to the benefit's and the recipient's total paid. Refused: an
      unknown benefit, another recipient or program than the grant's, a negative amount, and a
      payment for a period from the suspension date on (a payment of arrears for an earlier period is
      accepted). The same ``payment_id`` as the benefit's last payment is a copy and changes nothing.
    * BenefitSuspended suspends an ACTIVE benefit from ``suspended_from``. Refused: an unknown benefit
      or another recipient than the grant's. Suspending a suspended benefit changes nothing: the first
      suspension stands (two agencies' reactions to one death may both ask for it).
    * A death suspends nothing here: suspension is finance's decision, published as its own event.
    * An ACTIVE benefit is one not suspended; a time-limited grant stays ACTIVE after
      ``effective_until`` (no event ends it; the row carries the date).

Record types the models do not know are ignored. Applying each event once is the runtime's job,
not the models'; the copy rules only keep a sum right when a copy slips through anyway.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from bus.errors import ProjectionError
from consumers.events import DecodedEvent
from consumers.projections.common import Data, Handler, dispatch, hints, iso, known
from consumers.readmodel import Derived, Key, Row, Table, WorkingSet

_PROGRAM_KEY = ("fiscal_year", "ministry_code", "program_code", "unit_project_code")
_PROGRAM_COLUMNS = {
    "fiscal_year": "int",
    "ministry_code": "text",
    "program_code": "text",
    "unit_project_code": "text",
    "account_type": "text",
    "account_code": "text",
    "program_name": "text",
}
_AMOUNTS = {"allocated": "decimal", "executed": "decimal", "remaining": "decimal", "expenditure_count": "int"}
_AMOUNT_CONTRACTS = {
    "allocated": Derived("Amount allocated (KRW).", source="amount"),
    "executed": Derived("Sum of the expenditures executed (KRW).", source="amount"),
    "remaining": Derived("Allocated minus executed (KRW).", source="amount"),
    "expenditure_count": Derived("How many expenditures were executed.", classification="public"),
}

BUDGET_LINES = Table(
    "budget_lines",
    {
        "budget_line_id": "text",
        **_PROGRAM_COLUMNS,
        **_AMOUNTS,
        "last_expenditure_id": "text",
        "last_executed_at": "text",
    },
    key=("budget_line_id",),
    indexes=(_PROGRAM_KEY,),
    nullable=frozenset({"last_expenditure_id", "last_executed_at"}),
    derived={
        **_AMOUNT_CONTRACTS,
        "last_expenditure_id": Derived("Id of the last expenditure executed.", source="expenditure_id"),
        "last_executed_at": Derived("When the last expenditure was executed.", source="executed_at"),
    },
)
BUDGET_PROGRAMS = Table(
    "budget_programs",
    {**_PROGRAM_COLUMNS, **_AMOUNTS, "line_count": "int"},
    key=_PROGRAM_KEY,
    indexes=(("fiscal_year",),),
    derived={
        **_AMOUNT_CONTRACTS,
        "line_count": Derived("How many budget lines the program has.", classification="public"),
    },
)
BENEFITS = Table(
    "benefits",
    {
        "benefit_id": "text",
        "recipient_resident_id": "text",
        "program": "text",
        "status": "text",
        "monthly_amount": "decimal",
        "effective_from": "text",
        "effective_until": "text",
        "legal_basis": "text",
        "decided_on": "text",
        "granting_office": "text",
        "payment_count": "int",
        "total_paid": "decimal",
        "last_payment_id": "text",
        "last_period_start": "text",
        "suspension_reason": "text",
        "suspended_from": "text",
        "suspension_decided_on": "text",
        "suspension_cause_event_id": "text",
    },
    key=("benefit_id",),
    indexes=(("recipient_resident_id",),),
    nullable=frozenset(
        {
            "effective_until",
            "last_payment_id",
            "last_period_start",
            "suspension_reason",
            "suspended_from",
            "suspension_decided_on",
            "suspension_cause_event_id",
        }
    ),
    derived={
        "status": Derived("ACTIVE, or SUSPENDED once a suspension is registered.", classification="internal"),
        "payment_count": Derived("How many payments were made.", classification="personal"),
        "total_paid": Derived("Sum of the payments made (KRW).", source="amount"),
        "last_payment_id": Derived("Id of the last payment.", source="payment_id"),
        "last_period_start": Derived(
            "First day of the period the last payment covered.", source="period_start"
        ),
        "suspension_reason": Derived("Why the benefit was suspended.", source="reason"),
        "suspension_decided_on": Derived("Date the suspension was decided.", source="decided_on"),
        "suspension_cause_event_id": Derived(
            "Id of the event that caused the suspension (a death report, for instance).",
            classification="internal",
        ),
    },
)
BENEFIT_RECIPIENTS = Table(
    "benefit_recipients",
    {
        "resident_id": "text",
        "grants": "int",
        "active_grants": "int",
        "suspended_grants": "int",
        "total_paid": "decimal",
        "suspended": "bool",
    },
    key=("resident_id",),
    derived={
        "resident_id": Derived(
            "govbus pseudonymous resident id of the recipient.", source="recipient_resident_id"
        ),
        "grants": Derived("How many benefits were granted to the resident.", classification="personal"),
        "active_grants": Derived("How many of them are active.", classification="personal"),
        "suspended_grants": Derived("How many of them are suspended.", classification="personal"),
        "total_paid": Derived("Sum of every payment to the resident (KRW).", source="amount"),
        "suspended": Derived(
            "Whether any of the resident's benefits is suspended.", classification="personal"
        ),
    },
)

ACTIVE = "ACTIVE"
SUSPENDED = "SUSPENDED"
ZERO = Decimal(0)


# -- budget ----------------------------------------------------------------------------------------


def _positive(amount: Decimal, what: str) -> Decimal:
    if amount <= 0:
        raise ProjectionError(f"{what}: amount {amount} KRW is not positive")
    return amount


def _program_key(row: Row | Data) -> tuple[Any, ...]:
    return tuple(row[column] for column in _PROGRAM_KEY)


def _allocated(rows: WorkingSet, data: Data) -> None:
    amount = _positive(data["amount"], f"allocation to {data['budget_line_id']!r}")
    program = {column: data[column] for column in _PROGRAM_COLUMNS}
    line = rows.get(BUDGET_LINES.name, data["budget_line_id"])
    if line is not None and _program_key(line) != _program_key(program):
        raise ProjectionError(
            f"budget line {data['budget_line_id']!r} belongs to {_program_key(line)}, "
            f"not {_program_key(program)}"
        )
    zero = {"allocated": ZERO, "executed": ZERO, "remaining": ZERO, "expenditure_count": 0}
    totals = rows.get(BUDGET_PROGRAMS.name, *_program_key(program)) or {**program, **zero, "line_count": 0}
    if line is None:
        line = {"budget_line_id": data["budget_line_id"], **program, **zero}
        totals["line_count"] += 1
    for row in (line, totals):
        row["allocated"] += amount
        row["remaining"] += amount
    rows.put(BUDGET_LINES.name, line)
    rows.put(BUDGET_PROGRAMS.name, totals)


def _executed(rows: WorkingSet, data: Data) -> None:
    line = known(rows, BUDGET_LINES, "ExpenditureExecuted", data["budget_line_id"])
    if line["last_expenditure_id"] == data["expenditure_id"]:
        return
    amount = _positive(data["amount"], f"expenditure {data['expenditure_id']!r}")
    if (line["fiscal_year"], line["ministry_code"]) != (data["fiscal_year"], data["ministry_code"]):
        raise ProjectionError(
            f"expenditure {data['expenditure_id']!r} charges {data['fiscal_year']} of "
            f"{data['ministry_code']!r}; line {line['budget_line_id']!r} is {line['fiscal_year']} of "
            f"{line['ministry_code']!r}"
        )
    if amount > line["remaining"]:
        raise ProjectionError(
            f"expenditure {data['expenditure_id']!r} of {amount} KRW exceeds the {line['remaining']} KRW "
            f"left on budget line {line['budget_line_id']!r}"
        )
    totals = rows.get(BUDGET_PROGRAMS.name, *_program_key(line))
    if totals is None:
        raise ProjectionError(f"budget line {line['budget_line_id']!r} has no program row")
    for row in (line, totals):
        row["executed"] += amount
        row["remaining"] -= amount
        row["expenditure_count"] += 1
    line["last_expenditure_id"] = data["expenditure_id"]
    line["last_executed_at"] = data["executed_at"]
    rows.put(BUDGET_LINES.name, line)
    rows.put(BUDGET_PROGRAMS.name, totals)


class BudgetModel:
    """Budget execution by program and fiscal year: allocated, executed and remaining KRW."""

    name = "budget"
    topics: tuple[str, ...] = ("finance.budget",)
    tables: tuple[Table, ...] = (BUDGET_LINES, BUDGET_PROGRAMS)

    def prefetch(self, event: DecodedEvent) -> Iterable[tuple[str, Key]]:
        """The line's row, and the program's when the event names it (an allocation)."""
        wanted = hints(BUDGET_LINES, event.data.get("budget_line_id"))
        if all(event.data.get(column) is not None for column in _PROGRAM_KEY):
            wanted.append((BUDGET_PROGRAMS.name, _program_key(event.data)))
        return wanted

    def apply(self, rows: WorkingSet, event: DecodedEvent) -> None:
        """Allocate to a line, or execute an expenditure against it."""
        dispatch({"BudgetAllocated": _allocated, "ExpenditureExecuted": _executed}, rows, event)


# -- benefits --------------------------------------------------------------------------------------


def _recipient(rows: WorkingSet, resident_id: str) -> Row:
    return rows.get(BENEFIT_RECIPIENTS.name, resident_id) or {
        "resident_id": resident_id,
        "grants": 0,
        "active_grants": 0,
        "suspended_grants": 0,
        "total_paid": ZERO,
    }


def _benefit(rows: WorkingSet, record: str, data: Data) -> Row:
    """The known benefit the event is about, after checking it names the grant's recipient."""
    benefit = known(rows, BENEFITS, record, data["benefit_id"])
    if benefit["recipient_resident_id"] != data["recipient_resident_id"]:
        raise ProjectionError(
            f"benefit {benefit['benefit_id']!r} was granted to {benefit['recipient_resident_id']!r}, "
            f"not {data['recipient_resident_id']!r}"
        )
    return benefit


def _put_recipient(rows: WorkingSet, recipient: Row) -> None:
    rows.put(BENEFIT_RECIPIENTS.name, {**recipient, "suspended": recipient["suspended_grants"] > 0})


def _granted(rows: WorkingSet, data: Data) -> None:
    existing = rows.get(BENEFITS.name, data["benefit_id"])
    if existing is not None:
        same = (data["recipient_resident_id"], data["program"], iso(data["effective_from"]))
        if (existing["recipient_resident_id"], existing["program"], existing["effective_from"]) == same:
            return
        raise ProjectionError(
            f"benefit {data['benefit_id']!r} was granted already on {existing['decided_on']}"
        )
    rows.put(
        BENEFITS.name,
        {
            "benefit_id": data["benefit_id"],
            "recipient_resident_id": data["recipient_resident_id"],
            "program": data["program"],
            "status": ACTIVE,
            "monthly_amount": data["monthly_amount"],
            "effective_from": data["effective_from"],
            "effective_until": data["effective_until"],
            "legal_basis": data["legal_basis"],
            "decided_on": data["decided_on"],
            "granting_office": data["granting_office"],
            "payment_count": 0,
            "total_paid": ZERO,
        },
    )
    recipient = _recipient(rows, data["recipient_resident_id"])
    recipient["grants"] += 1
    recipient["active_grants"] += 1
    _put_recipient(rows, recipient)


def _paid(rows: WorkingSet, data: Data) -> None:
    benefit = _benefit(rows, "BenefitPaid", data)
    if benefit["last_payment_id"] == data["payment_id"]:
        return
    amount: Decimal = data["amount"]
    if amount < 0:
        raise ProjectionError(f"payment {data['payment_id']!r}: negative amount {amount} KRW")
    if benefit["program"] != data["program"]:
        raise ProjectionError(
            f"payment {data['payment_id']!r} is for {data['program']}; benefit {benefit['benefit_id']!r} "
            f"is {benefit['program']}"
        )
    period_start = iso(data["period_start"])
    if benefit["status"] == SUSPENDED and period_start >= benefit["suspended_from"]:
        raise ProjectionError(
            f"payment {data['payment_id']!r} for the period from {period_start}: benefit "
            f"{benefit['benefit_id']!r} is suspended from {benefit['suspended_from']}"
        )
    benefit["payment_count"] += 1
    benefit["total_paid"] += amount
    benefit["last_payment_id"] = data["payment_id"]
    benefit["last_period_start"] = period_start
    rows.put(BENEFITS.name, benefit)
    recipient = _recipient(rows, benefit["recipient_resident_id"])
    recipient["total_paid"] += amount
    _put_recipient(rows, recipient)


def _suspended(rows: WorkingSet, data: Data) -> None:
    benefit = _benefit(rows, "BenefitSuspended", data)
    if benefit["status"] == SUSPENDED:
        return
    benefit.update(
        status=SUSPENDED,
        suspension_reason=data["reason"],
        suspended_from=iso(data["suspended_from"]),
        suspension_decided_on=iso(data["decided_on"]),
        suspension_cause_event_id=data["cause_event_id"],
    )
    rows.put(BENEFITS.name, benefit)
    recipient = _recipient(rows, benefit["recipient_resident_id"])
    recipient["active_grants"] -= 1
    recipient["suspended_grants"] += 1
    _put_recipient(rows, recipient)


_BENEFIT_HANDLERS: dict[str, Handler] = {
    "BenefitGranted": _granted,
    "BenefitPaid": _paid,
    "BenefitSuspended": _suspended,
}


class BenefitsModel:
    """Welfare benefits by benefit and by recipient: active grants, total paid, suspension state."""

    name = "benefits"
    topics: tuple[str, ...] = ("finance.benefit",)
    tables: tuple[Table, ...] = (BENEFITS, BENEFIT_RECIPIENTS)

    def prefetch(self, event: DecodedEvent) -> Iterable[tuple[str, Key]]:
        """The benefit's row and its recipient's."""
        return [
            *hints(BENEFITS, event.data.get("benefit_id")),
            *hints(BENEFIT_RECIPIENTS, event.data.get("recipient_resident_id")),
        ]

    def apply(self, rows: WorkingSet, event: DecodedEvent) -> None:
        """Grant, pay or suspend the benefit."""
        dispatch(_BENEFIT_HANDLERS, rows, event)
