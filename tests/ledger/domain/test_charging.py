"""Charging as a pure function, against worked examples done by hand.

Each expected number is worked out in the comment above it from the tariff's published prices
and the cumulative rule in docs/ledger-domain.md (post the rounded exact running total minus
what was already posted), not by running the code.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from prepaid_ledger.domain.charging import (
    TOTAL_BAND,
    ChargeState,
    Running,
    charge_consumption,
    standing_due,
    tariff_at,
)
from prepaid_ledger.domain.tariffs import parse_tariff

from tests.ledger.domain.test_tariffs import flat, tiered, tou

START = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
BEGINNING = datetime(1970, 1, 1, tzinfo=UTC)


def test_three_small_readings_post_what_one_big_one_does() -> None:
    """0.1 kWh at 0.25 EUR, three times: 0.025 -> 3 ct, 0.050 -> 5 (2 more), 0.075 -> 8 (3)."""
    versions = [(BEGINNING, parse_tariff(flat()))]
    state = ChargeState()
    posted = []
    for hour in range(3):
        charge = charge_consumption(
            versions,
            UTC,
            "EUR",
            state,
            start=START + timedelta(hours=hour),
            end=START + timedelta(hours=hour + 1),
            quantity=Decimal("0.1"),
        )
        posted.append(charge.posted)
        state = charge.state
    assert posted == [3, 2, 3]
    assert state.bands[TOTAL_BAND] == Running(Decimal("0.075"), 8)
    one = charge_consumption(
        versions,
        UTC,
        "EUR",
        ChargeState(),
        start=START,
        end=START + timedelta(hours=3),
        quantity=Decimal("0.3"),
    )
    assert one.posted == sum(posted) == 8


def test_an_interval_across_night_and_day_splits_by_time() -> None:
    """06:00-08:00 UTC (London, GMT in March), 2 kWh: 1 kWh night at 0.10 and 1 kWh day at
    0.30 GBP: 10 p + 30 p = 40 p, two statement lines on the same day."""
    versions = [(BEGINNING, parse_tariff(tou()))]
    charge = charge_consumption(
        versions,
        UTC,
        "GBP",
        ChargeState(),
        start=datetime(2026, 3, 10, 6, tzinfo=UTC),
        end=datetime(2026, 3, 10, 8, tzinfo=UTC),
        quantity=Decimal(2),
    )
    assert charge.posted == 40
    assert {(line.band, line.quantity, line.minor) for line in charge.lines} == {
        ("night", Decimal(1), 10),
        ("day", Decimal(1), 30),
    }
    assert {line.day for line in charge.lines} == {date(2026, 3, 10)}


def test_tier_usage_carries_into_the_next_reading() -> None:
    """Blocks of 50 free, then 2.50 ZAR: 40 kWh cost nothing, the next 20 kWh are 10 free and
    10 at 2.50 = 25.00 ZAR = 2500 cents; the month's usage is 60."""
    versions = [(BEGINNING, parse_tariff(tiered()))]
    first = charge_consumption(
        versions,
        UTC,
        "ZAR",
        ChargeState(),
        start=START,
        end=START + timedelta(hours=1),
        quantity=Decimal(40),
    )
    assert first.posted == 0
    second = charge_consumption(
        versions,
        UTC,
        "ZAR",
        first.state,
        start=START + timedelta(hours=1),
        end=START + timedelta(hours=2),
        quantity=Decimal(20),
    )
    assert second.posted == 2500
    assert list(second.state.usage.values()) == [Decimal(60)]


def test_the_state_given_is_not_changed() -> None:
    versions = [(BEGINNING, parse_tariff(flat()))]
    state = ChargeState({TOTAL_BAND: Running(Decimal("1.004"), 100)}, {})
    charge_consumption(
        versions,
        UTC,
        "EUR",
        state,
        start=START,
        end=START + timedelta(hours=1),
        quantity=Decimal(4),
    )
    assert state.bands == {TOTAL_BAND: Running(Decimal("1.004"), 100)}


def test_a_price_change_inside_an_interval() -> None:
    """0.25 until 13:00, 0.50 after; 2 kWh over 12:00-14:00: 1 x 0.25 + 1 x 0.50 = 75 ct."""
    versions = [
        (BEGINNING, parse_tariff(flat())),
        (START + timedelta(hours=1), parse_tariff(flat(price="0.50"))),
    ]
    charge = charge_consumption(
        versions,
        UTC,
        "EUR",
        ChargeState(),
        start=START,
        end=START + timedelta(hours=2),
        quantity=Decimal(2),
    )
    assert charge.posted == 75
    assert tariff_at(versions, START) is versions[0][1]
    assert tariff_at(versions, START + timedelta(hours=1)) is versions[1][1]


def test_standing_charges_once_per_local_day() -> None:
    """53 p a day; last charged on the 8th, now the 10th: the 9th and the 10th are due."""
    versions = [(BEGINNING, parse_tariff(tou()))]
    due = standing_due(versions, date(2026, 3, 8), START, UTC)
    assert due.days == (date(2026, 3, 9), date(2026, 3, 10))
    assert due.minor == 106
    assert standing_due(versions, date(2026, 3, 10), START, UTC).minor == 0
