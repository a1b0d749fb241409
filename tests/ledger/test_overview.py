"""The landlord's overview: money in, consumption, rooms and orders, per site and in all.

The expected figures are worked out by hand in the comments from the readings and top-ups the
test makes; nothing is read back from the ledger's own aggregation to build them.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from tests.ledger.conftest import Ledger

pytestmark = pytest.mark.usefixtures("socket_enabled")


def at(day: date, hour: int) -> str:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC).isoformat()


async def test_overview_adds_up_by_hand(ledger: Ledger) -> None:
    today = datetime.now(UTC).date()
    d2, d1 = today - timedelta(days=2), today - timedelta(days=1)
    north = await ledger.ok("POST", "/api/v1/sites", json={"name": "North"})
    south = await ledger.ok("POST", "/api/v1/sites", json={"name": "South"})
    tariff = await ledger.tariff(price="0.25")  # EUR/kWh, no standing charge
    ada = await ledger.account(name="Ada", timezone="UTC", site_id=north["id"])
    await ledger.account(name="Bo", timezone="UTC", site_id=north["id"])  # never topped up
    cy = await ledger.account(name="Cy", timezone="UTC", site_id=south["id"])
    meter = await ledger.meter(ada["id"], tariff["id"])
    await ledger.topup(ada["id"], 1000, "ada-1")  # 10.00 EUR, today
    await ledger.topup(cy["id"], 500, "cy-1")  # 5.00 EUR, today
    # Ada's meter: 100 at d2 00:00, 104 at d2 12:00, still 104 at d1 00:00, 106 at d1 12:00.
    #   d2: 4 kWh -> 1.00 EUR;  d1: 2 kWh -> 0.50 EUR (nothing used over the night between).
    readings = [
        {"meter_id": meter["id"], "value": value, "at": when}
        for value, when in (
            ("100", at(d2, 0)),
            ("104", at(d2, 12)),
            ("104", at(d1, 0)),
            ("106", at(d1, 12)),
        )
    ]
    await ledger.ok("POST", "/api/v1/readings", json={"readings": readings})
    by_day = {d2: (4, 100), d1: (2, 50)}  # kWh, cents
    month_start = today.replace(day=1)
    month_kwh = sum(k for d, (k, _) in by_day.items() if d >= month_start)
    month_cents = sum(c for d, (_, c) in by_day.items() if d >= month_start)

    everything = await ledger.ok("GET", "/api/v1/overview")
    assert (everything["last_day"], everything["month_start"]) == (
        today.isoformat(),
        month_start.isoformat(),
    )
    assert everything["first_day"] == (today - timedelta(days=29)).isoformat()
    (eur,) = everything["money"]
    assert eur["currency"] == "EUR"
    assert eur["topups_this_month_minor"] == 1500
    assert eur["refunds_this_month_minor"] == 0
    assert eur["charged_this_month_minor"] == month_cents
    days = {d["day"]: d for d in eur["days"]}
    assert len(days) == 30
    assert days[today.isoformat()]["topups_minor"] == 1500
    assert (days[d2.isoformat()]["charged_minor"], days[d1.isoformat()]["charged_minor"]) == (
        100,
        50,
    )
    (kwh,) = everything["use"]
    assert kwh["unit"] == "kWh"
    assert {d: float(q) for d, q in kwh["days"].items()} == {d2.isoformat(): 4, d1.isoformat(): 2}
    assert float(kwh["this_month"]) == month_kwh
    assert everything["rooms"] == {"open": 3, "supply_off": 1, "low": 0, "closed": 0, "meters": 1}
    assert everything["orders"] == {"needs_attention": 0, "processing": 0, "pending": 0}

    only_north = await ledger.ok("GET", f"/api/v1/overview?site={north['id']}")
    (north_eur,) = only_north["money"]
    assert north_eur["topups_this_month_minor"] == 1000
    assert north_eur["charged_this_month_minor"] == month_cents
    assert only_north["rooms"] == {"open": 2, "supply_off": 1, "low": 0, "closed": 0, "meters": 1}
    only_south: dict[str, Any] = await ledger.ok("GET", f"/api/v1/overview?site={south['id']}")
    (south_eur,) = only_south["money"]
    assert (south_eur["topups_this_month_minor"], south_eur["charged_this_month_minor"]) == (
        500,
        0,
    )
    assert only_south["use"] == []


async def test_overview_is_the_landlords(ledger: Ledger) -> None:
    token = (await ledger.ok("POST", "/api/v1/tokens", json={"scope": "integration"}))["token"]
    status, _ = await ledger.call("GET", "/api/v1/overview", token=token)
    assert status == 403
    status, body = await ledger.call("GET", "/api/v1/overview?site=abc")
    assert status == 422, body
    empty = await ledger.ok("GET", "/api/v1/overview")
    assert (empty["money"], empty["use"]) == ([], [])
