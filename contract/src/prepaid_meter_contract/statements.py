"""An account's statement for a period: every line, and proof that it ties out."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from pydantic import ConfigDict, Field

from prepaid_meter_contract.wire import Minor, NonNegativeDecimal, Timestamp, WireModel


class MoneyLine(WireModel):
    """One movement of money: a top-up, bonus, refund, adjustment or settlement."""

    transaction_id: int
    at: Timestamp
    description: str
    #: Signed: what the line added to the balance.
    amount_minor: Minor


class ConsumptionLine(WireModel):
    """What one local day's consumption in one tariff band cost."""

    day: date
    band: str
    quantity: NonNegativeDecimal
    amount_minor: Minor


class StandingChargeLine(WireModel):
    """One local day's standing charge."""

    day: date
    amount_minor: Minor


class Statement(WireModel):
    """``GET /api/v1/accounts/{id}/statement``: opening + every line = closing, to the minor unit.

    Charges (consumption, standing charges) are listed as positive costs; every other line
    is signed as it moved the balance.
    """

    model_config = ConfigDict(frozen=True, extra="ignore", serialize_by_alias=True)

    account_id: int
    number: str
    currency: str
    #: The period, [from, to); an open end is None.
    from_: Annotated[Timestamp | None, Field(alias="from")] = None
    to: Timestamp | None = None
    opening_balance_minor: Minor
    topups: list[MoneyLine]
    topups_total_minor: Minor
    #: Promotions' bonuses given (positive) and taken back by refunds (negative).
    bonuses: list[MoneyLine] = Field(default_factory=list)
    bonuses_total_minor: Minor = 0
    refunds: list[MoneyLine]
    refunds_total_minor: Minor
    adjustments: list[MoneyLine]
    adjustments_total_minor: Minor
    settlements: list[MoneyLine]
    settlements_total_minor: Minor
    consumption: list[ConsumptionLine]
    consumption_total_minor: Minor
    standing_charges: list[StandingChargeLine]
    standing_total_minor: Minor
    closing_balance_minor: Minor
    #: Whether opening plus every line equals closing (always, unless the books are broken).
    ties_out: bool
