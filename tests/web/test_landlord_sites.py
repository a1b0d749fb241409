"""The landlord page across sites: rooms by building, totals per site, new rooms placed."""

from __future__ import annotations

import pytest
from playwright.async_api import Page, expect

from tests.ledger.conftest import Ledger
from tests.web.test_landlord_ui import row, sign_in

pytestmark = pytest.mark.usefixtures("socket_enabled")


async def test_rooms_filtered_and_placed_by_site(page: Page, ledger: Ledger) -> None:
    north = await ledger.ok("POST", "/api/v1/sites", json={"name": "North"})
    south = await ledger.ok("POST", "/api/v1/sites", json={"name": "South"})
    for name, site in (("N1 Ada", north), ("N2 Bo", north), ("S1 Cy", south)):
        await ledger.account(name=name, site_id=site["id"])
    credited = await ledger.account(name="N3 Di", site_id=north["id"])
    await ledger.topup(credited["id"], 1000, "n3")
    await sign_in(page, ledger)
    rows = page.locator("#accounts tbody tr")
    await expect(rows).to_have_count(4)
    await expect(row(page, "S1 Cy")).to_contain_text("South")  # each row names its site

    # North: three open rooms, two without credit (by hand: N1 and N2 have none).
    site = page.locator("#list-site")
    await expect(site.locator("option")).to_have_text(
        [
            "All sites",
            "Home (0 of 0 cut off)",
            "North (2 of 3 cut off)",
            "South (1 of 1 cut off)",
        ]
    )
    await site.select_option(str(north["id"]))
    await expect(rows).to_have_count(3)
    await expect(page.locator("#accounts tbody")).not_to_contain_text("S1 Cy")

    # A new room goes to the site chosen for it.
    await page.get_by_label("Room and tenant").fill("S2 Eve")
    await page.locator("#new-site").select_option(str(south["id"]))
    await page.get_by_role("button", name="Create account").click()
    await site.select_option(str(south["id"]))
    await expect(rows).to_have_count(2)
    found = await ledger.ok("GET", f"/api/v1/accounts?site={south['id']}&q=S2")
    assert [a["name"] for a in found["accounts"]] == ["S2 Eve"]
