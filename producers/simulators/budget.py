"""The national budget (finance.budget): allocations to budget lines and expenditures against them.

Each fiscal year's lines are allocated on the first business day of January, most years get a
supplementary budget in spring or summer, and capital projects carry unspent money over into the
next year. Expenditures are executed against open lines of the current year and never exceed what
was allocated to the line; a line that is spent out closes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from producers.simulators.reference import business_number
from producers.simulators.world import World

ALLOCATED = "govbus.finance.BudgetAllocated"
EXECUTED = "govbus.finance.ExpenditureExecuted"
TYPES = (ALLOCATED, EXECUTED)

EXPENDITURE_RATE = 0.25
MIN_EXPENDITURES = 60.0
BUDGET_GROWTH = 0.03
ACCOUNT_CODES = {"GENERAL_ACCOUNT": "1000", "SPECIAL_ACCOUNT": "2610", "FUND": "5830"}


@dataclass(frozen=True)
class Program:
    """A unit project of the budget and how its money is typically spent."""

    ministry: str
    account_type: str
    program_code: str
    unit_code: str
    name: str
    yearly: int
    """Original yearly allocation in KRW (2024)."""
    category: str
    payee: str
    purpose: str
    """What a payment is for, formatted with ``year`` and ``month``."""
    share: tuple[float, float]
    """Smallest and largest fraction of the allocation one payment takes."""


_TRANSFER = "{year}년 {month}월분 {name} 국고보조금 교부"
PROGRAMS = (
    Program("1352000", "GENERAL_ACCOUNT", "2631", "300", "기초연금 지급", 20_200_000_000_000,
            "TRANSFERS", "LOCAL_GOVERNMENT", _TRANSFER, (0.002, 0.008)),
    Program("1352000", "GENERAL_ACCOUNT", "2635", "301", "아동수당 지급", 2_200_000_000_000,
            "TRANSFERS", "LOCAL_GOVERNMENT", _TRANSFER, (0.002, 0.008)),
    Program("1352000", "GENERAL_ACCOUNT", "2635", "302", "부모급여 지원", 2_900_000_000_000,
            "TRANSFERS", "LOCAL_GOVERNMENT", _TRANSFER, (0.002, 0.008)),
    Program("1352000", "GENERAL_ACCOUNT", "2131", "300", "생계급여", 6_400_000_000_000,
            "TRANSFERS", "LOCAL_GOVERNMENT", _TRANSFER, (0.002, 0.008)),
    Program("1352000", "GENERAL_ACCOUNT", "2733", "303", "장애인연금", 900_000_000_000,
            "TRANSFERS", "LOCAL_GOVERNMENT", _TRANSFER, (0.002, 0.008)),
    Program("1613000", "GENERAL_ACCOUNT", "2431", "300", "주거급여 지원", 2_600_000_000_000,
            "TRANSFERS", "LOCAL_GOVERNMENT", _TRANSFER, (0.002, 0.008)),
    Program("1342000", "GENERAL_ACCOUNT", "1131", "300", "지방교육재정교부금", 68_800_000_000_000,
            "TRANSFERS", "LOCAL_GOVERNMENT", "{year}년 {month}월 보통교부금 교부", (0.004, 0.01)),
    Program("1741000", "GENERAL_ACCOUNT", "1632", "305", "전자정부 지원", 150_000_000_000,
            "GOODS_AND_SERVICES", "COMPANY", "데이터 공유 플랫폼 구축 용역 {month}월 기성금", (0.01, 0.06)),
    Program("1741000", "GENERAL_ACCOUNT", "1011", "100", "공무원 인건비", 1_400_000_000_000,
            "PERSONNEL", "INDIVIDUAL", "{year}년 {month}월 보수 지급", (0.075, 0.085)),
    Program("1613000", "SPECIAL_ACCOUNT", "4131", "302", "일반국도 건설", 3_000_000_000_000,
            "CAPITAL", "COMPANY", "국도 확장공사 {month}월 기성금 지급", (0.005, 0.03)),
    Program("1721000", "GENERAL_ACCOUNT", "5131", "301", "출연연구기관 연구개발 지원", 2_500_000_000_000,
            "TRANSFERS", "GOVERNMENT_AGENCY", "{year}년 {month}월 출연금 교부", (0.01, 0.04)),
    Program("1320000", "GENERAL_ACCOUNT", "2231", "300", "경찰 장비 보강", 200_000_000_000,
            "CAPITAL", "COMPANY", "순찰차 구매 대금 지급", (0.01, 0.05)),
    Program("1661000", "GENERAL_ACCOUNT", "2331", "301", "소방헬기 도입", 120_000_000_000,
            "CAPITAL", "COMPANY", "소방헬기 도입 계약 {month}월 중도금", (0.02, 0.1)),
    Program("1210000", "GENERAL_ACCOUNT", "1431", "300", "국세 행정 전산화", 90_000_000_000,
            "GOODS_AND_SERVICES", "COMPANY", "차세대 국세행정시스템 유지보수 {month}월분", (0.02, 0.08)),
    Program("1492000", "FUND", "3131", "300", "구직급여", 11_000_000_000_000,
            "TRANSFERS", "INDIVIDUAL", "{year}년 {month}월 구직급여 지급", (0.003, 0.01)),
    Program("1270000", "GENERAL_ACCOUNT", "1531", "300", "교정시설 운영", 400_000_000_000,
            "GOODS_AND_SERVICES", "COMPANY", "교정시설 급식 위탁 {month}월분", (0.005, 0.03)),
)  # fmt: skip


@dataclass(eq=False, slots=True)
class BudgetLine:
    """One program's budget for one fiscal year: what was allocated and what is left."""

    id: str
    program: Program
    fiscal_year: int
    allocated: int = 0
    remaining: int = 0


class Treasury:
    """Allocates the budget and executes expenditures."""

    def __init__(self, world: World) -> None:
        self.world = world
        self._open: list[BudgetLine] = []
        world.on(date(2024, 1, 2).toordinal(), self._new_fiscal_year, 2024)

    def _new_fiscal_year(self, year: int) -> None:
        world, rng = self.world, self.world.rng
        carried = [line for line in self._open if line.program.category == "CAPITAL"]
        self._open = []
        for program in PROGRAMS:
            amount = program.yearly * (1 + BUDGET_GROWTH) ** (year - 2024) * (0.95 + rng.random() * 0.1)
            self._allocate(BudgetLine(world.next_id("B"), program, year), int(amount), "ORIGINAL_BUDGET")
        for line in carried:
            if line.remaining > line.allocated * 0.05:
                amount = int(line.remaining * (0.3 + rng.random() * 0.6))
                self._allocate(BudgetLine(world.next_id("B"), line.program, year), amount, "CARRYOVER")
        world.on(date(year + 1, 1, 2).toordinal(), self._new_fiscal_year, year + 1)
        if rng.random() < 0.7:
            world.on(date(year, 4, 1).toordinal() + int(rng.random() * 120), self._supplementary, year)
        if year == 2024:
            world.recur(MIN_EXPENDITURES, self._execute)

    def _supplementary(self, year: int) -> None:
        rng = self.world.rng
        lines = [line for line in self._open if line.fiscal_year == year]
        for line in rng.sample(lines, min(len(lines), 3 + int(rng.random() * 3))):
            self._allocate(line, int(line.allocated * (0.05 + rng.random() * 0.1)), "SUPPLEMENTARY_BUDGET")

    def _allocate(self, line: BudgetLine, amount: int, kind: str) -> None:
        amount = amount // 1_000_000 * 1_000_000
        if amount <= 0:
            return
        if not line.allocated:
            self._open.append(line)
        line.allocated += amount
        line.remaining += amount
        program = line.program
        self.world.emit(
            ALLOCATED,
            {
                "budget_line_id": line.id,
                "fiscal_year": line.fiscal_year,
                "ministry_code": program.ministry,
                "account_type": program.account_type,
                "account_code": ACCOUNT_CODES[program.account_type],
                "program_code": program.program_code,
                "unit_project_code": program.unit_code,
                "program_name": program.name,
                "allocation_type": kind,
                "amount": Decimal(amount),
                "allocated_on": self.world.today,
            },
        )

    def _execute(self, _: object) -> None:
        world, rng = self.world, self.world.rng
        world.recur(max(len(world.living) * EXPENDITURE_RATE, MIN_EXPENDITURES), self._execute)
        open_lines = self._open
        if not open_lines:
            return
        index = int(rng.random() * len(open_lines))
        line = open_lines[index]
        program = line.program
        low, high = program.share
        amount = min(int(line.allocated * (low + rng.random() * (high - low))) // 1000 * 1000, line.remaining)
        if amount <= 0:
            return
        line.remaining -= amount
        if line.remaining < 1000:
            # Spent out: the line closes (swap-remove keeps this O(1)).
            open_lines[index] = open_lines[-1]
            open_lines.pop()
        today = world.today
        world.emit(
            EXECUTED,
            {
                "budget_line_id": line.id,
                "expenditure_id": world.next_id("X"),
                "fiscal_year": line.fiscal_year,
                "ministry_code": program.ministry,
                "category": program.category,
                "payee_type": program.payee,
                "payee_business_number": business_number(rng) if program.payee == "COMPANY" else None,
                "amount": Decimal(amount),
                "purpose": program.purpose.format(year=today.year, month=today.month, name=program.name),
                "executed_at": world.time,
            },
        )
