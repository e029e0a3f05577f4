"""Welfare benefits (finance.benefit): grants by eligibility, monthly payments and suspensions.

Newborns get the child allowance (100,000 KRW a month until the month before they turn eight) and
the parental benefit (1,000,000 KRW in the first year, 500,000 in the second); seven in ten
residents apply for the basic pension when they turn 65; some adults receive livelihood, housing
or disability benefits. Payments go out every month in one bank batch per program on its pay
day (the business day before when it falls on a weekend). Payments stop with the recipient's
death; suspending the benefits of the deceased is not simulated here: it is finance's reaction to the
death report on the bus (``consumers.reactions.finance``), the cross-agency reaction the bus exists for.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from producers.simulators.reference import (
    YEAR_DAYS,
    anniversary,
    month_end,
    month_start,
    previous_business_day,
)
from producers.simulators.world import DAY, EPOCH_DAY, Arrival, Resident, World

GRANTED = "govbus.finance.BenefitGranted"
PAID = "govbus.finance.BenefitPaid"
SUSPENDED = "govbus.finance.BenefitSuspended"
TYPES = (GRANTED, PAID, SUSPENDED)

PENSION_AGE = 65
PENSION_TAKE_UP = 0.7
NEW_CLAIMS_RATE = 0.006
# Amounts by year in KRW (Ministry of Health and Welfare); later years are indexed at ~2%.
BASIC_PENSION = {2024: 334_810, 2025: 342_510}
LIVELIHOOD_MAX = {2024: 713_102, 2025: 765_444}
HOUSING_MAX = {2024: 352_000, 2025: 369_000}


@dataclass(frozen=True)
class Program:
    """A benefit program: statutes, pay day, payment methods and how recipients leave it."""

    name: str
    legal_basis: str
    suspension_basis: str
    pay_day: int
    run: int
    """Which of the pay day's bank batches (10:00, 11:00, ...) pays the program."""
    methods: tuple[str, ...]
    exit_years: float
    """Mean years until a recipient leaves the program for a reason other than death (0: never)."""


PROGRAMS = {
    p.name: p
    for p in (
        Program(
            "BASIC_PENSION", "기초연금법 제3조", "기초연금법 제16조", 25, 0,
            ("BANK_TRANSFER",) * 6 + ("PROTECTED_ACCOUNT",), 60.0,
        ),
        Program(
            "CHILD_ALLOWANCE", "아동수당법 제4조", "아동수당법 제13조", 25, 1,
            ("BANK_TRANSFER",) * 9 + ("PROTECTED_ACCOUNT",), 0.0,
        ),
        Program(
            "PARENTAL_BENEFIT", "아동수당법 제4조제5항", "아동수당법 제13조", 25, 2,
            ("BANK_TRANSFER",) * 9 + ("PROTECTED_ACCOUNT",), 0.0,
        ),
        Program(
            "NATIONAL_BASIC_LIVELIHOOD", "국민기초생활 보장법 제8조", "국민기초생활 보장법 제30조", 20, 0,
            ("BANK_TRANSFER", "PROTECTED_ACCOUNT"), 4.0,
        ),
        Program(
            "HOUSING_BENEFIT", "주거급여법 제7조", "국민기초생활 보장법 제30조", 20, 1,
            ("BANK_TRANSFER",) * 8 + ("PROTECTED_ACCOUNT", "VOUCHER"), 4.0,
        ),
        Program(
            "DISABILITY_PENSION", "장애인연금법 제4조", "장애인연금법 제12조", 20, 2,
            ("BANK_TRANSFER", "BANK_TRANSFER", "PROTECTED_ACCOUNT"), 40.0,
        ),
    )
}  # fmt: skip
EXIT_REASONS = ("INCOME_ABOVE_THRESHOLD",) * 7 + (
    "INSTITUTIONALISED",
    "WHEREABOUTS_UNKNOWN",
    "VOLUNTARY_WAIVER",
)
ONBOARDED_SHARE = {"NATIONAL_BASIC_LIVELIHOOD": 0.03, "HOUSING_BENEFIT": 0.03, "DISABILITY_PENSION": 0.008}


@dataclass(eq=False, slots=True)
class Benefit:
    """A granted benefit and the month its next payment covers."""

    id: str
    recipient: Resident
    program: Program
    amount: Decimal
    until: int
    """Ordinal last day owed; 0 when open-ended."""
    method: str
    month: int
    """Next month to pay, counted as year * 12 + month - 1."""
    active: bool = True


@dataclass(frozen=True, slots=True)
class Claim:
    """A decision to be made: who, which program, how much, from when and until when."""

    recipient: Resident
    program: str
    amount: int
    effective_from: date
    until: date | None = None
    decided_on: date | None = None
    """A historical decision date for onboarded records; None means decided on the day it is handled."""


class BenefitOffice:
    """Grants, pays and suspends welfare benefits."""

    def __init__(self, world: World) -> None:
        self.world = world
        self._held: dict[str, list[Benefit]] = {}
        self._months: dict[int, tuple[date, date, int]] = {}
        self._runs: dict[int, list[Benefit]] = {}
        # Payments draw nothing at random and change nothing else, so they only run when wanted.
        self._pays = world.selects(PAID)
        world.registered.append(self._resident_registered)
        world.within(30, self._new_claims)

    # -- eligibility -----------------------------------------------------------------------------

    def _resident_registered(self, resident: Resident, arrival: Arrival) -> None:
        world, rng = self.world, self.world.rng
        born, today = resident.born, world.today
        age = resident.years_on(world.day)
        onboarded = arrival == "onboarded"
        if age < 8:
            eighth = anniversary(born, 8)
            until = month_start(eighth.year, eighth.month) - timedelta(days=1)
            decided = born + timedelta(days=10 + int(rng.random() * 40)) if onboarded else None
            claim = Claim(resident, "CHILD_ALLOWANCE", 100_000, _first_of(born), until, _past(decided, today))
            world.within(20 if onboarded else 40, self._grant, claim)
        if age < 2:
            first = anniversary(born, 1)
            if age < 1:
                until = month_start(first.year, first.month) - timedelta(days=1)
                claim = Claim(resident, "PARENTAL_BENEFIT", 1_000_000, _first_of(born), until)
                world.within(40, self._grant, claim)
            second = anniversary(born, 2)
            start = month_start(first.year, first.month)
            until = month_start(second.year, second.month) - timedelta(days=1)
            claim = Claim(resident, "PARENTAL_BENEFIT", 500_000, start, until)
            world.on(max(start.toordinal(), world.day + 1), self._grant, claim)
        if age >= PENSION_AGE and onboarded and rng.random() < PENSION_TAKE_UP:
            decided = anniversary(born, PENSION_AGE) + timedelta(days=30 + int(rng.random() * 60))
            claim = Claim(resident, "BASIC_PENSION", 0, _first_of(decided), None, _past(decided, today))
            world.within(20, self._grant, claim)
        elif age >= PENSION_AGE and not onboarded:
            world.within(60, self._apply_for_pension, resident)
        elif age < PENSION_AGE:
            applies = anniversary(born, PENSION_AGE).toordinal() + int(rng.random() * 60)
            if applies < resident.dies:
                world.on(applies, self._apply_for_pension, resident)
        if onboarded and age >= 19:
            for program, share in ONBOARDED_SHARE.items():
                if rng.random() < share:
                    decided = today - timedelta(days=30 + int(rng.random() * 5 * YEAR_DAYS))
                    world.within(
                        20, self._grant, Claim(resident, program, 0, _first_of(decided), None, decided)
                    )

    def _apply_for_pension(self, resident: Resident) -> None:
        if self.world.alive(resident) and self.world.rng.random() < PENSION_TAKE_UP:
            self._grant(Claim(resident, "BASIC_PENSION", 0, _first_of(self.world.today)))

    def _new_claims(self, _: object) -> None:
        world = self.world
        world.recur(max(len(world.living), 1) * NEW_CLAIMS_RATE, self._new_claims)
        claimant = world.find(lambda r: r.years_on(world.day) >= 19)
        if claimant is not None:
            program = world.rng.choices(tuple(ONBOARDED_SHARE), weights=(45, 40, 15))[0]
            self._grant(Claim(claimant, program, 0, _first_of(world.today)))

    def _amount(self, program: str, recipient: Resident) -> int:
        """The monthly amount a program pays this year (means-tested ones vary by recipient)."""
        year, rng = self.world.today.year, self.world.rng
        pension = _indexed(BASIC_PENSION, year, 0.021)
        if program == "BASIC_PENSION":
            return pension
        if program == "DISABILITY_PENSION":
            return pension + (20_000, 30_000, 90_000)[int(rng.random() * 3)]
        table, share = (
            (LIVELIHOOD_MAX, 0.15 + rng.random() * 0.85)
            if program == "NATIONAL_BASIC_LIVELIHOOD"
            else (HOUSING_MAX, 0.4 + rng.random() * 0.6)
        )
        return int(_indexed(table, year, 0.05) * share / 10) * 10

    # -- decisions -------------------------------------------------------------------------------

    def _grant(self, claim: Claim) -> None:
        world, rng = self.world, self.world.rng
        recipient, program = claim.recipient, PROGRAMS[claim.program]
        held = self._held.setdefault(recipient.id, [])
        if not world.alive(recipient) or any(b.program is program and self._running(b) for b in held):
            return
        if program.name == "DISABILITY_PENSION" and recipient.years_on(world.day) >= PENSION_AGE:
            return
        decided_on = claim.decided_on or world.today
        first = max(decided_on, claim.effective_from)
        benefit = Benefit(
            id=world.next_id("W", 8),
            recipient=recipient,
            program=program,
            amount=Decimal(claim.amount or self._amount(claim.program, recipient)),
            until=claim.until.toordinal() if claim.until else 0,
            method=program.methods[int(rng.random() * len(program.methods))],
            month=first.year * 12 + first.month - 1,
        )
        held.append(benefit)
        world.emit(
            GRANTED,
            {
                "benefit_id": benefit.id,
                "recipient_resident_id": recipient.id,
                "program": program.name,
                "monthly_amount": benefit.amount,
                "effective_from": claim.effective_from,
                "effective_until": claim.until,
                "legal_basis": program.legal_basis,
                "decided_on": decided_on,
                "granting_office": recipient.region.office_code,
            },
        )
        self._schedule_payment(benefit)
        if program.exit_years:
            leaves = world.day + 1 + int(rng.expovariate(1 / program.exit_years) * YEAR_DAYS)
            reason = EXIT_REASONS[int(rng.random() * len(EXIT_REASONS))]
            if program.name == "DISABILITY_PENSION":
                # At 65 the basic pension takes over from the disability pension's basic benefit.
                sixty_fifth = anniversary(recipient.born, PENSION_AGE).toordinal()
                leaves, reason = min((leaves, reason), (sixty_fifth, "AGE_LIMIT_REACHED"))
            if leaves < recipient.dies:
                world.on(leaves, self._suspend, (benefit, reason))

    def _running(self, benefit: Benefit) -> bool:
        """Whether the benefit is still owed today: not suspended and not past its end."""
        return benefit.active and (not benefit.until or benefit.until >= self.world.day)

    def _schedule_payment(self, benefit: Benefit) -> None:
        """Put a new benefit in the first payment run after today."""
        if not self._pays:
            return
        today = self.world.today
        # Months before this one were paid before the benefit reached the bus (or are owed as arrears).
        benefit.month = max(benefit.month, today.year * 12 + today.month - 1)
        if self._month(benefit.month, benefit.program.pay_day)[2] <= self.world.day:
            benefit.month += 1
        self._enlist(benefit)

    def _enlist(self, benefit: Benefit) -> None:
        """Add the benefit to its next month's payment run, unless it ends or the recipient dies first."""
        program = benefit.program
        start, _, pay_day = self._month(benefit.month, program.pay_day)
        if (benefit.until and start.toordinal() > benefit.until) or pay_day >= benefit.recipient.dies:
            return
        self._add_to_run(pay_day, program, [benefit])

    def _add_to_run(self, pay_day: int, program: Program, benefits: list[Benefit]) -> None:
        key = pay_day * 8 + program.run
        batch = self._runs.get(key)
        if batch is None:
            self._runs[key] = benefits
            self.world.at((pay_day - EPOCH_DAY) * DAY + (10 + program.run) * 3600, self._payment_run, key)
        else:
            batch.extend(benefits)

    def _month(self, month: int, pay_day: int) -> tuple[date, date, int]:
        """First day, last day and pay day (ordinal) of a month; cached, payments ask for few months."""
        key = month * 32 + pay_day
        cached = self._months.get(key)
        if cached is None:
            year, index = divmod(month, 12)
            pays = previous_business_day(date(year, index + 1, pay_day).toordinal())
            cached = self._months[key] = (month_start(year, index + 1), month_end(year, index + 1), pays)
        return cached

    def _payment_run(self, key: int) -> None:
        """One program's bank transfer batch of a pay day: every running benefit gets this month's payment.

        The hot path of a finance-heavy run: one agenda entry pays thousands of benefits, all for the
        same month, so the month's dates and the next run are worked out once per batch.
        """
        world = self.world
        batch = self._runs.pop(key)
        program, month = batch[0].program, batch[0].month
        start, end, _ = self._month(month, program.pay_day)
        following, _, pay_day = self._month(month + 1, program.pay_day)
        following_day = following.toordinal()
        day, emit, next_id, paid_at = world.day, world.emit, world.next_id, world.time
        paid: list[Benefit] = []
        for benefit in batch:
            recipient = benefit.recipient
            if not benefit.active or day >= recipient.dies:
                continue
            emit(
                PAID,
                {
                    "benefit_id": benefit.id,
                    "payment_id": next_id("Y"),
                    "recipient_resident_id": recipient.id,
                    "program": program.name,
                    "amount": benefit.amount,
                    "period_start": start,
                    "period_end": end,
                    "method": benefit.method,
                    "legal_basis": program.legal_basis,
                    "paid_at": paid_at,
                },
            )
            benefit.month = month + 1
            if (not benefit.until or following_day <= benefit.until) and pay_day < recipient.dies:
                paid.append(benefit)
        if paid:
            self._add_to_run(pay_day, program, paid)

    def _suspend(self, subject: tuple[Benefit, str]) -> None:
        benefit, reason = subject
        world = self.world
        recipient = benefit.recipient
        if not benefit.active or not world.alive(recipient):
            return
        benefit.active = False
        # Benefits are owed up to the month of the decision, not beyond.
        ending = world.today
        world.emit(
            SUSPENDED,
            {
                "benefit_id": benefit.id,
                "recipient_resident_id": recipient.id,
                "program": benefit.program.name,
                "reason": reason,
                "suspended_from": month_start(ending.year, ending.month + 1),
                "legal_basis": benefit.program.suspension_basis,
                "cause_event_id": None,
                "decided_on": world.today,
                "deciding_office": recipient.region.office_code,
            },
        )


def _first_of(day: date) -> date:
    return day.replace(day=1)


def _past(decided: date | None, today: date) -> date | None:
    """A historical decision date, or None when it would not lie in the past."""
    return decided if decided is not None and decided < today else None


def _indexed(table: dict[int, int], year: int, growth: float) -> int:
    """The table's amount for ``year``, extrapolated at ``growth`` a year beyond its last entry."""
    last = max(table)
    if year <= last:
        return table.get(year, table[min(table)])
    return int(table[last] * (1 + growth) ** (year - last) / 10) * 10
