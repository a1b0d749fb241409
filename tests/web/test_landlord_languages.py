"""The landlord page and its sign-in page in German and Simplified Chinese (issue 23).

Expected: a browser asking for ``zh-CN`` or ``de`` gets the sign-in page and the landlord page in
that language, the script's own texts included (an account row, its open page, the voucher
batches, the tariff list, a dialog): no English text of the English page is left but data
(names, codes, units) and words spelt alike. Money follows CLDR as the tenant's pages do
(20,00 € in German, €20.00 in Chinese); English keeps its plain 20.00 EUR. The switcher on the
page changes the language and the choice is remembered.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, expect

from tests.ledger.conftest import ADMIN_TOKEN, Ledger, make_settings
from tests.ledger.test_pay_page import running_public_ledger

pytestmark = pytest.mark.usefixtures("socket_enabled")
ACCEPT = {"en": "en-GB,en;q=0.9", "de": "de-DE,de;q=0.9,en;q=0.5", "zh": "zh-CN,zh;q=0.9,en;q=0.8"}
#: What each language calls the live stream, the heading, an account row's words.
LIVE = {"en": "live", "de": "live", "zh": "实时"}
HEADING = {"en": "Accounts", "de": "Konten", "zh": "账户"}
WRONG_TOKEN = {
    "en": "That is not the admin token.",
    "de": "Das ist nicht das Admin-Token.",
    "zh": "这不是管理员令牌。",
}
ROW = {
    "en": ["20.00 EUR", "On", "credit", "Top up", "Pay link"],
    "de": ["20,00\xa0€", "An", "Guthaben", "Aufladen", "Bezahllink"],
    "zh": ["€20.00", "供应中", "余额充足", "充值", "缴费链接"],
}
#: Data on the page (names, codes, units, the language names) and words spelt alike.
SAME_IN_EVERY_LANGUAGE = re.compile(
    r"^(Room 1 - Ana( · \d+ \(EUR\))?|Standard|EUR|Europe/Berlin|kWh|m3|\d.*|"
    r"English|Deutsch|简体中文|live|Status|public_base_url|Spring|Books|Bonus|Name|"
    r"http://127\.0\.0\.1:9/books|whsec_.*|Alipay|iDEAL|Bancontact|Link|WeChat Pay|"
    r"takes EUR.*|nimmt EUR.*|"
    # The audit log's rows are data, the same in every language: who, action, target.
    r"admin|[a-z_]+(\.[a-z_]+)+|[a-z_]+:\d+)$"
)

# Every text node and every label/placeholder of the page, hidden dialogs included.
_TEXTS = """() => {
  const found = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const node = walker.currentNode;
    if (node.parentElement.closest("script, style")) { continue; }
    const text = node.textContent.replace(/\\s+/g, " ").trim();
    if (text) { found.push(text); }
  }
  for (const el of document.querySelectorAll("[aria-label], [placeholder]")) {
    for (const name of ["aria-label", "placeholder"]) {
      const value = (el.getAttribute(name) || "").replace(/\\s+/g, " ").trim();
      if (value) { found.push(value); }
    }
  }
  return found;
}"""


@pytest.fixture
async def ledger(tmp_path: Path) -> AsyncIterator[Ledger]:
    settings = make_settings(
        tmp_path, None, default_currency="EUR", default_timezone="Europe/Berlin"
    )
    async with running_public_ledger(settings) as running:
        account = await running.account(name="Room 1 - Ana")
        await running.topup(account["id"], 2_000, "lang-1")
        await running.tariff(name="Standard")
        await running.ok(
            "POST",
            "/api/v1/vouchers/batches",
            json={"value_minor": 1_000, "currency": "EUR", "count": 2},
        )
        await running.ok(
            "POST",
            "/api/v1/promotions",
            json={
                "name": "Spring",
                "currency": "EUR",
                "min_topup_minor": 5_000,
                "bonus_percent": "10",
                "max_bonus_minor": 1_000,
                "uses_per_account": 1,
            },
        )
        await running.ok(
            "POST",
            "/api/v1/accounting/endpoints",
            json={"url": "http://127.0.0.1:9/books", "description": "Books"},
        )
        yield running


async def landlord_page(browser: Browser, ledger: Ledger, lang: str) -> tuple[Page, list[str]]:
    """Sign in from a browser asking for LANG; return the page and its texts, account open."""
    context = await browser.new_context(
        viewport={"width": 1280, "height": 800},
        extra_http_headers={"Accept-Language": ACCEPT[lang]},
    )
    context.set_default_timeout(10_000)
    page = await context.new_page()
    await page.goto(ledger.base_url + "/")
    await expect(page).to_have_url(ledger.base_url + "/login")
    await page.locator("#token").fill("not-the-token")
    await page.locator("button[type=submit]").click()
    await expect(page.locator("#login-error")).to_have_text(WRONG_TOKEN[lang])
    login = await page.evaluate(_TEXTS)
    await page.locator("#token").fill(ADMIN_TOKEN)
    await page.locator("button[type=submit]").click()
    await expect(page.get_by_role("heading", name=HEADING[lang], exact=True)).to_be_visible()
    await expect(page.locator("#live")).to_have_text(LIVE[lang])
    row = page.locator("#accounts tbody tr", has_text="Room 1 - Ana")
    for text in ROW[lang]:
        await expect(row).to_contain_text(text)
    await expect(page.locator("#voucher-batches tbody tr")).to_have_count(1)
    await expect(page.locator("#tariffs tbody tr")).to_have_count(1)
    await expect(page.locator("#promotion-list tbody tr")).to_have_count(1)
    await expect(page.locator("#endpoint-list tbody tr")).to_have_count(1)
    await expect(page.locator("#methods-choices .check")).to_have_count(7)
    await row.locator("button.link").click()
    await expect(page.locator("#account-topups .order")).to_have_count(1)
    return page, login + await page.evaluate(_TEXTS)


def english_of(texts: list[str]) -> set[str]:
    own = {text for text in texts if re.search(r"[A-Za-z]{2}", text)}
    return {text for text in own if not SAME_IN_EVERY_LANGUAGE.match(text)}


async def test_landlord_page_in_german_and_chinese(browser: Browser, ledger: Ledger) -> None:
    english_page, english = await landlord_page(browser, ledger, "en")
    assert await english_page.locator("html").get_attribute("lang") == "en"
    await expect(english_page.locator("#account-summary")).to_contain_text(
        "balance 20.00 EUR · supply on (credit)"
    )
    own = english_of(english)
    assert len(own) > 100, own  # the page, its dialogs and the script's texts really are there
    for lang, html_lang in (("de", "de"), ("zh", "zh-Hans")):
        page, texts = await landlord_page(browser, ledger, lang)
        assert await page.locator("html").get_attribute("lang") == html_lang
        left = own & set(texts)
        assert not left, f"the landlord page in {lang} still says {sorted(left)}"
    await expect(page.locator("#account-summary")).to_contain_text("余额 €20.00")
    await expect(page.locator("#tariffs tbody tr")).to_contain_text("固定价格")
    await expect(page.locator("#voucher-batches tbody tr")).to_contain_text("有效")


async def test_switching_language_on_the_landlord_page(browser: Browser, ledger: Ledger) -> None:
    page, _texts = await landlord_page(browser, ledger, "de")
    await page.get_by_role("link", name="简体中文").click()
    await expect(page.get_by_role("heading", name="账户", exact=True)).to_be_visible()
    await expect(page.locator("#live")).to_have_text("实时")
    await expect(page.locator("html")).to_have_attribute("lang", "zh-Hans")
    await page.goto(ledger.base_url + "/")  # remembered, though the browser asks for German
    await expect(page.get_by_role("button", name="退出登录")).to_be_visible()
    await page.get_by_role("link", name="English").click()
    await expect(page.get_by_role("heading", name="Accounts", exact=True)).to_be_visible()
    await expect(page.locator("#accounts tbody tr")).to_contain_text("20.00 EUR")
    await page.get_by_role("button", name="Sign out").click()
    await expect(page.get_by_role("button", name="Sign in")).to_be_visible()
