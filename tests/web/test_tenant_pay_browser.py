"""A tenant pays from a phone in a real browser: pay page, fake Stripe Checkout, credit shown."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import Browser, expect

from tests.ledger.conftest import make_settings
from tests.ledger.test_pay_page import running_public_ledger
from tests.ledger.webhook_helpers import serve_fake_stripe
from tests.web.conftest import screenshot

pytestmark = pytest.mark.usefixtures("socket_enabled")


async def test_tenant_pays_through_checkout_and_sees_the_credit(
    browser: Browser, tmp_path: Path
) -> None:
    async with serve_fake_stripe() as (fake, base):
        settings = make_settings(tmp_path, None, stripe_api_key="sk_test_web", stripe_api_base=base)
        async with running_public_ledger(settings) as ledger:
            fake.webhook_url = f"{ledger.base_url}/webhooks/stripe"
            fake.webhook_delay_s = 1.0  # the page shows the open order first, then the credit
            account = await ledger.account(name="Room 2 - Ana")
            await ledger.topup(account["id"], 310, "opening")
            link = (await ledger.ok("POST", f"/api/v1/accounts/{account['id']}/pay-link"))["url"]

            phone = await browser.new_context(viewport={"width": 390, "height": 844})
            phone.set_default_timeout(10_000)
            page = await phone.new_page()
            await page.goto(link)
            await expect(page.locator("#balance")).to_have_text("3.10 EUR")
            # A typo is refused next to the field; nothing is sent to Stripe.
            await page.get_by_label("Amount (EUR)").fill("2.555")
            await page.get_by_role("button", name="Pay").click()
            await expect(page.locator("#amount-error")).to_contain_text("at most 2 decimal places")
            assert fake.created == []

            await page.get_by_label("Amount (EUR)").fill("25")
            await page.get_by_role("button", name="Pay").click()
            await expect(page.locator("#total")).to_have_text("25.00 EUR")  # on "Stripe"
            await page.locator("#pay").click()
            # Back on the pay page: the order is visible before Stripe's webhook arrives...
            await expect(page.locator("[role=status]")).to_contain_text("Thank you")
            await expect(page.locator("#orders")).to_contain_text("pending")
            # ...and the page updates itself to the credit once it has.
            await expect(page.locator("#balance")).to_have_text("28.10 EUR")
            await expect(page.locator("#orders .status").first).to_have_text("succeeded")
            assert await ledger.balance(account["id"]) == 2810
            await screenshot(page, "tenant-pay")
            await phone.close()


async def test_tenant_redeems_a_voucher_card_with_the_internet_cut(
    browser: Browser, tmp_path: Path
) -> None:
    # Stripe's API base is a closed port: no card payment can start, the voucher still works.
    settings = make_settings(
        tmp_path, None, stripe_api_key="sk_test_web", stripe_api_base="http://127.0.0.1:9"
    )
    async with running_public_ledger(settings) as ledger:
        account = await ledger.account(name="Room 4 - Li")
        link = (await ledger.ok("POST", f"/api/v1/accounts/{account['id']}/pay-link"))["url"]
        minted = await ledger.ok(
            "POST",
            "/api/v1/vouchers/batches",
            json={"value_minor": 5000, "currency": "EUR", "count": 1},
        )
        code = minted["codes"][0]["code"]

        phone = await browser.new_context(viewport={"width": 390, "height": 844})
        phone.set_default_timeout(10_000)
        page = await phone.new_page()
        await page.goto(link)
        await expect(page.locator("#balance")).to_have_text("0.00 EUR")
        # A typo (two digits swapped) is caught by the check digit, next to the field.
        swapped = code[:1] + code[2] + code[1] + code[3:] if code[1] != code[2] else code[:-1] + "x"
        await page.get_by_label("Voucher code").fill(swapped)
        await page.get_by_role("button", name="Redeem").click()
        await expect(page.locator("#code-error")).to_contain_text(
            "check digit" if code[1] != code[2] else "20 digits"
        )
        await page.get_by_label("Voucher code").fill(code)
        await page.get_by_role("button", name="Redeem").click()
        await expect(page.locator("[role=status]")).to_contain_text("Voucher accepted")
        await expect(page.locator("#balance")).to_have_text("50.00 EUR")
        await expect(page.locator("#orders .status").first).to_have_text("succeeded")
        # The same card again: refused, and the page says when it was used.
        await page.get_by_label("Voucher code").fill(code)
        await page.get_by_role("button", name="Redeem").click()
        await expect(page.locator("#code-error")).to_contain_text("already used on")
        assert await ledger.balance(account["id"]) == 5000
        await phone.close()
