"""Moving a tenant out and a new one in, from the room's page in a real browser (issue 25).

Every figure is worked out by hand: a flat 0.25 EUR/kWh tariff, a room with 20.00 EUR.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from playwright.async_api import Page, expect

from tests.ledger.conftest import Ledger
from tests.web.conftest import screenshot
from tests.web.test_landlord_ui import sign_in

pytestmark = pytest.mark.usefixtures("socket_enabled")


async def test_move_out_with_transfer_then_move_in(page: Page, ledger: Ledger) -> None:
    tariff = await ledger.tariff(price="0.25")
    old = await ledger.account(name="Flat 3 - Olga", timezone="UTC")
    new_home = await ledger.account(name="Flat 7 - Olga", timezone="UTC")
    meter = await ledger.meter(old["id"], tariff["id"])
    await ledger.topup(old["id"], 2000, "cash-olga")  # 20.00 EUR
    start = datetime.now(UTC) - timedelta(hours=2)
    await ledger.ok(
        "POST",
        "/api/v1/readings",
        json={"readings": [{"meter_id": meter["id"], "value": "1000", "at": start.isoformat()}]},
    )
    await sign_in(page, ledger)
    await page.get_by_role("button", name="Open Flat 3 - Olga").click()

    # Move-out: nothing is sent until every step is filled in.
    await page.get_by_role("button", name="Move out…").click()
    dialog = page.locator("#moveout-dialog")
    await dialog.get_by_label("Meter reading").fill("1014")
    await dialog.get_by_label("Move it to the tenant's new room").check()
    await dialog.get_by_role("button", name="Move out and close").click()
    await expect(page.locator("#moveout-target-error")).to_have_text(
        "type the account number of the tenant's new room"
    )
    await expect(page.locator("#moveout-reason-error")).to_have_text("a reason is required")
    await expect(dialog.get_by_label("New room: account number")).to_be_focused()  # the first
    assert await ledger.balance(old["id"]) == 2000  # nothing sent
    await dialog.get_by_label("New room: account number").fill(new_home["number"])
    await dialog.get_by_label("Reason (kept in the audit log)").fill("lease ended, moves to flat 7")
    await screenshot(page, "landlord-move-out")
    await dialog.get_by_role("button", name="Move out and close").click()
    # 14 kWh x 0.25 EUR = 3.50 EUR charged; 20.00 - 3.50 = 16.50 EUR moved to flat 7.
    await expect(page.locator("#moveout-result")).to_have_text(
        f"Closed: 16.50 EUR moved to account {new_home['id']}."
    )
    assert await ledger.balance(new_home["id"]) == 1650
    closed = await ledger.ok("GET", f"/api/v1/accounts/{old['id']}")
    assert (closed["status"], closed["balance_minor"]) == ("closed", 0)
    await dialog.get_by_role("button", name="Cancel").click()

    # Move-in: a new tenant on the same meter from its reading now.
    await page.get_by_role("button", name="Move a new tenant in…").click()
    arrival = page.locator("#movein-dialog")
    await arrival.get_by_label("Meter reading at move-in").fill("1014")
    await arrival.get_by_role("button", name="Move in").click()
    await expect(page.locator("#movein-name-error")).to_have_text(
        "name the room and its new tenant"
    )
    await arrival.get_by_label("New tenant's room and name").fill("Flat 3 - Nadia")
    await arrival.get_by_role("button", name="Move in").click()
    await expect(page.locator("#movein-result")).to_contain_text(
        "Flat 3 - Nadia pays for this meter"
    )
    nadia = next(
        a
        for a in (await ledger.ok("GET", "/api/v1/accounts?q=Nadia"))["accounts"]
        if a["name"] == "Flat 3 - Nadia"
    )
    moved = await ledger.ok("GET", f"/api/v1/meters/{meter['id']}")
    assert moved["account_id"] == nadia["id"]
    # Nadia's first 4 kWh (1014 -> 1018) cost her 1.00 EUR; Olga's closed account stays at 0.
    later = datetime.now(UTC) + timedelta(minutes=5)
    await ledger.ok(
        "POST",
        "/api/v1/readings",
        json={"readings": [{"meter_id": meter["id"], "value": "1018", "at": later.isoformat()}]},
    )
    assert await ledger.balance(nadia["id"]) == -100
    assert await ledger.balance(old["id"]) == 0
    actions = [e["action"] for e in (await ledger.ok("GET", "/api/v1/audit?limit=20"))["entries"]]
    assert {"account.close", "meter.assign", "account.create"} <= set(actions)
