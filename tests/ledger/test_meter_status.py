"""GET /api/v1/meters/{id}/status: cost so far, the current price and band, days left."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from tests.ledger.conftest import Ledger

pytestmark = pytest.mark.usefixtures("socket_enabled")
BERLIN = ZoneInfo("Europe/Berlin")


def local_midnight(days_ago: int) -> datetime:
    today = datetime.now(BERLIN).date()
    return datetime.combine(today - timedelta(days=days_ago), time(0), tzinfo=BERLIN)


async def test_days_left_averages_complete_local_days(ledger: Ledger) -> None:
    """Three complete days of 10 kWh at 0.30 EUR: 3.00 a day; 21.00 left lasts 7.0 days."""
    tariff = await ledger.tariff(price="0.30")
    account = await ledger.account()
    meter = await ledger.meter(account["id"], tariff["id"])
    await ledger.topup(account["id"], 3000, "k1")
    readings = [
        {"meter_id": meter["id"], "value": str(10 * i), "at": local_midnight(3 - i).isoformat()}
        for i in range(4)
    ]
    await ledger.ok("POST", "/api/v1/readings", json={"readings": readings})
    status = await ledger.ok("GET", f"/api/v1/meters/{meter['id']}/status")
    assert status["cost_total_minor"] == 900
    assert status["days_left"] == "7.0"
    assert status["days_left_confidence"] == "high"
    assert status["forecast_days"] == 3
    assert status["price"] == {"per_unit": "0.30", "band": "flat", "kind": "flat"}
    assert status["currency"] == "EUR"


async def test_under_an_hour_of_data_gives_no_days_left(ledger: Ledger) -> None:
    """Half an hour of consumption today: too little to estimate, so no forecast."""
    tariff = await ledger.tariff(price="0.30")
    account = await ledger.account()
    meter = await ledger.meter(account["id"], tariff["id"])
    await ledger.topup(account["id"], 3000, "k1")
    now = datetime.now(BERLIN)
    readings = [
        {"meter_id": meter["id"], "value": "0", "at": (now - timedelta(minutes=31)).isoformat()},
        {"meter_id": meter["id"], "value": "5", "at": (now - timedelta(minutes=1)).isoformat()},
    ]
    await ledger.ok("POST", "/api/v1/readings", json={"readings": readings})
    status = await ledger.ok("GET", f"/api/v1/meters/{meter['id']}/status")
    assert status["cost_total_minor"] == 150
    assert (status["days_left"], status["days_left_confidence"]) == (None, None)


async def test_a_few_hours_give_a_low_confidence_estimate(ledger: Ledger) -> None:
    """2 kWh in 2 hours at 0.30 EUR: 28.80 EUR left would last 4.0 days at that steady rate.

    The estimate never promises more than the steady rate does (it takes the larger of the
    steady rate and the typical day's shape, plus a safety margin), and says it is rough.
    """
    tariff = await ledger.tariff(price="0.30")
    account = await ledger.account()
    meter = await ledger.meter(account["id"], tariff["id"])
    await ledger.topup(account["id"], 2940, "k1")
    end = datetime.now(BERLIN) - timedelta(minutes=1)
    readings = [
        {"meter_id": meter["id"], "value": "0", "at": (end - timedelta(hours=2)).isoformat()},
        {"meter_id": meter["id"], "value": "2", "at": end.isoformat()},
    ]
    await ledger.ok("POST", "/api/v1/readings", json={"readings": readings})
    status = await ledger.ok("GET", f"/api/v1/meters/{meter['id']}/status")
    assert status["cost_total_minor"] == 60
    assert status["days_left_confidence"] == "low"
    assert status["forecast_days"] == 0
    assert Decimal(0) < Decimal(status["days_left"]) <= Decimal("4.0")
    view = await ledger.ok("GET", f"/api/v1/accounts/{account['id']}")
    assert (view["days_left"], view["days_left_confidence"]) == (status["days_left"], "low")


async def test_a_first_day_that_began_late_is_not_a_complete_day(ledger: Ledger) -> None:
    """Readings from 22:00 to midnight yesterday are not a day of use: 2 h of data, low."""
    tariff = await ledger.tariff(price="0.30")
    account = await ledger.account()
    meter = await ledger.meter(account["id"], tariff["id"])
    await ledger.topup(account["id"], 3000, "k1")
    midnight = local_midnight(0)
    readings = [
        {"meter_id": meter["id"], "value": "0", "at": (midnight - timedelta(hours=2)).isoformat()},
        {"meter_id": meter["id"], "value": "3", "at": midnight.isoformat()},
    ]
    await ledger.ok("POST", "/api/v1/readings", json={"readings": readings})
    status = await ledger.ok("GET", f"/api/v1/meters/{meter['id']}/status")
    # Counted as a day, yesterday's 0.90 EUR would have promised 30 days.
    assert status["forecast_days"] == 0
    assert status["days_left_confidence"] == "low"
    assert Decimal(status["days_left"]) < 10


async def test_time_of_use_price_and_band_follow_the_local_clock(ledger: Ledger) -> None:
    """The band in force now, by the account's local time (independent of the ledger's code)."""
    tariff = await ledger.tariff(
        kind="tou",
        price=None,
        segments=[
            {"start": "00:00", "price": "0.10", "band": "night"},
            {"start": "12:00", "price": "0.40", "band": "day"},
        ],
    )
    account = await ledger.account()
    meter = await ledger.meter(account["id"], tariff["id"])
    before = datetime.now(BERLIN)
    status = await ledger.ok("GET", f"/api/v1/meters/{meter['id']}/status")
    after = datetime.now(BERLIN)
    if before.hour < 12 <= after.hour:  # the clock crossed the boundary mid-request
        pytest.skip("band changed during the request")
    expected = ("0.10", "night") if before.hour < 12 else ("0.40", "day")
    assert (status["price"]["per_unit"], status["price"]["band"]) == expected
    assert status["days_left"] is None


async def test_status_of_unknown_meter_and_tenant_scope(ledger: Ledger) -> None:
    """404 for an unknown meter; a tenant sees only its own meters."""
    assert (await ledger.call("GET", "/api/v1/meters/999999/status"))[0] == 404
    tariff = await ledger.tariff()
    mine = await ledger.account()
    other = await ledger.account(name="Other")
    other_meter = await ledger.meter(other["id"], tariff["id"])
    tenant = {"scope": "tenant", "account_id": mine["id"]}
    token = (await ledger.ok("POST", "/api/v1/tokens", json=tenant))["token"]
    status, _ = await ledger.call("GET", f"/api/v1/meters/{other_meter['id']}/status", token=token)
    assert status == 403
