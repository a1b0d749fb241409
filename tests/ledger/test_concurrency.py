"""Concurrent readings, top-ups and webhooks on one account keep the ledger consistent."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from prepaid_ledger.services.verify import verify_ledger
from prepaid_ledger.store.database import Database

from tests.ledger.conftest import Ledger
from tests.ledger.webhook_helpers import checkout_completed, stripe_delivery

pytestmark = pytest.mark.usefixtures("socket_enabled")
T0 = datetime(2026, 5, 4, 8, 0, tzinfo=UTC)


async def test_concurrent_readings_topups_and_webhooks_verify_clean(ledger: Ledger) -> None:
    tariff = await ledger.tariff(price="0.1234", standing_charge_minor_per_day=0)
    account = await ledger.account()
    meters = [await ledger.meter(account["id"], tariff["id"]) for _ in range(3)]

    async def readings(meter_id: int, start: int) -> int:
        batch = [
            {
                "meter_id": meter_id,
                "value": f"{start + i}.5",
                "at": (T0 + timedelta(minutes=start + i)).isoformat(),
            }
            for i in range(50)
        ]
        result = await ledger.ok("POST", "/api/v1/readings", json={"readings": batch})
        return int(sum(m["charged_minor"] for m in result["meters"]))

    async def topup(i: int) -> int:
        order = await ledger.topup(account["id"], 100 + i, f"t-{i}")
        return int(order["amount_minor"])

    async def webhook(i: int) -> int:
        body, headers = stripe_delivery(checkout_completed(account["id"], 1000 + i))
        status, result = await ledger.call(
            "POST", "/webhooks/stripe", data=body, headers=headers, token=None
        )
        assert status == 200
        return 1000 + i if result["outcome"] == "credited" else 0

    reading_jobs = [readings(m["id"], start) for m in meters for start in (0, 50, 100)]
    results = await asyncio.gather(
        *reading_jobs, *(topup(i) for i in range(15)), *(webhook(i) for i in range(10))
    )
    charged = sum(results[: len(reading_jobs)])
    credited = sum(results[len(reading_jobs) :])
    assert charged > 0
    assert await ledger.balance(account["id"]) == credited - charged

    db = Database(ledger.settings.database_url)
    try:
        assert await db.read(verify_ledger) == []
    finally:
        await db.close()
    statement = await ledger.ok("GET", f"/api/v1/accounts/{account['id']}/statement")
    assert statement["ties_out"] is True
    assert statement["closing_balance_minor"] == credited - charged
    assert statement["consumption_total_minor"] == charged
