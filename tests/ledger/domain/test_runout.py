"""Days left from the first hours (``domain.runout``), against numbers worked out by hand.

The worked examples use the estimator's documented rule (docs/ledger-domain.md, "Days left"):
per local hour, the larger of the steady observed rate and the observed consumption spread by
the typical daily shape, raised by the safety margin 1 + 0.5 x (24 h - span) / 24 h, priced
with the tariff, plus the standing charge at every local midnight. The sweep at the end
compares the estimate with an independent model of a household (tests/ledger/runout_model.py)
for every hour of the day the data could start at.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from prepaid_ledger.domain.runout import (
    HOURLY_SHAPE,
    Forecast,
    Load,
    estimate_confidence,
    estimate_days_left,
    from_history,
    history_confidence,
    safety_margin,
)
from prepaid_ledger.domain.tariffs import parse_tariff
from prepaid_meter_contract.vocabulary import DaysLeftConfidence

from tests.ledger import runout_model
from tests.ledger.runout_model import Household, days_between

BEGINNING = datetime(1970, 1, 1, tzinfo=UTC)
DAY = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday, midnight UTC


def flat(price: str, standing: int = 0) -> Load:
    """A load template's versions: one flat tariff."""
    tariff = parse_tariff(
        {
            "name": "Flat",
            "currency": "EUR",
            "unit": "kWh",
            "kind": "flat",
            "price": price,
            "standing_charge_minor_per_day": standing,
        }
    )
    return Load(((BEGINNING, tariff),), DAY, DAY, Decimal(0))


def tou(standing: int) -> Load:
    tariff = parse_tariff(
        {
            "name": "Night/day",
            "currency": "EUR",
            "unit": "kWh",
            "kind": "tou",
            "segments": [
                {"start": "00:00", "price": "0.10", "band": "night"},
                {"start": "07:00", "price": "0.30", "band": "day"},
            ],
            "standing_charge_minor_per_day": standing,
        }
    )
    return Load(((BEGINNING, tariff),), DAY, DAY, Decimal(0))


def observed(template: Load, start: datetime, end: datetime, quantity: str) -> Load:
    return Load(template.versions, start, end, Decimal(quantity))


def test_confidence_rule() -> None:
    """Under 6 h of data: low; 6 h up to a day or 1-2 complete days: medium; 3+ days: high."""
    assert estimate_confidence(timedelta(hours=1)) == DaysLeftConfidence.LOW
    assert estimate_confidence(timedelta(hours=5, minutes=59)) == DaysLeftConfidence.LOW
    assert estimate_confidence(timedelta(hours=6)) == DaysLeftConfidence.MEDIUM
    assert estimate_confidence(timedelta(hours=30)) == DaysLeftConfidence.MEDIUM
    assert history_confidence(1) == DaysLeftConfidence.MEDIUM
    assert history_confidence(2) == DaysLeftConfidence.MEDIUM
    assert history_confidence(3) == DaysLeftConfidence.HIGH
    assert history_confidence(7) == DaysLeftConfidence.HIGH


def test_complete_days_keep_the_average_and_say_their_confidence() -> None:
    """3.00 a day over 3 days, 21.00 left: 7.0 days, high; one day: medium; no cost: none."""
    assert from_history(2100, [300, 250, 350]) == Forecast(Decimal("7.0"), DaysLeftConfidence.HIGH)
    assert from_history(2100, [300]) == Forecast(Decimal("7.0"), DaysLeftConfidence.MEDIUM)
    assert from_history(2100, [0, 0]) == Forecast(None, None)
    assert from_history(2100, []) == Forecast(None, None)


def test_safety_margin_shrinks_to_nothing_at_a_full_day() -> None:
    """1 + 0.5 x (24 - h) / 24: 1.5 at 0 h, 1.25 at 12 h, 71/48 at 1 h, 1 from 24 h."""
    assert safety_margin(timedelta(0)) == Decimal("1.5")
    assert safety_margin(timedelta(hours=12)) == Decimal("1.25")
    assert abs(safety_margin(timedelta(hours=1)) - Decimal(71) / 48) < Decimal("1e-20")
    assert safety_margin(timedelta(days=1)) == 1
    assert safety_margin(timedelta(days=2)) == 1


def test_under_an_hour_of_data_gives_no_estimate() -> None:
    load = observed(flat("0.30"), DAY, DAY + timedelta(minutes=59), "1")
    assert estimate_days_left([load], 1000, "EUR", UTC, DAY + timedelta(hours=1)) == Forecast(
        None, None
    )


def test_nothing_available_is_zero_days() -> None:
    load = observed(flat("0.30"), DAY, DAY + timedelta(hours=2), "1")
    now = DAY + timedelta(hours=2)
    assert estimate_days_left([load], 0, "EUR", UTC, now) == Forecast(
        Decimal(0), DaysLeftConfidence.LOW
    )


def test_one_peak_hour_flat_tariff_with_standing_charge() -> None:
    """0.48 kWh from 19:00 to 20:00 (the shape's top hour), 1.00 EUR/kWh, 1.00 EUR a day.

    The shape spreads the day from its largest weight, so no hour exceeds the steady rate:
    every hour ahead is 0.48 x 71/48 = 0.71 kWh = 0.71 EUR. From 20:00: 4 h to midnight cost
    2.84, midnight's standing charge 1.00, then 0.71 an hour.
    18.00 EUR: 18.00 - 2.84 - 1.00 = 14.16 lasts 19.94 h more: 23.94 h = 0.997 d -> 0.9
    (without the standing charge it would be 25.35 h -> 1.0).
    18.10 EUR: 14.26 / 0.71 = 20.08 h: 24.08 h = 1.003 d -> 1.0.
    """
    assert HOURLY_SHAPE[19] == max(HOURLY_SHAPE)
    load = observed(flat("1.00", standing=100), DAY.replace(hour=19), DAY.replace(hour=20), "0.48")
    now = DAY.replace(hour=20)
    low = DaysLeftConfidence.LOW
    assert estimate_days_left([load], 1800, "EUR", UTC, now) == Forecast(Decimal("0.9"), low)
    assert estimate_days_left([load], 1810, "EUR", UTC, now) == Forecast(Decimal("1.0"), low)


def test_one_peak_hour_time_of_use() -> None:
    """The same 0.71 kWh an hour, at 0.10 EUR by night (00-07) and 0.30 by day; 0.50 standing.

    Per hour: night 0.071, day 0.213. 5.00 EUR from 20:00: 4 day hours 0.852 -> 4.148;
    standing 0.50 -> 3.648; 7 night hours 0.497 -> 3.151; then 3.151 / 0.213 = 14.79 h.
    4 + 7 + 14.79 = 25.79 h = 1.075 d -> 1.0.
    """
    load = observed(tou(standing=50), DAY.replace(hour=19), DAY.replace(hour=20), "0.48")
    assert estimate_days_left([load], 500, "EUR", UTC, DAY.replace(hour=20)) == Forecast(
        Decimal("1.0"), DaysLeftConfidence.LOW
    )


def test_a_full_day_follows_the_shape_where_it_is_above_the_average() -> None:
    """22.68 kWh over one whole day (the shape's weights sum to 22.68), 1.00 EUR/kWh.

    Margin 1. Steady rate 22.68 / 24 = 0.945 kWh/h; the shape spreads the day as its weights,
    so each hour is max(0.945, weight): hours 0-7 and 23 (weights below 0.945) become 0.945.
    A day costs 9 x 0.945 + (22.68 - 4.08 - 0.80) = 8.505 + 17.80 = 26.305, plus 1.00 standing.
    100.00 EUR from midnight: three days 3 x 26.305 + 3 x 1.00 = 81.915 -> 18.085 left;
    hours 0-7: 7.56 -> 10.525; hours 8-16: 1.05 1.00 1.00 1.10 1.25 1.20 1.05 0.95 0.95 =
    9.55 -> 0.975; hour 17 costs 1.10: 0.886 h. 3 d + 17.886 h = 3.745 d -> 3.7, medium.
    """
    assert sum(HOURLY_SHAPE) == Decimal("22.68")
    load = observed(flat("1.00", standing=100), DAY, DAY + timedelta(days=1), "22.68")
    now = DAY + timedelta(days=1)
    assert estimate_days_left([load], 10000, "EUR", UTC, now) == Forecast(
        Decimal("3.7"), DaysLeftConfidence.MEDIUM
    )


def test_two_meters_add_up() -> None:
    """Two meters each like the peak-hour example: 1.42 EUR an hour, standing 2 x 1.00.

    18.00 EUR from 20:00: 4 h cost 5.68 -> 12.32; standing 2.00 -> 10.32 / 1.42 = 7.27 h.
    11.27 h = 0.47 d -> 0.4.
    """
    load = observed(flat("1.00", standing=100), DAY.replace(hour=19), DAY.replace(hour=20), "0.48")
    assert estimate_days_left([load, load], 1800, "EUR", UTC, DAY.replace(hour=20)) == Forecast(
        Decimal("0.4"), DaysLeftConfidence.LOW
    )


#: After this much data ...: the most the estimate may promise beyond the true run-out, and
#: the most it may fall short of it, for the household model whatever hour the data began.
SWEEP_BOUNDS = {
    timedelta(hours=1): (Decimal("0.40"), Decimal("-0.75")),
    timedelta(hours=6): (Decimal("0.35"), Decimal("-0.60")),
    timedelta(hours=24): (Decimal("0.15"), Decimal("-0.15")),
}


@pytest.mark.parametrize("span", list(SWEEP_BOUNDS))
def test_every_start_hour_stays_inside_the_bound(span: timedelta) -> None:
    """For data starting at each hour of a day, compare with the household model's run-out."""
    body = {"currency": "EUR", "unit": "kWh"} | runout_model.tariff_body()
    tariff = parse_tariff({key: value for key, value in body.items() if value is not None})
    household = Household(UTC, date(2026, 3, 2))
    over, under = SWEEP_BOUNDS[span]
    errors = []
    for hour in range(24):
        start = DAY.replace(hour=hour)
        end = start + span
        quantity = household.readings(start, end)[-1][1]
        available = 4000 - household.cost_so_far_minor(start, end)
        load = Load(((BEGINNING, tariff),), start, end, quantity)
        shown = estimate_days_left([load], available, "EUR", UTC, end).days
        assert shown is not None
        true = days_between(end, household.true_runout(end, available))
        errors.append((hour, (shown - true) / true))
    worst_over = max(error for _, error in errors)
    worst_under = min(error for _, error in errors)
    print(span, [(hour, f"{error:+.2f}") for hour, error in errors])
    assert worst_over <= over, errors
    assert worst_under >= under, errors
