# Generated from the schemas/avsc catalog by producers/events/codegen.py; do not edit by hand.
# Regenerate with: python -m producers.events.codegen
"""Typed events of the finance agency: one model per record of its catalog topics."""

from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, ClassVar

from pydantic import Field

from producers.events.base import AvroDecimal, AvroEvent, TimestampMillis


class BenefitProgram(StrEnum):
    """A national welfare benefit program."""

    BASIC_PENSION = "BASIC_PENSION"
    CHILD_ALLOWANCE = "CHILD_ALLOWANCE"
    PARENTAL_BENEFIT = "PARENTAL_BENEFIT"
    NATIONAL_BASIC_LIVELIHOOD = "NATIONAL_BASIC_LIVELIHOOD"
    HOUSING_BENEFIT = "HOUSING_BENEFIT"
    DISABILITY_PENSION = "DISABILITY_PENSION"


class BenefitGranted(AvroEvent):
    """A welfare benefit was granted to a recipient after an eligibility decision."""

    avro_full_name: ClassVar[str] = "govbus.finance.BenefitGranted"
    avro_topic: ClassVar[str] = "finance.benefit"
    avro_key_field: ClassVar[str] = "benefit_id"

    benefit_id: str = Field(
        description="govbus benefit id: 'W' followed by 12 digits. The Kafka key of finance.benefit.",
    )
    recipient_resident_id: str = Field(
        description="govbus pseudonymous resident id of the recipient: 'R' followed by 12 digits.",
    )
    program: BenefitProgram = Field(
        description=(
            "The benefit program: basic pension (gicho yeongeum), child allowance (adong sudang), parental "
            "benefit (bumo geubyeo), livelihood benefit (saenggye geubyeo), housing benefit or disability "
            "pension."
        ),
    )
    monthly_amount: Annotated[Decimal, AvroDecimal(18, 0)] = Field(
        description="Granted monthly amount in KRW (won).",
    )
    effective_from: date = Field(description="First day the benefit is owed.")
    effective_until: date | None = Field(
        default=None,
        description="Last day the benefit is owed, when the grant is time-limited.",
    )
    legal_basis: str = Field(
        description=(
            "Statute and article the decision rests on, e.g. '기초연금법 제3조'; also sent as the "
            "CloudEvents legalbasis extension."
        ),
    )
    decided_on: date = Field(description="Date of the grant decision.")
    granting_office: str = Field(
        description="Seven-digit code of the si/gun/gu office that decided the grant.",
    )


class PaymentMethod(StrEnum):
    """How a benefit payment reached the recipient."""

    BANK_TRANSFER = "BANK_TRANSFER"
    PROTECTED_ACCOUNT = "PROTECTED_ACCOUNT"
    VOUCHER = "VOUCHER"


class BenefitPaid(AvroEvent):
    """A monthly instalment of a granted benefit was paid."""

    avro_full_name: ClassVar[str] = "govbus.finance.BenefitPaid"
    avro_topic: ClassVar[str] = "finance.benefit"
    avro_key_field: ClassVar[str] = "benefit_id"

    benefit_id: str = Field(
        description="govbus benefit id: 'W' followed by 12 digits. The Kafka key of finance.benefit.",
    )
    payment_id: str = Field(description="govbus payment id: 'Y' followed by 12 digits.")
    recipient_resident_id: str = Field(
        description="govbus pseudonymous resident id of the recipient: 'R' followed by 12 digits.",
    )
    program: BenefitProgram = Field(
        description=(
            "The benefit program: basic pension (gicho yeongeum), child allowance (adong sudang), parental "
            "benefit (bumo geubyeo), livelihood benefit (saenggye geubyeo), housing benefit or disability "
            "pension."
        ),
    )
    amount: Annotated[Decimal, AvroDecimal(18, 0)] = Field(description="Amount paid in KRW (won).")
    period_start: date = Field(description="First day of the period the payment covers.")
    period_end: date = Field(description="Last day of the period the payment covers.")
    method: PaymentMethod = Field(
        description=(
            "Bank transfer, transfer to a seizure-protected account (haengbok jikimi tongjang) or voucher."
        ),
    )
    legal_basis: str = Field(
        description=(
            "Statute and article the decision rests on, e.g. '기초연금법 제3조'; also sent as the "
            "CloudEvents legalbasis extension."
        ),
    )
    paid_at: TimestampMillis = Field(description="When the payment was executed.")


class SuspensionReason(StrEnum):
    """Why a benefit was suspended."""

    RECIPIENT_DECEASED = "RECIPIENT_DECEASED"
    INCOME_ABOVE_THRESHOLD = "INCOME_ABOVE_THRESHOLD"
    AGE_LIMIT_REACHED = "AGE_LIMIT_REACHED"
    EMIGRATED = "EMIGRATED"
    WHEREABOUTS_UNKNOWN = "WHEREABOUTS_UNKNOWN"
    INSTITUTIONALISED = "INSTITUTIONALISED"
    VOLUNTARY_WAIVER = "VOLUNTARY_WAIVER"


class BenefitSuspended(AvroEvent):
    """Payment of a granted benefit was suspended (jigeup jeongji)."""

    avro_full_name: ClassVar[str] = "govbus.finance.BenefitSuspended"
    avro_topic: ClassVar[str] = "finance.benefit"
    avro_key_field: ClassVar[str] = "benefit_id"

    benefit_id: str = Field(
        description="govbus benefit id: 'W' followed by 12 digits. The Kafka key of finance.benefit.",
    )
    recipient_resident_id: str = Field(
        description="govbus pseudonymous resident id of the recipient: 'R' followed by 12 digits.",
    )
    program: BenefitProgram = Field(
        description=(
            "The benefit program: basic pension (gicho yeongeum), child allowance (adong sudang), parental "
            "benefit (bumo geubyeo), livelihood benefit (saenggye geubyeo), housing benefit or disability "
            "pension."
        ),
    )
    reason: SuspensionReason = Field(description="Why the benefit was suspended.")
    suspended_from: date = Field(description="First day no longer paid.")
    legal_basis: str = Field(
        description=(
            "Statute and article the decision rests on, e.g. '기초연금법 제3조'; also sent as the "
            "CloudEvents legalbasis extension."
        ),
    )
    cause_event_id: str | None = Field(
        default=None,
        description="ce_id of the bus event that triggered the suspension (e.g. a ResidentDeceased), if any.",
    )
    decided_on: date = Field(description="Date of the suspension decision.")
    deciding_office: str = Field(
        description="Seven-digit code of the si/gun/gu office that decided the suspension.",
    )


class AccountType(StrEnum):
    """Kind of fiscal account."""

    GENERAL_ACCOUNT = "GENERAL_ACCOUNT"
    SPECIAL_ACCOUNT = "SPECIAL_ACCOUNT"
    FUND = "FUND"


class AllocationType(StrEnum):
    """Which budget an allocation belongs to."""

    ORIGINAL_BUDGET = "ORIGINAL_BUDGET"
    SUPPLEMENTARY_BUDGET = "SUPPLEMENTARY_BUDGET"
    CARRYOVER = "CARRYOVER"


class BudgetAllocated(AvroEvent):
    """An amount of a fiscal year's budget was allocated (baejeong) to a budget line of a ministry."""

    avro_full_name: ClassVar[str] = "govbus.finance.BudgetAllocated"
    avro_topic: ClassVar[str] = "finance.budget"
    avro_key_field: ClassVar[str] = "budget_line_id"

    budget_line_id: str = Field(
        description=(
            "govbus budget line id: 'B' followed by 12 digits. The Kafka key of finance.budget, so a line's "
            "executions stay ordered after its allocation."
        ),
    )
    fiscal_year: int = Field(description="Fiscal year (hoegye yeondo), e.g. 2025.")
    ministry_code: str = Field(
        description=(
            "Seven-digit administrative organisation code (haengjeong gigwan kodeu) of the ministry or "
            "agency holding the budget, e.g. '1741000' (Ministry of the Interior and Safety)."
        ),
    )
    account_type: AccountType = Field(
        description="General account (ilban hoegye), special account (teukbyeol hoegye) or fund (gigeum).",
    )
    account_code: str = Field(description="dBrain code of the account or fund: 4 digits.")
    program_code: str = Field(description="dBrain program code: 4 digits.")
    unit_project_code: str = Field(description="dBrain unit project (danwi saeop) code: 3 digits.")
    program_name: str = Field(description="Program name in Hangul, e.g. '기초연금 지급'.")
    allocation_type: AllocationType = Field(
        description=(
            "The main budget (bon yesan), a supplementary budget (chugyeong) or a carry-over from the "
            "previous year."
        ),
    )
    amount: Annotated[Decimal, AvroDecimal(18, 0)] = Field(description="Allocated amount in KRW (won).")
    allocated_on: date = Field(description="Date the allocation took effect.")


class ExpenditureCategory(StrEnum):
    """Economic category of an expenditure."""

    PERSONNEL = "PERSONNEL"
    GOODS_AND_SERVICES = "GOODS_AND_SERVICES"
    TRANSFERS = "TRANSFERS"
    CAPITAL = "CAPITAL"


class PayeeType(StrEnum):
    """Who received a payment."""

    INDIVIDUAL = "INDIVIDUAL"
    COMPANY = "COMPANY"
    GOVERNMENT_AGENCY = "GOVERNMENT_AGENCY"
    LOCAL_GOVERNMENT = "LOCAL_GOVERNMENT"


class ExpenditureExecuted(AvroEvent):
    """A payment was executed (jichul) against a budget line."""

    avro_full_name: ClassVar[str] = "govbus.finance.ExpenditureExecuted"
    avro_topic: ClassVar[str] = "finance.budget"
    avro_key_field: ClassVar[str] = "budget_line_id"

    budget_line_id: str = Field(
        description=(
            "govbus budget line id: 'B' followed by 12 digits. The Kafka key of finance.budget, so a line's "
            "executions stay ordered after its allocation."
        ),
    )
    expenditure_id: str = Field(description="govbus expenditure id: 'X' followed by 12 digits.")
    fiscal_year: int = Field(description="Fiscal year (hoegye yeondo) charged, e.g. 2025.")
    ministry_code: str = Field(
        description=(
            "Seven-digit administrative organisation code (haengjeong gigwan kodeu) of the ministry or "
            "agency that paid, e.g. '1741000' (Ministry of the Interior and Safety)."
        ),
    )
    category: ExpenditureCategory = Field(
        description=(
            "Economic category: personnel costs, goods and services, transfers (e.g. benefits) or capital."
        ),
    )
    payee_type: PayeeType = Field(description="Kind of payee.")
    payee_business_number: str | None = Field(
        default=None,
        description=(
            "Business registration number of a corporate payee, 'NNN-NN-NNNNN'; null for individuals."
        ),
    )
    amount: Annotated[Decimal, AvroDecimal(18, 0)] = Field(description="Amount paid in KRW (won).")
    purpose: str = Field(description="What the payment was for, in Hangul.")
    executed_at: TimestampMillis = Field(description="When the payment was executed.")


EVENTS: tuple[type[AvroEvent], ...] = (
    BenefitGranted,
    BenefitPaid,
    BenefitSuspended,
    BudgetAllocated,
    ExpenditureExecuted,
)
