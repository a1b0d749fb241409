"""Days left from the first hours: project the consumption so far over the tariff's hours.

Before an account has a complete local day of history (``forecast.days_left`` averages those),
the days left are estimated from at least ``MIN_SPAN`` of consumption. Each meter's hourly
consumption ahead is the larger of two readings of what was seen:

* the average rate observed, held steady, and
* the observed consumption scaled to a whole day with a typical household's daily load shape
  (``HOURLY_SHAPE``, relative weights per local hour) and spread over the day by that shape,

so an hour of quiet night does not pass for the whole day, and a quiet day does not hide the
evening peak. With less than a day of data, that consumption is raised by a safety margin
(``safety_margin``: +50 % with no data, shrinking to nothing at a full day), because an
estimate that promises too much is the one that cuts a household off unwarned. The projected
consumption is priced hour by hour with the charging engine itself (``price_consumption`` with
the tariff version in force at that hour: time-of-use bands, tiers), plus each meter's daily
standing charge at every local midnight, until the available credit is spent.

Pure functions; ``services/meter_status.py`` feeds them the readings and the tariffs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from decimal import ROUND_FLOOR, Decimal, localcontext
from typing import Final

from prepaid_meter_contract.vocabulary import DaysLeftConfidence

from prepaid_ledger.domain.apportion import microseconds
from prepaid_ledger.domain.charging import Versions, tariff_at
from prepaid_ledger.domain.forecast import days_left
from prepaid_ledger.domain.money import EXACT, from_minor
from prepaid_ledger.domain.tariffs import period_keys, price_consumption

#: The least consumption history an estimate is made from.
MIN_SPAN: Final = timedelta(hours=1)
#: Under this much data an estimate is ``low`` confidence.
LOW_CONFIDENCE_SPAN: Final = timedelta(hours=6)
#: Complete days averaged from which the forecast is ``high`` confidence.
HIGH_CONFIDENCE_DAYS: Final = 3
#: The safety margin with no data at all; it shrinks linearly to 0 at ``FULL_DAY`` of data.
MAX_MARGIN: Final = Decimal("0.5")
FULL_DAY: Final = timedelta(days=1)
#: Days projected hour by hour; beyond, the projected week's average daily cost continues.
SIMULATED_DAYS: Final = 7
#: A typical household's consumption per local hour (0-23) relative to its daily mean: a
#: smoothed shape of the BDEW H0 standard load profile (low at night, a morning rise, a midday
#: plateau, the evening peak). Used only to scale part of a day to a whole one.
HOURLY_SHAPE: Final = tuple(
    Decimal(weight)
    for weight in (
        "0.55", "0.45", "0.40", "0.38", "0.38", "0.42", "0.60", "0.90",
        "1.05", "1.00", "1.00", "1.10", "1.25", "1.20", "1.05", "0.95",
        "0.95", "1.10", "1.45", "1.60", "1.55", "1.40", "1.15", "0.80",
    )
)  # fmt: skip
_SHAPE_TOTAL: Final = sum(HOURLY_SHAPE, Decimal(0))
_HOUR: Final = timedelta(hours=1)
_HOUR_US: Final = Decimal(microseconds(_HOUR))
_QUANTUM: Final = Decimal("1e-9")
_TENTH: Final = Decimal("0.1")


@dataclass(frozen=True, slots=True)
class Load:
    """What one meter consumed from ``start`` to ``end``, and how it is priced from now on."""

    versions: Versions
    start: datetime
    end: datetime
    quantity: Decimal
    #: Tier usage so far per period (tiered tariffs), as the charging state keeps it.
    used_in_period: Mapping[str, Decimal] = field(default_factory=dict)

    @property
    def span(self) -> timedelta:
        """How long the consumption was observed."""
        return self.end - self.start


@dataclass(frozen=True, slots=True)
class Forecast:
    """Days the credit lasts (rounded down to 0.1) and how far that can be trusted."""

    days: Decimal | None
    confidence: DaysLeftConfidence | None


NO_FORECAST: Final = Forecast(None, None)


def history_confidence(complete_days: int) -> DaysLeftConfidence:
    """Confidence of an average of complete local days: high from 3 days, else medium."""
    if complete_days >= HIGH_CONFIDENCE_DAYS:
        return DaysLeftConfidence.HIGH
    return DaysLeftConfidence.MEDIUM


def estimate_confidence(span: timedelta) -> DaysLeftConfidence:
    """Confidence of a projection from SPAN of data: low under 6 hours, else medium."""
    return DaysLeftConfidence.LOW if span < LOW_CONFIDENCE_SPAN else DaysLeftConfidence.MEDIUM


def from_history(available_minor: int, daily_cost_minor: Sequence[int]) -> Forecast:
    """Return the average of complete local days (``forecast.days_left``), confidence too."""
    days = days_left(available_minor, daily_cost_minor)
    if days is None:
        return NO_FORECAST
    return Forecast(days, history_confidence(len(daily_cost_minor)))


def safety_margin(span: timedelta) -> Decimal:
    """Return the factor raising projected consumption after SPAN of data (1.5 down to 1)."""
    if span >= FULL_DAY:
        return Decimal(1)
    missing = Decimal(microseconds(FULL_DAY - max(span, timedelta(0))))
    return 1 + MAX_MARGIN * missing / Decimal(microseconds(FULL_DAY))


def _hours(span: timedelta) -> Decimal:
    return Decimal(microseconds(span)) / _HOUR_US


def _next_hour(at: datetime) -> datetime:
    """Return the next whole hour after AT (UTC hours: local ones in whole-hour zones)."""
    return at.replace(minute=0, second=0, microsecond=0) + _HOUR


def _shape_at(at: datetime, tz: tzinfo) -> Decimal:
    return HOURLY_SHAPE[at.astimezone(tz).hour]


def _shape_share(start: datetime, end: datetime, tz: tzinfo) -> Decimal:
    """Return the typical share of a day's consumption in [start, end] (local hours)."""
    share = Decimal(0)
    low = start
    while low < end:
        high = min(_next_hour(low), end)
        share += _shape_at(low + (high - low) / 2, tz) * _hours(high - low)
        low = high
    return share / _SHAPE_TOTAL


@dataclass(frozen=True, slots=True)
class _Projection:
    """One meter's projected consumption per hour at each local hour of the day."""

    load: Load
    per_hour: tuple[Decimal, ...]


def _project(load: Load, tz: tzinfo) -> _Projection:
    hours = _hours(load.span)
    steady = load.quantity / hours
    share = _shape_share(load.start, load.end, tz)
    daily = load.quantity / share if share > 0 else steady * 24
    margin = safety_margin(load.span)
    per_hour = tuple(
        (margin * max(steady, daily * weight / _SHAPE_TOTAL)).quantize(_QUANTUM)
        for weight in HOURLY_SHAPE
    )
    return _Projection(load, per_hour)


def _floor_tenth(days: Decimal) -> Decimal:
    return max(Decimal(0), days).quantize(_TENTH, rounding=ROUND_FLOOR)


def estimate_days_left(
    loads: Sequence[Load],
    available_minor: int,
    currency: str,
    tz: tzinfo,
    now: datetime,
) -> Forecast:
    """Project the consumption seen so far until the available credit is spent.

    None (no forecast) when no meter has ``MIN_SPAN`` of data or nothing would cost anything;
    0 when nothing is available. The days are rounded down to 0.1 so the estimate never
    promises more than the credit buys; the confidence follows the longest span of data.
    """
    usable = [load for load in loads if load.span >= MIN_SPAN and load.quantity >= 0]
    if not usable:
        return NO_FORECAST
    confidence = estimate_confidence(max(load.span for load in usable))
    if available_minor <= 0:
        return Forecast(Decimal(0), confidence)
    with localcontext() as context:
        context.prec = 34
        projections = [_project(load, tz) for load in usable]
        runout = _run_out(projections, from_minor(available_minor, currency), currency, tz, now)
    if runout is None:
        return NO_FORECAST
    return Forecast(_floor_tenth(runout), confidence)


def _run_out(
    projections: Sequence[_Projection],
    available: Decimal,
    currency: str,
    tz: tzinfo,
    now: datetime,
) -> Decimal | None:
    """Days from NOW until AVAILABLE (major units) is spent; None if nothing costs anything."""
    usage = [dict(p.load.used_in_period) for p in projections]
    horizon = now + timedelta(days=SIMULATED_DAYS)
    remaining = available
    low = now
    while low < horizon:
        high = min(_next_hour(low), horizon)
        if low > now and low.astimezone(tz).date() != (low - _HOUR).astimezone(tz).date():
            standing = sum(
                (
                    from_minor(
                        tariff_at(p.load.versions, low).standing_charge_minor_per_day, currency
                    )
                    for p in projections
                ),
                Decimal(0),
            )
            if standing >= remaining:
                return _hours(low - now) / 24
            remaining -= standing
        cost = Decimal(0)
        for projection, used in zip(projections, usage, strict=True):
            cost += _hour_cost(projection, used, low, high, tz)
        if cost >= remaining and cost > 0:
            spent_at = _hours(high - low) * remaining / cost
            return (_hours(low - now) + spent_at) / 24
        remaining -= cost
        low = high
    spent = available - remaining
    if spent <= 0:
        return None
    return SIMULATED_DAYS + remaining * SIMULATED_DAYS / spent


def _hour_cost(
    projection: _Projection, used: dict[str, Decimal], low: datetime, high: datetime, tz: tzinfo
) -> Decimal:
    """Price one step of projected consumption with the tariff in force (exact major units)."""
    quantity = (projection.per_hour[low.astimezone(tz).hour] * _hours(high - low)).quantize(
        _QUANTUM
    )
    tariff = tariff_at(projection.load.versions, low)
    before = {key: used.get(key, Decimal(0)) for key in period_keys(tariff, low, high, tz)}
    cost = Decimal(0)
    for part in price_consumption(tariff, low, high, quantity, tz, before):
        if part.period is not None:
            used[part.period] = EXACT.add(used.get(part.period, Decimal(0)), part.quantity)
        cost += part.amount
    return cost
