"""GET /api/v1/meters/{id}/status: cost so far, the current price and band, days left."""

from __future__ import annotations

from datetime import datetime, time, timedelta
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
    assert status["forecast_days"] == 3
    assert status["price"] == {"per_unit": "0.30", "band": "flat", "kind": "flat"}
    assert status["currency"] == "EUR"


async def test_todays_partial_day_is_not_averaged(ledger: Ledger) -> None:
    """Consumption only today: no complete day yet, so no forecast."""
    tariff = await ledger.tariff(price="0.30")
    account = await ledger.account()
    meter = await ledger.meter(account["id"], tariff["id"])
    await ledger.topup(account["id"], 3000, "k1")
    start = local_midnight(0)
    now = datetime.now(BERLIN)
    later = max(start, now - timedelta(seconds=5))
    readings = [
        {"meter_id": meter["id"], "value": "0", "at": start.isoformat()},
        {"meter_id": meter["id"], "value": "5", "at": later.isoformat()},
    ]
    await ledger.ok("POST", "/api/v1/readings", json={"readings": readings})
    status = await ledger.ok("GET", f"/api/v1/meters/{meter['id']}/status")
    assert status["cost_total_minor"] == 150
    assert status["days_left"] is None


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
