"""Tariffs (flat, time-of-use, tiered) and the exact price of consumption over an interval.

Prices are exact decimals in major units per kWh or m3. Pricing never rounds money: each
``ChargePart.amount`` is ``quantity * price`` exactly; rounding to minor units happens once, on
the cumulative total (see ``money.amount_to_post``). Time-of-use segments and tier periods are
evaluated in the account's local time, so they follow daylight-saving changes.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from decimal import ROUND_FLOOR, Context, Decimal, localcontext
from typing import Final, Literal

from prepaid_meter_contract.tariffs import (
    MAX_BAND_NAME_CHARS,
    MAX_BANDS,
    MAX_NAME_CHARS,
    MAX_SEGMENTS,
    PERIODS,
    UNITS,
    Period,
    Unit,
    check_hhmm,
    check_list_size,
    check_object,
    check_tariff_text,
)

from prepaid_ledger.domain.apportion import apportion, microseconds
from prepaid_ledger.domain.localtime import (
    day_cuts,
    local_pieces,
    offset_transitions,
    require_aware,
)
from prepaid_ledger.domain.money import (
    EXACT,
    format_decimal,
    parse_currency,
    parse_minor,
    parse_non_negative_decimal,
)
from prepaid_ledger.errors import InputError, wire_rule

FLAT_BAND: Final = "flat"
#: Highest price accepted, in major units per kWh or m3: with it, a reading would have to
#: report more than 10**8 units of consumption at once before its charge exceeds what one
#: posting may hold (``journal.MAX_AMOUNT_MINOR``, 10**15 minor units, 3-decimal currencies).
MAX_PRICE: Final = Decimal(10_000)
#: Finest price step accepted (10 decimals of a major unit per kWh or m3); keeps exact
#: amounts short enough for any storage.
MAX_PRICE_DECIMALS: Final = 10
_MIDNIGHT: Final = time(0, 0)
_WEEKEND: Final = frozenset({5, 6})  # Saturday, Sunday
_COMMON_KEYS: Final = frozenset(
    {"name", "currency", "unit", "kind", "standing_charge_minor_per_day"}
)
_KIND_KEYS: Final[Mapping[str, frozenset[str]]] = {
    "flat": frozenset({"price"}),
    "tou": frozenset({"segments", "weekend_segments"}),
    "tiered": frozenset({"period", "bands"}),
}
_INTERPOLATION: Final = Context(prec=60)


@dataclass(frozen=True, slots=True)
class Segment:
    """A time-of-use segment: from ``start`` (local) until the next segment's start."""

    start: time
    price: Decimal
    band: str


@dataclass(frozen=True, slots=True)
class Band:
    """A tier: consumption in the period up to ``up_to`` (None: unlimited) costs ``price``."""

    up_to: Decimal | None
    price: Decimal
    band: str


@dataclass(frozen=True, slots=True)
class FlatTariff:
    """One price for all consumption."""

    name: str
    currency: str
    unit: Unit
    standing_charge_minor_per_day: int
    price: Decimal

    @property
    def kind(self) -> Literal["flat"]:
        """Return the tariff kind as used in JSON."""
        return "flat"


@dataclass(frozen=True, slots=True)
class TouTariff:
    """Time-of-use: a daily schedule of segments, optionally a different one at weekends."""

    name: str
    currency: str
    unit: Unit
    standing_charge_minor_per_day: int
    segments: tuple[Segment, ...]
    weekend_segments: tuple[Segment, ...] | None = None

    @property
    def kind(self) -> Literal["tou"]:
        """Return the tariff kind as used in JSON."""
        return "tou"

    def schedule_for(self, day: date) -> tuple[Segment, ...]:
        """Return the segments that apply on a local date (weekend schedule on Sat/Sun)."""
        if self.weekend_segments is not None and day.weekday() in _WEEKEND:
            return self.weekend_segments
        return self.segments


@dataclass(frozen=True, slots=True)
class TieredTariff:
    """Inclining (or declining) blocks of consumption counted per local month or year."""

    name: str
    currency: str
    unit: Unit
    standing_charge_minor_per_day: int
    period: Period
    bands: tuple[Band, ...]

    @property
    def kind(self) -> Literal["tiered"]:
        """Return the tariff kind as used in JSON."""
        return "tiered"


type Tariff = FlatTariff | TouTariff | TieredTariff


@dataclass(frozen=True, slots=True)
class ChargePart:
    """Consumption in one band (and tier period) with its exact cost in major units."""

    band: str
    period: str | None
    start: datetime
    end: datetime
    quantity: Decimal
    amount: Decimal
    price: Decimal


# ---------------------------------------------------------------------------------------------
# Parsing and serialising


def _fail(field: str, message: str, code: str = "invalid_tariff") -> InputError:
    return InputError(code, f"{field} {message}")


# The shape rules are the contract's (the same ones the request model applies); stored
# definitions are read through them too.


def _text(value: object, field: str, max_chars: int) -> str:
    with wire_rule(field):
        return check_tariff_text(value, max_chars)


def _parse_hhmm(value: object, field: str) -> time:
    with wire_rule(field):
        return time.fromisoformat(check_hhmm(value))


def _list(value: object, field: str, max_items: int) -> Sequence[object]:
    with wire_rule(field):
        return check_list_size(list(value) if isinstance(value, tuple) else value, max_items)


def _mapping(value: object, field: str, allowed: Collection[str]) -> Mapping[str, object]:
    if not isinstance(value, Mapping):
        raise _fail(field, "must be an object")
    with wire_rule(field):
        check_object(value, allowed, ())
    return value


def _price(value: object, field: str) -> Decimal:
    price = parse_non_negative_decimal(value, field)
    if price > MAX_PRICE:
        raise _fail(field, f"must be at most {MAX_PRICE} (major units per unit); got {value!r}")
    exponent = price.as_tuple().exponent
    if isinstance(exponent, int) and -exponent > MAX_PRICE_DECIMALS:
        raise _fail(field, f"may have at most {MAX_PRICE_DECIMALS} decimals; got {value!r}")
    return price


def _parse_segments(value: object, field: str, default_prefix: str) -> tuple[Segment, ...]:
    segments: list[Segment] = []
    for index, item in enumerate(_list(value, field, MAX_SEGMENTS)):
        where = f"{field}[{index}]"
        entry = _mapping(item, where, {"start", "price", "band"})
        if "start" not in entry or "price" not in entry:
            raise _fail(where, "needs 'start' and 'price'")
        start = _parse_hhmm(entry["start"], f"{where}.start")
        price = _price(entry["price"], f"{where}.price")
        band_value = entry.get("band")
        band = (
            f"{default_prefix}{start:%H:%M}"
            if band_value is None
            else _text(band_value, f"{where}.band", MAX_BAND_NAME_CHARS)
        )
        if segments and start <= segments[-1].start:
            raise _fail(f"{where}.start", "must be later than the previous segment's start")
        if not segments and start != _MIDNIGHT:
            raise _fail(f"{where}.start", 'must be "00:00" (the first segment starts the day)')
        segments.append(Segment(start=start, price=price, band=band))
    return tuple(segments)


def _parse_bands(value: object, field: str) -> tuple[Band, ...]:
    items = _list(value, field, MAX_BANDS)
    bands: list[Band] = []
    for index, item in enumerate(items):
        where = f"{field}[{index}]"
        entry = _mapping(item, where, {"up_to", "price", "band"})
        if "up_to" not in entry or "price" not in entry:
            raise _fail(where, "needs 'up_to' and 'price'")
        last = index == len(items) - 1
        raw_up_to = entry["up_to"]
        up_to: Decimal | None
        if raw_up_to is None:
            if not last:
                raise _fail(f"{where}.up_to", "may be null only in the last band")
            up_to = None
        else:
            if last:
                raise _fail(f"{where}.up_to", "must be null in the last band (no upper limit)")
            up_to = parse_non_negative_decimal(raw_up_to, f"{where}.up_to")
            previous = bands[-1].up_to if bands else Decimal(0)
            if previous is not None and up_to <= previous:
                raise _fail(f"{where}.up_to", "must be greater than the previous band's limit")
        price = _price(entry["price"], f"{where}.price")
        band_value = entry.get("band")
        band = (
            f"tier{index + 1}"
            if band_value is None
            else _text(band_value, f"{where}.band", MAX_BAND_NAME_CHARS)
        )
        bands.append(Band(up_to=up_to, price=price, band=band))
    return tuple(bands)


def parse_tariff(payload: Mapping[str, object], *, ignore: Collection[str] = ()) -> Tariff:
    """Validate a ``POST /api/v1/tariffs`` body and return the tariff; InputError on bad fields.

    Keys listed in ``ignore`` (such as ``"id"``) are skipped; any other unknown key is an
    error, so a typo like ``"segment"`` never silently drops a schedule.
    """
    if not isinstance(payload, Mapping):
        raise _fail("tariff", "must be a JSON object")
    kind = payload.get("kind")
    if not isinstance(kind, str) or kind not in _KIND_KEYS:
        raise _fail("kind", f"must be one of 'flat', 'tou', 'tiered'; got {kind!r}")
    allowed = _COMMON_KEYS | _KIND_KEYS[str(kind)] | set(ignore)
    _mapping(payload, "tariff", allowed)
    missing = sorted(
        key for key in _COMMON_KEYS - {"standing_charge_minor_per_day"} if key not in payload
    )
    if missing:
        raise _fail("tariff", f"is missing field(s) {', '.join(missing)}")
    name = _text(payload["name"], "name", MAX_NAME_CHARS)
    currency = parse_currency(payload["currency"])
    unit = payload["unit"]
    if unit not in UNITS:
        raise _fail("unit", f"must be 'kWh' or 'm3'; got {unit!r}")
    standing = parse_minor(
        payload.get("standing_charge_minor_per_day", 0), "standing_charge_minor_per_day"
    )
    checked_unit: Unit = "kWh" if unit == "kWh" else "m3"
    if kind == "flat":
        if "price" not in payload:
            raise _fail("tariff", "of kind 'flat' needs 'price'")
        return FlatTariff(
            name=name,
            currency=currency,
            unit=checked_unit,
            standing_charge_minor_per_day=standing,
            price=_price(payload["price"], "price"),
        )
    if kind == "tou":
        if "segments" not in payload:
            raise _fail("tariff", "of kind 'tou' needs 'segments'")
        weekend = payload.get("weekend_segments")
        return TouTariff(
            name=name,
            currency=currency,
            unit=checked_unit,
            standing_charge_minor_per_day=standing,
            segments=_parse_segments(payload["segments"], "segments", ""),
            weekend_segments=None
            if weekend is None
            else _parse_segments(weekend, "weekend_segments", "weekend "),
        )
    period = payload.get("period")
    if period not in PERIODS:
        raise _fail("period", f"must be 'month' or 'year'; got {period!r}")
    if "bands" not in payload:
        raise _fail("tariff", "of kind 'tiered' needs 'bands'")
    return TieredTariff(
        name=name,
        currency=currency,
        unit=checked_unit,
        standing_charge_minor_per_day=standing,
        period="month" if period == "month" else "year",
        bands=_parse_bands(payload["bands"], "bands"),
    )


def _segments_json(segments: Iterable[Segment]) -> list[dict[str, object]]:
    return [
        {"start": f"{s.start:%H:%M}", "price": format_decimal(s.price), "band": s.band}
        for s in segments
    ]


def tariff_to_json(tariff: Tariff) -> dict[str, object]:
    """Return the JSON form of a tariff; ``parse_tariff`` accepts it back unchanged."""
    body: dict[str, object] = {
        "name": tariff.name,
        "currency": tariff.currency,
        "unit": tariff.unit,
        "kind": tariff.kind,
        "standing_charge_minor_per_day": tariff.standing_charge_minor_per_day,
    }
    match tariff:
        case FlatTariff():
            body["price"] = format_decimal(tariff.price)
        case TouTariff():
            body["segments"] = _segments_json(tariff.segments)
            body["weekend_segments"] = (
                None if tariff.weekend_segments is None else _segments_json(tariff.weekend_segments)
            )
        case TieredTariff():
            body["period"] = tariff.period
            body["bands"] = [
                {
                    "up_to": None if b.up_to is None else format_decimal(b.up_to),
                    "price": format_decimal(b.price),
                    "band": b.band,
                }
                for b in tariff.bands
            ]
    return body


# ---------------------------------------------------------------------------------------------
# Pricing


def period_key(period: Period, local: datetime | date) -> str:
    """Return the tier period a local date belongs to ("2026-11" or "2026")."""
    return f"{local.year:04d}-{local.month:02d}" if period == "month" else f"{local.year:04d}"


def _period_starts(period: Period) -> Callable[[date], Iterable[time]]:
    def boundaries(day: date) -> tuple[time, ...]:
        first = day.day == 1 and (period == "month" or day.month == 1)
        return (_MIDNIGHT,) if first else ()

    return boundaries


def _check_interval(start: datetime, end: datetime, quantity: Decimal) -> None:
    require_aware(start, "start")
    require_aware(end, "end")
    if end < start:
        raise InputError("invalid_interval", "an interval must not end before it starts")
    if not isinstance(quantity, Decimal) or not quantity.is_finite() or quantity < 0:
        raise InputError("negative_quantity", "quantity must be a finite decimal >= 0")


def _period_pieces(
    tariff: TieredTariff, start: datetime, end: datetime, tz: tzinfo
) -> list[tuple[datetime, datetime, str]]:
    return local_pieces(
        start,
        end,
        tz,
        _period_starts(tariff.period),
        lambda local: period_key(tariff.period, local),
    )


def period_keys(tariff: Tariff, start: datetime, end: datetime, tz: tzinfo) -> list[str]:
    """Return the tier periods an interval touches, oldest first (non-tiered tariffs: [])."""
    if not isinstance(tariff, TieredTariff):
        return []
    _check_interval(start, end, Decimal(0))
    return [key for _, _, key in _period_pieces(tariff, start, end, tz)]


def _part(
    band: str,
    period: str | None,
    *,
    start: datetime,
    end: datetime,
    quantity: Decimal,
    price: Decimal,
) -> ChargePart:
    amount = EXACT.multiply(quantity, price)
    return ChargePart(band, period, start, end, quantity, amount, price)


def _time_at(start: datetime, end: datetime, done: Decimal, total: Decimal) -> datetime:
    """Return when ``done`` of ``total`` was used, assuming a steady rate over [start, end]."""
    if total == 0:
        return start
    with localcontext(_INTERPOLATION):
        offset = (Decimal(microseconds(end - start)) * done / total).to_integral_value(
            rounding=ROUND_FLOOR
        )
    return start + timedelta(microseconds=int(offset))


def _price_tiered_piece(
    tariff: TieredTariff,
    key: str,
    *,
    start: datetime,
    end: datetime,
    quantity: Decimal,
    used: Decimal,
) -> list[ChargePart]:
    parts: list[ChargePart] = []
    position = used
    done = Decimal(0)
    with localcontext(EXACT):
        for band in tariff.bands:
            if band.up_to is not None and position >= band.up_to:
                continue
            room = None if band.up_to is None else band.up_to - position
            take = quantity - done if room is None else min(quantity - done, room)
            if take > 0 or not parts:
                parts.append(
                    _part(
                        band.band,
                        key,
                        start=_time_at(start, end, done, quantity),
                        end=end
                        if done + take == quantity
                        else _time_at(start, end, done + take, quantity),
                        quantity=take,
                        price=band.price,
                    )
                )
            position += take
            done += take
            if done == quantity:
                break
    return parts


def price_consumption(  # noqa: PLR0917 - positional order fixed by the ledger contract
    tariff: Tariff,
    start: datetime,
    end: datetime,
    quantity: Decimal,
    tz: tzinfo,
    used_in_period: Mapping[str, Decimal] | None = None,
) -> list[ChargePart]:
    """Price ``quantity`` consumed steadily over [start, end]; parts sum exactly to it.

    Time-of-use intervals split at local segment boundaries in proportion to time; tiered
    intervals split at period boundaries (in proportion to time) and then at band limits,
    counting ``used_in_period[period]`` as already consumed in that period before ``start``.
    Amounts are exact (``quantity * price``), never rounded.
    """
    _check_interval(start, end, quantity)
    match tariff:
        case FlatTariff():
            return [
                _part(FLAT_BAND, None, start=start, end=end, quantity=quantity, price=tariff.price)
            ]
        case TouTariff():
            pieces = _tou_pieces(tariff, start, end, tz)
            shares = apportion(quantity, [microseconds(high - low) for low, high, _ in pieces])
            return [
                _part(band, None, start=low, end=high, quantity=share, price=price)
                for (low, high, (band, price)), share in zip(pieces, shares, strict=True)
            ]
        case TieredTariff():
            used = used_in_period or {}
            periods = _period_pieces(tariff, start, end, tz)
            shares = apportion(quantity, [microseconds(high - low) for low, high, _ in periods])
            parts: list[ChargePart] = []
            for (low, high, key), share in zip(periods, shares, strict=True):
                before = used.get(key, Decimal(0))
                if not isinstance(before, Decimal) or not before.is_finite() or before < 0:
                    raise InputError(
                        "invalid_usage", f"used_in_period[{key!r}] must be a decimal >= 0"
                    )
                parts.extend(
                    _price_tiered_piece(
                        tariff, key, start=low, end=high, quantity=share, used=before
                    )
                )
            return parts


def single_price(
    tariff: Tariff, start: datetime, end: datetime, tz: tzinfo
) -> tuple[str, Decimal] | None:
    """Return the one (band, price) all of [start, end] is billed at; None if it is split.

    Nearly every reading lies within one segment of one local day: no cut of that day or its
    neighbours (local_pieces' candidates) falls inside it, so it is one piece, classified at
    its middle as local_pieces would. A backlog of minute readings saves most of its pricing.
    A tiered price depends on what the period used before: always None.
    """
    match tariff:
        case FlatTariff():
            return (FLAT_BAND, tariff.price)
        case TouTariff():
            low, high = start.astimezone(UTC), end.astimezone(UTC)  # UTC: no zone lookups
            run = _LAST_RUN.get((id(tariff), tz))
            if run is not None and run[0] is tariff and run[1] <= low and high < run[2]:
                return run[3]
            day = low.astimezone(tz).date()
            if high.astimezone(tz).date() != day:
                return None
            cuts = _tou_cuts_around(tariff, tz, day)
            following = bisect_right(cuts, low)
            if following < len(cuts) and cuts[following] < high:
                return None
            price = _tou_price_at(tariff, (low + (high - low) / 2).astimezone(tz))
            if 0 < following < len(cuts):
                _remember_run(tariff, tz, cuts[following - 1], cuts[following], price)
            return price
        case TieredTariff():
            return None


def _tou_price_at(tariff: TouTariff, local: datetime) -> tuple[str, Decimal]:
    """Return the (band, price) of the segment a local time falls in."""
    schedule = tariff.schedule_for(local.date())
    index = bisect_right([s.start for s in schedule], local.time().replace(tzinfo=None))
    found = schedule[index - 1]
    # Neighbouring segments that bill identically merge into one part.
    return (found.band, found.price)


def _tou_pieces(
    tariff: TouTariff, start: datetime, end: datetime, tz: tzinfo
) -> list[tuple[datetime, datetime, tuple[str, Decimal]]]:
    """Split an interval into runs billed at one (band, price), in local time."""

    def boundaries(day: date) -> Iterable[time]:
        return (segment.start for segment in tariff.schedule_for(day))

    one = single_price(tariff, start, end, tz)
    if one is not None:
        return [(start.astimezone(UTC), end.astimezone(UTC), one)]
    return local_pieces(start, end, tz, boundaries, lambda local: _tou_price_at(tariff, local))


#: (id of a tariff, zone, day) -> (that tariff, its cuts): keyed by identity, since hashing and
#: comparing a whole tariff costs more than the lookup saves; the tariff is held, so its id
#: cannot be another's while it is here.
_CUTS_AROUND: dict[tuple[int, tzinfo, date], tuple[TouTariff, tuple[datetime, ...]]] = {}
_CUTS_KEPT: Final = 4096


#: (id of a tariff, zone) -> (that tariff, from, until, (band, price)): the last run between two
#: neighbouring cuts that single_price priced. Local midnight is a cut (every schedule starts at
#: 00:00), as is every offset change, so all of [from, until) is one local day at one price: the
#: next minute of a backlog in it is two comparisons instead of four zone conversions.
#: Kept like _CUTS_AROUND (by identity, cleared at _CUTS_KEPT).
_LAST_RUN: dict[tuple[int, tzinfo], tuple[TouTariff, datetime, datetime, tuple[str, Decimal]]] = {}


def _remember_run(
    tariff: TouTariff, tz: tzinfo, start: datetime, end: datetime, price: tuple[str, Decimal]
) -> None:
    if len(_LAST_RUN) >= _CUTS_KEPT:
        _LAST_RUN.clear()
    _LAST_RUN[id(tariff), tz] = (tariff, start, end, price)


def _tou_cuts_around(tariff: TouTariff, tz: tzinfo, day: date) -> tuple[datetime, ...]:
    """Return, in order, every instant near a local day where a time-of-use price may change.

    The segment starts of the day before, the day and the day after (as ``local_pieces``
    considers them) and the zone's offset changes over a wider span: a superset of the cuts
    of any interval within the day.
    """
    key = (id(tariff), tz, day)
    found = _CUTS_AROUND.get(key)
    if found is not None and found[0] is tariff:
        return found[1]
    if len(_CUTS_AROUND) >= _CUTS_KEPT:
        _CUTS_AROUND.clear()
    cuts: set[datetime] = set()
    for near in (day - timedelta(days=1), day, day + timedelta(days=1)):
        cuts.update(day_cuts(near, tuple(s.start for s in tariff.schedule_for(near)), tz))
    around = datetime.combine(day, time(), tzinfo=UTC)
    cuts.update(offset_transitions(around - timedelta(days=2), around + timedelta(days=3), tz))
    ordered = tuple(sorted(cuts))
    _CUTS_AROUND[key] = (tariff, ordered)
    return ordered


#: The most days of standing charge one reading bills. A reading charges at most this many
#: days of consumption too (``readings.MAX_CHARGE_GAP``), so a request's work never grows with
#: a span the sender picks; older unbilled days (after a re-based gap) are left to a person.
MAX_STANDING_DAYS: Final = 366


def standing_charge_days(last_charged: date | None, now: datetime, tz: tzinfo) -> list[date]:
    """Return the local days whose daily standing charge is due by ``now``, oldest first.

    A day is charged once, at its start (in advance), so today is due as soon as it begins.
    With nothing charged yet, only today is due; never more than ``MAX_STANDING_DAYS``.
    """
    today = require_aware(now, "now").astimezone(tz).date()
    if last_charged is None:
        return [today]
    count = min((today - last_charged).days, MAX_STANDING_DAYS)
    return [today - timedelta(days=back) for back in range(count - 1, -1, -1)]
