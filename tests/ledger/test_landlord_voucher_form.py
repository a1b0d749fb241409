"""The landlord page's mint form (POST /ui/vouchers/mint): who may send it, and what it answers.

An ordinary HTML form cannot carry X-Requested-With, so the route itself refuses forms from
other sites (Sec-Fetch-Site, Origin), forms with neither header outside ingress, and browsers
without a session; a refused or wrong form mints nothing, and one form id mints at most once.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote

import pytest

from tests.ledger.conftest import Ledger, make_settings, running_ledger
from tests.ledger.test_web_sessions import login, with_cookie

pytestmark = pytest.mark.usefixtures("socket_enabled")
FORM = {"value": "5", "currency": "EUR", "count": "2"}


async def post_form(
    ledger: Ledger, form: dict[str, str], headers: dict[str, str], query: str = ""
) -> tuple[int, str, dict[str, str]]:
    async with ledger.http.post(
        ledger.base_url + "/ui/vouchers/mint" + query,
        data=form,
        headers=headers,
        allow_redirects=False,
    ) as resp:
        return resp.status, await resp.text(), dict(resp.headers)


async def batches(ledger: Ledger) -> list[dict[str, Any]]:
    return list((await ledger.ok("GET", "/api/v1/vouchers/batches"))["batches"])


async def test_the_form_needs_a_session_and_our_own_page(sqlite_ledger: Ledger) -> None:
    ledger = sqlite_ledger
    # The landlord page sends no referrer: Chromium's form says Origin: null, same-origin.
    own = {"Origin": "null", "Sec-Fetch-Site": "same-origin"}
    status, _, headers = await post_form(ledger, FORM, own)
    assert (status, headers["Location"]) == (303, "../../login")  # like the other /ui pages
    session_id = await login(ledger)
    refused = [
        {"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"},
        {"Sec-Fetch-Site": "same-site"},
        {"Origin": "https://evil.example"},
        {"Origin": "https://evil.example", "Sec-Fetch-Site": "same-origin"},
        {"Origin": "null"},  # a sandboxed frame anywhere says null too
        {},  # neither header: not a browser on our page
    ]
    for extra in refused:
        status, page, headers = await post_form(ledger, FORM, with_cookie(session_id, **extra))
        assert status == 403, extra
        assert "Nothing was minted" in page
    assert await batches(ledger) == []

    status, page, headers = await post_form(
        ledger, FORM, with_cookie(session_id, **own), "?request=form-1"
    )
    assert status == 200
    assert headers["Cache-Control"] == "no-store"
    assert "script-src" not in headers["Content-Security-Policy"]  # no script at all
    assert "<script" not in page
    codes = re.findall(r"<p class=voucher-code[^>]*>(.*?)</p>", page)
    digits = [re.sub(r"<[^>]+>|\s", "", code) for code in codes]
    assert len(digits) == 2
    assert all(re.fullmatch(r"[0-9]{20}", d) for d in digits)
    assert "shown only this once" in page
    (csv_url,) = re.findall(r'id=csv href="([^"]+)"', page)
    csv = unquote(csv_url.replace("&amp;", "&").removeprefix("data:text/csv;charset=utf-8,"))
    lines = csv.strip().splitlines()
    assert lines[0] == "serial,code,value,currency,expires_at,batch,url"
    assert [line.split(",")[1].replace(" ", "") for line in lines[1:]] == digits
    assert lines[1].split(",")[2:4] == ["5.00", "EUR"]
    # The same form again (a reload of the cards tab) mints nothing and says which batch it made.
    status, page, _ = await post_form(
        ledger, FORM, with_cookie(session_id, **own), "?request=form-1"
    )
    assert status == 409
    assert "batch #1" in page
    (batch,) = await batches(ledger)
    assert (batch["count"], batch["value_minor"]) == (2, 500)
    # A code from the page credits an account through the API.
    account = await ledger.account(name="Room 1")
    await ledger.ok(
        "POST", "/api/v1/vouchers/redeem", json={"account": account["id"], "code": digits[0]}
    )
    assert await ledger.balance(account["id"]) == 500


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"count": "0"}, "count must be from 1 to 1000"),
        ({"count": "5000"}, "count must be from 1 to 1000"),
        ({"count": "2.5"}, "count must be a whole number from 1 to 1000"),
        ({"value": "1.234"}, "use at most 2 decimal places"),
        ({"value": "0"}, "value: choose an amount from"),
        ({"value": "abc"}, "value:"),
        ({"currency": "EUX"}, "currency must be an ISO 4217 code"),
        ({"expires": "2001-01-01"}, "expires_at must lie in the future"),
        ({"expires": "31.12.2030"}, "expires must be a date such as 2030-12-31"),
        ({"account": "999"}, "account 999 not found"),
        ({"note": "x" * 501}, "note is too long"),
    ],
)
async def test_a_wrong_form_mints_nothing_and_says_why(
    sqlite_ledger: Ledger, form: dict[str, str], message: str
) -> None:
    session_id = await login(sqlite_ledger)
    headers = with_cookie(session_id, Origin=sqlite_ledger.base_url)
    status, page, _ = await post_form(sqlite_ledger, FORM | form, headers)
    assert status in (404, 422), page
    assert message in page
    assert "Back to the landlord page" in page
    assert await batches(sqlite_ledger) == []


async def test_through_ingress_the_form_is_checked_by_fetch_site(tmp_path: Any) -> None:
    settings = make_settings(tmp_path, None, ingress_proxy="127.0.0.1")
    ingress = {"X-Ingress-Path": "/api/hassio_ingress/abc123", "X-Remote-User-Name": "owner"}
    async with running_ledger(settings) as ledger:
        status, _, _ = await post_form(ledger, FORM, ingress | {"Sec-Fetch-Site": "cross-site"})
        assert status == 403
        status, page, headers = await post_form(
            ledger, FORM, ingress | {"Sec-Fetch-Site": "same-origin"}
        )
        assert status == 200
        assert "frame-ancestors 'self'" in headers["Content-Security-Policy"]
        assert page.count("<article class=voucher") == 2
        entries = (await ledger.ok("GET", "/api/v1/audit"))["entries"]
        assert [e["actor"] for e in entries if e["action"] == "voucher.mint"] == ["ingress:owner"]
