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
