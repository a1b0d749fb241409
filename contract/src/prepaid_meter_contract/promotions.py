"""Top-up promotions: "a top-up of at least X gets Y extra" or "Z % extra", for a while.

A landlord's promotion gives a bonus on a top-up that meets it. The bonus is credited as its
own journal line from the promotions book (the landlord's revenue and the cost of bonuses stay
apart), shows on the receipt, the statement and the tenant's page, and refunding the top-up
takes it back in proportion, never more than was given. Promotions do not add up: when several
apply, the one giving the largest bonus does.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Final

from pydantic import PlainSerializer, PlainValidator, WithJsonSchema, model_validator
from pydantic_core import PydanticCustomError

from prepaid_meter_contract.accounts import CurrencyCode
from prepaid_meter_contract.wire import (
    Id,
    Minor,
    PositiveMinor,
    Reason,
    StrictBool,
    Text,
    Timestamp,
    WireError,
    WireModel,
    check_decimal,
    decimal_validator,
    format_decimal,
    rule_validator,
)

#: Most a percentage bonus may be (a top-up of 10 EUR gets at most 10 EUR extra).
MAX_PERCENT: Final = Decimal(100)
#: A percentage is given to the hundredth (12.5 %, 7.25 %).
PERCENT_PLACES: Final = 2
#: Most uses a limit may name (per account or in all).
MAX_USES: Final = 1_000_000


def check_percent(value: object) -> Decimal:
    """Return a bonus percentage: above 0, at most 100, to at most two decimal places."""
    number = check_decimal(value)
    if not 0 < number <= MAX_PERCENT:
        raise WireError("invalid_percent", f"must be above 0 and at most {MAX_PERCENT}")
    exponent = number.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -PERCENT_PLACES:
        raise WireError("invalid_percent", f"use at most {PERCENT_PLACES} decimal places")
    return number


def check_uses(value: object) -> int:
    """Return a use limit: a whole number from 1 to MAX_USES."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise WireError("invalid_field", "must be an integer")
    if not 1 <= value <= MAX_USES:
        raise WireError("invalid_field", f"must be from 1 to {MAX_USES}")
    return value


Percent = Annotated[
    Decimal,
    PlainValidator(decimal_validator(check_percent)),
    PlainSerializer(format_decimal, return_type=str),
    WithJsonSchema({"type": "string", "pattern": r"^[0-9]+(\.[0-9]{1,2})?$", "example": "20"}),
]
UseLimit = Annotated[
    int,
    PlainValidator(rule_validator(check_uses)),
    WithJsonSchema({"type": "integer", "minimum": 1, "maximum": MAX_USES}),
]


class PromotionInput(WireModel):
    """``POST /api/v1/promotions``: a bonus for top-ups of at least ``min_topup_minor``.

    Exactly one of ``bonus_minor`` (a fixed extra) and ``bonus_percent`` (a share of the
    top-up, rounded down to the minor unit, at most ``max_bonus_minor`` when set).
    """

    name: Text
    currency: CurrencyCode
    min_topup_minor: PositiveMinor
    bonus_minor: PositiveMinor | None = None
    bonus_percent: Percent | None = None
    max_bonus_minor: PositiveMinor | None = None
    #: The promotion counts top-ups ordered from this time (open: from now on).
    starts_at: Timestamp | None = None
    #: ... and before this one (open: until it is ended).
    ends_at: Timestamp | None = None
    #: Only an account's first credited top-up earns it.
    first_topup_only: StrictBool = False
    #: At most this many bonuses per account.
    uses_per_account: UseLimit | None = None
    #: At most this many bonuses in all (the first N top-ups that meet it).
    uses_total: UseLimit | None = None
    #: Only accounts with a meter on this tariff.
    tariff_id: Id | None = None

    @model_validator(mode="after")
    def _one_kind_of_bonus(self) -> PromotionInput:
        if (self.bonus_minor is None) == (self.bonus_percent is None):
            raise PydanticCustomError(
                "invalid_field", "give exactly one of bonus_minor and bonus_percent"
            )
        if self.max_bonus_minor is not None and self.bonus_percent is None:
            raise PydanticCustomError(
                "invalid_field", "max_bonus_minor caps a percentage: give bonus_percent"
            )
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            raise PydanticCustomError("invalid_field", "ends_at must be after starts_at")
        return self


class Promotion(PromotionInput):
    """A promotion as the ledger answers it, with how often it has paid out."""

    id: int
    created_at: Timestamp
    created_by: str
    #: When the landlord ended it early (None while it runs to its own end).
    ended_at: Timestamp | None = None
    #: Bonuses given so far and their total (before any refund took one back).
    uses: int = 0
    granted_minor: Minor = 0


class Promotions(WireModel):
    """``GET /api/v1/promotions``: newest first."""

    promotions: list[Promotion]


class EndPromotion(WireModel):
    """``POST /api/v1/promotions/{id}/end``: top-ups ordered from now on earn nothing more."""

    reason: Reason
