"""Meters: what a landlord sends to add one, change its guard limits, move it or re-base it."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Final

from pydantic import ConfigDict, Field, PlainValidator, WithJsonSchema, model_validator
from pydantic_core import PydanticCustomError

from prepaid_meter_contract.meter_ratings import MAX_POWER_LIMIT
from prepaid_meter_contract.tariffs import Unit
from prepaid_meter_contract.wire import (
    Id,
    NonNegativeDecimal,
    ObservedTimestamp,
    Text,
    WireError,
    WireModel,
    check_non_negative_decimal,
    check_text,
    rule_validator,
)

#: Largest register modulus (the value a register rolls over at) a meter may be given.
MAX_REGISTER_MODULUS: Final = Decimal(10**15)
#: Longest meter model name (a key of the meter ratings, or a person's own word).
MAX_MODEL_CHARS: Final = 64


def _positive_up_to(limit: Decimal) -> object:
    """Return a rule: a plain decimal above 0 and at most ``limit``."""

    def check(value: object) -> Decimal:
        number = check_non_negative_decimal(value)
        if not 0 < number <= limit:
            raise WireError("out_of_range", f"must be above 0 and at most {limit}")
        return number

    return check


def _decimal_schema(limit: Decimal) -> WithJsonSchema:
    return WithJsonSchema(
        {"type": "string", "pattern": r"^[0-9]+(\.[0-9]+)?$", "description": f"0 < x <= {limit}"}
    )


#: The most a meter can draw in an hour (kW for kWh, m3/h for m3): above it a step is a glitch.
MaxPower = Annotated[
    Decimal,
    PlainValidator(rule_validator(_positive_up_to(MAX_POWER_LIMIT))),
    _decimal_schema(MAX_POWER_LIMIT),
]
#: The value a register rolls over at.
RegisterModulus = Annotated[
    Decimal,
    PlainValidator(rule_validator(_positive_up_to(MAX_REGISTER_MODULUS))),
    _decimal_schema(MAX_REGISTER_MODULUS),
]
MeterModel = Annotated[
    str,
    PlainValidator(rule_validator(lambda value: check_text(value, MAX_MODEL_CHARS))),
    WithJsonSchema({"type": "string", "minLength": 1, "maxLength": MAX_MODEL_CHARS}),
]


class MeterLimitsChange(WireModel):
    """``PATCH /api/v1/meters/{id}``: the guard's settings; a null goes back to the model's."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: MeterModel | None = None
    max_power: MaxPower | None = None
    register_modulus: RegisterModulus | None = None

    @model_validator(mode="after")
    def _changes_something(self) -> MeterLimitsChange:
        if not self.model_fields_set:
            raise PydanticCustomError(
                "invalid_field", "the body must set model, max_power or register_modulus"
            )
        return self


class MeterInput(WireModel):
    """``POST /api/v1/meters``: a meter on an account, priced by a tariff of the same unit."""

    account_id: Id
    tariff_id: Id
    name: Text
    unit: Unit
    model: MeterModel | None = None
    max_power: MaxPower | None = None
    register_modulus: RegisterModulus | None = None


class AssignMeter(WireModel):
    """``POST /api/v1/meters/{id}/assign``: move a meter to another account from a time on."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    account_id: Id
    #: The tariff from then on; absent: the meter keeps its tariff.
    tariff_id: Id | None = None
    #: When the new account starts paying; absent: now. Not before the last reading.
    from_: Annotated[ObservedTimestamp | None, Field(alias="from")] = None
    #: The register's value at ``from`` (move-in): the consumption up to it is charged to the
    #: account the meter leaves, the new account pays from it on. Not below the last reading.
    start_value: NonNegativeDecimal | None = None


class ReplaceRegister(WireModel):
    """``POST /api/v1/meters/{id}/replace``: a new register, counting on from this value."""

    new_start_value: NonNegativeDecimal
    #: When the new register was fitted; absent: now. Not before the last reading.
    at: ObservedTimestamp | None = None
