"""Supply decisions through the API, watchdog, meter moves and replacements, tiered tariffs."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prepaid_ledger.services.accounts import reevaluate_supply
from prepaid_ledger.store.database import Database

from tests.ledger.conftest import Ledger, make_settings, running_ledger
from tests.ledger.webhook_helpers import checkout_completed, stripe_delivery

pytestmark = pytest.mark.usefixtures("socket_enabled")
T0 = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)


def reading(meter_id: int, value: str, at: datetime) -> dict[str, object]:
    return {"meter_id": meter_id, "value": value, "at": at.isoformat()}


async def consume(ledger: Ledger, meter_id: int, start: str, end: str) -> dict:
    result = await ledger.ok(
        "POST",
        "/api/v1/readings",
        json={
            "readings": [
                reading(meter_id, start, T0),
                reading(meter_id, end, T0 + timedelta(hours=1)),
            ]
        },
    )
    return result["meters"][0]


async def test_supply_decisions(sqlite_ledger: Ledger) -> None:
    ledger = sqlite_ledger
    tariff = await ledger.tariff(price="1.00")
    every_day = {
        day: [{"start": "00:00", "end": "24:00"}]
        for day in ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
    }
    grace = await ledger.account(grace_minutes=60, emergency_credit_minor=100)
    protected = await ledger.account(protected=True)
    friendly = await ledger.account(friendly_hours=every_day)
    plain = await ledger.account(reconnect_margin_minor=50)
    outcomes = {}
    for name, account in (
        ("grace", grace),
        ("protected", protected),
        ("friendly", friendly),
        ("plain", plain),
    ):
        meter = await ledger.meter(account["id"], tariff["id"])
        outcomes[name] = await consume(ledger, meter["id"], "0", "1.5")
    assert outcomes["grace"]["supply"]["allowed"] is True
    assert outcomes["grace"]["supply"]["reason"] == "grace"
    cut_at = datetime.fromisoformat(outcomes["grace"]["supply"]["changes_at"])
    assert timedelta(minutes=59) < cut_at - datetime.now(UTC) <= timedelta(minutes=60)
    assert outcomes["protected"]["supply"] == {
        "allowed": True,
        "reason": "protected",
        "changes_at": None,
    }
    assert outcomes["friendly"]["supply"]["allowed"] is True
    assert outcomes["friendly"]["supply"]["reason"] == "friendly_hours"
    assert outcomes["plain"]["supply"]["allowed"] is False
    assert outcomes["plain"]["supply"]["reason"] == "exhausted"
    # Restored only once the balance covers the debt plus the reconnect margin.
    await ledger.topup(plain["id"], 180, "p1")
    view = await ledger.ok("GET", f"/api/v1/accounts/{plain['id']}")
    assert view["balance_minor"] == 30
    assert view["supply"]["allowed"] is False
    assert view["supply"]["reason"] == "awaiting_reconnect_margin"
    await ledger.topup(plain["id"], 20, "p2")
    view = await ledger.ok("GET", f"/api/v1/accounts/{plain['id']}")
    assert view["supply"] == {"allowed": True, "reason": "credit", "changes_at": None}

    # When the grace period is over, the periodic re-evaluation cuts and tells the stream.
    db = Database(ledger.settings.database_url)
    try:
        changed = await db.write(lambda s: reevaluate_supply(s, cut_at + timedelta(minutes=1)))
    finally:
        await db.close()
    assert changed == 1


async def test_watchdog_flags_stuck_orders(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, None, processing_timeout_s=0.2, watchdog_interval_s=0.1)
    async with running_ledger(settings) as ledger:
        account = await ledger.account()
        event = checkout_completed(account["id"], 400, payment_status="unpaid")
        body, headers = stripe_delivery(event)
        status, result = await ledger.call(
            "POST", "/webhooks/stripe", data=body, headers=headers, token=None
        )
        assert result["outcome"] == "processing"
        order_id = result["order_id"]
        for _ in range(50):
            order = await ledger.ok("GET", f"/api/v1/topups/{order_id}")
            if order["status"] == "needs_attention":
                break
            await asyncio.sleep(0.1)
        assert order["status"] == "needs_attention"
        assert "stuck in processing" in order["attention_reason"]
        assert [t["status"] for t in order["timeline"]][-1] == "needs_attention"
        status, err = await ledger.call(
            "POST",
            f"/api/v1/topups/{order_id}/actions",
            json={"action": "recheck", "reason": "ask Stripe"},
        )
        assert status == 409
        assert err["error"]["code"] == "no_provider_api"
        failed = await ledger.ok(
            "POST",
            f"/api/v1/topups/{order_id}/actions",
            json={"action": "fail", "reason": "payment never arrived"},
        )
        assert failed["status"] == "failed"
        assert await ledger.balance(account["id"]) == 0


async def test_meter_moves_to_new_tenant_and_replacement(sqlite_ledger: Ledger) -> None:
    ledger = sqlite_ledger
    tariff = await ledger.tariff(price="1.00")
    old = await ledger.account(name="Old tenant")
    new = await ledger.account(name="New tenant")
    meter = await ledger.meter(old["id"], tariff["id"])
    await consume(ledger, meter["id"], "100", "105")
    assert await ledger.balance(old["id"]) == -500
    moved = await ledger.ok(
        "POST",
        f"/api/v1/meters/{meter['id']}/assign",
        json={"account_id": new["id"], "from": (T0 + timedelta(hours=1)).isoformat()},
    )
    assert moved["account_id"] == new["id"]
    await ledger.ok(
        "POST",
        "/api/v1/readings",
        json={"readings": [reading(meter["id"], "107", T0 + timedelta(hours=2))]},
    )
    assert await ledger.balance(old["id"]) == -500
    assert await ledger.balance(new["id"]) == -200
    # Replacement: the new register starts at 0; no negative charge, next reading charges.
    await ledger.ok(
        "POST",
        f"/api/v1/meters/{meter['id']}/replace",
        json={"new_start_value": "0", "at": (T0 + timedelta(hours=3)).isoformat()},
    )
    result = await ledger.ok(
        "POST",
        "/api/v1/readings",
        json={"readings": [reading(meter["id"], "3", T0 + timedelta(hours=4))]},
    )
    assert result["meters"][0]["charged_minor"] == 300
    assert result["meters"][0]["flagged"] == 0
    assert await ledger.balance(new["id"]) == -500
    status, _ = await ledger.call(
        "POST",
        f"/api/v1/meters/{meter['id']}/assign",
        json={"account_id": old["id"], "from": T0.isoformat()},
    )
    assert status == 422  # before the last reading
    status, _ = await ledger.call(
        "POST",
        "/api/v1/meters",
        json={"account_id": old["id"], "tariff_id": tariff["id"], "name": "Water", "unit": "m3"},
    )
    assert status == 422  # a kWh tariff cannot price m3


async def test_tiered_tariff_splits_at_band_boundary(sqlite_ledger: Ledger) -> None:
    ledger = sqlite_ledger
    tariff = await ledger.tariff(
        kind="tiered",
        price=None,
        period="month",
        bands=[{"up_to": "100", "price": "0.10"}, {"up_to": None, "price": "0.20"}],
    )
    account = await ledger.account()
    # 150 kWh in an hour: more than the reading guard's default 69 kW, so declared possible.
    meter = await ledger.meter(account["id"], tariff["id"], max_power="200")
    await consume(ledger, meter["id"], "0", "150")
    assert await ledger.balance(account["id"]) == -2000  # 100 * 0.10 + 50 * 0.20
    statement = await ledger.ok("GET", f"/api/v1/accounts/{account['id']}/statement")
    assert sorted(line["amount_minor"] for line in statement["consumption"]) == [1000, 1000]
    csv_status, csv_text = await ledger.call(
        "GET", f"/api/v1/accounts/{account['id']}/statement?format=csv"
    )
    assert csv_status == 200
    assert csv_text.splitlines()[-1].endswith(",-2000")


async def test_update_account_settings(ledger: Ledger) -> None:
    tariff = await ledger.tariff(price="1.00")
    account = await ledger.account(friendly_hours={"holidays": ["2026-12-25"]})
    meter = await ledger.meter(account["id"], tariff["id"])
    outcome = await consume(ledger, meter["id"], "0", "1")
    assert outcome["supply"]["allowed"] is False
    updated = await ledger.ok(
        "PATCH",
        f"/api/v1/accounts/{account['id']}",
        json={"protected": True, "name": "Room 1 (medical)"},
    )
    assert updated["name"] == "Room 1 (medical)"
    assert updated["supply"] == {"allowed": True, "reason": "protected", "changes_at": None}
    assert updated["friendly_hours"] == account["friendly_hours"]  # untouched settings stay
    for bad in (
        {"currency": "USD"},
        {"friendly_hours": {"funday": []}},
        {"grace_minutes": -1},
        {"low_balance_minor": [1, 2, 3]},
    ):
        status, _ = await ledger.call("PATCH", f"/api/v1/accounts/{account['id']}", json=bad)
        assert status == 422, bad
    after = await ledger.ok("GET", f"/api/v1/accounts/{account['id']}")
    assert after["protected"] is True
    assert after["grace_minutes"] == 0
    audit = await ledger.ok("GET", "/api/v1/audit?limit=5")
    update = next(e for e in audit["entries"] if e["action"] == "account.update")
    assert update["before"]["protected"] is False
    assert update["after"]["protected"] is True
