"""Redeeming a voucher on the tenant's pay page, with the internet cut (Stripe unreachable).

The ledger is reached on a LAN address; its Stripe API base points at a closed port, so a card
payment cannot start while a voucher still credits at once. Expected values come from the
issue: credited once, "already used on ...", typos refused before they count, waits after
repeated wrong codes (three free, then one minute: OpenPAYGO's schedule).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from html import unescape
from pathlib import Path

import pytest
from prepaid_ledger.domain.account_number import damm_check_digit

from tests.ledger.conftest import Ledger, make_settings
from tests.ledger.test_pay_page import pay_link, running_public_ledger

pytestmark = pytest.mark.usefixtures("socket_enabled")

#: Nothing listens on port 9 (discard): every call to "Stripe" fails to connect.
NO_INTERNET = "http://127.0.0.1:9"


@pytest.fixture
async def offline_ledger(tmp_path: Path) -> AsyncIterator[Ledger]:
    settings = make_settings(
        tmp_path, None, stripe_api_key="sk_test_offline", stripe_api_base=NO_INTERNET
    )
    async with running_public_ledger(settings) as ledger:
        yield ledger


async def mint(ledger: Ledger, count: int = 1) -> list[str]:
    minted = await ledger.ok(
        "POST",
        "/api/v1/vouchers/batches",
        json={"value_minor": 1500, "currency": "EUR", "count": count},
    )
    return [card["code"] for card in minted["codes"]]


async def post_code(ledger: Ledger, url: str, code: str) -> tuple[int, str, dict[str, str]]:
    async with ledger.http.post(
        f"{url}/voucher", data={"code": code}, allow_redirects=False
    ) as resp:
        return resp.status, await resp.text(), dict(resp.headers)


def error_of(page: str) -> str:
    found = re.search(r"<p class=error id=code-error role=alert>(.*?)</p>", page, re.DOTALL)
    assert found is not None, page
    return unescape(found.group(1))


async def test_voucher_redeemed_on_the_pay_page_without_internet(offline_ledger: Ledger) -> None:
    ledger = offline_ledger
    account = await ledger.account()
    url = await pay_link(ledger, account["id"])
    code, _ = await mint(ledger, 2)

    # The card's QR code opens the page with the code filled in (and escaped).
    async with ledger.http.get(url, params={"voucher": code}) as resp:
        assert f'value="{code}"' in await resp.text()
    async with ledger.http.get(url, params={"voucher": '"><script>x</script>'}) as resp:
        page = await resp.text()
        assert "<script>x" not in page
        assert "&#34;&gt;&lt;script&gt;" in page or "&quot;&gt;&lt;script&gt;" in page

    # A card payment cannot start: Stripe is out of reach.
    async with ledger.http.post(
        f"{url}/checkout", data={"amount": "10"}, allow_redirects=False
    ) as resp:
        assert resp.status == 502, resp.status  # "Stripe did not answer", never a 500

    status, _, headers = await post_code(ledger, url, code)
    assert status == 303
    assert headers["Location"].endswith("?redeemed=1")
    assert await ledger.balance(account["id"]) == 1500
    async with ledger.http.get(headers["Location"]) as resp:
        page = await resp.text()
        assert "Voucher accepted" in page
        assert "/receipts/" in page  # the voucher top-up has its receipt like any other

    status, page, _ = await post_code(ledger, url, code)
    assert status == 409
    assert error_of(page).startswith("this voucher was already used on ")
    assert await ledger.balance(account["id"]) == 1500


async def test_typos_are_free_and_guesses_wait(offline_ledger: Ledger) -> None:
    ledger = offline_ledger
    account = await ledger.account()
    url = await pay_link(ledger, account["id"])
    (real,) = await mint(ledger)
    typo = real[:-1] + str((int(real[-1]) + 1) % 10)
    for _ in range(10):  # typos never count
        status, page, _ = await post_code(ledger, url, typo)
        assert status == 400
        assert "check digit" in error_of(page)
    status, page, _ = await post_code(ledger, url, "12345")
    assert (status, "20 digits" in error_of(page)) == (400, True)

    guesses = [f"{n:019d}" for n in range(10**18, 10**18 + 6)]
    answers = []
    for body in guesses:
        status, page, headers = await post_code(ledger, url, body + str(damm_check_digit(body)))
        answers.append((status, headers.get("Retry-After")))
    assert [status for status, _ in answers] == [400, 400, 400, 400, 429, 429]
    assert all(0 < int(wait or 0) <= 60 for _, wait in answers[4:])
    status, page, _ = await post_code(ledger, url, real)  # the real code waits too
    assert status == 429
    assert "Please wait 1 minute" in error_of(page)
    assert await ledger.balance(account["id"]) == 0


async def test_a_revoked_link_redeems_nothing(offline_ledger: Ledger) -> None:
    ledger = offline_ledger
    account = await ledger.account()
    old = await pay_link(ledger, account["id"])
    await pay_link(ledger, account["id"])  # a new link revokes the old one
    (code,) = await mint(ledger)
    status, _, _ = await post_code(ledger, old, code)
    assert status == 404
    assert await ledger.balance(account["id"]) == 0


async def scan(ledger: Ledger, query: str, cookie: str | None) -> tuple[int, str, dict[str, str]]:
    """Open a card's QR address (/pay/voucher?...) as a phone with COOKIE (or none) would."""
    headers = {"Cookie": cookie} if cookie else {}
    async with ledger.http.get(
        f"{ledger.base_url}/pay/voucher?{query}", headers=headers, allow_redirects=False
    ) as resp:
        return resp.status, await resp.text(), dict(resp.headers)


async def test_a_scanned_card_opens_the_phones_own_pay_page(offline_ledger: Ledger) -> None:
    ledger = offline_ledger
    account = await ledger.account()
    url = await pay_link(ledger, account["id"])
    (grouped,) = await mint(ledger)  # as printed: five groups of four digits
    code = grouped.replace(" ", "")
    assert len(code) == 20

    # A phone that never opened a pay page is told what to do; nothing is redeemed.
    status, page, _ = await scan(ledger, f"code={code}", None)
    assert status == 200
    assert "Open your pay page first" in page
    assert all(f"<span>{code[i : i + 4]}</span>" in page for i in range(0, 20, 4))

    # Opening the pay link makes the phone remember it (HttpOnly, only below /pay).
    async with ledger.http.get(url) as resp:
        cookie = resp.cookies["pay_link"]
    assert cookie.value == url.rsplit("/", 1)[1]
    assert (cookie["path"], cookie["httponly"], cookie["samesite"]) == ("/pay", True, "Lax")
    remembered = f"pay_link={cookie.value}"

    # Scanning now goes straight to that pay page with the code filled in; still nothing moved.
    status, _, headers = await scan(ledger, f"code={code}", remembered)
    assert status == 303
    assert headers["Location"] == f"{url}?voucher={code}"
    async with ledger.http.get(headers["Location"]) as resp:
        assert f'value="{code}"' in await resp.text()
    assert await ledger.balance(account["id"]) == 0
    status, _, _ = await post_code(ledger, url, grouped)
    assert status == 303
    assert await ledger.balance(account["id"]) == 1500

    # Hostile addresses and cookies: a page or a redirect, escaped and cut short, never a 500.
    for query, sent in [
        ("code=" + "9" * 5_000, remembered),  # (beyond 8 KiB aiohttp answers 400 itself)
        ("code=%3Cscript%3Ex%3C%2Fscript%3E", None),
        ("code=%ff%fe", None),
        ("", remembered),
        ("code=1", "pay_link=" + "x" * 5_000),
    ]:
        status, page, headers = await scan(ledger, query, sent)
        assert status in (200, 303), (query, status)
        assert "<script>x" not in page
        assert len(headers.get("Location", "")) < len(url) + 100

    # A link the landlord replaced is forgotten: the phone is told to open its new link.
    await pay_link(ledger, account["id"])
    status, page, headers = await scan(ledger, f"code={code}", remembered)
    assert status == 200
    assert "Open your pay page first" in page
    assert "pay_link=" in headers["Set-Cookie"]
    assert "Max-Age=0" in headers["Set-Cookie"]
