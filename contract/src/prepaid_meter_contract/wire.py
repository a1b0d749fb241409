"""The rules every value on the wire follows, and the one way a breach is described.

Each rule is a plain function that raises ``WireError(code, detail)``; the detail reads after a
field name (``readings[3].value must be ...``). The ledger's own parsers and the pydantic types
below both call these functions, so a rule exists once and a client learns the same code and
message whichever route refused its value.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any, Final, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    PlainSerializer,
    PlainValidator,
    Strict,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
)
from pydantic_core import PydanticCustomError
from pydantic_core.core_schema import ErrorType

#: Every time the API accepts lies in [EARLIEST_TIME, LATEST_TIME). Outside it times are
#: certainly wrong for a meter or a payment, and year 1 or 9999 would overflow arithmetic.
EARLIEST_TIME: Final = datetime(2000, 1, 1, tzinfo=UTC)
LATEST_TIME: Final = datetime(2100, 1, 1, tzinfo=UTC)
#: How far ahead of the ledger's clock an observed time may be (clocks drift a little).
MAX_CLOCK_SKEW: Final = timedelta(minutes=5)
_OFFSET_MARGIN: Final = timedelta(days=1)  # UTC offsets are below one day
#: The window as local wall times, widened by any offset (checked before converting to UTC).
_EARLIEST_WALL: Final = EARLIEST_TIME.replace(tzinfo=None) - _OFFSET_MARGIN
_LATEST_WALL: Final = LATEST_TIME.replace(tzinfo=None) + _OFFSET_MARGIN
_WINDOW: Final = f"must lie from {EARLIEST_TIME.isoformat()} to before {LATEST_TIME.isoformat()}"
#: Longest plain decimal string accepted for an amount, a price or a register value.
MAX_DECIMAL_CHARS: Final = 32
_DECIMAL_RE: Final = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")
#: Ids above this cannot be a row (they would overflow a 64-bit column).
MAX_ID: Final = 2**62
#: Largest amount any request may set (a price level, a standing charge, an emergency credit,
#: a top-up), in minor units: ten billion euros in cents.
MAX_MINOR: Final = 10**12
#: Longest short text accepted (a name, a reference).
MAX_TEXT_CHARS: Final = 200
#: Longest reason a person may give for a decision (closing an account, a held reading...).
MAX_REASON_CHARS: Final = 500


class WireError(ValueError):
    """A value that breaks a rule of the contract: a stable code, a detail, maybe its field."""

    def __init__(self, code: str, detail: str, field: str | None = None) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.field = field

    def message(self, field: str | None = None) -> str:
        """Return the message naming the field (``readings[3].at must ...``)."""
        name = field or self.field
        return f"{name} {self.detail}" if name else self.detail


# --------------------------------------------------------------------------- rules


def check_decimal(value: object) -> Decimal:
    """Return an exact decimal from plain text such as ``"0.2513"`` or ``"-12"``.

    Floats, ints, booleans, exponents, NaN, infinities, blanks and over-long strings are
    refused so that every amount comes from exact text.
    """
    if not isinstance(value, str):
        raise WireError(
            "invalid_decimal",
            f'must be a decimal string such as "0.25", not {type(value).__name__}',
        )
    if len(value) > MAX_DECIMAL_CHARS or not _DECIMAL_RE.fullmatch(value):
        shown = value if len(value) <= MAX_DECIMAL_CHARS else value[:MAX_DECIMAL_CHARS] + "..."
        raise WireError(
            "invalid_decimal",
            'must be a plain decimal string such as "0.25" '
            f"(at most {MAX_DECIMAL_CHARS} characters, no exponent); got {shown!r}",
        )
    return Decimal(value)


def check_non_negative_decimal(value: object) -> Decimal:
    """Return an exact decimal that is not negative (prices, meter values, band limits)."""
    number = check_decimal(value)
    if number < 0:
        raise WireError("negative_decimal", f"must not be negative; got {value!r}")
    return number.copy_abs()  # turns "-0" into "0" without rounding


def format_decimal(value: Decimal) -> str:
    """Render a decimal as plain text without exponent (inverse of ``check_decimal``)."""
    return f"{value.copy_abs() if value.is_zero() else value:f}"


def check_time_window(value: datetime) -> datetime:
    """Return an aware time inside [EARLIEST_TIME, LATEST_TIME)."""
    # Compare the local wall time first: converting year 1 or 9999 to UTC can overflow.
    if not _EARLIEST_WALL <= value.replace(tzinfo=None) <= _LATEST_WALL:
        raise WireError("time_out_of_range", _WINDOW)
    if not EARLIEST_TIME <= value.astimezone(UTC) < LATEST_TIME:
        raise WireError("time_out_of_range", _WINDOW)
    return value


def check_timestamp(value: object) -> datetime:
    """Return an ISO-8601 timestamp with a UTC offset, inside the accepted window."""
    if isinstance(value, datetime):
        parsed = value
    elif not isinstance(value, str):
        raise WireError("invalid_field", "must be an ISO-8601 timestamp string")
    else:
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError as err:
            raise WireError("invalid_field", "is not a valid ISO-8601 timestamp") from err
    if parsed.tzinfo is None:
        raise WireError("invalid_field", "must include a UTC offset")
    return check_time_window(parsed)


def check_not_in_future(value: datetime, now: datetime) -> datetime:
    """Return an observed time that is not more than ``MAX_CLOCK_SKEW`` ahead of ``now``."""
    if value > now + MAX_CLOCK_SKEW:
        minutes = int(MAX_CLOCK_SKEW.total_seconds() // 60)
        raise WireError(
            "time_in_future",
            f"lies more than {minutes} minutes ahead of the ledger's clock "
            f"({now.isoformat()}); check the clock of the sender",
        )
    return value


def check_positive_int(value: object) -> int:
    """Return a positive integer that can be a row id; booleans and numbers as text are refused."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_ID:
        raise WireError("invalid_field", "must be a positive integer")
    return value


def check_minor(value: object, minimum: int = 0, maximum: int = MAX_MINOR) -> int:
    """Return an amount in minor units: a JSON integer (not a boolean, float or text) in bounds.

    Every money field a request sets goes through here, so none can exceed what can be posted.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise WireError("invalid_amount", "must be an integer number of minor units (e.g. cents)")
    if value < minimum:
        raise WireError("invalid_amount", f"must be at least {minimum}; got {value}")
    if value > maximum:
        raise WireError("invalid_amount", f"must be at most {maximum}; got {value}")
    return value


def check_text(value: object, max_length: int = MAX_TEXT_CHARS) -> str:
    """Return text that is not blank, without surrounding white space, at most max_length long."""
    if not isinstance(value, str) or not value.strip():
        raise WireError("invalid_field", "must be a non-empty string")
    if len(value) > max_length:
        raise WireError("invalid_field", f"must be at most {max_length} characters")
    return value.strip()


# --------------------------------------------------------------------------- pydantic types


def rule_validator(rule: Any) -> Any:
    """Turn a rule into a pydantic validator that reports its code and detail.

    Every module of the contract makes its own rules into types with it.
    """

    def validate(value: object) -> object:
        try:
            return rule(value)
        except WireError as err:
            raise PydanticCustomError(err.code, err.detail) from None

    return validate


def decimal_validator(rule: Any) -> Any:
    """Like ``rule_validator``, and a finite ``Decimal`` passes as text of itself would.

    JSON never yields a ``Decimal``: one comes from a peer building a model in Python.
    """
    validate = rule_validator(rule)

    def exact(value: object) -> object:
        if isinstance(value, Decimal) and value.is_finite():
            return validate(format_decimal(value))
        return validate(value)

    return exact


def _observed(value: object, info: ValidationInfo) -> datetime:
    try:
        parsed = check_timestamp(value)
        now = info.context.get("now") if isinstance(info.context, dict) else None
        return parsed if now is None else check_not_in_future(parsed, now)
    except WireError as err:
        raise PydanticCustomError(err.code, err.detail) from None


def _isoformat(value: datetime) -> str:
    return value.isoformat()


_TIME_SCHEMA: Final = WithJsonSchema({"type": "string", "format": "date-time"})
_DECIMAL_SCHEMA: Final = {"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]+)?$", "maxLength": 32}

#: An exact decimal sent as plain text (``"0.25"``), never a float.
PlainDecimal = Annotated[
    Decimal,
    PlainValidator(decimal_validator(check_decimal)),
    PlainSerializer(format_decimal, return_type=str),
    WithJsonSchema(_DECIMAL_SCHEMA),
]
#: A plain decimal that is not negative.
NonNegativeDecimal = Annotated[
    Decimal,
    PlainValidator(decimal_validator(check_non_negative_decimal)),
    PlainSerializer(format_decimal, return_type=str),
    WithJsonSchema(_DECIMAL_SCHEMA),
]
#: An aware time inside the accepted window, sent as ISO-8601 text.
Timestamp = Annotated[
    datetime,
    PlainValidator(rule_validator(check_timestamp)),
    PlainSerializer(_isoformat, return_type=str),
    _TIME_SCHEMA,
]
#: A time something was observed: also not ahead of ``context["now"]`` (the ledger's clock).
ObservedTimestamp = Annotated[
    datetime,
    PlainValidator(_observed),
    PlainSerializer(_isoformat, return_type=str),
    _TIME_SCHEMA,
]
#: A row id: a positive integer (never a boolean or a number in a string).
Id = Annotated[
    int,
    PlainValidator(rule_validator(check_positive_int)),
    WithJsonSchema({"type": "integer", "minimum": 1, "maximum": MAX_ID}),
]


#: An amount a request sets: 0 to MAX_MINOR minor units.
MinorSetting = Annotated[
    int,
    PlainValidator(rule_validator(check_minor)),
    WithJsonSchema({"type": "integer", "minimum": 0, "maximum": MAX_MINOR}),
]
#: An amount of money moved by a request: 1 to MAX_MINOR minor units.
PositiveMinor = Annotated[
    int,
    PlainValidator(rule_validator(lambda value: check_minor(value, minimum=1))),
    WithJsonSchema({"type": "integer", "minimum": 1, "maximum": MAX_MINOR}),
]
#: A signed correction: -MAX_MINOR to MAX_MINOR minor units.
SignedMinor = Annotated[
    int,
    PlainValidator(rule_validator(lambda value: check_minor(value, minimum=-MAX_MINOR))),
    WithJsonSchema({"type": "integer", "minimum": -MAX_MINOR, "maximum": MAX_MINOR}),
]
#: Money the ledger answers with: exactly an integer (``"1250"`` or ``1250.0`` is a broken
#: peer, not a number to coerce).
Minor = Annotated[int, Strict()]
#: A JSON boolean (never 1 or "true").
StrictBool = Annotated[bool, Strict()]
#: A short text: not blank, stripped, at most MAX_TEXT_CHARS characters.
Text = Annotated[
    str,
    PlainValidator(rule_validator(check_text)),
    WithJsonSchema({"type": "string", "minLength": 1, "maxLength": MAX_TEXT_CHARS}),
]

#: Why a person decided something (kept in the audit log): not blank, at most 500 characters.
Reason = Annotated[
    str,
    PlainValidator(rule_validator(lambda value: check_text(value, MAX_REASON_CHARS))),
    WithJsonSchema({"type": "string", "minLength": 1, "maxLength": MAX_REASON_CHARS}),
]


class WireModel(BaseModel):
    """Base of every wire model: immutable, unknown fields ignored (newer peers add fields)."""

    model_config = ConfigDict(frozen=True, extra="ignore")


# --------------------------------------------------------------------------- describing errors


def field_path(loc: tuple[int | str, ...]) -> str:
    """Return ``readings[3].value`` for the location ``("readings", 3, "value")``."""
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


_GENERIC: Final = {
    "missing": "is required",
    "model_type": "must be an object",
    "model_attributes_type": "must be an object",
    "dict_type": "must be an object",
    "list_type": "must be a list",
    "string_type": "must be a string",
    "bool_type": "must be true or false",
    "int_type": "must be an integer",
    "enum": "is not one of the accepted values",
    "extra_forbidden": "is not a field this request accepts",
    "literal_error": "is not one of the accepted values",
}


def describe(err: ValidationError) -> WireError:
    """Return the first breach of a validation as a code and a message naming its field.

    Our own rules keep their code (``invalid_decimal``, ``time_in_future``); pydantic's
    built-in checks (a missing field, an object where a list belongs) are ``invalid_field``.
    """
    first = err.errors(include_url=False, include_input=False)[0]
    where = field_path(tuple(first["loc"])) or None
    kind = first["type"]
    if kind in _GENERIC:
        detail = _GENERIC[kind]
        if expected := first.get("ctx", {}).get("expected"):
            detail = f"must be one of {expected}"
        return WireError("invalid_field", detail, where)
    if kind in _PYDANTIC_TYPES:
        return WireError("invalid_field", f"is not accepted: {first['msg']}", where)
    return WireError(kind, str(first["msg"]), where)


#: pydantic's own error types; any other type was raised by a rule of ours with its code.
_PYDANTIC_TYPES: Final = frozenset(get_args(ErrorType))
