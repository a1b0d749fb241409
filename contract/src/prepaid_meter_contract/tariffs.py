"""Tariffs: the body a landlord sends to create one or add a price version, and the answers.

The request model checks the shape of a tariff (types, names, HH:MM times, list lengths,
decimal text) with the codes and messages the ledger has always used (``invalid_tariff``,
``invalid_decimal``, ``invalid_amount``, ...). What depends on the values together (segment
starts in order and the first at ``"00:00"``, band limits rising with only the last one open,
a kind's own fields being present and no other kind's, the price ceiling, a currency the
ledger knows) stays with the ledger's tariff rules, which read the body this model validated.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Annotated, Any, Final, Literal

from pydantic import (
    AwareDatetime,
    BeforeValidator,
    Field,
    PlainSerializer,
    PlainValidator,
    WithJsonSchema,
    model_validator,
)

from prepaid_meter_contract.accounts import CurrencyCode
from prepaid_meter_contract.wire import (
    Minor,
    MinorSetting,
    NonNegativeDecimal,
    PlainDecimal,
    Timestamp,
    WireError,
    WireModel,
    rule_validator,
)

Unit = Literal["kWh", "m3"]
Kind = Literal["flat", "tou", "tiered"]
Period = Literal["month", "year"]

UNITS: Final[tuple[Unit, ...]] = ("kWh", "m3")
KINDS: Final[tuple[Kind, ...]] = ("flat", "tou", "tiered")
PERIODS: Final[tuple[Period, ...]] = ("month", "year")
#: Most segments in one day's schedule (a quarter-hourly tariff would need a new kind).
MAX_SEGMENTS: Final = 14
#: Most tiers of a tiered tariff.
MAX_BANDS: Final = 10
#: Longest tariff name.
MAX_NAME_CHARS: Final = 100
#: Longest band name (shown on statements and sensors next to each charge).
MAX_BAND_NAME_CHARS: Final = 32
#: Keys a tariff body may carry besides its fields: ``id``, so a tariff as the ledger answers
#: it (less ``created_at`` and ``versions``) can be sent back as a new version.
_TOLERATED: Final = frozenset({"id"})
_HHMM: Final = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])")
_CODE: Final = "invalid_tariff"


# --------------------------------------------------------------------------- rules


def _fail(detail: str) -> WireError:
    return WireError(_CODE, detail)


def check_choice[T: str](value: object, choices: tuple[T, ...], wording: str) -> T:
    """Return ``value`` if it is one of ``choices``; ``wording`` lists them for the message."""
    for choice in choices:
        if isinstance(value, str) and value == choice:
            return choice
    raise _fail(f"must be {wording}; got {value!r}")


def check_kind(value: object) -> Kind:
    """Return a tariff kind: ``flat``, ``tou`` (time of use) or ``tiered``."""
    return check_choice(value, KINDS, "one of 'flat', 'tou', 'tiered'")


def check_tariff_text(value: object, max_chars: int) -> str:
    """Return a non-blank name of at most ``max_chars`` characters, exactly as sent."""
    if not isinstance(value, str) or not value.strip():
        raise _fail("must be a non-empty string")
    if len(value) > max_chars:
        raise _fail(f"must be at most {max_chars} characters")
    return value


#: Band names the ledger gives its own rows: the running total of all bands of a meter, and the
#: daily standing charge on statements. A tariff's band of either name would be taken for them
#: (a band called "__total__" would be counted twice in the meter's running total).
RESERVED_BAND_NAMES: Final = frozenset({"__total__", "standing"})


def check_band_name(value: object) -> str:
    """Return a band name as sent: non-blank, at most MAX_BAND_NAME_CHARS, not reserved."""
    name = check_tariff_text(value, MAX_BAND_NAME_CHARS)
    if name in RESERVED_BAND_NAMES:
        raise _fail(f"{name!r} is a name the ledger uses itself; choose another band name")
    return name


def check_hhmm(value: object) -> str:
    """Return a local time of day ``"HH:MM"`` (00:00 to 23:59), as sent."""
    if not isinstance(value, str) or _HHMM.fullmatch(value) is None:
        raise _fail(f'must be a local time "HH:MM" between 00:00 and 23:59; got {value!r}')
    return value


def check_list_size(value: object, max_items: int) -> list[Any]:
    """Return a non-empty list of at most ``max_items`` entries, before any entry is read."""
    if not isinstance(value, list) or not value:
        raise _fail("must be a non-empty list")
    if len(value) > max_items:
        raise _fail(f"may hold at most {max_items} entries; got {len(value)}")
    return value


def check_object(value: object, fields: Collection[str], required: Collection[str]) -> object:
    """Return an entry of a list that is an object of known fields with its required ones.

    Anything else that is not a mapping is left to pydantic (a model passed as itself).
    """
    if not isinstance(value, Mapping):
        if isinstance(value, WireModel):
            return value
        raise _fail("must be an object")
    unknown = sorted(str(key) for key in value if key not in fields)
    if unknown:
        raise _fail(f"has unknown field(s) {', '.join(unknown)}")
    if any(key not in value for key in required):
        raise _fail(f"needs {' and '.join(repr(key) for key in required)}")
    return value


def check_tariff_keys(value: object, fields: Collection[str]) -> object:
    """Check a whole tariff body: a known kind, no unknown field, the common fields present."""
    if not isinstance(value, Mapping):
        return value  # pydantic answers "must be an object"
    try:
        check_kind(value.get("kind"))
    except WireError as err:
        raise WireError(err.code, err.message("kind")) from None
    unknown = sorted(str(key) for key in value if key not in fields and key not in _TOLERATED)
    if unknown:
        raise _fail(f"tariff has unknown field(s) {', '.join(unknown)}")
    missing = sorted(key for key in ("name", "currency", "unit") if key not in value)
    if missing:
        raise _fail(f"tariff is missing field(s) {', '.join(missing)}")
    return value


# --------------------------------------------------------------------------- types


def _sized(max_items: int) -> BeforeValidator:
    """Refuse a list that is empty or too long before its entries are looked at."""
    return BeforeValidator(rule_validator(lambda value: check_list_size(value, max_items)))


def _choice[T: str](choices: tuple[T, ...], wording: str) -> PlainValidator:
    return PlainValidator(rule_validator(lambda value: check_choice(value, choices, wording)))


def _enum(choices: tuple[str, ...]) -> WithJsonSchema:
    return WithJsonSchema({"type": "string", "enum": list(choices)})


def _isoformat(value: datetime) -> str:
    return value.isoformat()


#: The name of a tariff.
TariffName = Annotated[
    str,
    PlainValidator(rule_validator(lambda value: check_tariff_text(value, MAX_NAME_CHARS))),
    WithJsonSchema({"type": "string", "minLength": 1, "maxLength": MAX_NAME_CHARS}),
]
#: The name of a band (a segment's or a tier's), as statements show it.
BandName = Annotated[
    str,
    PlainValidator(rule_validator(check_band_name)),
    WithJsonSchema(
        {
            "type": "string",
            "minLength": 1,
            "maxLength": MAX_BAND_NAME_CHARS,
            "not": {"enum": sorted(RESERVED_BAND_NAMES)},
        }
    ),
]
#: A local time of day, ``"07:00"``.
LocalTime = Annotated[
    str,
    PlainValidator(rule_validator(check_hhmm)),
    WithJsonSchema({"type": "string", "pattern": "^([01][0-9]|2[0-3]):[0-5][0-9]$"}),
]
UnitName = Annotated[Unit, _choice(UNITS, "'kWh' or 'm3'"), _enum(UNITS)]
KindName = Annotated[Kind, PlainValidator(rule_validator(check_kind)), _enum(KINDS)]
PeriodName = Annotated[Period, _choice(PERIODS, "'month' or 'year'"), _enum(PERIODS)]
#: When a price version began: any aware time (a tariff's first version starts in 1970).
Since = Annotated[
    AwareDatetime,
    PlainSerializer(_isoformat, return_type=str),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]


# --------------------------------------------------------------------------- requests

_NEEDS_START: Final = ("start", "price")
_SEGMENT_FIELDS: Final = ("start", "price", "band")
_BAND_FIELDS: Final = ("up_to", "price", "band")
_NEEDS_UP_TO: Final = ("up_to", "price")


class Segment(WireModel):
    """A time-of-use segment: from ``start`` (local time) until the next segment starts."""

    start: LocalTime
    price: NonNegativeDecimal
    #: Defaults to the start (``"07:00"``, or ``"weekend 07:00"`` on the weekend schedule).
    band: BandName | None = None

    @model_validator(mode="before")
    @classmethod
    def _entry(cls, value: object) -> object:
        check = rule_validator(lambda entry: check_object(entry, _SEGMENT_FIELDS, _NEEDS_START))
        return check(value)


class Band(WireModel):
    """A tier: consumption in the period up to ``up_to`` costs ``price`` (null: no limit)."""

    up_to: NonNegativeDecimal | None
    price: NonNegativeDecimal
    #: Defaults to ``tier1``, ``tier2`` and so on.
    band: BandName | None = None

    @model_validator(mode="before")
    @classmethod
    def _entry(cls, value: object) -> object:
        check = rule_validator(lambda entry: check_object(entry, _BAND_FIELDS, _NEEDS_UP_TO))
        return check(value)


Segments = Annotated[
    list[Segment], _sized(MAX_SEGMENTS), Field(min_length=1, max_length=MAX_SEGMENTS)
]
Bands = Annotated[list[Band], _sized(MAX_BANDS), Field(min_length=1, max_length=MAX_BANDS)]


class TariffInput(WireModel):
    """``POST /api/v1/tariffs`` and ``POST /api/v1/tariffs/{id}/versions``.

    Prices are decimal strings in major units per kWh or m3 (at most 10,000, 10 decimals).
    ``flat`` needs ``price``; ``tou`` needs ``segments`` (1 to 14, the first at ``"00:00"``,
    starts rising) and may have ``weekend_segments``; ``tiered`` needs ``period`` and ``bands``
    (1 to 10, limits rising, only the last one ``null``). A field of another kind is refused.
    ``effective_from`` is required for a new version and ignored when a tariff is created.
    """

    kind: KindName
    name: TariffName
    currency: CurrencyCode
    unit: UnitName
    standing_charge_minor_per_day: MinorSetting = 0
    price: NonNegativeDecimal | None = None
    segments: Segments | None = None
    weekend_segments: Segments | None = None
    period: PeriodName | None = None
    bands: Bands | None = None
    effective_from: Timestamp | None = None

    @model_validator(mode="before")
    @classmethod
    def _body(cls, value: object) -> object:
        return rule_validator(lambda body: check_tariff_keys(body, cls.model_fields))(value)

    def definition(self) -> dict[str, Any]:
        """Return the tariff as JSON, with only the fields that were given (for the ledger)."""
        return self.model_dump(mode="json", exclude_unset=True, exclude={"effective_from"})


# --------------------------------------------------------------------------- answers


def _absent(value: object) -> bool:
    return value is None


def _own() -> Any:
    """Declare a field only one kind of tariff has: left out of the answer for the others."""
    return Field(default=None, exclude_if=_absent)


class NamedSegment(WireModel):
    """A time-of-use segment as the ledger keeps it: its band always named."""

    start: str
    price: PlainDecimal
    band: str


class NamedBand(WireModel):
    """A tier as the ledger keeps it: its band always named."""

    up_to: PlainDecimal | None
    price: PlainDecimal
    band: str


class TariffDefinition(WireModel):
    """What one version of a tariff charges; the fields of the other kinds are absent."""

    name: str
    currency: str
    unit: Unit
    kind: Kind
    standing_charge_minor_per_day: Minor
    price: PlainDecimal | None = _own()
    segments: list[NamedSegment] | None = _own()
    #: Absent when the weekend follows the weekday schedule.
    weekend_segments: list[NamedSegment] | None = _own()
    period: Period | None = _own()
    bands: list[NamedBand] | None = _own()


class TariffVersion(TariffDefinition):
    """A price version: its definition applies from ``effective_from`` until the next one."""

    effective_from: Since


class Tariff(TariffDefinition):
    """``GET /api/v1/tariffs/{id}``: the version in effect now, and every version."""

    id: int
    created_at: Since
    versions: list[TariffVersion]


class Tariffs(WireModel):
    """``GET /api/v1/tariffs``."""

    tariffs: list[Tariff]
