"""Every landlord and tenant page passes axe-core and works from the keyboard (issue 25).

axe-core (pinned from the npm registry by scripts/setup into tests/web/vendor/) runs inside a
real Chromium on each page a landlord or tenant sees, at a phone's width (390 px) and a
desktop's (1280 px), with realistic data: accounts with balances and a chart, an order that
needs attention and one still processing, two tariffs, a voucher batch, a promotion, an
accounting endpoint with deliveries. No violation of impact "serious" or "critical" may remain.
The keyboard tests press Tab through the landlord page and the tenant page and check that every
visible, enabled control is reached and shows where the focus is.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from playwright.async_api import Browser, BrowserContext, Page, expect

from tests.ledger.conftest import ADMIN_TOKEN, Ledger, make_settings
from tests.ledger.test_pay_page import running_public_ledger
from tests.ledger.webhook_helpers import checkout_completed
from tests.web.test_landlord_ui import deliver

pytestmark = pytest.mark.usefixtures("socket_enabled")

AXE = Path(__file__).resolve().parent / "vendor" / "axe.min.js"
WIDTHS = [390, 1280]
BLOCKING = ("serious", "critical")


@dataclass
class Site:
    """A running ledger with the data a landlord and a tenant would see."""

    ledger: Ledger
    pay_link: str
    order_id: int
    receipt_number: int
    attention_order: int
    processing_order: int
    voucher_code: str


async def seed(ledger: Ledger) -> Site:
    """Accounts, tariffs, readings, top-ups, orders needing a person, vouchers, settings."""
    flat = await ledger.tariff(name="House flat", price="0.3125")
    tou = await ledger.tariff(
        name="Day/night",
        kind="tou",
        price=None,
        segments=[{"start": "00:00", "price": "0.10"}, {"start": "12:00", "price": "0.30"}],
    )
    ana = await ledger.account(name="Room 1 - Ana", timezone="UTC")
    ben = await ledger.account(name="Room 2 - Ben", timezone="UTC")
    cat = await ledger.account(name="Room 3 - Cat", timezone="UTC")
    ana_meter = await ledger.meter(ana["id"], tou["id"])
    await ledger.meter(ben["id"], flat["id"])
    order = await ledger.topup(ana["id"], 2000, "cash-ana", reference="receipt 0042")
    await ledger.topup(ben["id"], 550, "cash-ben")
    noon = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0) - timedelta(days=1)
    readings = [
        {"meter_id": ana_meter["id"], "value": value, "at": at.isoformat()}
        for value, at in (
            ("0", noon - timedelta(hours=12)),
            ("2", noon - timedelta(hours=1)),
            ("9", noon + timedelta(hours=1)),
        )
    ]
    await ledger.ok("POST", "/api/v1/readings", json={"readings": readings})
    await ledger.ok("POST", f"/api/v1/accounts/{cat['id']}/close", json={"reason": "moved out"})
    attention = await deliver(ledger, checkout_completed("999999999", 800))
    processing = await deliver(ledger, checkout_completed(ben["id"], 1500, payment_status="unpaid"))
    assert (attention["status"], processing["status"]) == ("needs_attention", "processing")
    minted = await ledger.ok(
        "POST",
        "/api/v1/vouchers/batches",
        json={"value_minor": 1000, "currency": "EUR", "count": 2, "note": "Front desk"},
    )
    await ledger.ok(
        "POST",
        "/api/v1/promotions",
        json={"name": "Top up 50, get 5", "currency": "EUR", "min_topup_minor": 5000}
        | {"bonus_minor": 500},
    )
    # A receiver nobody listens on: its deliveries wait and fail, as a landlord may see them.
    await ledger.ok(
        "POST",
        "/api/v1/accounting/endpoints",
        json={"url": "http://127.0.0.1:9/hooks", "description": "Bookkeeping"},
    )
    await ledger.topup(ana["id"], 300, "cash-ana-2")
    link = (await ledger.ok("POST", f"/api/v1/accounts/{ana['id']}/pay-link"))["url"]
    receipt = await ledger.ok("GET", f"/api/v1/topups/{order['id']}/receipt")
    return Site(
        ledger=ledger,
        pay_link=link,
        order_id=order["id"],
        receipt_number=receipt["number"],
        attention_order=attention["order_id"],
        processing_order=processing["order_id"],
        voucher_code=minted["codes"][1]["code"],
    )


@asynccontextmanager
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    settings = make_settings(
        tmp_path, None, default_currency="EUR", default_timezone="Europe/Berlin"
    )
    async with running_public_ledger(settings) as ledger:
        yield await seed(ledger)


@asynccontextmanager
async def browser_at(browser: Browser, width: int) -> AsyncIterator[BrowserContext]:
    """A context at this width; CSP bypassed only so that axe's script can be injected."""
    context = await browser.new_context(
        viewport={"width": width, "height": 844 if width < 600 else 800}, bypass_csp=True
    )
    context.set_default_timeout(10_000)
    try:
        yield context
    finally:
        await context.close()


async def sign_in(page: Page, ledger: Ledger) -> None:
    await page.goto(ledger.base_url + "/login")
    await page.get_by_label("Admin token").fill(ADMIN_TOKEN)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.locator("#live")).to_have_text("live")


async def landlord_page_loaded(page: Page) -> None:
    """Wait until the page's scripts have filled every list from the ledger."""
    await expect(page.locator("#accounts tbody tr")).to_have_count(3)
    await expect(page.locator("#orders tbody tr")).to_have_count(2)
    await expect(page.locator("#voucher-batches tbody tr")).to_have_count(1)
    await expect(page.locator("#tariffs tbody tr")).to_have_count(2)
    await expect(page.locator("#promotion-list tbody tr")).to_have_count(1)
    await expect(page.locator("#endpoint-list tbody tr")).to_have_count(1)
    await expect(page.locator("#delivery-list tbody tr").first).to_be_visible()
    await expect(page.locator("#methods-choices input").first).to_be_visible()


async def open_account(page: Page, name: str) -> None:
    """Open an account's page and wait for its summary and its chart."""
    await page.get_by_role("button", name=f"Open {name}").click()
    await expect(page.locator("#account-summary")).to_contain_text("balance")
    await expect(page.locator("#account-chart > *").first).to_be_visible()


def describe(where: str, violations: list[dict[str, Any]]) -> list[str]:
    """One line per serious or critical violation: rule, impact, help and where."""
    lines = []
    for violation in violations:
        if violation["impact"] not in BLOCKING:
            continue
        nodes = violation["nodes"]
        targets = [" ".join(map(str, node["target"])) for node in nodes[:3]]
        more = f" (+{len(nodes) - len(targets)} more)" if len(nodes) > len(targets) else ""
        first = nodes[0] if nodes else {}
        checks = first.get("any", []) + first.get("all", []) + first.get("none", [])
        why = "; ".join(check["message"] for check in checks if check.get("message"))
        lines.append(
            f"{where}: {violation['id']} ({violation['impact']}): {violation['help']}"
            f" at {', '.join(targets)}{more}{f' [first: {why}]' if why else ''}"
        )
    return lines


class Audit:
    """Runs axe on pages and keeps what it found, to report every page's problems at once."""

    def __init__(self, width: int) -> None:
        self.width = width
        self.problems: list[str] = []
        self.counts: dict[str, int] = {}
        self.pages = 0

    async def check(self, page: Page, where: str) -> None:
        if not AXE.is_file():
            pytest.fail(f"axe-core is missing at {AXE}: run scripts/setup")
        await page.wait_for_load_state("load")
        if not await page.evaluate("typeof window.axe === 'object'"):
            await page.add_script_tag(path=str(AXE))
        result = await page.evaluate(
            "async () => JSON.stringify(await axe.run(document, {resultTypes: ['violations']}))"
        )
        violations = json.loads(result)["violations"]
        self.pages += 1
        for violation in violations:
            key = f"{violation['id']} ({violation['impact']})"
            self.counts[key] = self.counts.get(key, 0) + 1
        self.problems += describe(f"[{self.width}px] {where}", violations)

    def report(self) -> str:
        counts = ", ".join(f"{k}: {v}" for k, v in sorted(self.counts.items())) or "none"
        return "\n".join([*self.problems, f"all violations by rule (pages): {counts}"])


async def landlord_pages(page: Page, context: BrowserContext, found: Site, audit: Audit) -> None:
    """The login page, the landlord page with its account page, dialogs and settings."""
    ledger = found.ledger
    await page.goto(ledger.base_url + "/login")
    await audit.check(page, "login")
    await page.get_by_label("Admin token").fill("not-the-token")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.locator("#login-error")).to_have_text("That is not the admin token.")
    await audit.check(page, "login with an error")
    await sign_in(page, ledger)
    await landlord_page_loaded(page)
    await audit.check(page, "landlord page")
    await open_account(page, "Room 1 - Ana")
    await audit.check(page, "landlord page, account page open")
    await dialogs(page, found, audit)
    await settings_screens(page, audit)
    await voucher_pages(page, context, audit)
    await page.goto(f"{ledger.base_url}/ui/receipts/{found.receipt_number}")
    await expect(page.locator("h1")).to_be_visible()
    await audit.check(page, "landlord receipt")


async def check_dialog(page: Page, audit: Audit, dialog: str, where: str) -> None:
    """Audit the page with this dialog open, then close it."""
    await expect(page.locator(dialog)).to_be_visible()
    await audit.check(page, where)
    await page.locator(dialog).get_by_role("button", name="Cancel").click()


async def dialogs(page: Page, found: Site, audit: Audit) -> None:
    """Each dialog open, most with the message a wrong try shows."""
    await page.get_by_role("button", name="Top up Room 2 - Ben").click()
    await page.get_by_role("button", name="Credit the account").click()
    await expect(page.locator("#topup-error")).not_to_be_empty()
    await check_dialog(page, audit, "#topup-dialog", "top-up dialog with an error")

    page.once("dialog", lambda dialog: dialog.accept())
    await page.get_by_role("button", name="Pay link for Room 2 - Ben").click()
    await expect(page.locator("#link-qr svg")).to_be_visible()
    await audit.check(page, "pay link dialog")
    await page.locator("#link-dialog").get_by_role("button", name="Close").click()

    credit = f"Credit to an account: order {found.attention_order}"
    await page.get_by_role("button", name=credit).click()
    await page.get_by_role("button", name="Credit this payment").click()
    await expect(page.locator("#credit-reason-error")).not_to_be_empty()
    await page.locator("#credit-account").fill("room")
    await expect(page.locator("#credit-matches button").first).to_be_visible()
    await check_dialog(page, audit, "#credit-dialog", "credit dialog, matches and errors")

    await page.get_by_role("button", name=f"Mark failed: order {found.processing_order}").click()
    await page.get_by_role("button", name="Confirm: mark failed").click()
    await expect(page.locator("#action-error")).not_to_be_empty()
    await check_dialog(page, audit, "#action-dialog", "order action dialog")

    await page.locator("#voucher-batches tbody tr").first.get_by_role("button").click()
    await check_dialog(page, audit, "#void-dialog", "void dialog")

    # The tenant changes of the open account's page, each with the messages a hasty try shows.
    await page.get_by_role("button", name="Move out…").click()
    await page.locator("#moveout-dialog").get_by_label("Move it to the tenant's new room").check()
    await page.get_by_role("button", name="Move out and close").click()
    await expect(page.locator("#moveout-reason-error")).not_to_be_empty()
    await check_dialog(page, audit, "#moveout-dialog", "move-out dialog with errors")
    await page.get_by_role("button", name="Move a new tenant in…").click()
    await page.locator("#movein-dialog").get_by_role("button", name="Move in").click()
    await expect(page.locator("#movein-name-error")).not_to_be_empty()
    await check_dialog(page, audit, "#movein-dialog", "move-in dialog with errors")
    await page.locator("#promotion-list").get_by_role("button", name="End").click()
    await check_dialog(page, audit, "#reason-dialog", "reason dialog (end a promotion)")


async def settings_screens(page: Page, audit: Audit) -> None:
    """The settings with their messages showing: errors at the fields, a new secret."""
    await page.locator("#promotion-form").get_by_role("button", name="Create promotion").click()
    await page.locator("#endpoint-url").fill("http://127.0.0.1:9/more")
    await page.locator("#endpoint-types input").first.check()
    await page.get_by_role("button", name="Add endpoint").click()
    await expect(page.locator("#endpoint-secret")).to_be_visible()
    await page.locator("#tariff-form").get_by_role("button", name="Create tariff").click()
    await expect(page.locator("#endpoint-list tbody tr")).to_have_count(2)
    await audit.check(page, "settings screens with messages")


async def voucher_pages(page: Page, context: BrowserContext, audit: Audit) -> None:
    """The printable cards a mint opens, and the page that says why nothing was minted."""
    async with context.expect_page() as opened:
        await page.get_by_label("Value per card (EUR)").fill("5")
        await page.get_by_label("Number of cards (1-1000)").fill("3")
        await page.get_by_label("Note on the cards (optional)").fill("Sold at the desk")
        await page.get_by_role("button", name="Mint and print cards").click()
    cards = await opened.value
    await expect(cards.locator("article.voucher")).to_have_count(3)
    await audit.check(cards, "voucher cards")
    await cards.close()
    # A form the ledger refuses (the script's own checks bypassed): the problem page.
    await page.evaluate(
        """() => {
            const form = document.createElement("form");
            form.method = "post";
            form.action = "ui/vouchers/mint";
            for (const [name, value] of [["value", "x"], ["currency", "EUR"], ["count", "1"]]) {
                const input = document.createElement("input");
                input.type = "hidden"; input.name = name; input.value = value;
                form.append(input);
            }
            document.body.append(form);
            form.submit();
        }"""
    )
    await expect(page.locator("#problem")).to_be_visible()
    await audit.check(page, "voucher problem page")


async def tenant_pages(page: Page, found: Site, audit: Audit) -> None:
    ledger = found.ledger
    # Before the phone has opened a pay page: the scan page says what to do.
    await page.goto(f"{ledger.base_url}/pay/voucher?{urlencode({'code': found.voucher_code})}")
    await expect(page.locator("#scanned-code")).to_be_visible()
    await audit.check(page, "voucher scan page")
    await page.goto(f"{ledger.base_url}/pay/plt_not-a-real-link")
    await audit.check(page, "pay link not found")

    await page.goto(found.pay_link)
    await expect(page.locator("#balance")).to_be_visible()
    await audit.check(page, "tenant pay page")
    await page.get_by_label("Amount (EUR)").fill("2.555")
    await page.get_by_role("button", name="Pay").click()
    await expect(page.locator("#amount-error")).to_be_visible()
    await audit.check(page, "tenant pay page, amount refused")
    await page.get_by_label("Voucher code").fill(found.voucher_code[:-1] + "x")
    await page.get_by_role("button", name="Redeem").click()
    await expect(page.locator("#code-error")).to_be_visible()
    await audit.check(page, "tenant pay page, voucher refused")
    await page.get_by_label("Voucher code").fill(found.voucher_code)
    await page.get_by_role("button", name="Redeem").click()
    await expect(page.locator("[role=status]")).to_contain_text("Voucher accepted")
    await audit.check(page, "tenant pay page, voucher accepted")

    for fmt in ("a4", "slip"):
        await page.goto(f"{found.pay_link}/receipts/{found.order_id}?format={fmt}")
        await expect(page.locator(".receipt-number")).to_be_visible()
        await audit.check(page, f"tenant receipt ({fmt})")


@pytest.mark.parametrize("width", WIDTHS)
async def test_axe_finds_nothing_serious_on_any_page(
    browser: Browser, tmp_path: Path, width: int
) -> None:
    audit = Audit(width)
    async with site(tmp_path) as found, browser_at(browser, width) as context:
        page = await context.new_page()
        await landlord_pages(page, context, found, audit)
        tenant = await context.new_page()  # no landlord session needed, but none harms
        await tenant_pages(tenant, found, audit)
    assert audit.pages >= 20
    print(audit.report())
    assert not audit.problems, "axe-core found serious or critical problems:\n" + audit.report()


# ---- Keyboard --------------------------------------------------------------------------------

#: Defines window.__key (a control's lasting name: what it says, and which of the controls
#: saying the same it is; a radio group is one) and lists the keys of every visible, enabled
#: control. Keys, not element handles: a live refresh may replace a row's buttons meanwhile.
CONTROLS = """() => {
  const name = (el) => el.getAttribute("aria-label") || el.labels?.[0]?.textContent
    || el.textContent || el.name || "";
  const say = (el) => `${el.tagName.toLowerCase()}${el.id ? "#" + el.id : ""} "${
    name(el).trim().replace(/\\s+/g, " ").slice(0, 60)}"`;
  const shown = (el) => el.checkVisibility({ visibilityProperty: true })
    && el.getClientRects().length > 0;
  const controls = () => [...document.querySelectorAll(
    "a[href], button, input, select, textarea, summary, [tabindex]")].filter((el) =>
    !(el.hasAttribute("tabindex") && Number(el.getAttribute("tabindex")) < 0) &&
    !el.disabled && el.type !== "hidden" && !el.closest("[inert], dialog:not([open])") &&
    shown(el));
  window.__key = (el) => {
    if (el.type === "radio" && el.name) { return `radio group ${el.form?.id || ""}:${el.name}`; }
    const same = controls().filter((other) => say(other) === say(el));
    return `${say(el)} (${same.indexOf(el) + 1} of ${same.length})`;
  };
  return [...new Set(controls().map(window.__key))];
}"""

#: The focused element's key, and whether the focus can be seen on it.
FOCUSED = """() => {
  const el = document.activeElement;
  if (!el || el === document.body || el === document.documentElement) { return null; }
  const style = getComputedStyle(el);
  const outline = style.outlineStyle !== "none" && parseFloat(style.outlineWidth) > 0;
  const shadow = Boolean(style.boxShadow) && style.boxShadow !== "none";
  return { key: window.__key(el), visible: outline || shadow };
}"""


async def tab_through(page: Page, where: str) -> list[str]:
    """Press Tab round the whole page; return every control missed and every focus unseen."""
    expected: list[str] = await page.evaluate(CONTROLS)
    assert len(expected) >= 5, (where, expected)
    reached: set[str] = set()
    unseen: set[str] = set()
    first: str | None = None
    for step in range(4 * len(expected) + 30):
        await page.keyboard.press("Tab")
        focused = await page.evaluate(FOCUSED)
        if focused is None:
            continue  # past the last control: the document itself, then round again
        if first is None:
            first = focused["key"]
        elif focused["key"] == first and step > len(reached):
            break  # round the page once
        reached.add(focused["key"])
        if not focused["visible"]:
            unseen.add(focused["key"])
    problems = [f"{where}: not reached by Tab: {key}" for key in expected if key not in reached]
    problems += [f"{where}: focus not visible on {key}" for key in sorted(unseen)]
    return problems


@pytest.mark.parametrize("width", WIDTHS)
async def test_every_control_is_reached_by_tab_with_a_visible_focus(
    browser: Browser, tmp_path: Path, width: int
) -> None:
    async with site(tmp_path) as found, browser_at(browser, width) as context:
        page = await context.new_page()
        await sign_in(page, found.ledger)
        await landlord_page_loaded(page)
        await open_account(page, "Room 1 - Ana")
        problems = await tab_through(page, "landlord page")
        tenant = await context.new_page()
        await tenant.goto(found.pay_link)
        await expect(tenant.locator("#balance")).to_be_visible()
        await expect(tenant.locator("a[href*='/receipts/']").first).to_be_visible()
        problems += await tab_through(tenant, "tenant pay page")
    assert not problems, "\n".join(problems)
