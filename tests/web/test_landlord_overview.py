"""The landlord page's overview and first-run guide in a real browser, at phone and desk widths.

The figures expected on screen are worked out by hand from the top-ups and readings below.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from playwright.async_api import Page, expect

from tests.ledger.conftest import Ledger
from tests.web.conftest import screenshot
from tests.web.test_landlord_ui import sign_in

pytestmark = pytest.mark.usefixtures("socket_enabled")


async def test_first_run_guide_follows_the_setup(page: Page, ledger: Ledger) -> None:
    await sign_in(page, ledger)
    guide = page.locator("#first-run")
    await expect(guide).to_be_visible()
    await expect(guide.locator("li.done")).to_have_count(0)
    await ledger.tariff(price="0.25")
    await ledger.account(name="Room 1 - Ana")
    await page.reload()
    await expect(guide.locator("li.done")).to_have_count(2)  # a tariff and a room; no meter yet
    tariff = (await ledger.ok("GET", "/api/v1/tariffs"))["tariffs"][0]
    room = (await ledger.ok("GET", "/api/v1/accounts"))["accounts"][0]
    await ledger.meter(room["id"], tariff["id"])
    await page.reload()
    await expect(guide).to_be_hidden()  # set up: the guide steps aside


@pytest.mark.parametrize("width", [390, 1280])
async def test_overview_shows_the_month_by_hand(page: Page, ledger: Ledger, width: int) -> None:
    await page.set_viewport_size({"width": width, "height": 900})
    tariff = await ledger.tariff(price="0.25")
    ana = await ledger.account(name="Room 1 - Ana", timezone="UTC")
    await ledger.account(name="Room 2 - Ben", timezone="UTC")  # no credit: cut off
    meter = await ledger.meter(ana["id"], tariff["id"])
    await ledger.topup(ana["id"], 1000, "cash-1")  # 10.00 EUR today
    yesterday = datetime.now(UTC).date() - timedelta(days=1)
    noon = datetime(yesterday.year, yesterday.month, yesterday.day, 12, tzinfo=UTC)
    readings = [
        {"meter_id": meter["id"], "value": "100", "at": (noon - timedelta(hours=6)).isoformat()},
        {"meter_id": meter["id"], "value": "106", "at": noon.isoformat()},
    ]  # 6 kWh at 0.25 EUR = 1.50 EUR, on yesterday
    await ledger.ok("POST", "/api/v1/readings", json={"readings": readings})
    this_month = yesterday.month == datetime.now(UTC).month
    await sign_in(page, ledger)
    tiles = page.locator("#overview-tiles .tile")
    await expect(tiles.filter(has_text="Money in this month")).to_contain_text("10.00 EUR")
    await expect(tiles.filter(has_text="Charged for use this month")).to_contain_text(
        "1.50 EUR" if this_month else "0.00 EUR"
    )
    await expect(tiles.filter(has_text="Used this month")).to_contain_text(
        "6.0 kWh" if this_month else "0.0 kWh"
    )
    await expect(tiles.filter(has_text="Rooms cut off")).to_contain_text("1 of 2")
    # The charts, and the same numbers as tables for screen readers.
    await expect(page.locator("#overview-charts .uplot")).to_have_count(2)
    charged = page.locator("#overview-charts table").nth(1)
    await page.locator("#overview-charts summary").nth(1).click()
    await expect(charged.locator("tbody tr")).to_have_count(1)
    await expect(charged.locator("tbody tr")).to_contain_text("1.50 EUR")
    await expect(charged.locator("tbody tr")).to_contain_text("6.0")
    # The sections bar takes the landlord to the orders.
    await (
        page.get_by_role("navigation", name="Sections of this page")
        .get_by_role("link", name="Orders")
        .click()
    )
    await expect(page.get_by_role("heading", name="Orders that need you")).to_be_in_viewport()
    assert await page.evaluate("document.documentElement.scrollWidth") <= width
    await page.evaluate("window.scrollTo(0, 0)")
    await screenshot(page, f"landlord-overview-{width}", full_page=False)
