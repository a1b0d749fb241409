"""Readings: the batch Home Assistant posts, what the ledger answers, held readings."""

from __future__ import annotations

from typing import Annotated, Final

from pydantic import BeforeValidator
from pydantic_core import PydanticCustomError

from prepaid_meter_contract.resources import Supply
from prepaid_meter_contract.vocabulary import ReadingStatus, ResolveAction, StepKind
from prepaid_meter_contract.wire import (
    Id,
    NonNegativeDecimal,
    ObservedTimestamp,
    Reason,
    Timestamp,
    WireModel,
)

#: Most readings in one request (the integration sends one per meter per poll cycle).
MAX_BATCH: Final = 5000
#: A register value longer than this is refused before it is parsed.
MAX_VALUE_CHARS: Final = 40


def _value_length(value: object) -> object:
    if isinstance(value, str) and len(value) > MAX_VALUE_CHARS:
        raise PydanticCustomError("invalid_decimal", "has too many digits")
    return value


def _batch_bounds(value: object) -> object:
    """Check the list's length before any item is looked at (a huge batch costs nothing)."""
    if not isinstance(value, list) or not value:
        raise PydanticCustomError("invalid_field", "must be a non-empty list")
    if len(value) > MAX_BATCH:
        raise PydanticCustomError(
            "batch_too_large", f"must hold at most {MAX_BATCH} readings per request"
        )
    return value


class Reading(WireModel):
    """One cumulative register value of one ledger meter, when it was read."""

    meter_id: Id
    value: Annotated[NonNegativeDecimal, BeforeValidator(_value_length)]
    at: ObservedTimestamp


class ReadingsBatch(WireModel):
    """``POST /api/v1/readings``: readings of one or more meters; re-sending one is free."""

    readings: Annotated[list[Reading], BeforeValidator(_batch_bounds)]


class MeterIngest(WireModel):
    """What one meter's readings did in a batch, and its account's state afterwards."""

    meter_id: int
    account_id: int
    accepted: int
    baseline: int
    duplicates: int
    flagged: int
    held: int
    ignored_noise: int
    unbilled: int
    charged_minor: int
    standing_charged_minor: int
    balance_minor: int
    emergency_credit_remaining_minor: int
    debt_minor: int
    supply: Supply


class ReadingsResult(WireModel):
    """The answer to a readings batch."""

    received: int
    meters: list[MeterIngest]


class HeldReading(WireModel):
    """A reading the guard holds for a person (or one a person has decided on)."""

    id: int
    meter_id: int
    account_id: int
    value: NonNegativeDecimal
    at: Timestamp
    status: ReadingStatus
    hold: StepKind | None
    charged_minor: int
    received_at: Timestamp


class HeldReadings(WireModel):
    """``GET /api/v1/readings/held``."""

    readings: list[HeldReading]
    #: Pass as ``?cursor=`` (with the same filter) for the next page.
    next_cursor: str | None = None


class ResolveReading(WireModel):
    """``POST /api/v1/readings/{id}/resolve``: a person's decision, with a reason."""

    action: ResolveAction
    reason: Reason


class ResolvedReading(HeldReading):
    """The decided reading, with the decision."""

    action: ResolveAction
    reason: str
