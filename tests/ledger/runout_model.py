"""An independent model of a household's week of load and of when its credit truly runs out.

Used by the days-left tests as the truth the ledger's forecast is compared with. Nothing here
comes from the ledger's code: the load is a table of kW per local hour, the tariff's prices
are written out again per local hour, and the run-out is found by summing the cost forward,
hour by hour, until the credit is spent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from decimal import Decimal
from typing import Any

#: Average load (kW) in each local hour: quiet night, a morning peak, a mostly empty flat by
#: day with lunch, and the evening peak (cooking, lights, washing).
HOURLY_KW = tuple(
    Decimal(kw)
    for kw in (
        "0.20", "0.20", "0.20", "0.20", "0.20", "0.30", "0.90", "1.40",
        "0.80", "0.35", "0.35", "0.35", "0.70", "0.35", "0.35", "0.35",
        "0.35", "0.90", "1.30", "1.80", "1.50", "1.10", "0.70", "0.35",
    )
)  # fmt: skip
#: How much more or less each day of the replayed week uses (days 5 and 6: a weekend).
DAY_FACTOR = tuple(Decimal(f) for f in ("1.00", "0.92", "1.08", "0.97", "1.05", "1.30", "1.22"))
#: The time-of-use tariff: cheap nights, a dearer evening peak, a daily standing charge.
SEGMENTS = (
    {"start": "00:00", "price": "0.18", "band": "night"},
    {"start": "07:00", "price": "0.32", "band": "day"},
    {"start": "17:00", "price": "0.42", "band": "peak"},
    {"start": "21:00", "price": "0.32", "band": "day"},
)
STANDING_MINOR = 35
_HOUR = timedelta(hours=1)


def price_at_hour(hour: int) -> Decimal:
    """The price (EUR/kWh) in a local hour, written out from SEGMENTS by hand."""
    if hour < 7:
        return Decimal("0.18")
    if 17 <= hour < 21:
        return Decimal("0.42")
    return Decimal("0.32")


def tariff_body() -> dict[str, Any]:
    """The tariff as the ledger's API takes it."""
    return {
        "name": "Day/night/peak",
        "kind": "tou",
        "price": None,
        "segments": list(SEGMENTS),
        "standing_charge_minor_per_day": STANDING_MINOR,
    }


@dataclass(frozen=True)
class Household:
    """The week replayed from local day FIRST_DAY on, in time zone TZ."""

    tz: tzinfo
    first_day: date

    def kwh_in_hour(self, start: datetime) -> Decimal:
        """Consumption (kWh) in the whole local hour beginning at START."""
        local = start.astimezone(self.tz)
        factor = DAY_FACTOR[(local.date() - self.first_day).days % len(DAY_FACTOR)]
        return (HOURLY_KW[local.hour] * factor).quantize(Decimal("0.0001"))

    def cost_of_hour(self, start: datetime) -> Decimal:
        """What the whole hour beginning at START costs (EUR, exact)."""
        return self.kwh_in_hour(start) * price_at_hour(start.astimezone(self.tz).hour)

    def readings(self, start: datetime, end: datetime) -> list[tuple[datetime, Decimal]]:
        """Meter register values at every whole hour from START to END (starting from 0)."""
        values = [(start, Decimal(0))]
        total = Decimal(0)
        at = start
        while at < end:
            total += self.kwh_in_hour(at)
            at += _HOUR
            values.append((at, total))
        return values

    def cost_so_far_minor(self, start: datetime, end: datetime) -> int:
        """Consumption plus standing charges from START to END, in cents (rounded once)."""
        cost = Decimal(0)
        days: set[date] = set()
        at = start
        while at < end:
            cost += self.cost_of_hour(at)
            days.add(at.astimezone(self.tz).date())
            at += _HOUR
        days.add(end.astimezone(self.tz).date())
        consumption = int((cost * 100).quantize(Decimal(1)))
        return consumption + STANDING_MINOR * len(days)

    def true_runout(self, end: datetime, available_minor: int) -> datetime:
        """When AVAILABLE cents run out if the load goes on as the week says, from END on.

        Every local midnight after END charges the day's standing charge first; an hour's
        cost is spread evenly over the hour.
        """
        left = Decimal(available_minor) / 100
        at = end
        for _ in range(24 * 60):
            if at > end and at.astimezone(self.tz).hour == 0:
                standing = Decimal(STANDING_MINOR) / 100
                if standing >= left:
                    return at
                left -= standing
            cost = self.cost_of_hour(at)
            if cost >= left:
                return at + _HOUR * float(left / cost)
            left -= cost
            at += _HOUR
        raise AssertionError("credit lasts longer than the model looks ahead")


def days_between(start: datetime, end: datetime) -> Decimal:
    """END - START in days."""
    return Decimal((end - start).total_seconds()) / Decimal(86400)
