"""The finance read models (budget execution by program, benefits) against the simulated world."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import timedelta
from decimal import Decimal

from consumers.projections.finance import BenefitsModel, BudgetModel
from tests.unit.test_projections_common import (
    accepted,
    copy_of,
    events_for,
    named,
    refusal,
    replayed,
    retyped,
    until,
)

# -- budget ----------------------------------------------------------------------------------------


def _programs() -> dict[tuple[int, str, str, str], dict[str, Decimal]]:
    """Allocated and executed KRW per fiscal year and program, from the events alone."""
    line_program: dict[str, tuple[int, str, str, str]] = {}
    totals: dict[tuple[int, str, str, str], dict[str, Decimal]] = defaultdict(
        lambda: {"allocated": Decimal(0), "executed": Decimal(0)}
    )
    for event in events_for(BudgetModel()):
        data = event.data
        if event.name == "BudgetAllocated":
            program = (
                data["fiscal_year"],
                data["ministry_code"],
                data["program_code"],
                data["unit_project_code"],
            )
            line_program[data["budget_line_id"]] = program
            totals[program]["allocated"] += data["amount"]
        else:
            totals[line_program[data["budget_line_id"]]]["executed"] += data["amount"]
    return dict(totals)


def test_each_program_executes_the_sum_of_its_lines_expenditures() -> None:
    """Allocated, executed and remaining per program are the exact sums of its lines' events."""
    programs = replayed("budget").table("budget_programs")
    expected = _programs()
    assert {key: (r["allocated"], r["executed"], r["remaining"]) for key, r in programs.items()} == {
        key: (t["allocated"], t["executed"], t["allocated"] - t["executed"]) for key, t in expected.items()
    }
    assert all(isinstance(r["executed"], Decimal) for r in programs.values())
    assert any(r["line_count"] > 1 for r in programs.values()), "no program with a carry-over or second line"


def test_a_line_knows_its_program_and_what_is_left() -> None:
    """Each budget line's allocated, executed and remaining add up, and its program is its allocation's."""
    lines = replayed("budget").table("budget_lines")
    executed: Counter[str] = Counter()
    for event in named("ExpenditureExecuted"):
        executed[event.data["budget_line_id"]] += event.data["amount"]
    for line_id, row in lines.items():
        assert row["executed"] == executed[line_id]
        assert row["remaining"] == row["allocated"] - row["executed"] >= 0
    assert {line_id: row["program_code"] for line_id, row in lines.items()} == {
        e.data["budget_line_id"]: e.data["program_code"] for e in named("BudgetAllocated")
    }


def test_an_expenditure_beyond_what_remains_is_refused_without_trace() -> None:
    """Spending more than is left on a line is refused and changes neither the line nor the program."""
    model = BudgetModel()
    expenditure = named("ExpenditureExecuted")[0]
    before = until(model, expenditure)
    line = accepted(model, before).table("budget_lines")[expenditure.data["budget_line_id"]]
    bad = copy_of(expenditure, expenditure_id="X999999999999", amount=line["remaining"] + 1)
    assert "exceeds" in str(refusal(model, bad, before))


def test_an_expenditure_on_an_unknown_line_is_refused_without_trace() -> None:
    """An expenditure must name a line that was allocated."""
    model = BudgetModel()
    expenditure = named("ExpenditureExecuted")[0]
    refusal(model, copy_of(expenditure, budget_line_id="B999999999999"), until(model, expenditure))


def test_an_allocation_naming_another_program_for_a_known_line_is_refused_without_trace() -> None:
    """A budget line belongs to one program: a supplementary allocation naming another is refused."""
    model = BudgetModel()
    allocation = named("BudgetAllocated")[0]
    refusal(model, copy_of(allocation, program_code="9999"), until(model, allocation))


def test_a_copy_of_the_last_expenditure_changes_no_sum() -> None:
    """The same expenditure id again (a re-published copy with a new event id) is counted once."""
    model = BudgetModel()
    expenditure = named("ExpenditureExecuted")[0]
    once = accepted(model, until(model, expenditure)).rows.tables
    assert accepted(model, [*until(model, expenditure), copy_of(expenditure)]).rows.tables == once


# -- benefits --------------------------------------------------------------------------------------


def test_a_recipients_total_paid_is_the_sum_of_their_payments() -> None:
    """benefit_recipients.total_paid and benefits.total_paid equal the sums of the BenefitPaid amounts."""
    by_recipient: Counter[str] = Counter()
    by_benefit: Counter[str] = Counter()
    for event in named("BenefitPaid"):
        by_recipient[event.data["recipient_resident_id"]] += event.data["amount"]
        by_benefit[event.data["benefit_id"]] += event.data["amount"]
    result = replayed("benefits")
    recipients, benefits = result.table("benefit_recipients"), result.table("benefits")
    assert {rid: r["total_paid"] for rid, r in recipients.items() if r["total_paid"]} == dict(by_recipient)
    assert {bid: r["total_paid"] for bid, r in benefits.items() if r["total_paid"]} == dict(by_benefit)
    assert all(isinstance(r["total_paid"], Decimal) for r in recipients.values())


def test_a_benefit_is_suspended_exactly_when_a_suspension_was_decided() -> None:
    """Status, reason and date follow BenefitSuspended; every other benefit is ACTIVE."""
    suspensions = {e.data["benefit_id"]: e.data for e in named("BenefitSuspended")}
    benefits = replayed("benefits").table("benefits")
    assert {bid for bid, r in benefits.items() if r["status"] == "SUSPENDED"} == set(suspensions)
    for benefit_id, data in suspensions.items():
        row = benefits[benefit_id]
        assert (row["suspension_reason"], row["suspended_from"]) == (
            data["reason"],
            data["suspended_from"].isoformat(),
        )
    assert set(benefits) == {e.data["benefit_id"] for e in named("BenefitGranted")}


def test_a_recipient_counts_active_and_suspended_grants() -> None:
    """active_grants is grants less suspensions, and the suspended flag is set when any grant is suspended."""
    grants: Counter[str] = Counter(e.data["recipient_resident_id"] for e in named("BenefitGranted"))
    suspended: Counter[str] = Counter(e.data["recipient_resident_id"] for e in named("BenefitSuspended"))
    recipients = replayed("benefits").table("benefit_recipients")
    assert {rid: (r["grants"], r["active_grants"], r["suspended"]) for rid, r in recipients.items()} == {
        rid: (count, count - suspended[rid], suspended[rid] > 0) for rid, count in grants.items()
    }


def test_a_copy_of_the_last_payment_changes_no_sum() -> None:
    """The same payment id again (a re-published copy with a new event id) is paid once."""
    model = BenefitsModel()
    payment = named("BenefitPaid")[0]
    once = accepted(model, until(model, payment)).rows.tables
    assert accepted(model, [*until(model, payment), copy_of(payment)]).rows.tables == once


def test_a_payment_of_an_unknown_benefit_is_refused_without_trace() -> None:
    """A payment must name a granted benefit."""
    model = BenefitsModel()
    payment = named("BenefitPaid")[0]
    refusal(
        model, copy_of(payment, benefit_id="W999999999999", payment_id="Y999999999999"), until(model, payment)
    )


def test_a_negative_payment_is_refused_without_trace() -> None:
    """A BenefitPaid cannot take money back: a negative amount is refused."""
    model = BenefitsModel()
    payment = named("BenefitPaid")[0]
    bad = copy_of(payment, payment_id="Y999999999999", amount=Decimal(-1))
    assert "negative" in str(refusal(model, bad, until(model, payment)))


def test_an_allocation_that_is_not_positive_is_refused_without_trace() -> None:
    """A BudgetAllocated must allocate a positive amount."""
    model = BudgetModel()
    allocation = named("BudgetAllocated")[0]
    bad = copy_of(allocation, budget_line_id="B999999999999", amount=Decimal(0))
    assert "not positive" in str(refusal(model, bad, until(model, allocation)))


def test_a_payment_to_someone_else_is_refused_without_trace() -> None:
    """A payment naming another recipient than the grant's is refused."""
    model = BenefitsModel()
    payment = named("BenefitPaid")[0]
    bad = copy_of(payment, payment_id="Y999999999999", recipient_resident_id="R999999999999")
    assert "was granted to" in str(refusal(model, bad, until(model, payment)))


def test_a_payment_for_a_period_after_the_suspension_is_refused_but_arrears_are_paid() -> None:
    """Once suspended, a payment for a period from suspended_from on is refused; an earlier period is paid."""
    model = BenefitsModel()
    payments = named("BenefitPaid")
    paid_benefits = {p.data["benefit_id"] for p in payments}
    suspension = next(s for s in named("BenefitSuspended") if s.data["benefit_id"] in paid_benefits)
    paid = [p for p in payments if p.data["benefit_id"] == suspension.data["benefit_id"]]
    before = until(model, suspension)
    start = suspension.data["suspended_from"]
    late = copy_of(
        paid[-1], payment_id="Y999999999998", period_start=start, period_end=start + timedelta(days=27)
    )
    assert "is suspended from" in str(refusal(model, late, before))
    earlier = start - timedelta(days=31)
    arrears = copy_of(paid[-1], payment_id="Y999999999999", period_start=earlier.replace(day=1))
    row = accepted(model, [*before, arrears]).table("benefits")[suspension.data["benefit_id"]]
    assert row["total_paid"] == sum(p.data["amount"] for p in paid) + arrears.data["amount"]


def test_suspending_a_suspended_benefit_keeps_the_first_suspension() -> None:
    """A second BenefitSuspended (say, a reaction to a death after an earlier suspension) changes nothing."""
    model = BenefitsModel()
    suspension = named("BenefitSuspended")[0]
    before = until(model, suspension)
    second = copy_of(suspension, reason="RECIPIENT_DECEASED", suspended_from=suspension.data["decided_on"])
    assert accepted(model, [*before, second]).rows.tables == accepted(model, before).rows.tables


def test_a_second_grant_under_a_known_benefit_id_is_refused_without_trace() -> None:
    """Granting a known benefit to another recipient is refused; the same grant again changes nothing."""
    model = BenefitsModel()
    grant = named("BenefitGranted")[0]
    before = until(model, grant)
    refusal(model, copy_of(grant, recipient_resident_id="R999999999999"), before)
    assert accepted(model, [*before, copy_of(grant)]).rows.tables == accepted(model, before).rows.tables


def test_a_suspension_of_an_unknown_benefit_is_refused_without_trace() -> None:
    """A suspension must name a granted benefit."""
    model = BenefitsModel()
    grant = named("BenefitGranted")[0]
    data = grant.data
    bad = retyped(
        grant,
        "BenefitSuspended",
        benefit_id="W999999999999",
        recipient_resident_id=data["recipient_resident_id"],
        program=data["program"],
        reason="VOLUNTARY_WAIVER",
        suspended_from=data["effective_from"],
        legal_basis=data["legal_basis"],
        cause_event_id=None,
        decided_on=data["decided_on"],
        deciding_office=data["granting_office"],
    )
    refusal(model, bad, until(model, grant))
