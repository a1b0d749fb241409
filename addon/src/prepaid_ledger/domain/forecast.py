"""What a household sees ahead: the price of the next unit, and how many days credit lasts.

Pure functions; the service feeds them the tariff and the account's charges per local day.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from decimal import ROUND_FLOOR, Decimal

from prepaid_ledger.domain.tariffs import Tariff, price_consumption

#: Complete local days averaged for "days left"; today's partial day never counts.
FORECAST_DAYS = 7
#: A probe small enough to stay inside any band, large enough to be exact in every context.
_PROBE_QUANTITY = Decimal("0.000001")
_PROBE_SPAN = timedelta(seconds=1)


@dataclass(frozen=True, slots=True)
class Rate:
    """The price of the next unit consumed now, and the band it falls in."""

    price: Decimal
    band: str


def current_rate(
    tariff: Tariff, now: datetime, tz: tzinfo, used_in_period: Mapping[str, Decimal]
) -> Rate:
    """Price a tiny consumption starting now with the charging engine itself (one rule set)."""
    part = price_consumption(tariff, now, now + _PROBE_SPAN, _PROBE_QUANTITY, tz, used_in_period)[0]
    return Rate(price=part.price, band=part.band)


def days_left(available_minor: int, daily_cost_minor: Sequence[int]) -> Decimal | None:
    """Days the available credit lasts at the average cost of the given complete days.

    ``None`` without at least one complete day of history or without any cost in it (nothing
    to extrapolate); 0 when nothing is available. Rounded down to a tenth of a day, so the
    forecast never promises more than the credit buys.
    """
    if not daily_cost_minor:
        return None
    spent = sum(daily_cost_minor)
    if spent <= 0:
        return None
    if available_minor <= 0:
        return Decimal(0)
    days = Decimal(available_minor) * len(daily_cost_minor) / Decimal(spent)
    return days.quantize(Decimal("0.1"), rounding=ROUND_FLOOR)
