"""Hostile account names on the tenant pay page in a real browser: shown as text, never run.

The page's Content-Security-Policy allows only its own script and stylesheet; the browser must
report no violation for them, and the refresh script must still bring in a credit.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import ConsoleMessage, Dialog, Page, expect

from tests.ledger.conftest import make_settings
from tests.ledger.test_pay_page import running_public_ledger
from tests.ledger.webhook_helpers import serve_fake_stripe

pytestmark = pytest.mark.usefixtures("socket_enabled")

HOSTILE_NAMES = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "{{7*7}}",
]
# Records every CSP violation the page's document sees (injected by the browser driver, not
# by the page, so the policy does not apply to it).
RECORD_VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__violations.push(`${event.violatedDirective} ${event.blockedURI}`);
});
"""


async def test_hostile_names_are_text_and_the_page_script_runs(page: Page, tmp_path: Path) -> None:
    dialogs: list[str] = []
    console: list[str] = []

    async def dismiss(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        await dialog.dismiss()

    def log(message: ConsoleMessage) -> None:
        console.append(f"{message.type}: {message.text}")

    page.on("dialog", dismiss)
    page.on("console", log)
    await page.context.add_init_script(RECORD_VIOLATIONS)
    async with serve_fake_stripe() as (fake, base):
        settings = make_settings(tmp_path, None, stripe_api_key="sk_test_web", stripe_api_base=base)
        async with running_public_ledger(settings) as ledger:
            fake.webhook_url = f"{ledger.base_url}/webhooks/stripe"
            fake.webhook_delay_s = 1.5  # the page shows the open order first, then the credit
            links = {}
            for name in HOSTILE_NAMES:
                account = await ledger.account(name=name)
                issued = await ledger.ok("POST", f"/api/v1/accounts/{account['id']}/pay-link")
                links[name] = (account["id"], issued["url"])

            for name, (_, link) in links.items():
                await page.goto(link)
                await expect(page.locator("h1")).to_have_text(name)
                assert await page.text_content("h1") == name
                assert await page.title() == f"{name} · Prepaid account"
                assert await page.locator("img").count() == 0
                # Only the page's own scripts by address, and no refresh: no order is open yet.
                assert await page.locator("script:not([src])").count() == 0
                assert await page.locator("body[data-refresh-after-ms]").count() == 0
                # The page's own stylesheet applied (a card has its border radius).
                radius = await page.locator(".card").first.evaluate(
                    "(el) => getComputedStyle(el).borderTopLeftRadius"
                )
                assert radius == "12px"
                assert await page.evaluate("window.__violations") == []

            # Pay on the last one: its page then carries the refresh script, which must run
            # under the policy and bring in the credit once Stripe's webhook has arrived.
            account_id, link = links[HOSTILE_NAMES[-1]]
            await page.goto(link)
            await page.get_by_label("Amount (EUR)").fill("12")
            await page.get_by_role("button", name="Pay").click()
            await expect(page.locator("#total")).to_have_text("12.00 EUR")  # on "Stripe"
            await page.locator("#pay").click()
            await expect(page.locator("[role=status]")).to_contain_text("Thank you")
            await expect(page.locator("#orders")).to_contain_text("pending")
            assert await page.locator("script[src$='/pay-assets/pay.js']").count() == 1
            assert await page.evaluate("window.__violations") == []
            await expect(page.locator("#balance")).to_have_text("12.00 EUR")
            await expect(page.locator("#orders .status").first).to_have_text("succeeded")
            await expect(page.locator("h1")).to_have_text(HOSTILE_NAMES[-1])
            assert await ledger.balance(account_id) == 1200
            assert len(fake.created) == 1

    assert dialogs == []
    violations = [m for m in console if "Content Security Policy" in m or "Refused to" in m]
    assert violations == []
