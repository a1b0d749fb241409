"""A room's page shows its meters and the readings held for a person, who decides there; the
audit log is searched and paged by the ledger (issue 25)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from playwright.async_api import Page, expect

from tests.ledger.conftest import Ledger
from tests.web.test_landlord_ui import sign_in

pytestmark = pytest.mark.usefixtures("socket_enabled")


async def test_a_held_reading_is_decided_on_the_room_page(page: Page, ledger: Ledger) -> None:
    tariff = await ledger.tariff(price="1.00")
    room = await ledger.account(name="Room 4 - Dan", timezone="UTC")
    await ledger.account(name="Room 5 - Eve", timezone="UTC")
    meter = await ledger.meter(room["id"], tariff["id"], model="eastron_sdm120")  # 10.35 kW
    await ledger.topup(room["id"], 1000, "cash-dan")
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    # 5000 kWh, then 9,999,999 kWh a quarter of an hour later: no 10.35 kW meter can do that.
    for value, minutes in (("5000", 0), ("9999999", 15)):
        at = (t0 + timedelta(minutes=minutes)).isoformat()
        await ledger.ok(
            "POST",
            "/api/v1/readings",
            json={"readings": [{"meter_id": meter["id"], "value": value, "at": at}]},
        )
    await sign_in(page, ledger)
    await page.get_by_role("button", name="Open Room 4 - Dan").click()
    block = page.locator(f"#account-meters [data-meter='{meter['id']}']")
    await expect(block).to_contain_text("last reading 5000 kWh")
    held = block.locator("li.held")
    await expect(held).to_contain_text("Held: 9999999 kWh")
    await expect(held).to_contain_text("more than the meter can use in that time")
    await held.get_by_role("button", name="Reject (a misread)").click()
    dialog = page.locator("#reason-dialog")
    await dialog.get_by_role("button", name="Reject (a misread)").click()
    await expect(page.locator("#reason-error")).to_have_text(
        "give a reason: it is kept in the audit log"
    )
    await dialog.get_by_role("textbox").fill("torn Modbus read")
    await dialog.get_by_role("button", name="Reject (a misread)").click()
    await expect(held).to_have_count(0)
    assert (await ledger.ok("GET", f"/api/v1/readings/held?meter={meter['id']}"))["readings"] == []
    assert await ledger.balance(room["id"]) == 1000  # the glitch cost nothing

    # The tenant's pay link and its QR code, from the room's page.
    page.once("dialog", lambda dialog: dialog.accept())
    await page.get_by_role("button", name="Tenant's pay link and QR code").click()
    await expect(page.locator("#link-qr svg")).to_be_visible()
    assert "/pay/plt_" in await page.locator("#link-url").inner_text()
    await page.locator("#link-dialog").get_by_role("button", name="Close").click()

    # The audit log, searched by the ledger: this room's entries only.
    await (
        page.get_by_role("navigation", name="Sections of this page")
        .get_by_role("link", name="Audit log")
        .click()
    )
    await page.get_by_label("Search: who, what or on what (e.g. account:12)").fill(
        f"account:{room['id']}"
    )
    rows = page.locator("#audit-log tbody tr")
    await expect(rows.first).to_contain_text(f"account:{room['id']}")
    targets = await rows.locator("td:nth-child(4)").all_inner_texts()
    assert targets
    assert all(t == f"account:{room['id']}" for t in targets), targets
    await page.get_by_label("Search: who, what or on what (e.g. account:12)").fill("reading.")
    await expect(rows.first).to_contain_text("reading.")
