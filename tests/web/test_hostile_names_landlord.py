"""The landlord page in a real browser with hostile names everywhere a name is shown.

Names, a tariff, a top-up reference, a reading's band and what a payer typed all come from
people other than the landlord (tenants choose what they type at Stripe). Each carries markup
that, if it ever became HTML, would set ``window.pwned`` or open a dialog. The page must show
every one as text, run none, and report no Content-Security-Policy violation.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.async_api import Page, expect

from tests.ledger.conftest import Ledger, make_settings
from tests.ledger.test_pay_page import running_public_ledger
from tests.ledger.webhook_helpers import checkout_completed
from tests.web.test_landlord_ui import deliver, sign_in

pytestmark = pytest.mark.usefixtures("socket_enabled")

HOSTILE = [
    "<img src=x onerror=\"window.pwned='img'\">",
    "<script>window.pwned='script'</script>",
    '"><svg onload="window.pwned=\'svg\'">',
    "{{constructor.constructor('window.pwned=1')()}}",
]


@pytest.fixture
async def ledger(tmp_path: Path) -> AsyncIterator[Ledger]:
    settings = make_settings(tmp_path, None, default_currency="EUR", default_timezone="UTC")
    async with running_public_ledger(settings) as running:
        yield running


async def _watch(page: Page) -> list[str]:
    """Collect dialogs, CSP violations and page errors (anything our markup could cause)."""
    seen: list[str] = []
    page.on("dialog", lambda dialog: seen.append(f"dialog: {dialog.message}"))
    page.on("pageerror", lambda error: seen.append(f"pageerror: {error}"))
    page.on(
        "console",
        lambda message: (
            seen.append(f"console: {message.text}")
            if "Content Security Policy" in message.text
            else None
        ),  # failed loads (the wrong-token 401 of sign_in, a favicon) are not ours
    )
    await page.add_init_script(
        "document.addEventListener('securitypolicyviolation',"
        " e => (window.cspViolations = (window.cspViolations || 0) + 1));"
    )
    return seen


async def _assert_nothing_ran(page: Page, seen: list[str]) -> None:
    assert await page.evaluate("window.pwned") is None
    assert await page.evaluate("window.cspViolations || 0") == 0
    assert await page.locator("img[src='x'], svg[onload], #accounts script").count() == 0
    assert seen == []


async def test_hostile_names_are_shown_as_text_and_never_run(page: Page, ledger: Ledger) -> None:
    tariff = await ledger.tariff(name=HOSTILE[1])
    accounts = [await ledger.account(name=name, timezone="UTC") for name in HOSTILE]
    meter = await ledger.meter(accounts[0]["id"], tariff["id"])
    await ledger.topup(accounts[0]["id"], 1000, "cash-1", reference=HOSTILE[2])
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=1)
    readings = [
        {"meter_id": meter["id"], "value": value, "at": at.isoformat()}
        for value, at in (("0", start), ("2", start + timedelta(hours=1)))
    ]
    await ledger.ok("POST", "/api/v1/readings", json={"readings": readings})
    # A payer typed markup as the account number: the order needs a person.
    stray = await deliver(ledger, checkout_completed(HOSTILE[0], 800))
    assert stray["status"] == "needs_attention"

    seen = await _watch(page)
    await sign_in(page, ledger)
    rows = page.locator("#accounts tbody tr")
    await expect(rows).to_have_count(len(HOSTILE))
    for name in HOSTILE:
        await expect(rows.filter(has_text=name)).to_have_count(1)
    await expect(page.locator(f"#orders tr[data-order='{stray['order_id']}']")).to_contain_text(
        HOSTILE[0]
    )
    await expect(page.locator("#tariffs")).to_contain_text(HOSTILE[1])
    await _assert_nothing_ran(page, seen)

    await page.get_by_role("button", name=f"Open {HOSTILE[0]}").click()
    await expect(page.locator("#account-summary")).to_contain_text("balance")
    await expect(page.locator("#account-topups")).to_contain_text("10.00 EUR")
    await page.evaluate("window.print = () => {}")
    await page.get_by_role("button", name="Printable statement").click()
    await expect(page.locator("#account-statement")).to_contain_text("Closing balance")
    await _assert_nothing_ran(page, seen)
