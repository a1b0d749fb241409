"""The landlord UI in a real browser (login, live list, top-up, pay link); its ingress rules."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from playwright.async_api import Locator, Page, expect

from tests.ledger.conftest import ADMIN_TOKEN, Ledger, make_settings, running_ledger
from tests.ledger.test_pay_page import running_public_ledger
from tests.ledger.webhook_helpers import checkout_completed, stripe_delivery
from tests.web.conftest import screenshot

pytestmark = pytest.mark.usefixtures("socket_enabled")


@pytest.fixture
async def ledger(tmp_path: Path) -> AsyncIterator[Ledger]:
    settings = make_settings(
        tmp_path, None, default_currency="EUR", default_timezone="Europe/Berlin"
    )
    async with running_public_ledger(settings) as running:  # public_base_url: its own address
        yield running


async def sign_in(page: Page, ledger: Ledger) -> None:
    await page.goto(ledger.base_url + "/")
    await expect(page).to_have_url(ledger.base_url + "/login")
    await page.get_by_label("Admin token").fill("not-the-token")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.locator("#login-error")).to_have_text("That is not the admin token.")
    await page.get_by_label("Admin token").fill(ADMIN_TOKEN)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", name="Accounts")).to_be_visible()
    await expect(page.locator("#live")).to_have_text("live")


def row(page: Page, name: str) -> Locator:
    return page.locator("#accounts tbody tr", has_text=name)


async def test_landlord_creates_tops_up_and_watches_balances_live(
    page: Page, ledger: Ledger
) -> None:
    await ledger.account(name="Room 1 - Ana")
    await sign_in(page, ledger)
    await expect(row(page, "Room 1 - Ana")).to_contain_text("0.00 EUR")

    # A bad currency is refused with the ledger's message; nothing is created.
    await page.get_by_label("Room and tenant").fill("Room 2 - Ben")
    await page.get_by_label("Currency", exact=True).fill("EUX")
    await page.get_by_role("button", name="Create account").click()
    await expect(page.locator("#new-error")).to_contain_text("currency")
    assert len((await ledger.ok("GET", "/api/v1/accounts"))["accounts"]) == 1
    await page.get_by_label("Currency", exact=True).fill("EUR")
    await page.get_by_role("button", name="Create account").click()
    await expect(row(page, "Room 2 - Ben")).to_contain_text("0.00 EUR")
    accounts = (await ledger.ok("GET", "/api/v1/accounts"))["accounts"]
    ben = next(a for a in accounts if a["name"] == "Room 2 - Ben")
    assert ben["timezone"] == "Europe/Berlin"  # the add-on's default time zone

    # A top-up made elsewhere (cash at the door, via the API) shows without reloading.
    await page.evaluate("window.notReloaded = true")
    await ledger.topup(ben["id"], 1999, "cash-1")
    await expect(row(page, "Room 2 - Ben").locator(".balance")).to_have_text("19.99 EUR")

    # A top-up from the UI: a typo is refused in the dialog, then 7.50 EUR is credited.
    await page.get_by_role("button", name="Top up Room 2 - Ben").click()
    await page.get_by_label("Amount (EUR)").fill("7.505")
    await page.get_by_role("button", name="Credit the account").click()
    await expect(page.locator("#topup-error")).to_have_text("use at most 2 decimal places")
    await page.get_by_label("Amount (EUR)").fill("7,50")
    await page.get_by_label("Receipt or reference (optional)").fill("receipt 0042")
    await page.get_by_role("button", name="Credit the account").click()
    await expect(row(page, "Room 2 - Ben").locator(".balance")).to_have_text("27.49 EUR")
    assert await ledger.balance(ben["id"]) == 2749
    assert await page.evaluate("window.notReloaded") is True

    # Search and sort.
    await page.get_by_label("Search by room, tenant or account number").fill("ben")
    await expect(page.locator("#accounts tbody tr")).to_have_count(1)
    await page.get_by_label("Search by room, tenant or account number").fill("")
    await page.get_by_role("button", name="Balance").click()
    await expect(page.locator("#accounts tbody tr").first).to_contain_text("Room 1 - Ana")
    await page.get_by_role("button", name="Balance").click()
    await expect(page.locator("#accounts tbody tr").first).to_contain_text("Room 2 - Ben")
    await screenshot(page, "landlord-accounts")

    # The pay link for the tenant, with its QR code.
    page.once("dialog", lambda dialog: dialog.accept())
    await page.get_by_role("button", name="Pay link for Room 2 - Ben").click()
    await expect(page.locator("#link-qr svg")).to_be_visible()
    await expect(page.locator("#link-notice")).to_be_hidden()
    link = await page.locator("#link-url").inner_text()
    assert link.startswith(f"{ledger.settings.public_base_url}/pay/plt_")
    async with aiohttp.ClientSession() as http, http.get(link) as resp:
        assert resp.status == 200
        assert "27.49 EUR" in await resp.text()


async def test_phone_width_and_keyboard(page: Page, ledger: Ledger) -> None:
    await ledger.account(name="Room 3 - Chen")
    await page.set_viewport_size({"width": 390, "height": 844})
    await sign_in(page, ledger)
    await page.get_by_label("Room and tenant").focus()
    await page.keyboard.type("Room 5 - Dee")
    await page.keyboard.press("Enter")
    await expect(row(page, "Room 5 - Dee")).to_be_visible()
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390  # nothing overflows the phone's width (the table scrolls inside)
    # Every input on the page has a label.
    unlabeled = await page.evaluate(
        "[...document.querySelectorAll('input')]"
        ".filter(i => !i.labels.length && !i.getAttribute('aria-label')).length"
    )
    assert unlabeled == 0


async def test_ingress_is_trusted_only_from_the_supervisor(tmp_path: Path) -> None:
    ingress = {"X-Ingress-Path": "/api/hassio_ingress/abc123", "X-Remote-User-Name": "owner"}
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
    trusted = make_settings(tmp_path / "a", None, ingress_proxy="127.0.0.1")
    async with running_ledger(trusted) as ledger:
        async with ledger.http.get(ledger.base_url + "/", headers=ingress) as resp:
            assert resp.status == 200
            assert '<base href="/api/hassio_ingress/abc123/">' in await resp.text()
        status, body = await ledger.call("GET", "/api/v1/whoami", token=None, headers=ingress)
        assert (status, body["scope"]) == (200, "admin")
        # A state change through the browser session needs the header a cross-site form lacks.
        status, _ = await ledger.call(
            "POST",
            "/api/v1/accounts",
            json={"name": "x", "currency": "EUR"},
            token=None,
            headers=ingress,
        )
        assert status == 403
        await ledger.call(
            "POST",
            "/api/v1/accounts",
            json={"name": "Room 9", "currency": "EUR", "timezone": "UTC"},
            token=None,
            headers=ingress | {"X-Requested-With": "prepaid-ledger"},
        )
        (entry, *_) = (await ledger.ok("GET", "/api/v1/audit"))["entries"]
        assert entry["actor"] == "ingress:owner"
    elsewhere = make_settings(tmp_path / "b", None, ingress_proxy="172.30.32.2")
    async with running_ledger(elsewhere) as ledger:
        async with ledger.http.get(
            ledger.base_url + "/", headers=ingress, allow_redirects=False
        ) as resp:
            assert resp.status == 303
            assert resp.headers["Location"] == "login"
        status, _ = await ledger.call("GET", "/api/v1/whoami", token=None, headers=ingress)
        assert status == 401


async def test_without_public_base_url_the_page_says_pay_links_need_it(
    page: Page, tmp_path: Path
) -> None:
    async with running_ledger(make_settings(tmp_path, None)) as ledger:
        await ledger.account(name="Room 4 - Dan")
        await sign_in(page, ledger)
        # The account page says why there is no pay link ...
        await page.get_by_role("button", name="Open Room 4 - Dan").click()
        notice = page.locator("#account-pay-link-notice")
        await expect(notice).to_be_visible()
        await expect(notice).to_contain_text("public_base_url")
        # ... and so does the pay-link dialog, instead of a link made from this page's address.
        await page.get_by_role("button", name="Pay link for Room 4 - Dan").click()
        await expect(page.locator("#link-notice")).to_be_visible()
        await expect(page.locator("#link-notice")).to_contain_text("public_base_url")
        await expect(page.locator("#link-url")).to_be_hidden()
        await expect(page.locator("#link-qr svg")).to_have_count(0)
        await expect(page.locator("#link-print")).to_be_hidden()
        entries = (await ledger.ok("GET", "/api/v1/audit"))["entries"]
        assert [e for e in entries if e["action"].startswith("token.")] == []


async def test_with_public_base_url_the_notice_stays_hidden(page: Page, ledger: Ledger) -> None:
    await ledger.account(name="Room 8 - Hal")
    await sign_in(page, ledger)
    await page.get_by_role("button", name="Open Room 8 - Hal").click()
    await expect(page.locator("#account-summary")).to_contain_text("balance 0.00 EUR")
    await expect(page.locator("#account-pay-link-notice")).to_be_hidden()


async def deliver(ledger: Ledger, event: dict[str, Any]) -> dict[str, Any]:
    body, headers = stripe_delivery(event)
    status, result = await ledger.call(
        "POST", "/webhooks/stripe", data=body, headers=headers, token=None
    )
    assert status == 200, result
    return dict(result)


async def test_orders_board_resolves_orders_with_a_reason(page: Page, ledger: Ledger) -> None:
    account = await ledger.account(name="Room 4 - Eva")
    processing = await deliver(
        ledger, checkout_completed(account["id"], 1500, payment_status="unpaid")
    )
    stray = await deliver(ledger, checkout_completed("999999999", 800))
    assert (processing["status"], stray["status"]) == ("processing", "needs_attention")
    await sign_in(page, ledger)
    board = page.locator("#orders tbody tr")
    await expect(board).to_have_count(2)
    await expect(page.locator(f"#orders tr[data-order='{stray['order_id']}']")).to_contain_text(
        "needs attention"
    )
    processing_row = page.locator(f"#orders tr[data-order='{processing['order_id']}']")
    await expect(processing_row).to_contain_text("Waiting for the payment provider")
    # The bank confirmed the processing payment: credit it by hand (to its own account, chosen
    # already), with a reason.
    await page.get_by_role(
        "button", name=f"Credit to an account: order {processing['order_id']}"
    ).click()
    grouped = " ".join(account["number"][i : i + 3] for i in (0, 3, 6))
    await expect(page.locator("#credit-chosen")).to_have_text(
        f"Credit to: Room 4 - Eva, account {grouped}"
    )
    await page.get_by_role("button", name="Credit this payment").click()
    await expect(page.locator("#credit-reason-error")).to_have_text("a reason is required")
    credit_reason = page.locator("#credit-dialog").get_by_label(
        "Reason (required, kept in the audit log)"
    )
    await credit_reason.fill("bank statement 12/03")
    await page.get_by_role("button", name="Credit this payment").click()
    await expect(row(page, "Room 4 - Eva").locator(".balance")).to_have_text("15.00 EUR")
    # The payment for an unknown account number: mark it failed.
    await page.get_by_role("button", name=f"Mark failed: order {stray['order_id']}").click()
    await page.get_by_role("button", name="Confirm: mark failed").click()
    await expect(page.locator("#action-error")).to_have_text("a reason is required")
    action_reason = page.locator("#action-dialog").get_by_label(
        "Reason (required, kept in the audit log)"
    )
    await action_reason.fill("not our tenant")
    await page.get_by_role("button", name="Confirm: mark failed").click()
    await expect(board).to_have_count(0)
    await expect(page.locator("#orders-empty")).to_be_visible()
    audit = (await ledger.ok("GET", "/api/v1/audit"))["entries"]
    reasons = {e["action"]: e["after"]["reason"] for e in audit if e["action"].startswith("topup.")}
    assert reasons == {"topup.credit": "bank statement 12/03", "topup.fail": "not our tenant"}
    assert await ledger.balance(account["id"]) == 1500
    await screenshot(page, "landlord-orders-resolved")


async def test_tariff_form_shows_the_error_at_the_field(page: Page, ledger: Ledger) -> None:
    await sign_in(page, ledger)
    await page.get_by_label("Tariff name").fill("House flat")
    await page.get_by_label("Price per unit", exact=True).fill("0.3x")
    await page.get_by_role("button", name="Create tariff").click()
    await expect(page.locator("#tariff-price-error")).to_contain_text("price")
    await expect(page.get_by_label("Price per unit", exact=True)).to_have_attribute(
        "aria-invalid", "true"
    )
    await expect(page.locator("#tariff-name-error")).to_have_text("")
    assert (await ledger.ok("GET", "/api/v1/tariffs"))["tariffs"] == []
    await page.get_by_label("Price per unit", exact=True).fill("0,3125")
    # The standing charge in euros, as a landlord says it (never minor units).
    standing = page.get_by_label("Standing charge per day (in the tariff's currency, e.g. 0.15)")
    await standing.fill("0.155")
    await page.get_by_role("button", name="Create tariff").click()
    await expect(page.locator("#tariff-standing_charge_minor_per_day-error")).to_have_text(
        "standing charge: use at most 2 decimal places"
    )
    await standing.fill("0,15")
    await page.get_by_role("button", name="Create tariff").click()
    await expect(page.locator("#tariffs tbody tr")).to_contain_text("0.3125 EUR/kWh")
    await expect(page.locator("#tariffs tbody tr")).to_contain_text("from the start: 0.3125")
    await expect(page.locator("#tariff-price-error")).to_have_text("")
    # A price change from a future date: a second version, today's price unchanged.
    await page.get_by_label("New price per unit").fill("0.35")
    await page.get_by_label("Effective from").fill("2099-01-01T00:00")
    await page.get_by_role("button", name="Schedule the change").click()
    await expect(page.locator("#tariffs tbody tr")).to_contain_text("0.35")
    (tariff,) = (await ledger.ok("GET", "/api/v1/tariffs"))["tariffs"]
    assert tariff["price"] == "0.3125"
    assert tariff["standing_charge_minor_per_day"] == 15  # 0.15 EUR in cents
    assert [v["price"] for v in tariff["versions"]] == ["0.3125", "0.35"]
    await screenshot(page, "landlord-tariffs")


async def test_account_page_chart_topups_and_statement(page: Page, ledger: Ledger) -> None:
    tariff = await ledger.tariff(
        name="Day/night",
        kind="tou",
        price=None,
        segments=[{"start": "00:00", "price": "0.10"}, {"start": "12:00", "price": "0.30"}],
    )
    account = await ledger.account(name="Room 6 - Fay", timezone="UTC")
    meter = await ledger.meter(account["id"], tariff["id"])
    await ledger.topup(account["id"], 1000, "cash-6")
    noon = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0) - timedelta(days=1)
    readings = [
        {"meter_id": meter["id"], "value": value, "at": at.isoformat()}
        for value, at in (
            ("0", noon - timedelta(hours=12)),  # from midnight: a complete day of data
            ("0", noon - timedelta(hours=1)),
            ("10", noon + timedelta(hours=1)),
        )
    ]
    await ledger.ok("POST", "/api/v1/readings", json={"readings": readings})
    # 5 kWh before noon at 0.10 and 5 after at 0.30: 0.50 + 1.50 = 2.00 EUR; 10.00 - 2.00 = 8.00.
    assert await ledger.balance(account["id"]) == 800
    await sign_in(page, ledger)
    # One complete day at 2.00 EUR: 8.00 EUR lasts 4 days.
    await expect(row(page, "Room 6 - Fay").locator(".days-left")).to_have_text("4.0")
    await page.get_by_role("button", name="Open Room 6 - Fay").click()
    await expect(page.locator("#account-summary")).to_contain_text("balance 8.00 EUR")
    await expect(page.locator("#account-chart .uplot canvas")).to_be_visible()
    await expect(page.locator("#account-legend span")).to_have_count(2)  # one day, two bands
    colours = page.locator("#account-legend i")
    assert len({await colours.nth(i).evaluate("i => i.style.background") for i in range(2)}) == 2
    rows = page.locator("#account-chart-table tbody tr")
    await expect(rows).to_have_count(1)
    await expect(rows).to_contain_text("0.50 EUR")
    await expect(rows).to_contain_text("1.50 EUR")
    await expect(rows).to_contain_text("2.00 EUR")  # the day's total
    await expect(page.locator("#account-topups")).to_contain_text("10.00 EUR · succeeded")
    await screenshot(page, "landlord-account")
    async with page.expect_download() as download_info:
        await page.locator("#account-csv").click()
    saved = await (await download_info.value).path()
    csv = await asyncio.to_thread(Path(saved).read_text, encoding="utf-8")
    assert "closing_balance" in csv
    assert csv.strip().splitlines()[-1].endswith(",800")
    await page.evaluate("window.print = () => {}")
    await page.get_by_role("button", name="Printable statement").click()
    await expect(page.locator("#account-statement")).to_contain_text("Closing balance")
    await expect(page.locator("#account-statement tr").last).to_contain_text("8.00 EUR")


async def test_batch_top_up_gives_one_result_per_room(page: Page, ledger: Ledger) -> None:
    first = await ledger.account(name="Room 7 - Gus")
    second = await ledger.account(name="Room 8 - Hal")
    await sign_in(page, ledger)
    await page.get_by_label("Select Room 7 - Gus").check()
    await page.get_by_label("Select Room 8 - Hal").check()
    await ledger.ok("POST", f"/api/v1/accounts/{second['id']}/close", json={"reason": "moved out"})
    await page.get_by_label("Amount per room").fill("12.5")
    await page.get_by_role("button", name="Top up selected rooms").click()
    results = page.locator("#batch-results li")
    await expect(results).to_have_count(2)
    await expect(results.nth(0)).to_contain_text("Room 7 - Gus: credited")
    await expect(results.nth(1)).to_contain_text("Room 8 - Hal: not credited")
    await expect(row(page, "Room 7 - Gus").locator(".balance")).to_have_text("12.50 EUR")
    assert await ledger.balance(first["id"]) == 1250


async def test_time_of_use_tariff_from_the_form(page: Page, ledger: Ledger) -> None:
    await sign_in(page, ledger)
    await page.get_by_label("Tariff name").fill("Day and night")
    await page.get_by_label("Kind", exact=True).select_option("tou")
    await expect(page.get_by_label("Price per unit", exact=True)).to_be_hidden()
    bands = page.get_by_label("Bands: one per line, start time, price and an optional name")
    await bands.fill("00:00 0.18 night\n07:00 0,3x day")
    await page.get_by_role("button", name="Create tariff").click()
    await expect(page.locator("#tariff-segments-error")).to_contain_text("segments[1].price")
    assert (await ledger.ok("GET", "/api/v1/tariffs"))["tariffs"] == []
    await bands.fill("00:00 0.18 night\n07:00 0,32 day\n22:00 0.18 night")
    await page.get_by_role("button", name="Create tariff").click()
    await expect(page.locator("#tariffs tbody tr")).to_contain_text("day from 07:00: 0.32")
    (tariff,) = (await ledger.ok("GET", "/api/v1/tariffs"))["tariffs"]
    assert tariff["kind"] == "tou"
    assert [(s["start"], s["price"], s["band"]) for s in tariff["segments"]] == [
        ("00:00", "0.18", "night"),
        ("07:00", "0.32", "day"),
        ("22:00", "0.18", "night"),
    ]


async def test_sign_out_from_the_page_ends_the_session(page: Page, ledger: Ledger) -> None:
    # The page sends no referrer, so Chromium's form post says "Origin: null": Sec-Fetch-Site
    # (same-origin) is what lets the landlord's own Sign out through.
    await sign_in(page, ledger)
    await page.get_by_role("button", name="Sign out").click()
    await expect(page).to_have_url(ledger.base_url + "/login")
    await page.goto(ledger.base_url + "/")
    await expect(page).to_have_url(ledger.base_url + "/login")  # the session is gone
