"""Concurrent readings, top-ups and webhooks on one account keep the ledger consistent."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

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

    async def readings(meter_id: int, start: int) -> tuple[int, int, dict[str, Any]]:
        batch = [
            {
                "meter_id": meter_id,
                "value": f"{start + i}.5",
                "at": (T0 + timedelta(minutes=start + i)).isoformat(),
            }
            for i in range(50)
        ]
        result = await ledger.ok("POST", "/api/v1/readings", json={"readings": batch})
        (outcome,) = result["meters"]
        return meter_id, start, outcome

    async def topup(i: int) -> int:
        order = await ledger.topup(account["id"], 100 + i, f"t-{i}")
        assert (order["status"], order["amount_minor"]) == ("succeeded", 100 + i), order
        return int(order["credited_minor"])

    async def webhook(i: int) -> int:
        body, headers = stripe_delivery(checkout_completed(account["id"], 1000 + i))
        status, result = await ledger.call(
            "POST", "/webhooks/stripe", data=body, headers=headers, token=None
        )
        # Every delivery is a distinct paid session for an open account: each must be credited
        # (an uncredited one must fail here, not silently count as 0).
        assert (status, result["outcome"]) == (200, "credited"), result
        return 1000 + i

    jobs = [readings(m["id"], start) for m in meters for start in (0, 50, 100)]
    outcomes, amounts = await asyncio.gather(
        asyncio.gather(*jobs),
        asyncio.gather(*(topup(i) for i in range(15)), *(webhook(i) for i in range(10))),
    )
    credited = sum(amounts)
    # Worked by hand: 15 top-ups of 100..114 (1605) and 10 payments of 1000..1009 (10045).
    assert credited == 1605 + 10045

    # Batches of one meter race: the first to arrive sets the baseline, older ones are
    # flagged, newer ones charge. Whatever the order, the batch from 100 charges last, so each
    # meter's charged consumption is 149.5 - its baseline, priced once (cumulative rule) at
    # 0.1234 EUR/kWh and rounded half up to cents.
    charged = 0
    for meter in meters:
        mine = [(start, o) for meter_id, start, o in outcomes if meter_id == meter["id"]]
        for _, o in mine:
            assert o["baseline"] + o["accepted"] + o["flagged"] == 50, o
            assert o["duplicates"] == 0, o
        (baseline_start,) = [start for start, o in mine if o["baseline"] == 1]
        consumption = Decimal("149.5") - (Decimal(baseline_start) + Decimal("0.5"))
        expected = int(
            (consumption * Decimal("0.1234") * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP)
        )
        meter_charged = sum(int(o["charged_minor"]) for _, o in mine)
        assert meter_charged == expected, (meter["id"], baseline_start, mine)
        charged += meter_charged
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
