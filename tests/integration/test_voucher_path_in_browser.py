"""Issue 22's whole voucher path in one run: landlord page, printed card, tenant's pay page, relay.

A real Home Assistant runs the integration for a room whose credit has run out, its relay open
on a simulated meter. The ledger's public_base_url is the address it really listens on (pay
links work) and Stripe's API base is a closed port (the internet is cut). In a real browser
the landlord signs in, mints a batch of cards and checks the printable page; a code is taken
from a printed card; the tenant, at phone width in a separate browser, opens the pay link the
landlord page issued, finds that a card payment cannot start, types the code and sees it
credited. No poll follows: the ledger's event stream alone must close the relay, like for any
payment. Expected values come from the issue and the inputs: the 20.00 EUR card credits 2000
minor units on top of the debt read before, once; the same code again is "already used".
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from homeassistant.core import HomeAssistant
from playwright.async_api import Browser, Page, expect

from tests.integration.live_room import (
    LedgerProcess,
    Room,
    RoomFactory,
    entity_id,
    room_builder,
    wait_for,
)
from tests.web.conftest import browser  # noqa: F401 - the real browser, as in tests/web

#: Nothing listens on port 9 (discard): every call to "Stripe" fails to connect.
NO_INTERNET = "http://127.0.0.1:9"
PHONE = {"width": 390, "height": 844}
CARD_VALUE = "20"  # EUR, typed in the mint form
CARD_VALUE_MINOR = 2000
CARD_COUNT = 3
ROOM = "Room 1 - Ana"


def eur(minor: int) -> str:
    """The test's own rendering of an amount: 2000 -> "20.00 EUR", -5 -> "-0.05 EUR"."""
    sign = "-" if minor < 0 else ""
    return f"{sign}{abs(minor) // 100}.{abs(minor) % 100:02d} EUR"


@pytest.fixture
async def offline_public_room(
    hass: HomeAssistant, socket_enabled: None, tmp_path: Path, ledger_database_url: str | None
) -> AsyncIterator[RoomFactory]:
    """make_room's rooms, on a ledger with pay links and with Stripe out of reach."""
    ledger = LedgerProcess(
        tmp_path,
        ledger_database_url,
        public=True,
        stripe_api_key="sk_test_offline",
        stripe_api_base=NO_INTERNET,
        default_currency="EUR",
        default_timezone="Europe/Berlin",
    )
    await ledger.start()
    try:
        async with room_builder(hass, ledger) as build:
            yield build
    finally:
        await ledger.stop()


async def sign_in(page: Page, ledger: LedgerProcess) -> None:
    await page.goto(ledger.url + "/")
    await expect(page).to_have_url(ledger.url + "/login")
    await page.get_by_label("Admin token").fill(ledger.admin_token)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", name="Accounts")).to_be_visible()
    await expect(page.locator("#live")).to_have_text("live")


async def mint_and_print(landlord: Page, ledger: LedgerProcess) -> str:
    """Mint CARD_COUNT cards of CARD_VALUE EUR; check the printable page; return a printed code."""
    await landlord.get_by_label("Value per card (EUR)").fill(CARD_VALUE)
    await landlord.get_by_label("Number of cards (1-1000)").fill(str(CARD_COUNT))
    async with landlord.context.expect_page() as opened:
        await landlord.get_by_role("button", name="Mint and print cards").click()
    cards = await opened.value
    await cards.wait_for_load_state()
    printed = cards.locator("article.voucher")
    await expect(printed).to_have_count(CARD_COUNT)
    await expect(printed.first).to_contain_text(eur(CARD_VALUE_MINOR))
    await expect(printed.nth(CARD_COUNT - 1)).to_contain_text(f"{CARD_COUNT} / {CARD_COUNT}")
    await expect(cards.locator(".voucher-qr svg path")).to_have_count(CARD_COUNT)
    await expect(cards.locator(".warning")).to_contain_text("shown only this once")
    # On paper: the warning, the CSV link and the way back are left out; the cards are printed.
    await cards.emulate_media(media="print")
    await expect(cards.locator(".screen-only")).to_be_hidden()
    await expect(cards.locator("#csv")).to_be_hidden()
    for n in range(CARD_COUNT):
        await expect(printed.nth(n)).to_be_visible()
        await expect(printed.nth(n).locator(".voucher-code")).to_be_visible()
    code_text = await printed.first.locator(".voucher-code").inner_text()
    await cards.close()
    assert re.fullmatch(r"[0-9]{20}", re.sub(r"\s", "", code_text)), code_text
    # What the ledger minted is what the landlord typed.
    (batch,) = (await ledger.call("GET", "/api/v1/vouchers/batches"))["batches"]
    assert (batch["value_minor"], batch["currency"]) == (CARD_VALUE_MINOR, "EUR")
    await expect(landlord.locator("#voucher-batches tbody tr").first).to_contain_text(
        eur(CARD_VALUE_MINOR)
    )
    return code_text  # as printed, grouped by spaces: the tenant types it like that


async def issue_pay_link(landlord: Page, ledger: LedgerProcess) -> str:
    landlord.once("dialog", lambda dialog: dialog.accept())
    await landlord.get_by_role("button", name=f"Pay link for {ROOM}").click()
    await expect(landlord.locator("#link-qr svg")).to_be_visible()
    link = await landlord.locator("#link-url").inner_text()
    assert link.startswith(f"{ledger.url}/pay/"), link
    await landlord.locator("#link-dialog").get_by_role("button", name="Close").click()
    return link


async def run_out_of_credit(hass: HomeAssistant, room: Room) -> int:
    """Let the room's 0.02 EUR run out: its relay opens. Return the debt it is left with."""
    await asyncio.sleep(0.5)  # half a second costs about 0.05 EUR, more than the 0.02
    await room.poll_and_post(hass)
    await wait_for(lambda: room.meter.relay_closed is False)
    await wait_for(lambda: hass.states.get(entity_id(hass, room, "relay", "switch")).state == "off")
    debt = -await room.balance_minor()
    assert debt > 0
    return debt


async def orders_of(room: Room) -> list[dict[str, Any]]:
    found = await room.ledger.call("GET", f"/api/v1/topups?account={room.account['id']}")
    return list(found["topups"])


async def card_payment_fails_cleanly(tenant: Page, room: Room, debt: int) -> None:
    """Without the internet no card payment can start: said next to the field, nothing charged."""
    before = await orders_of(room)
    await tenant.get_by_label("Amount (EUR)").fill("10")
    async with tenant.expect_response(re.compile(r"/checkout$")) as answered:
        await tenant.get_by_role("button", name="Pay").click()
    assert (await answered.value).status == 502
    await expect(tenant.locator("#amount-error")).to_contain_text("Stripe did not answer")
    await expect(tenant.get_by_label("Amount (EUR)")).to_have_value("10")  # kept to retry
    await expect(tenant.locator("#balance")).to_have_text(eur(-debt))
    await expect(tenant.locator("#orders tbody tr")).to_have_count(len(before))
    assert await room.balance_minor() == -debt
    assert await orders_of(room) == before  # no order opened, none left pending


async def redeem(tenant: Page, code: str) -> None:
    await tenant.get_by_label("Voucher code").fill(code)
    await tenant.get_by_role("button", name="Redeem").click()


@pytest.mark.parametrize("ledger_backend", ["sqlite", "postgres"])
async def test_landlord_mints_tenant_redeems_offline_and_the_relay_closes(
    hass: HomeAssistant,
    offline_public_room: RoomFactory,
    browser: Browser,  # noqa: F811 - the imported fixture
) -> None:
    room = await offline_public_room(credit_minor=2, name=ROOM)
    debt = await run_out_of_credit(hass, room)
    credited = CARD_VALUE_MINOR - debt  # the balance once the card is redeemed
    opening = await orders_of(room)  # the opening credit's order

    desk = await browser.new_context(viewport={"width": 1280, "height": 800})
    desk.set_default_timeout(10_000)
    phone = await browser.new_context(viewport=PHONE)
    phone.set_default_timeout(10_000)
    try:
        landlord = await desk.new_page()
        await sign_in(landlord, room.ledger)
        landlord_balance = landlord.locator("#accounts tbody tr", has_text=ROOM).locator(".balance")
        await expect(landlord_balance).to_have_text(eur(-debt))
        printed_code = await mint_and_print(landlord, room.ledger)
        link = await issue_pay_link(landlord, room.ledger)

        tenant = await phone.new_page()
        await tenant.goto(link)
        await expect(tenant.locator("#balance")).to_have_text(eur(-debt))
        await expect(tenant.locator("#supply")).to_have_text("Off")
        await card_payment_fails_cleanly(tenant, room, debt)

        # The printed code, typed as printed (in groups): credited at once.
        await redeem(tenant, printed_code)
        await expect(tenant.locator("[role=status]")).to_contain_text("Voucher accepted")
        await expect(tenant.locator("#balance")).to_have_text(eur(credited))
        tenant_orders = tenant.locator("#orders tbody tr")
        await expect(tenant_orders).to_have_count(len(opening) + 1)
        await expect(tenant_orders.first.locator(".status")).to_have_text("succeeded")
        await expect(tenant_orders.first).to_contain_text(eur(CARD_VALUE_MINOR))

        # No poll from here on: the ledger's event stream alone closes the relay.
        await wait_for(lambda: room.meter.relay_closed is True)
        relay_id = entity_id(hass, room, "relay", "switch")
        await wait_for(lambda: hass.states.get(relay_id).state == "on")
        balance_id = entity_id(hass, room, "balance")
        await wait_for(lambda: hass.states.get(balance_id).state == f"{credited / 100:.2f}")
        assert await room.balance_minor() == credited
        (order,) = [o for o in await orders_of(room) if o not in opening]
        assert (order["source"], order["status"], order["amount_minor"]) == (
            "voucher",
            "succeeded",
            CARD_VALUE_MINOR,
        )
        await expect(landlord_balance).to_have_text(eur(credited))  # live, without a reload

        # The tenant's page, looked at again: the balance, and the supply back on.
        await tenant.goto(link)
        await expect(tenant.locator("#balance")).to_have_text(eur(credited))
        await expect(tenant.locator("#supply")).to_have_text("On")

        # The same card again: refused, nothing credited twice.
        await redeem(tenant, printed_code)
        await expect(tenant.locator("#code-error")).to_contain_text("already used")
        await expect(tenant.locator("#balance")).to_have_text(eur(credited))
        await expect(tenant_orders).to_have_count(len(opening) + 1)
        assert await room.balance_minor() == credited
        assert len(await orders_of(room)) == len(opening) + 1
        assert await tenant.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    finally:
        await phone.close()
        await desk.close()
