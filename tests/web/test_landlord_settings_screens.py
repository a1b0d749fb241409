"""The landlord page's settings in a real browser: payment methods, promotions, accounting events.

Expected values come from the issue and from the other side of each screen, not from the page
itself: what the ledger's API answers after a click, what a top-up credits (a promotion of "500
gets 100" gives 100 on a top-up of 500, worked by hand), and what a real receiving server
(tests/ledger/accounting_receiver.py) verifies with the ``standardwebhooks`` library and the
secret the page showed once.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Locator, Page, expect
from prepaid_ledger.services import outbox_delivery
from prepaid_ledger.services.outbox_delivery import Tuning

from tests.ledger.accounting_receiver import Receiver, deliveries, log_until, serve_receiver
from tests.ledger.conftest import Ledger, make_settings
from tests.ledger.test_pay_page import running_public_ledger
from tests.web.test_landlord_ui import sign_in

pytestmark = pytest.mark.usefixtures("socket_enabled")

#: A first attempt and one retry 0.2 s later, then the delivery is failed: a landlord's replay
#: is what sends it again (the real schedule waits minutes to days).
ONE_RETRY = Tuning(
    schedule_s=(0.2,),
    jitter=0.0,
    connect_timeout_s=1.0,
    request_timeout_s=2.0,
    lease_s=5.0,
    poll_s=0.3,
    charge_days_every_s=3600.0,
)


@pytest.fixture
async def ledger(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Ledger]:
    monkeypatch.setattr(outbox_delivery, "TUNING", ONE_RETRY)
    settings = make_settings(
        tmp_path, None, default_currency="EUR", default_timezone="Europe/Berlin"
    )
    async with running_public_ledger(settings) as running:
        yield running


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with serve_receiver() as running:
        yield running


async def test_landlord_chooses_the_payment_methods(page: Page, ledger: Ledger) -> None:
    await sign_in(page, ledger)
    section = page.locator("#payment-methods")
    await expect(section.get_by_label("Card", exact=True)).to_be_checked()
    await expect(section.get_by_label("iDEAL")).not_to_be_checked()
    await expect(page.locator("#methods-source")).to_have_text(
        "From the add-on option payment_methods (Card) until you save a choice here."
    )
    # SEPA debit is paid days later: the page says so next to it.
    await expect(section.locator(".check", has_text="SEPA Direct Debit")).to_contain_text(
        "confirms days later"
    )

    # Nothing ticked: refused on the page, the ledger's setting unchanged.
    await section.get_by_label("Card", exact=True).uncheck()
    await section.get_by_role("button", name="Save payment methods").click()
    await expect(page.locator("#methods-error")).to_have_text("choose at least one payment method")
    before = await ledger.ok("GET", "/api/v1/settings/payment-methods")
    assert before["source"] == "add_on_option"
    assert before["methods"] == ["card"]

    await section.get_by_label("Card", exact=True).check()
    await section.get_by_label("iDEAL").check()
    await section.get_by_label("SEPA Direct Debit").check()
    await section.get_by_role("button", name="Save payment methods").click()
    await expect(page.locator("#methods-saved")).to_contain_text("Saved: the pay page offers")
    await expect(page.locator("#methods-error")).to_have_text("")
    after = await ledger.ok("GET", "/api/v1/settings/payment-methods")
    assert after["source"] == "landlord"
    assert sorted(after["methods"]) == ["card", "ideal", "sepa_debit"]
    await expect(page.locator("#methods-source")).to_have_text(
        "Chosen on this page (the add-on option says: Card)."
    )
    # The choice is the ledger's: a fresh page shows it.
    await page.reload()
    await expect(section.get_by_label("iDEAL")).to_be_checked()
    await expect(section.get_by_label("Alipay")).not_to_be_checked()


async def promotion_row(page: Page, name: str) -> Locator:
    return page.locator("#promotion-list tbody tr", has_text=name)


async def create_two_promotions(page: Page, ledger: Ledger) -> None:
    """Create 'Top up 500, get 100' and 'Welcome' (10 %, at most 20, first top-up only)."""
    form = page.locator("#promotion-form")
    await expect(page.locator("#promotions-empty")).to_be_visible()

    await form.get_by_label("Name").fill("Top up 500, get 100")
    await form.get_by_label("For a top-up of at least").fill("500")
    await form.get_by_label("Bonus amount").fill("100")
    await form.get_by_role("button", name="Create promotion").click()
    fixed = await promotion_row(page, "Top up 500, get 100")
    await expect(fixed).to_contain_text("100.00 EUR extra on a top-up of at least 500.00 EUR")
    await expect(fixed.locator("td").nth(2)).to_have_text(re.compile(r"^from \d+/\d+/2\d{3}, "))
    await expect(fixed.locator("td").nth(3)).to_have_text("none")
    await expect(fixed).to_contain_text("running")
    await expect(fixed).to_contain_text("0 · 0.00 EUR")

    # A percentage above 100 is refused next to its field, and nothing is created.
    await form.get_by_label("Bonus kind").select_option("percent")
    await form.get_by_label("Name").fill("Welcome")
    await form.get_by_label("For a top-up of at least").fill("50")
    await form.get_by_label("Bonus percentage").fill("150")
    await form.get_by_role("button", name="Create promotion").click()
    await expect(page.locator("#promotion-bonus_percent-error")).to_contain_text("at most 100")
    await expect(form.get_by_label("Bonus percentage")).to_have_attribute("aria-invalid", "true")
    assert len((await ledger.ok("GET", "/api/v1/promotions"))["promotions"]) == 1
    # An amount with more decimals than the currency has never reaches the ledger.
    await form.get_by_label("At most (optional)").fill("20.005")
    await form.get_by_label("Bonus percentage").fill("10")
    await form.get_by_role("button", name="Create promotion").click()
    await expect(page.locator("#promotion-max_bonus-error")).to_have_text(
        "use at most 2 decimal places"
    )
    assert len((await ledger.ok("GET", "/api/v1/promotions"))["promotions"]) == 1

    await form.get_by_label("At most (optional)").fill("20")
    await form.get_by_label("Only an account's first top-up").check()
    await form.get_by_role("button", name="Create promotion").click()
    welcome = await promotion_row(page, "Welcome")
    await expect(welcome).to_contain_text(
        "10 % extra on a top-up of at least 50.00 EUR, at most 20.00 EUR"
    )
    await expect(welcome).to_contain_text("first top-up only")
    stored = {p["name"]: p for p in (await ledger.ok("GET", "/api/v1/promotions"))["promotions"]}
    assert stored["Welcome"]["bonus_percent"] == "10"
    assert stored["Welcome"]["max_bonus_minor"] == 2_000
    assert stored["Welcome"]["first_topup_only"] is True
    assert stored["Top up 500, get 100"]["min_topup_minor"] == 50_000
    assert stored["Top up 500, get 100"]["bonus_minor"] == 10_000


async def test_landlord_runs_a_promotion_and_sees_its_bonuses(page: Page, ledger: Ledger) -> None:
    account = await ledger.account(name="Room 1 - Ana")
    await sign_in(page, ledger)
    await create_two_promotions(page, ledger)
    fixed = await promotion_row(page, "Top up 500, get 100")
    welcome = await promotion_row(page, "Welcome")

    # A top-up of 500: both apply, the larger bonus (100, against 10 % capped at 20) is given.
    credited = await ledger.topup(account["id"], 50_000, "promo-1")
    assert credited["bonus"]["amount_minor"] == 10_000, credited
    await page.evaluate("window.dispatchEvent(new Event('focus'))")
    await expect(fixed).to_contain_text("1 · 100.00 EUR")
    await expect(welcome).to_contain_text("0 · 0.00 EUR")

    # Ending asks for a reason; the promotion then gives nothing more.
    await fixed.get_by_role("button", name="End").click()
    dialog = page.locator("#reason-dialog")
    await dialog.get_by_role("button", name="End the promotion").click()
    await expect(dialog.locator("#reason-error")).to_have_text(
        "give a reason: it is kept in the audit log"
    )
    await dialog.get_by_label("Reason (required, kept in the audit log)").fill("Campaign over")
    await dialog.get_by_role("button", name="End the promotion").click()
    await expect(dialog).to_be_hidden()
    await expect(fixed).to_contain_text("ended")
    await expect(fixed.get_by_role("button", name="End")).to_have_count(0)
    ended = {p["name"]: p for p in (await ledger.ok("GET", "/api/v1/promotions"))["promotions"]}
    assert ended["Top up 500, get 100"]["ended_at"] is not None
    assert ended["Welcome"]["ended_at"] is None
    second = await ledger.topup(account["id"], 50_000, "promo-2")
    assert second.get("bonus") is None, second  # the welcome bonus was for the first top-up


async def register_for_topups(page: Page, ledger: Ledger, receiver: Receiver) -> Locator:
    """Register the receiver for top-ups only through the page; return the endpoint's row."""
    section = page.locator("#accounting")
    await expect(page.locator("#endpoints-empty")).to_be_visible()

    # A URL the ledger refuses is said next to the field; nothing is registered.
    await section.get_by_label("Address (https://...)").fill("ftp://books.example.com/in")
    await section.get_by_role("button", name="Add endpoint").click()
    await expect(page.locator("#endpoint-url-error")).to_contain_text("must use http or https")
    assert (await ledger.ok("GET", "/api/v1/accounting/endpoints"))["endpoints"] == []

    # Only top-ups go to the finance system; the secret is shown this once.
    await section.get_by_label("Address (https://...)").fill(receiver.url)
    await section.get_by_label("Description (optional)").fill("Books <b>GmbH</b>")
    for words in ("top-up refunded", "a day's charges", "balance correction"):
        await section.get_by_label(words).uncheck()
    await section.get_by_label("order needs attention").uncheck()
    await section.get_by_role("button", name="Add endpoint").click()
    await expect(page.locator("#endpoint-secret")).to_contain_text("shown only this once")
    await expect(page.locator("#endpoint-secret-value")).to_have_text(re.compile("^whsec_"))
    secret = (await page.locator("#endpoint-secret-value").inner_text()).strip()
    assert re.fullmatch(r"whsec_[A-Za-z0-9+/=]{40,}", secret), secret
    endpoint_row = page.locator("#endpoint-list tbody tr", has_text=receiver.url)
    await expect(endpoint_row).to_contain_text("Books <b>GmbH</b>")
    await expect(endpoint_row).to_contain_text(secret[:10] + "…")
    await expect(endpoint_row).not_to_contain_text(secret)
    await expect(endpoint_row).to_contain_text("sending")
    [endpoint] = (await ledger.ok("GET", "/api/v1/accounting/endpoints"))["endpoints"]
    assert endpoint["event_types"] == ["topup.succeeded"]
    receiver.secret = secret  # the receiving system verifies with what the page showed
    return endpoint_row


async def test_landlord_registers_an_endpoint_and_replays_a_failed_event(
    page: Page, ledger: Ledger, receiver: Receiver
) -> None:
    account = await ledger.account(name="Room 1 - Ana")
    await sign_in(page, ledger)
    endpoint_row = await register_for_topups(page, ledger, receiver)

    # The finance system is down for the first attempt and the retry: the event fails.
    receiver.answer_with(lambda e: e["type"] == "topup.succeeded", "500", "500")
    await ledger.topup(account["id"], 2_000, "books-1")
    failed = await log_until(ledger, lambda log: [d["status"] for d in log] == ["failed"])
    await page.get_by_role("button", name="Refresh").click()
    entry = page.locator("#delivery-list tbody tr", has_text=failed[0]["message_id"])
    await expect(entry).to_contain_text("top-up credited")
    await expect(entry).to_contain_text("Room 1 - Ana")
    await expect(entry).to_contain_text("failed")
    await expect(entry).to_contain_text("HTTP 500")
    await expect(entry.locator("td.num")).to_have_text("2")
    await page.locator("#delivery-status").select_option("delivered")
    await expect(page.locator("#delivery-list tbody tr")).to_have_count(0)
    await expect(page.locator("#deliveries-empty")).to_be_visible()
    await page.locator("#delivery-status").select_option("")

    # The room's next event waits behind the failed one (in order per account), and says so.
    await ledger.topup(account["id"], 3_000, "books-2")
    log = await log_until(ledger, lambda log: len(log) == 2)
    await page.get_by_role("button", name="Refresh").click()
    waiting = page.locator("#delivery-list tbody tr", has_text=log[0]["message_id"])
    await expect(waiting).to_contain_text("waiting")
    await expect(waiting).to_contain_text("waits for the failed event before it")

    # Replay: the same event, the same message id, now acknowledged and processed once; the
    # waiting one follows it.
    await entry.get_by_role("button", name="Replay").click()
    await receiver.wait_until(lambda: len(receiver.processed) == 2)
    assert receiver.order == [failed[0]["message_id"], log[0]["message_id"]]
    await log_until(ledger, lambda log: [d["status"] for d in log] == ["delivered"] * 2)
    await page.get_by_role("button", name="Refresh").click()
    await expect(entry).to_contain_text("delivered")
    event = receiver.processed[failed[0]["message_id"]]
    assert event["data"]["account_id"] == account["id"]
    assert event["data"]["amount_minor"] == 2_000
    assert [a.number for a in receiver.attempts_of(failed[0]["message_id"])] == [1, 2, 3]

    # Replaying a delivered event sends it again with its id: the receiver drops the repeat.
    await entry.get_by_role("button", name="Replay").click()
    await receiver.wait_until(lambda: receiver.duplicates == 1)
    assert len(receiver.processed) == 2

    # Disabling asks for a reason; nothing more is sent or replayed there.
    await endpoint_row.get_by_role("button", name="Disable").click()
    dialog = page.locator("#reason-dialog")
    await dialog.get_by_label("Reason (required, kept in the audit log)").fill("Moved books")
    await dialog.get_by_role("button", name="Disable the endpoint").click()
    await expect(endpoint_row).to_contain_text("disabled")
    await expect(endpoint_row).to_contain_text("Moved books")
    await expect(entry.get_by_role("button", name="Replay")).to_have_count(0)
    await ledger.topup(account["id"], 4_000, "books-3")
    assert len(await deliveries(ledger)) == 2


async def test_methods_that_do_not_take_the_currency_cannot_be_chosen(
    page: Page, tmp_path: Path
) -> None:
    # Stripe takes iDEAL, Bancontact and SEPA debit in EUR only (docs/payments.md's table).
    settings = make_settings(
        tmp_path, None, default_currency="CNY", default_timezone="Asia/Shanghai"
    )
    async with running_public_ledger(settings) as ledger:
        await sign_in(page, ledger)
        section = page.locator("#payment-methods")
        for name in ("iDEAL", "Bancontact", "SEPA Direct Debit"):
            await expect(section.get_by_label(name)).to_be_disabled()
            await expect(section.locator(".check", has_text=name)).to_contain_text(
                "not in CNY; takes EUR"
            )
        await expect(section.get_by_label("WeChat Pay")).to_be_enabled()
        await section.get_by_label("WeChat Pay").check()
        await section.get_by_role("button", name="Save payment methods").click()
        await expect(page.locator("#methods-saved")).to_contain_text("WeChat Pay")
        answer = await ledger.ok("GET", "/api/v1/settings/payment-methods")
        assert answer["methods"] == ["card", "wechat_pay"]
