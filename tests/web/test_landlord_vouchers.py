"""Vouchers in the landlord page, in a real browser: mint and print, sell at the counter, void."""

from __future__ import annotations

import io
import re
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import unquote

import pytest
import zxingcpp
from PIL import Image
from playwright.async_api import BrowserContext, Locator, Page, expect

from tests.ledger.conftest import Ledger, make_settings
from tests.ledger.test_pay_page import running_public_ledger
from tests.web.conftest import screenshot
from tests.web.test_landlord_ui import row, sign_in

pytestmark = pytest.mark.usefixtures("socket_enabled")


@pytest.fixture
async def ledger(tmp_path: Path) -> AsyncIterator[Ledger]:
    settings = make_settings(
        tmp_path, None, default_currency="EUR", default_timezone="Europe/Berlin"
    )
    async with running_public_ledger(settings) as running:
        yield running


async def scanned(qr: Locator) -> list[str]:
    """Return what a QR decoder reads in the rendered element (ZXing, as phones use it)."""
    image = Image.open(io.BytesIO(await qr.screenshot()))
    return [found.text for found in zxingcpp.read_barcodes(image)]


async def mint(page: Page, context: BrowserContext, value: str, count: str) -> Page:
    """Fill the mint form and return the cards page it opens in a new tab."""
    await page.get_by_label("Value per card (EUR)").fill(value)
    await page.get_by_label("Number of cards (1-1000)").fill(count)
    await page.get_by_label("Note on the cards (optional)").fill("Sold at <b>the desk</b>")
    async with context.expect_page() as opened:
        await page.get_by_role("button", name="Mint and print cards").click()
    cards = await opened.value
    await cards.wait_for_load_state()
    return cards


async def test_mint_print_sell_and_void(
    page: Page, context: BrowserContext, ledger: Ledger
) -> None:
    account = await ledger.account(name="Room 1 - Ana")
    await sign_in(page, ledger)
    await expect(page.locator("#voucher-batches-empty")).to_be_visible()
    cards = await mint(page, context, "12,50", "3")

    # The cards page: three codes of 20 digits, each with its QR code, and the CSV.
    await expect(cards.locator("article.voucher")).to_have_count(3)
    await expect(cards.locator(".voucher-qr svg path")).to_have_count(3)
    await expect(cards.locator(".warning")).to_contain_text("shown only this once")
    await expect(cards.locator("article.voucher").nth(1)).to_contain_text("2 / 3")
    await expect(cards.locator("article.voucher").first).to_contain_text("12.50 EUR")
    await expect(cards.locator(".voucher-note").first).to_have_text("Sold at <b>the desk</b>")
    codes = [
        re.sub(r"\s", "", text) for text in await cards.locator(".voucher-code").all_inner_texts()
    ]
    assert len(codes) == 3
    assert all(re.fullmatch(r"[0-9]{20}", code) for code in codes), codes
    href = await cards.locator("#csv").get_attribute("href")
    assert href is not None
    assert href.startswith("data:text/csv")
    lines = unquote(href.split(",", 1)[1]).strip().splitlines()
    assert lines[0] == "serial,code,value,currency,expires_at,batch,url"
    assert [line.split(",")[1].replace(" ", "") for line in lines[1:]] == codes
    scan_urls = [f"{ledger.base_url}/pay/voucher?code={code}" for code in codes]
    assert [line.split(",")[6] for line in lines[1:]] == scan_urls
    # A phone's camera reads the printed QR code as the scan address (a real decoder: ZXing).
    assert await scanned(cards.locator(".voucher-qr svg").first) == [scan_urls[0]]
    await cards.emulate_media(media="print")
    await expect(cards.locator(".screen-only")).to_be_hidden()
    await cards.emulate_media(media="screen")
    await screenshot(cards, "landlord-voucher-cards")
    await cards.close()

    # The batch in the list (the page refreshes it on its own).
    batch_row = page.locator("#voucher-batches tbody tr").first
    await expect(batch_row).to_contain_text("12.50 EUR")
    await expect(batch_row.locator(".batch-status")).to_have_text("active")
    await expect(page.get_by_label("Value per card (EUR)")).to_have_value("")

    # A cash sale: the code typed on the account's page credits it, once.
    await page.get_by_role("button", name="Open Room 1 - Ana").click()
    code_field = page.get_by_label("Redeem a voucher (cash sale): code")
    grouped = " ".join(codes[0][i : i + 4] for i in range(0, 20, 4))
    await code_field.fill(grouped)
    await page.get_by_role("button", name="Redeem for this account").click()
    await expect(page.locator("#account-voucher-result")).to_contain_text(
        "Credited 12.50 EUR: order #"
    )
    await expect(row(page, "Room 1 - Ana").locator(".balance")).to_have_text("12.50 EUR")
    assert await ledger.balance(account["id"]) == 1250
    await code_field.fill(codes[0])
    await page.get_by_role("button", name="Redeem for this account").click()
    await expect(page.locator("#account-voucher-error")).to_contain_text("already used")
    await expect(code_field).to_have_attribute("aria-invalid", "true")
    typo = codes[1][:-1] + str((int(codes[1][-1]) + 1) % 10)
    await code_field.fill(typo)
    await page.get_by_role("button", name="Redeem for this account").click()
    await expect(page.locator("#account-voucher-error")).to_contain_text("typo")
    assert await ledger.balance(account["id"]) == 1250
    await expect(batch_row.locator(".redeemed")).to_have_text("1")

    await void_and_check(page, ledger, account["id"], codes[1])


async def void_and_check(page: Page, ledger: Ledger, account_id: int, unused: str) -> None:
    """Void the batch: a reason is required; its unused codes are refused afterwards."""
    batch_row = page.locator("#voucher-batches tbody tr").first
    await batch_row.get_by_role("button", name=re.compile(r"Void batch \d+")).click()
    await page.get_by_role("button", name="Void the batch").click()
    await expect(page.locator("#void-error")).to_have_text("a reason is required")
    await (
        page.locator("#void-dialog")
        .get_by_label("Reason (required, kept in the audit log)")
        .fill("cards lost")
    )
    await page.get_by_role("button", name="Void the batch").click()
    await expect(batch_row.locator(".batch-status")).to_contain_text("void since")
    await expect(batch_row.get_by_role("button")).to_have_count(0)
    status, body = await ledger.call(
        "POST", "/api/v1/vouchers/redeem", json={"account": account_id, "code": unused}
    )
    assert (status, body["error"]["code"]) == (409, "voucher_void")
    await screenshot(page, "landlord-vouchers")


async def test_phone_width_refuses_extreme_input_and_mints_nothing(
    page: Page, context: BrowserContext, ledger: Ledger
) -> None:
    await ledger.account(name="Room 2 - Ben")
    await page.set_viewport_size({"width": 390, "height": 844})
    await sign_in(page, ledger)
    opened: list[Page] = []

    def record(new: Page) -> None:  # Playwright tags its handlers: no bound builtin methods
        opened.append(new)

    context.on("page", record)
    submit = page.get_by_role("button", name="Mint and print cards")
    value = page.get_by_label("Value per card (EUR)")
    count = page.get_by_label("Number of cards (1-1000)")
    for typed_value, typed_count, field, message in [
        ("5", "0", "count", "count must be a whole number from 1 to 1000"),
        ("5", "5000", "count", "count must be a whole number from 1 to 1000"),
        ("1.234", "3", "value", "value: use at most 2 decimal places"),
        ("", "3", "value", "value: enter an amount"),
    ]:
        await value.fill(typed_value)
        await count.fill(typed_count)
        await submit.click()
        await expect(page.locator(f"#voucher-{field}-error")).to_have_text(re.compile(message))
        await expect(page.locator(f"#voucher-{field}")).to_have_attribute("aria-invalid", "true")
    # A batch only for one account takes that account's currency.
    ben = await ledger.ok("GET", "/api/v1/accounts")
    await page.get_by_label("Only for account (optional)").select_option(
        str(ben["accounts"][0]["id"])
    )
    await expect(page.get_by_label("Voucher currency")).to_have_value("EUR")
    await page.wait_for_timeout(300)
    assert opened == []
    assert (await ledger.ok("GET", "/api/v1/vouchers/batches"))["batches"] == []
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390

    # Minted at phone width: one card per row, nothing wider than the phone.
    await value.fill("2")
    await count.fill("1")
    async with context.expect_page() as waiting:
        await submit.click()
    cards = await waiting.value
    await cards.set_viewport_size({"width": 390, "height": 844})
    await expect(cards.locator("article.voucher")).to_have_count(1)
    await expect(cards.locator("article.voucher")).to_contain_text("1 / 1")
    assert await cards.evaluate("document.documentElement.scrollWidth") <= 390
    (batch,) = (await ledger.ok("GET", "/api/v1/vouchers/batches"))["batches"]
    assert batch["account_id"] is not None
    assert batch["value_minor"] == 200
