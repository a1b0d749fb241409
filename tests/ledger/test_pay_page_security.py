"""The tenant pay page against a hostile client: escaping, CSP, checkout flooding, bad bodies.

Anyone holding a pay link can load the page and post its form as often and as oddly as they
like. Stripe is the local fake from webhook_helpers (its HTTP API, counted call by call).
"""

from __future__ import annotations

import asyncio
import dataclasses
import html
import time
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tests.ledger.conftest import Ledger, make_settings, running_ledger
from tests.ledger.test_pay_page import running_public_ledger
from tests.ledger.webhook_helpers import FakeStripe, serve_fake_stripe

pytestmark = pytest.mark.usefixtures("socket_enabled")

HOSTILE_NAMES = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "{{7*7}}",
]
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


class Elements(HTMLParser):
    """Every start tag of a page with its attributes, and the text inside <script> and <style>."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.inline: list[str] = []
        self._open: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._open = tag if tag in ("script", "style") else None

    def handle_endtag(self, tag: str) -> None:
        self._open = None

    def handle_data(self, data: str) -> None:
        if self._open and data.strip():
            self.inline.append(data)

    def named(self, tag: str) -> list[dict[str, str | None]]:
        return [attrs for name, attrs in self.tags if name == tag]


def elements(page: str) -> Elements:
    parser = Elements()
    parser.feed(page)
    parser.close()
    return parser


@dataclasses.dataclass
class Site:
    ledger: Ledger
    stripe: FakeStripe


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    async with serve_fake_stripe() as (fake, base):
        settings = make_settings(
            tmp_path,
            None,
            stripe_api_key="sk_test_hostile",
            stripe_api_base=base,
            max_topup_minor=20_000,
            tenant_min_topup_minor=500,
        )
        async with running_public_ledger(settings) as ledger:
            fake.webhook_url = None  # payments stay pending unless a test delivers them
            yield Site(ledger, fake)


async def pay_link(ledger: Ledger, account_id: int) -> str:
    return str((await ledger.ok("POST", f"/api/v1/accounts/{account_id}/pay-link"))["url"])


async def post_checkout(
    ledger: Ledger, url: str, body: bytes | dict[str, str], headers: dict[str, str] | None = None
) -> tuple[int, str, dict[str, str]]:
    async with ledger.http.post(
        f"{url}/checkout", data=body, headers=headers, allow_redirects=False
    ) as resp:
        return resp.status, await resp.text(), dict(resp.headers)


async def orders(ledger: Ledger) -> list[dict[str, object]]:
    return list((await ledger.ok("GET", "/api/v1/topups?limit=500"))["topups"])


# ---- Names and typed text are shown as text ---------------------------------------------------


@pytest.mark.parametrize("name", HOSTILE_NAMES)
async def test_hostile_account_name_is_text_on_the_page(site: Site, name: str) -> None:
    ledger = site.ledger
    account = await ledger.account(name=name)
    url = await pay_link(ledger, account["id"])
    async with ledger.http.get(url) as resp:
        assert resp.status == 200
        page = await resp.text()
    if "<" in name:
        assert name not in page  # the markup itself never reaches the page...
        assert "&lt;" in page  # ...only its escaped text
    found = elements(page)
    assert found.named("img") == []
    # Only the page's own scripts, by address: the chart library, its chart and its refresh.
    assets = f"{ledger.settings.public_base_url}/pay-assets"
    assert [str(s.get("src")).split("?")[0] for s in found.named("script")] == [
        f"{assets}/vendor/uPlot.iife.min.js",
        f"{assets}/charts.js",
        f"{assets}/pay.js",
    ]
    assert found.inline == []
    # The name reads exactly as typed in the title and the heading ({{7*7}} is not evaluated).
    title = page.split("<title>", 1)[1].split("</title>", 1)[0]
    heading = page.split("<h1>", 1)[1].split("</h1>", 1)[0]
    assert html.unescape(title) == f"{name} · Prepaid account"
    assert html.unescape(heading) == name


async def test_hostile_typed_amount_is_echoed_as_text(site: Site) -> None:
    ledger = site.ledger
    account = await ledger.account()
    url = await pay_link(ledger, account["id"])
    typed = "'\"><img src=x>"
    status, page, _ = await post_checkout(ledger, url, {"amount": typed})
    assert status == 400
    assert elements(page).named("img") == []
    (field,) = [a for a in elements(page).named("input") if a.get("id") == "amount"]
    assert field["value"] == typed
    assert site.stripe.created == []


# ---- Headers: a strict CSP, no inline script or style ------------------------------------------


async def test_pay_page_policy_allows_only_its_own_script_and_style(site: Site) -> None:
    ledger, fake = site.ledger, site.stripe
    account = await ledger.account(name="Room 3")
    url = await pay_link(ledger, account["id"])
    status, _, _ = await post_checkout(ledger, url, {"amount": "10"})
    assert status == 303  # an open order: the page refreshes itself
    async with ledger.http.get(url) as resp:
        page = await resp.text()
        headers = resp.headers
    assert headers["Cache-Control"] == "no-store"
    assert headers["Referrer-Policy"] == "no-referrer"
    policy = {
        directive.split()[0]: directive.split()[1:]
        for directive in headers["Content-Security-Policy"].split(";")
        if directive.strip()
    }
    assert policy["default-src"] == ["'none'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["base-uri"] == ["'none'"]
    public_origin = ledger.settings.public_base_url
    assert set(policy["form-action"]) >= {"'self'", public_origin}
    for directive in ("script-src", "style-src"):
        assert set(policy[directive]) <= {"'self'", public_origin}
    assert "unsafe-inline" not in headers["Content-Security-Policy"]
    assert "unsafe-eval" not in headers["Content-Security-Policy"]
    found = elements(page)
    assert found.inline == []  # no inline <script> or <style> body
    assert all("style" not in attrs for _, attrs in found.tags)
    assert all(not key.startswith("on") for _, attrs in found.tags for key in attrs)
    scripts = [(script["src"], "javascript") for script in found.named("script")]
    sheets = [(sheet["href"], "css") for sheet in found.named("link")]
    assert (len(scripts), len(sheets)) == (3, 2)  # its own and the chart library's
    for asset, kind in scripts + sheets:
        assert asset is not None
        assert asset.startswith(f"{public_origin}/")
        async with ledger.http.get(asset) as resp:
            assert resp.status == 200
            assert kind in resp.headers["Content-Type"]
            assert resp.headers["X-Content-Type-Options"] == "nosniff"
            assert len(await resp.text()) > 50
    assert len(fake.created) == 1


async def test_not_found_and_error_pages_carry_the_same_headers(site: Site) -> None:
    ledger = site.ledger
    async with ledger.http.get(f"{ledger.base_url}/pay/plt_nope") as resp:
        assert resp.status == 404
        assert "frame-ancestors 'none'" in resp.headers["Content-Security-Policy"]
        assert resp.headers["Referrer-Policy"] == "no-referrer"
        assert resp.headers["Cache-Control"] == "no-store"
        assert "This pay link is not valid" in await resp.text()


# ---- Checkout flooding ----------------------------------------------------------------------


async def test_a_burst_for_one_amount_opens_one_session(site: Site) -> None:
    ledger, fake = site.ledger, site.stripe
    account = await ledger.account()
    url = await pay_link(ledger, account["id"])
    results = await asyncio.gather(
        *(post_checkout(ledger, url, {"amount": "12.50"}) for _ in range(20))
    )
    assert [status for status, _, _ in results] == [303] * 20
    assert len(fake.created) == 1
    assert len(fake.auth) == 1  # Stripe was called exactly once
    (session_id,) = fake.sessions
    assert {headers["Location"] for _, _, headers in results} == {
        f"{fake.base_url}/c/pay/{session_id}"
    }
    (order,) = await orders(ledger)
    assert (order["status"], order["amount_minor"]) == ("pending", 1250)


async def test_a_burst_of_amounts_is_limited_per_link_and_other_links_still_work(
    site: Site,
) -> None:
    ledger, fake = site.ledger, site.stripe
    account = await ledger.account(name="Flooded")
    url = await pay_link(ledger, account["id"])
    amounts = [f"{10 + i}" for i in range(20)]
    results = await asyncio.gather(*(post_checkout(ledger, url, {"amount": a}) for a in amounts))
    statuses = [status for status, _, _ in results]
    assert statuses.count(303) == 5
    assert statuses.count(429) == 15
    assert len(fake.created) == 5
    assert len(await orders(ledger)) == 5
    for status, page, headers in results:
        if status == 429:
            assert int(headers["Retry-After"]) > 0
            assert "Too many payment attempts" in page
            assert "Nothing was charged" in page
            assert "id=amount-error" in page
    # Asking again for an amount whose session is open still leads there: nothing new opens.
    opened = next(a for a, (status, _, _) in zip(amounts, results, strict=True) if status == 303)
    status, _, headers = await post_checkout(ledger, url, {"amount": opened})
    assert status == 303
    assert headers["Location"].startswith(f"{fake.base_url}/c/pay/")
    assert len(fake.created) == 5
    # Another account's pay link is not affected by this one's limit.
    other = await ledger.account(name="Neighbour")
    other_url = await pay_link(ledger, other["id"])
    status, _, _ = await post_checkout(ledger, other_url, {"amount": "10"})
    assert status == 303
    assert len(fake.created) == 6


async def test_one_address_opens_at_most_ten_sessions_across_links(site: Site) -> None:
    ledger, fake = site.ledger, site.stripe
    links = [await pay_link(ledger, (await ledger.account())["id"]) for _ in range(3)]
    statuses = []
    for link in links:
        for amount in ("10", "11", "12", "13"):
            status, _, _ = await post_checkout(ledger, link, {"amount": amount})
            statuses.append(status)
    assert statuses == [303] * 10 + [429] * 2
    assert len(fake.created) == 10


async def test_both_listeners_share_the_open_session_and_the_limits(tmp_path: Path) -> None:
    async with serve_fake_stripe() as (fake, base):
        settings = make_settings(
            tmp_path,
            None,
            stripe_api_key="sk_test_both",
            stripe_api_base=base,
            public_base_url="https://pay.example.com",
        )
        async with running_ledger(settings) as ledger:
            account = await ledger.account()
            link = await pay_link(ledger, account["id"])
            path = link.removeprefix("https://pay.example.com")
            private, public = ledger.base_url + path, ledger.public_url + path
            results = await asyncio.gather(
                *(post_checkout(ledger, url, {"amount": "30"}) for url in [private, public] * 5)
            )
            assert {status for status, _, _ in results} == {303}
            assert len({headers["Location"] for _, _, headers in results}) == 1
            assert len(fake.created) == 1
            # Four more amounts on one listener and one on the other reach the link's limit.
            for url, amount in [(private, "31"), (private, "32"), (public, "33"), (public, "34")]:
                status, _, _ = await post_checkout(ledger, url, {"amount": amount})
                assert status == 303
            status, _, _ = await post_checkout(ledger, private, {"amount": "35"})
            assert status == 429
            assert len(fake.created) == 5


async def test_clients_behind_a_trusted_proxy_are_limited_one_by_one(tmp_path: Path) -> None:
    async with serve_fake_stripe() as (fake, base):
        settings = make_settings(
            tmp_path,
            None,
            stripe_api_key="sk_test_proxy",
            stripe_api_base=base,
            trusted_proxies=("127.0.0.1",),
        )
        async with running_public_ledger(settings) as ledger:
            links = [await pay_link(ledger, (await ledger.account())["id"]) for _ in range(3)]

            async def from_client(client: str, link: str, amount: str) -> int:
                forwarded = FORM | {"X-Forwarded-For": client}
                status, _, _ = await post_checkout(
                    ledger, link, f"amount={amount}".encode(), forwarded
                )
                return status

            # One tenant's ten sessions do not use up another tenant's behind the same proxy.
            first = [
                await from_client("198.51.100.7", links[i // 4], str(10 + i)) for i in range(10)
            ]
            assert first == [303] * 10
            assert await from_client("198.51.100.7", links[2], "30") == 429
            assert await from_client("203.0.113.9", links[2], "31") == 303
            assert len(fake.created) == 11


async def test_refused_checkouts_do_not_count_against_the_limit(site: Site) -> None:
    ledger, fake = site.ledger, site.stripe
    account = await ledger.account()
    url = await pay_link(ledger, account["id"])
    fake.broken = True  # a Stripe outage: nothing opens, so nothing is counted
    for _ in range(6):
        status, _, _ = await post_checkout(ledger, url, {"amount": "10"})
        assert status == 502
    fake.broken = False
    status, _, _ = await post_checkout(ledger, url, {"amount": "10"})
    assert status == 303


async def test_after_a_restart_an_open_session_is_asked_about_and_reused(tmp_path: Path) -> None:
    async with serve_fake_stripe() as (fake, base):
        settings = make_settings(
            tmp_path, None, stripe_api_key="sk_test_restart", stripe_api_base=base
        )
        async with running_public_ledger(settings) as ledger:
            account = await ledger.account()
            url = await pay_link(ledger, account["id"])
            status, _, first = await post_checkout(ledger, url, {"amount": "20"})
            assert status == 303
        # The same database, a new process: the session's page is asked for at Stripe.
        async with running_public_ledger(settings) as ledger:
            url = await pay_link(ledger, account["id"])
            status, _, again = await post_checkout(ledger, url, {"amount": "20"})
            assert status == 303
            assert again["Location"] == first["Location"]
            assert len(fake.created) == 1
            # Once the tenant paid it (the webhook has not arrived), it is never offered again.
            async with ledger.http.post(first["Location"], allow_redirects=False) as resp:
                assert resp.status == 303
        async with running_public_ledger(settings) as ledger:
            url = await pay_link(ledger, account["id"])
            status, _, third = await post_checkout(ledger, url, {"amount": "20"})
            assert status == 303
            assert third["Location"] != first["Location"]
            assert len(fake.created) == 2


async def test_a_session_the_tenant_came_back_from_paid_is_not_reused(site: Site) -> None:
    ledger, fake = site.ledger, site.stripe
    account = await ledger.account()
    url = await pay_link(ledger, account["id"])
    _, _, first = await post_checkout(ledger, url, {"amount": "15"})
    # The tenant pays on Stripe and is sent back (?paid=<session id>); no webhook yet.
    async with ledger.http.post(first["Location"]) as resp:
        assert resp.status == 200
        assert "Thank you" in await resp.text()
    _, _, second = await post_checkout(ledger, url, {"amount": "15"})
    assert second["Location"] != first["Location"]
    assert len(fake.created) == 2


async def test_a_session_about_to_expire_is_not_reused(tmp_path: Path) -> None:
    async with serve_fake_stripe() as (fake, base):
        settings = make_settings(tmp_path, None, stripe_api_key="sk_test_exp", stripe_api_base=base)
        async with running_public_ledger(settings) as ledger:
            account = await ledger.account()
            url = await pay_link(ledger, account["id"])
            _, _, first = await post_checkout(ledger, url, {"amount": "20"})
        (session,) = fake.sessions.values()
        session["expires_at"] = int(time.time()) + 60  # Stripe closes it in a minute
        async with running_public_ledger(settings) as ledger:
            url = await pay_link(ledger, account["id"])
            _, _, second = await post_checkout(ledger, url, {"amount": "20"})
            assert second["Location"] != first["Location"]
            assert len(fake.created) == 2


# ---- Bodies that are not UTF-8, amounts that are not amounts ----------------------------------


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        (b"amount=\xff", FORM),
        (b"amount=%ff%fe", FORM),
        (b"amount=10&note=\xc3\x28", FORM),
        (b"\xfe\xff=10", FORM),
    ],
)
async def test_a_body_that_is_not_utf8_is_refused_with_the_page(
    site: Site, body: bytes, headers: dict[str, str]
) -> None:
    ledger, fake = site.ledger, site.stripe
    account = await ledger.account(name="Room 9")
    url = await pay_link(ledger, account["id"])
    status, page, response_headers = await post_checkout(ledger, url, body, headers)
    assert status == 400
    assert "text/html" in response_headers["Content-Type"]
    assert "<h1>Room 9</h1>" in page
    assert "id=amount-error" in page
    assert "UTF-8" in page
    assert fake.created == []
    assert await orders(ledger) == []


async def test_a_multipart_body_is_refused_without_a_server_error(site: Site) -> None:
    ledger, fake = site.ledger, site.stripe
    account = await ledger.account()
    url = await pay_link(ledger, account["id"])
    body = b"--b\r\nContent-Disposition: form-data; name=amount\r\n\r\n\xff\xfe\r\n--b--\r\n"
    headers = {"Content-Type": "multipart/form-data; boundary=b"}
    status, _, _ = await post_checkout(ledger, url, body, headers)
    assert status in (400, 415)  # the page's form is url-encoded: never read, never a 500
    assert fake.created == []
    assert await orders(ledger) == []


@pytest.mark.parametrize("amount", ["1e999999", "NaN", "nan", "Infinity", str(10**30), "-0", ""])
async def test_amounts_that_are_not_amounts_are_refused(site: Site, amount: str) -> None:
    ledger, fake = site.ledger, site.stripe
    account = await ledger.account()
    url = await pay_link(ledger, account["id"])
    status, page, _ = await post_checkout(ledger, url, {"amount": amount})
    assert status == 400
    assert "id=amount-error" in page
    assert fake.created == []
    assert await orders(ledger) == []
