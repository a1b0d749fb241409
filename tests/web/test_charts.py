"""Charts on the tenant's pay page and on the landlord's account page (issue 25), in a browser.

Expected: each page draws its chart with uPlot, which the ledger serves itself (``ui/vendor/`` on
the private listener, ``pay-assets/vendor/`` on the public one), so a page that may reach nothing
but the ledger (as offline) asks nothing of anyone else and breaks no Content-Security-Policy
rule; next to each chart a table lists the same numbers. The numbers are worked out by hand from
a flat tariff (USE); the tenant reads this month's totals and what happens next to the supply;
the landlord's 30 / 90 / 365 days buttons change the period. The vendor routes serve the
library's script and stylesheet and nothing else of their folder.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from playwright.async_api import Browser, Locator, Page, Route, expect
from prepaid_ledger.server import start_sites
from prepaid_ledger.web import tenant_page
from prepaid_ledger.web.i18n import speaker
from prepaid_meter_contract.resources import Account as AccountView
from prepaid_meter_contract.resources import Supply
from prepaid_meter_contract.vocabulary import SupplyReason
from yarl import URL

from tests.ledger.conftest import Ledger, free_port, make_settings
from tests.ledger.test_pay_page import running_public_ledger
from tests.web.conftest import IMAGES, screenshot
from tests.web.test_landlord_ui import sign_in

pytestmark = pytest.mark.usefixtures("socket_enabled")

TZ = ZoneInfo("Europe/Berlin")
#: (days ago, kWh used between 10:00 and 12:00 local time that day, what that cost in cents) on a
#: flat tariff of 0.30 EUR/kWh without standing charge, worked out by hand:
#:   200 days ago 2.5 kWh x 0.30 = 0.75 EUR     4 days ago 3.5 kWh x 0.30 = 1.05 EUR
#:    45 days ago 4   kWh x 0.30 = 1.20 EUR     2 days ago 1.5 kWh x 0.30 = 0.45 EUR
#:                                              yesterday  2   kWh x 0.30 = 0.60 EUR
#: Every amount is whole cents, so the ledger's cumulative rounding moves none of them.
USE = [(200, "2.5", 75), (45, "4", 120), (4, "3.5", 105), (2, "1.5", 45), (1, "2", 60)]
VENDOR_JS = "uPlot.iife.min.js"


@dataclass
class Seeded:
    ledger: Ledger
    account: dict[str, Any]
    pay_link: str
    today: date


def day_of(ago: int, today: date) -> str:
    return (today - timedelta(days=ago)).isoformat()


@contextlib.asynccontextmanager
async def seeded_ledger(tmp_path: Path) -> AsyncIterator[Seeded]:
    """Both listeners, the public one at the public base URL; one account with USE charged."""
    port = free_port()
    settings = make_settings(
        tmp_path,
        None,
        default_currency="EUR",
        default_timezone="Europe/Berlin",
        public_base_url=f"http://127.0.0.1:{port}",
    )
    listeners = await start_sites(
        settings,
        host="127.0.0.1",
        port=0,
        public_host="127.0.0.1",
        public_port=port,
        shutdown_timeout=2,
    )
    try:
        async with aiohttp.ClientSession() as http:
            ledger = Ledger(listeners.private_url, http, settings, listeners.public_url)
            assert ledger.public_url == settings.public_base_url
            tariff = await ledger.tariff(name="House flat", price="0.30")
            account = await ledger.account(name="Room 3 - Mia")
            meter = await ledger.meter(account["id"], tariff["id"])
            await ledger.topup(account["id"], 5000, "cash-3")
            today = datetime.now(TZ).date()
            total, readings = Decimal(0), []
            for ago, kwh, _cents in USE:
                day = today - timedelta(days=ago)
                for hour, value in ((10, total), (12, total + Decimal(kwh))):
                    at = datetime.combine(day, time(hour), tzinfo=TZ)
                    readings.append(
                        {"meter_id": meter["id"], "value": str(value), "at": at.isoformat()}
                    )
                total += Decimal(kwh)
            result = await ledger.ok("POST", "/api/v1/readings", json={"readings": readings})
            (ingest,) = result["meters"]
            assert (ingest["baseline"], ingest["accepted"]) == (1, len(USE) * 2 - 1)
            # 0.75 + 1.20 + 1.05 + 0.45 + 0.60 = 4.05 EUR charged: 50.00 - 4.05 = 45.95 EUR.
            assert await ledger.balance(account["id"]) == 4595
            issued = await ledger.ok("POST", f"/api/v1/accounts/{account['id']}/pay-link")
            yield Seeded(ledger, account, str(issued["url"]), today)
    finally:
        await listeners.cleanup()


@dataclass
class Asked:
    """What a page asked for: of its own origin, and of anyone else."""

    own: list[str]
    elsewhere: list[str]


@contextlib.asynccontextmanager
async def offline_page(
    browser: Browser, origin: str, width: int, height: int
) -> AsyncIterator[tuple[Page, Asked]]:
    """A page of WIDTH x HEIGHT that reaches ORIGIN only (as offline), watching for CSP breaches."""
    context = await browser.new_context(viewport={"width": width, "height": height})
    context.set_default_timeout(10_000)
    asked = Asked([], [])

    async def handle(route: Route) -> None:
        url = route.request.url
        if url.startswith(origin + "/"):
            asked.own.append(url)
            await route.continue_()
        else:
            asked.elsewhere.append(url)
            await route.abort("internetdisconnected")

    try:
        page = await context.new_page()
        await page.route("**/*", handle)
        await page.add_init_script(
            "document.addEventListener('securitypolicyviolation', e =>"
            " (window.cspViolations = (window.cspViolations || []).concat(e.violatedDirective)));"
        )
        yield page, asked
    finally:
        await context.close()


#: The chart's canvas, measured in one go (a live refresh may draw it anew at any moment).
_CANVAS = """el => {
  const c = el.querySelector(".uplot canvas");
  if (!c) { return null; }
  const box = c.getBoundingClientRect();
  const alpha = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
  let painted = 0;
  for (let i = 3; i < alpha.length; i += 4) { if (alpha[i] > 0) { painted += 1; } }
  return { width: box.width, height: box.height, painted };
}"""


async def assert_chart_drawn(chart: Locator) -> None:
    """uPlot's root is there and its canvas has a size and painted pixels."""
    await expect(chart.locator(".uplot canvas")).to_be_visible()
    for _ in range(50):
        found = await chart.evaluate(_CANVAS)
        if found and found["painted"] > 500:  # bars, axes and grid, not a blank canvas
            break
        await asyncio.sleep(0.1)
    assert found is not None
    assert found["width"] > 100
    assert found["height"] > 100
    assert found["painted"] > 500


async def table_rows(table: Locator) -> list[list[str]]:
    rows = table.locator("tbody tr")
    return [
        [cell.strip() for cell in await rows.nth(i).locator("th, td").all_inner_texts()]
        for i in range(await rows.count())
    ]


async def test_tenant_sees_use_and_cost_per_day_offline_on_a_phone(
    browser: Browser, tmp_path: Path
) -> None:
    async with (
        seeded_ledger(tmp_path) as seeded,
        offline_page(browser, seeded.ledger.public_url, 390, 844) as (page, asked),
    ):
        await page.goto(seeded.pay_link)
        await expect(page.locator("#balance")).to_have_text("45.95 EUR")
        # Days left and the top-ups are still there; what happens next is said.
        await expect(page.locator("#days-left")).not_to_have_text("")
        await expect(page.locator("#orders")).to_contain_text("50.00 EUR")
        await expect(page.locator("#supply-next")).to_have_text(
            "Supply stays on while you have credit: top up before it runs out."
        )
        await assert_chart_drawn(page.locator("#usage-chart"))

        # The table: the last 30 days that were charged (200 and 45 days ago are older).
        await page.get_by_text("The numbers as a table").click()
        table = page.locator("#usage-table")
        await expect(table).to_be_visible()
        headers = [h.strip() for h in await table.locator("thead th").all_inner_texts()]
        assert headers == ["Day", "Use (kWh)", "Cost"]
        today = seeded.today
        assert await table_rows(table) == [
            [day_of(4, today), "3.5", "1.05 EUR"],
            [day_of(2, today), "1.5", "0.45 EUR"],
            [day_of(1, today), "2", "0.60 EUR"],
        ]

        # This month so far: those of the recent days that fall in it. Usually all three:
        # 3.5 + 1.5 + 2 = 7 kWh for 1.05 + 0.45 + 0.60 = 2.10 EUR.
        in_month = [
            (Decimal(kwh), cents)
            for ago, kwh, cents in USE
            if (today - timedelta(days=ago)).replace(day=1) == today.replace(day=1)
        ]
        kwh = sum((k for k, _ in in_month), Decimal(0))
        cents = sum(c for _, c in in_month)
        if len(in_month) == 3:
            assert (kwh, cents) == (Decimal(7), 210)
        await expect(page.locator("#month-use")).to_have_text(f"{kwh.normalize():f} kWh")
        await expect(page.locator("#month-cost")).to_have_text(f"{Decimal(cents).scaleb(-2):f} EUR")

        # Offline: nothing but the ledger was asked, the library came from it, no CSP breach.
        assert asked.elsewhere == []
        assert any(f"/pay-assets/vendor/{VENDOR_JS}?v=" in url for url in asked.own), asked
        assert await page.evaluate("typeof window.uPlot") == "function"
        assert await page.evaluate("window.cspViolations || []") == []
        assert await page.evaluate("document.documentElement.scrollWidth") <= 390
        await screenshot(page, "tenant-chart-390")


async def test_landlord_switches_the_chart_between_30_90_and_365_days(
    browser: Browser, tmp_path: Path
) -> None:
    async with (
        seeded_ledger(tmp_path) as seeded,
        offline_page(browser, seeded.ledger.base_url, 1280, 900) as (page, asked),
    ):
        await sign_in(page, seeded.ledger)
        await page.get_by_role("button", name="Open Room 3 - Mia").click()
        await expect(page.locator("#account-summary")).to_contain_text("balance 45.95 EUR")
        await assert_chart_drawn(page.locator("#account-chart"))
        await expect(page.locator("#account-legend span")).to_have_text(["flat"])

        await page.get_by_text("The numbers as a table").click()
        table = page.locator("#account-chart-table")
        await expect(table).to_be_visible()
        headers = [h.strip() for h in await table.locator("thead th").all_inner_texts()]
        assert headers == ["Day", "flat", "Total"]
        today = seeded.today
        recent = [
            [day_of(4, today), "1.05 EUR", "1.05 EUR"],
            [day_of(2, today), "0.45 EUR", "0.45 EUR"],
            [day_of(1, today), "0.60 EUR", "0.60 EUR"],
        ]
        assert await table_rows(table) == recent
        buttons = page.locator("#account-range button")
        await expect(buttons).to_have_text(["30 days", "90 days", "365 days"])
        await expect(buttons.nth(0)).to_have_attribute("aria-pressed", "true")

        await page.get_by_role("button", name="90 days").click()
        await expect(buttons.nth(1)).to_have_attribute("aria-pressed", "true")
        await expect(buttons.nth(0)).to_have_attribute("aria-pressed", "false")
        await expect(table.locator("tbody tr")).to_have_count(4)
        assert await table_rows(table) == [[day_of(45, today), "1.20 EUR", "1.20 EUR"], *recent]

        await page.get_by_role("button", name="365 days").click()
        await expect(table.locator("tbody tr")).to_have_count(5)
        assert (await table_rows(table))[:2] == [
            [day_of(200, today), "0.75 EUR", "0.75 EUR"],
            [day_of(45, today), "1.20 EUR", "1.20 EUR"],
        ]
        await assert_chart_drawn(page.locator("#account-chart"))
        IMAGES.mkdir(parents=True, exist_ok=True)
        await page.locator("#account-page").screenshot(path=str(IMAGES / "landlord-room-chart.png"))

        await page.get_by_role("button", name="30 days").click()
        await expect(table.locator("tbody tr")).to_have_count(3)
        assert asked.elsewhere == []
        assert any(f"/ui/vendor/{VENDOR_JS}?v=" in url for url in asked.own), asked
        assert await page.evaluate("window.cspViolations || []") == []


async def test_vendor_files_are_served_and_nothing_else(tmp_path: Path) -> None:
    async with seeded_ledger(tmp_path) as seeded:
        ledger = seeded.ledger
        for base, folder in (
            (ledger.base_url, "/ui/vendor"),
            (ledger.public_url, "/pay-assets/vendor"),
        ):
            for name, kind in ((VENDOR_JS, "text/javascript"), ("uPlot.min.css", "text/css")):
                async with ledger.http.get(f"{base}{folder}/{name}") as resp:
                    assert resp.status == 200, (base, name)
                    assert resp.content_type == kind
                    assert resp.headers["Cache-Control"] == "public, max-age=31536000, immutable"
                    assert resp.headers["X-Content-Type-Options"] == "nosniff"
                    assert "uplot" in (await resp.text()).lower()
            for name in (
                "uplot.integrity",  # the fetch script's stamp, in the same folder
                "uPlot.LICENSE.txt",
                "uPlot.esm.js",
                "..%2Flandlord.js",
                "..%2F..%2Fapp.py",
                "%2e%2e%2Flandlord.js",
            ):
                url = URL(f"{base}{folder}/{name}", encoded=True)
                async with ledger.http.get(url) as resp:
                    assert resp.status == 404, (base, name)
            url = URL(f"{base}{folder}/../landlord.js", encoded=True)
            async with ledger.http.get(url) as resp:
                assert resp.status == 404
                assert "use strict" not in await resp.text()
        # The public listener has no landlord page, so no ui/ at all.
        async with ledger.http.get(f"{ledger.public_url}/ui/vendor/{VENDOR_JS}") as resp:
            assert resp.status == 404


async def test_a_day_adds_up_two_meters_and_the_standing_charge(tmp_path: Path) -> None:
    # Yesterday, by hand: electricity at 0.30 EUR/kWh in steps of 0.5, 0.5, 0.5 and 1 kWh =
    # 2.5 kWh for 0.75 EUR; water at 2.00 EUR/m3 with 0.10 EUR a day standing charge, 0.125 m3
    # for 0.25 EUR + 0.10 EUR. The day: 2.5 kWh, 0.125 m3, 0.75 + 0.25 + 0.10 = 1.10 EUR.
    settings = make_settings(tmp_path, None, default_currency="EUR")
    async with running_public_ledger(settings) as ledger:
        power = await ledger.tariff(name="Power", price="0.30")
        water = await ledger.tariff(
            name="Water", unit="m3", price="2.00", standing_charge_minor_per_day=10
        )
        account = await ledger.account(name="Room 5 - Ola")
        meters = [
            await ledger.meter(account["id"], power["id"]),
            await ledger.meter(account["id"], water["id"], unit="m3"),
        ]
        await ledger.topup(account["id"], 2000, "cash-5")
        yesterday = datetime.now(TZ).date() - timedelta(days=1)
        at = {
            hour: datetime.combine(yesterday, time(hour), tzinfo=TZ).isoformat()
            for hour in range(8, 13)
        }
        steps = {
            meters[0]["id"]: [(8, "0"), (9, "0.5"), (10, "1.0"), (11, "1.5"), (12, "2.5")],
            meters[1]["id"]: [(8, "0"), (12, "0.125")],
        }
        readings = [
            {"meter_id": meter, "value": value, "at": at[hour]}
            for meter, values in steps.items()
            for hour, value in values
        ]
        await ledger.ok("POST", "/api/v1/readings", json={"readings": readings})
        assert await ledger.balance(account["id"]) == 2000 - 110
        # The statement says the same, by tariff band (the flat bands of both meters together).
        statement = await ledger.ok(
            "GET", f"/api/v1/accounts/{account['id']}/statement?from={yesterday.isoformat()}"
        )
        lines = [
            (c["day"], c["band"], Decimal(c["quantity"]), c["amount_minor"])
            for c in statement["consumption"]
        ]
        assert lines == [(yesterday.isoformat(), "flat", Decimal("2.625"), 100)]
        assert [s["amount_minor"] for s in statement["standing_charges"]] == [10]
        link = (await ledger.ok("POST", f"/api/v1/accounts/{account['id']}/pay-link"))["url"]
        async with ledger.http.get(link) as resp:
            page = await resp.text()
        table = page.split("<table id=usage-table>", 1)[1].split("</table>", 1)[0]
        cells = [
            re.sub(r"<[^>]+>", "", cell).strip()
            for cell in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", table, re.DOTALL)
        ]
        assert cells == [
            "Day", "Use (kWh)", "Use (m3)", "Cost",
            yesterday.isoformat(), "2.5", "0.125", "1.10 EUR",
        ]  # fmt: skip


@pytest.mark.parametrize(
    ("reason", "allowed", "cut_in", "expected"),
    [
        (SupplyReason.CREDIT, True, None, "Supply stays on while you have credit"),
        (SupplyReason.GRACE, True, 90, "Supply will be cut on {when} unless you top up (grace"),
        (SupplyReason.FRIENDLY_HOURS, True, 600, "never cut during friendly hours. Supply will"),
        (SupplyReason.FRIENDLY_HOURS, True, None, "Supply is not cut yet: top up to keep it on."),
        (SupplyReason.HOLIDAY, True, 600, "Supply will be cut on {when} unless you top up."),
        (SupplyReason.EMERGENCY_CREDIT, True, None, "emergency credit keeps the supply on: 5.00"),
        (SupplyReason.EXHAUSTED, False, None, "Supply is off because the credit is used up."),
        (
            SupplyReason.AWAITING_RECONNECT_MARGIN,
            False,
            None,
            "until the balance reaches 10.00 EUR: top up at least 12.50 EUR more",
        ),
    ],
)
def test_what_happens_next(
    reason: SupplyReason, allowed: bool, cut_in: int | None, expected: str
) -> None:
    changes_at = None
    if cut_in is not None:
        changes_at = datetime(2026, 12, 6, 13, 5, tzinfo=ZoneInfo("UTC")) + timedelta(
            minutes=cut_in
        )
    account = AccountView.model_validate(
        {
            "id": 1,
            "number": "100000017",
            "name": "Room 3",
            "currency": "EUR",
            "currency_exponent": 2,
            "timezone": "Europe/Berlin",
            "status": "open",
            "balance_minor": -250,
            "emergency_credit_minor": 500,
            "emergency_credit_remaining_minor": 500,
            "debt_minor": 250,
            "protected": False,
            "low_balance_minor": [500, 100],
            "low_balance_level": 2,
            "friendly_hours": {},
            "grace_minutes": 90,
            "reconnect_margin_minor": 1000,
            "supply": Supply(allowed=allowed, reason=reason, changes_at=changes_at),
            "created_at": "2026-12-01T00:00:00Z",
        }
    )
    said = speaker("en").say(tenant_page.next_step_words(account))
    # 13:05 UTC + 90 min is 15:35 in Berlin (UTC+1 in December); + 600 min is 00:05 the next day.
    when = {90: "2026-12-06 15:35", 600: "2026-12-07 00:05", None: ""}[cut_in]
    assert expected.format(when=when) in said, said
    assert set(tenant_page.NEXT_WORDS) == set(SupplyReason)
