"""The landlord page with 10,000 rooms: found by the ledger's search, shown a page at a time.

The ledger is seeded with 10,000 accounts; what each search must find is worked out here from
the seeded names and numbers, not from the ledger's own query.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from playwright.async_api import Page, Route, expect
from prepaid_ledger.domain.account_number import account_number_for
from prepaid_ledger.services import accounts
from prepaid_ledger.services.journal import customer_book_key
from prepaid_ledger.store.database import Database
from prepaid_ledger.store.models import Account, Book, utcnow
from prepaid_meter_contract.accounts import AccountInput
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from tests.ledger.conftest import Ledger
from tests.web.test_landlord_ui import sign_in

pytestmark = pytest.mark.usefixtures("socket_enabled")

ROOMS = 10_000
SPECIAL = "Zhang Wei 3141"


def block_names() -> list[str]:
    return [f"Block {n // 100:03d} Room {n % 100:02d}" for n in range(ROOMS - 1)] + [SPECIAL]


async def seed(ledger: Ledger, names: list[str]) -> list[tuple[int, str, str]]:
    """Insert an account per name, each with its book, as bulk rows (10,000 API calls take minutes).

    The rows are what ``create_account`` writes (the account, its customer book, its printed
    number and default policy); only the audit entries are left out.
    """
    policy = accounts.stored_settings(AccountInput(name="x", currency="EUR", timezone="UTC"))
    database = Database(ledger.settings.database_url)

    async def insert_all(session: AsyncSession) -> list[tuple[int, str, str]]:
        first_account = int(await session.scalar(select(func.max(Account.id))) or 0) + 1
        first_book = int(await session.scalar(select(func.max(Book.id))) or 0) + 1
        made = [
            (first_account + i, name, account_number_for(first_account + i))
            for i, name in enumerate(names)
        ]
        await session.execute(
            insert(Book),
            [
                {
                    "id": first_book + i,
                    "key": customer_book_key(account_id),
                    "kind": "customer",
                    "currency": "EUR",
                    "balance_minor": 0,
                }
                for i, (account_id, _, _) in enumerate(made)
            ],
        )
        await session.execute(
            insert(Account),
            [
                {
                    "id": account_id,
                    "number": number,
                    "name": name,
                    "currency": "EUR",
                    "timezone": "Europe/Berlin",
                    "status": "open",
                    "settings": policy,
                    "book_id": first_book + i,
                    "supply_allowed": False,
                    "alert_level": 0,
                    "exhausted_since": utcnow(),
                }
                for i, (account_id, name, number) in enumerate(made)
            ],
        )
        return made

    try:
        return await database.write(insert_all)
    finally:
        await database.engine.dispose()


def matches(made: list[tuple[int, str, str]], text: str) -> list[str]:
    """What a search for TEXT must find: the name or the account number contains it."""
    found = [
        (name.lower(), i, name)
        for i, name, number in made
        if text in name.lower() or text in number
    ]
    return [name for _, _, name in sorted(found)]


async def test_ten_thousand_rooms_search_pages_and_filters(page: Page, ledger: Ledger) -> None:
    made = await seed(ledger, block_names())
    by_name = {name: account_id for account_id, name, _ in made}
    await ledger.topup(by_name[SPECIAL], 2500, "seed-special")
    await ledger.topup(by_name["Block 042 Room 07"], 900, "seed-042")

    started = time.monotonic()
    await sign_in(page, ledger)
    rows = page.locator("#accounts tbody tr")
    # One page in the page, not 10,000 rows. Time goes to bench/, not here: the generous wait
    # only keeps a loaded CI machine from failing a correct page.
    await expect(rows).to_have_count(50, timeout=30_000)
    await expect(page.locator("#list-count")).to_have_text("Showing 50 of 10000")
    first_names = sorted(name for _, name, _ in made)[:50]
    await expect(rows.first).to_contain_text(first_names[0])
    await expect(rows.last).to_contain_text(first_names[49])
    print(f"10,000 accounts: list shown {time.monotonic() - started:.2f} s after sign-in began")

    await page.get_by_role("button", name="Show more").click()
    await expect(rows).to_have_count(100)
    await expect(rows.nth(99)).to_contain_text(sorted(name for _, name, _ in made)[99])

    # Search runs in the ledger: by name, by (part of) the account number.
    search = page.get_by_label("Search by room, tenant or account number")
    await search.fill("room 99")
    expected = matches(made, "room 99")
    assert len(expected) == 99  # blocks 000-098 (block 099's room 99 is the special room)
    await expect(page.locator("#list-count")).to_have_text(f"Showing 50 of {len(expected)}")
    await expect(rows.first).to_contain_text(expected[0])
    special_number = next(number for _, name, number in made if name == SPECIAL)
    await search.fill(special_number)
    await expect(rows).to_have_count(len(matches(made, special_number)))
    await expect(page.locator("#accounts tbody tr", has_text=SPECIAL)).to_contain_text("25.00 EUR")
    await search.fill("no such tenant")
    await expect(rows).to_have_count(0)
    await expect(page.locator("#empty")).to_have_text("No account matches.")
    await search.fill("")
    await expect(rows).to_have_count(50)

    # Filters and sorts are the ledger's too: all but the two rooms with credit are cut off.
    await page.get_by_label("Show", exact=True).select_option("supply=off")
    await expect(page.locator("#list-count")).to_have_text(f"Showing 50 of {ROOMS - 2}")
    await expect(page.locator("#accounts tbody tr", has_text=SPECIAL)).to_have_count(0)
    await page.get_by_label("Show", exact=True).select_option("")
    balance = page.get_by_role("button", name="Balance")
    await balance.click()
    await expect(page.locator("th[aria-sort='ascending']")).to_contain_text("Balance")
    await balance.click()  # highest first
    await expect(page.locator("th[aria-sort='descending']")).to_contain_text("Balance")
    await expect(rows.nth(0)).to_contain_text(SPECIAL)
    await expect(rows.nth(1)).to_contain_text("Block 042 Room 07")

    # A top-up from the list still credits the right room among 10,000.
    target: dict[str, Any] = {"name": "Block 099 Room 98"}
    await search.fill(target["name"])
    await expect(rows).to_have_count(1)
    await page.get_by_role("button", name=f"Top up {target['name']}").click()
    await page.get_by_label("Amount (EUR)").fill("3.30")
    await page.get_by_role("button", name="Credit the account").click()
    await expect(rows.first.locator(".balance")).to_have_text("3.30 EUR")
    assert await ledger.balance(by_name[target["name"]]) == 330


async def test_a_live_refresh_does_not_take_back_show_more(page: Page, ledger: Ledger) -> None:
    """A payment lands while "Show more" is on its way: the list still grows to two pages.

    The next page is held in the browser until the live refresh the payment causes has been
    answered, the order a loaded machine produced (the refresh used to ask for one page and
    overrule the click).
    """
    names = [f"Flat {n:03d}" for n in range(120)]
    made = await seed(ledger, names)
    await sign_in(page, ledger)
    rows = page.locator("#accounts tbody tr")
    await expect(rows).to_have_count(50)

    release = asyncio.Event()

    async def hold(route: Route) -> None:
        await release.wait()
        await route.continue_()

    await page.route(lambda url: "/api/v1/accounts?" in url and "cursor=" in url, hold)
    async with page.expect_request(lambda r: "/api/v1/accounts?" in r.url and "cursor=" in r.url):
        await page.get_by_role("button", name="Show more").click()
    async with page.expect_request(
        lambda r: "/api/v1/accounts?" in r.url and "cursor=" not in r.url
    ) as refresh:
        await ledger.topup(made[0][0], 100, "while-showing-more")
    answered = await (await refresh.value).response()
    assert answered is not None
    assert answered.ok
    release.set()

    await expect(rows).to_have_count(100)
    await expect(page.locator("#list-count")).to_have_text("Showing 100 of 120")
    await expect(rows.nth(99)).to_contain_text(sorted(names)[99])
    await expect(rows.first).to_contain_text("1.00 EUR")
