"""A mistyped payment resolved from the landlord page: find the right account, credit it."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Page, Request, expect
from prepaid_ledger.domain.account_number import account_number_for, is_valid_account_number

from tests.ledger.conftest import Ledger, make_settings, running_ledger
from tests.ledger.webhook_helpers import checkout_completed
from tests.web.conftest import IMAGES
from tests.web.test_landlord_ui import deliver, row, sign_in

pytestmark = pytest.mark.usefixtures("socket_enabled")


@pytest.fixture
async def ledger(tmp_path: Path) -> AsyncIterator[Ledger]:
    settings = make_settings(tmp_path, None, default_currency="EUR", default_timezone="UTC")
    async with running_ledger(settings) as running:
        yield running


def mistyped(number: str) -> str:
    """The number with one digit changed: the check digit always catches it (Damm)."""
    digit = str((int(number[4]) + 3) % 10)
    typo = number[:4] + digit + number[5:]
    assert not is_valid_account_number(typo)
    return typo


ACCOUNT_FIELD = "Account: search by name or number, or type the full account number"
REASON_FIELD = "Reason (required, kept in the audit log)"


async def order_status(ledger: Ledger, order_id: int) -> str:
    return str((await ledger.ok("GET", f"/api/v1/topups/{order_id}"))["status"])


async def board_shows_the_order(page: Page, order_id: int, typo: str) -> None:
    """What the payer typed, the amount with its currency, why in plain words, and its age."""
    line = page.locator(f"#orders tr[data-order='{order_id}']")
    await expect(line).to_contain_text(f"payer typed: {typo}")
    await expect(line.locator(".amount")).to_have_text("12.50 EUR")
    await expect(line).to_contain_text("needs attention")
    await expect(line.locator(".reason.plain")).to_have_text(
        "Unknown account: the number the payer typed has a typo (its check digit is wrong)"
    )
    await expect(line.locator(".age")).to_have_text(re.compile(r"^\d+ min$"))


async def wrong_numbers_are_refused_at_the_field(
    page: Page, ledger: Ledger, order_id: int, typo: str, sent: list[Request]
) -> None:
    field = page.get_by_label(ACCOUNT_FIELD)
    error = page.locator("#credit-account-error")
    # The payer's number again: the check digit is wrong, said at the field, nothing is sent.
    await field.fill(typo)
    await expect(error).to_contain_text("check digit wrong")
    await expect(field).to_have_attribute("aria-invalid", "true")
    await page.locator("#credit-dialog").get_by_label(REASON_FIELD).fill("mistyped number")
    await page.get_by_role("button", name="Credit this payment").click()
    await expect(error).to_contain_text("check digit wrong")
    await expect(page.locator("#credit-dialog")).to_be_visible()
    assert sent == []
    assert await order_status(ledger, order_id) == "needs_attention"
    # A well-formed number no account has: the ledger's refusal shows at the field.
    nobody = account_number_for(4242)
    await field.fill(nobody)
    await expect(error).to_have_text("")
    await page.get_by_role("button", name="Credit this payment").click()
    await expect(error).to_contain_text(f"no account has the number {nobody}")
    assert len(sent) == 1
    assert await order_status(ledger, order_id) == "needs_attention"


async def test_typo_payment_is_credited_to_the_account_found_by_name(
    page: Page, ledger: Ledger
) -> None:
    ana = await ledger.account(name="Room 1 - Ana")
    ben = await ledger.account(name="Room 2 - Ben")
    typo = mistyped(ben["number"])
    delivered = await deliver(ledger, checkout_completed(typo, 1250))
    order_id = delivered["order_id"]
    order = await ledger.ok("GET", f"/api/v1/topups/{order_id}")
    assert (order["status"], order["account_id"], order["account_ref"]) == (
        "needs_attention",
        None,
        typo,
    )
    sent: list[Request] = []
    page.on("request", lambda r: sent.append(r) if "/actions" in r.url else None)
    await sign_in(page, ledger)
    await board_shows_the_order(page, order_id, typo)

    await page.get_by_role("button", name=f"Credit to an account: order {order_id}").click()
    dialog = page.locator("#credit-dialog")
    await expect(page.locator("#credit-order")).to_contain_text(f"the payer typed {typo}")
    await wrong_numbers_are_refused_at_the_field(page, ledger, order_id, typo, sent)

    # Search by name: the matches show as the landlord types; pick Ben, give a reason.
    field = page.get_by_label(ACCOUNT_FIELD)
    reason = dialog.get_by_label(REASON_FIELD)
    await field.fill("")
    await field.press_sequentially("be", delay=20)
    matches = page.locator("#credit-matches button")
    await expect(matches).to_have_count(1)
    await expect(matches).to_contain_text("Room 2 - Ben")
    await page.get_by_role("button", name="Choose Room 2 - Ben").click()
    await expect(page.locator("#credit-chosen")).to_contain_text("Credit to: Room 2 - Ben")
    await reason.fill("")
    await page.get_by_role("button", name="Credit this payment").click()
    await expect(page.locator("#credit-reason-error")).to_have_text("a reason is required")
    assert len(sent) == 1
    await reason.fill("tenant Ben mistyped his account number")
    await dialog.screenshot(path=str(IMAGES / "landlord-order-credit.png"))
    await page.get_by_role("button", name="Credit this payment").click()
    await expect(dialog).to_be_hidden()
    await expect(page.locator(f"#orders tr[data-order='{order_id}']")).to_have_count(0)
    await expect(page.locator("#orders-empty")).to_be_visible()
    await expect(row(page, "Room 2 - Ben").locator(".balance")).to_have_text("12.50 EUR")

    # Through the API: exactly the paid amount on Ben, nothing on Ana, the order succeeded,
    # and the audit log has the action with its reason.
    assert await ledger.balance(ben["id"]) == 1250
    assert await ledger.balance(ana["id"]) == 0
    order = await ledger.ok("GET", f"/api/v1/topups/{order_id}")
    assert (order["status"], order["account_id"], order["credited_minor"]) == (
        "succeeded",
        ben["id"],
        1250,
    )
    assert order["timeline"][-1]["reason"] == "tenant Ben mistyped his account number"
    audit = (await ledger.ok("GET", "/api/v1/audit"))["entries"]
    (entry,) = [e for e in audit if e["action"] == "topup.credit"]
    assert entry["target"] == f"order:{order_id}"
    assert entry["after"]["reason"] == "tenant Ben mistyped his account number"
    assert entry["after"]["account_id"] == ben["id"]
    assert entry["before"]["status"] == "needs_attention"


async def test_a_full_correct_number_chooses_the_account(page: Page, ledger: Ledger) -> None:
    cat = await ledger.account(name="Room 3 - Cat")
    await ledger.account(name="Room 4 - Dev", currency="USD")
    delivered = await deliver(ledger, checkout_completed("12345", 700))
    order_id = delivered["order_id"]
    await sign_in(page, ledger)
    line = page.locator(f"#orders tr[data-order='{order_id}']")
    await expect(line.locator(".reason.plain")).to_contain_text("Unknown account")
    await page.get_by_role("button", name=f"Credit to an account: order {order_id}").click()
    field = page.get_by_label(ACCOUNT_FIELD)
    # The other currency's account is listed, but cannot be picked.
    await field.fill("room")
    await expect(page.locator("#credit-matches button")).to_have_count(2)
    await expect(page.get_by_role("button", name="Choose Room 4 - Dev")).to_be_disabled()
    # Typed with the spaces of the printed number: recognised and chosen.
    await field.fill(" ".join(cat["number"][i : i + 3] for i in range(0, 9, 3)))
    await expect(page.locator("#credit-chosen")).to_contain_text("Credit to: Room 3 - Cat")
    await (
        page.locator("#credit-dialog")
        .get_by_label("Reason (required, kept in the audit log)")
        .fill("cash receipt 17")
    )
    await page.get_by_role("button", name="Credit this payment").click()
    await expect(line).to_have_count(0)
    assert await ledger.balance(cat["id"]) == 700
