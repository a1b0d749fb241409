"""The tenant pay page over HTTP: pay links, Stripe Checkout through a local fake, refusals."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import re
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from prepaid_ledger.app import create_app
from prepaid_ledger.config import Settings

from tests.ledger.conftest import Ledger, make_settings, running_ledger
from tests.ledger.test_stream import read_events
from tests.ledger.webhook_helpers import (
    FakeStripe,
    checkout_completed,
    serve_fake_stripe,
    stripe_delivery,
)

pytestmark = pytest.mark.usefixtures("socket_enabled")


@contextlib.asynccontextmanager
async def running_public_ledger(settings: Settings, path: str = "") -> AsyncIterator[Ledger]:
    """Like running_ledger, with public_base_url the address the test reaches it at (+ PATH).

    The socket is bound first, so the configured URL names the port the ledger really has.
    """
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    public = dataclasses.replace(settings, public_base_url=base_url + path)
    runner = web.AppRunner(create_app(public), shutdown_timeout=2)
    await runner.setup()
    await web.SockSite(runner, sock).start()
    try:
        async with aiohttp.ClientSession() as http:
            yield Ledger(base_url, http, public)
    finally:
        await runner.cleanup()


@pytest.fixture
async def stripe_ledger(tmp_path: Path) -> AsyncIterator[tuple[Ledger, FakeStripe]]:
    async with serve_fake_stripe() as (fake, base):
        settings = make_settings(
            tmp_path,
            None,
            stripe_api_key="sk_test_pay",
            stripe_api_base=base,
            max_topup_minor=20_000,
            tenant_min_topup_minor=500,
        )
        async with running_public_ledger(settings) as ledger:
            fake.webhook_url = f"{ledger.base_url}/webhooks/stripe"
            fake.webhook_delay_s = 0
            yield ledger, fake


async def pay_link(ledger: Ledger, account_id: int) -> str:
    issued = await ledger.ok("POST", f"/api/v1/accounts/{account_id}/pay-link")
    assert issued["qr_svg"].startswith("<svg")
    return str(issued["url"])


async def post_amount(ledger: Ledger, url: str, amount: str) -> tuple[int, str, str | None]:
    async with ledger.http.post(
        f"{url}/checkout", data={"amount": amount}, allow_redirects=False
    ) as resp:
        return resp.status, await resp.text(), resp.headers.get("Location")


async def test_checkout_opens_pending_order_and_webhook_credits_it(
    stripe_ledger: tuple[Ledger, FakeStripe],
) -> None:
    ledger, fake = stripe_ledger
    account = await ledger.account(name="Room 7")
    url = await pay_link(ledger, account["id"])
    status, _, location = await post_amount(ledger, url, "12,50")
    assert status == 303
    (created,) = fake.created
    # What Stripe receives: the account number as client_reference_id, 12.50 EUR in cents.
    assert created["client_reference_id"] == account["number"]
    assert created["line_items[0][price_data][unit_amount]"] == "1250"
    assert created["line_items[0][price_data][currency]"] == "eur"
    assert created["mode"] == "payment"
    assert created["success_url"] == url + "?paid={CHECKOUT_SESSION_ID}"
    assert fake.auth == ["Bearer sk_test_pay"]
    assert fake.idempotency_keys[0].startswith(f"pay-{account['id']}-")
    session_id = next(iter(fake.sessions))
    assert location == f"{fake.base_url}/c/pay/{session_id}"
    (order,) = (await ledger.ok("GET", f"/api/v1/topups?account={account['id']}"))["topups"]
    assert (order["status"], order["amount_minor"], order["provider_payment_id"]) == (
        "pending",
        1250,
        session_id,
    )
    # The open checkout is on the event stream at once (landlord page, Home Assistant).
    seen = await read_events(ledger, 100, last_id=0, until="topup.updated", stop_idle=2)
    opened = seen[-1]
    assert (opened["type"], opened["data"]["status"], opened["data"]["order_id"]) == (
        "topup.updated",
        "pending",
        order["id"],
    )
    async with ledger.http.post(location, allow_redirects=False) as resp:  # the tenant pays
        assert resp.status == 303
    for _ in range(100):
        if fake.deliveries:
            break
        await asyncio.sleep(0.05)
    assert fake.deliveries == [200]
    assert await ledger.balance(account["id"]) == 1250
    credited = await ledger.ok("GET", f"/api/v1/topups/{order['id']}")
    assert [step["status"] for step in credited["timeline"]] == [
        "pending",
        "processing",
        "succeeded",
    ]
    async with ledger.http.get(url) as resp:
        page = await resp.text()
    assert "12.50 EUR" in page
    assert "succeeded" in page


@pytest.mark.parametrize(
    ("amount", "message"),
    [
        ("", "enter an amount"),
        ("abc", "amount"),
        ("4.99", "from 5.00 EUR to 200.00 EUR"),
        ("200.01", "from 5.00 EUR to 200.00 EUR"),
        ("10.001", "at most 2 decimal places"),
        ("1e400", "amount"),
        ("9" * 5000, "enter an amount"),
        ("-10", "from 5.00 EUR"),
    ],
)
async def test_bad_amounts_are_refused_at_the_field_and_change_nothing(
    stripe_ledger: tuple[Ledger, FakeStripe], amount: str, message: str
) -> None:
    ledger, fake = stripe_ledger
    account = await ledger.account()
    url = await pay_link(ledger, account["id"])
    status, page, _ = await post_amount(ledger, url, amount)
    assert status == 400
    assert "id=amount-error" in page
    assert message in page
    assert fake.created == []
    assert (await ledger.ok("GET", "/api/v1/topups"))["topups"] == []


async def test_new_pay_link_revokes_the_old_one(stripe_ledger: tuple[Ledger, FakeStripe]) -> None:
    ledger, fake = stripe_ledger
    account = await ledger.account()
    old = await pay_link(ledger, account["id"])
    new = await pay_link(ledger, account["id"])
    async with ledger.http.get(old) as resp:
        assert resp.status == 404
        assert "not valid" in await resp.text()
    status, _, _ = await post_amount(ledger, old, "10")
    assert status == 404
    assert fake.created == []
    async with ledger.http.get(new) as resp:
        assert resp.status == 200
    async with ledger.http.get(f"{ledger.base_url}/pay/{'x' * 1000}") as resp:
        assert resp.status == 404


async def test_refresh_status_rechecks_with_stripe(
    stripe_ledger: tuple[Ledger, FakeStripe],
) -> None:
    ledger, fake = stripe_ledger
    fake.webhook_url = None  # the webhook never arrives (a misconfigured endpoint)
    account = await ledger.account()
    url = await pay_link(ledger, account["id"])
    _, _, location = await post_amount(ledger, url, "20")
    assert location is not None
    async with ledger.http.post(location, allow_redirects=False):
        pass
    (order,) = (await ledger.ok("GET", "/api/v1/topups"))["topups"]
    assert order["status"] == "pending"
    async with ledger.http.post(
        f"{url}/orders/{order['id']}/refresh", allow_redirects=False
    ) as resp:
        assert resp.status == 303
        assert resp.headers["Location"] == url  # back to the page under public_base_url
    assert await ledger.balance(account["id"]) == 2000
    # Another account's order cannot be refreshed through this link.
    other = await ledger.account(name="Other")
    other_url = await pay_link(ledger, other["id"])
    async with ledger.http.post(f"{other_url}/orders/{order['id']}/refresh") as resp:
        assert resp.status == 404


async def test_stripe_outage_shows_a_message_and_opens_no_order(
    stripe_ledger: tuple[Ledger, FakeStripe],
) -> None:
    ledger, fake = stripe_ledger
    fake.broken = True
    account = await ledger.account()
    url = await pay_link(ledger, account["id"])
    status, page, _ = await post_amount(ledger, url, "10")
    assert status == 502
    assert "Stripe did not answer, so nothing was charged" in page
    assert "a voucher (below) works without Stripe" in page
    assert "support@stripe.com" not in page  # the provider's own text stays in the log
    assert (await ledger.ok("GET", "/api/v1/topups"))["topups"] == []


async def test_orders_not_settled_yet_say_so_in_plain_words(
    stripe_ledger: tuple[Ledger, FakeStripe],
) -> None:
    ledger, _ = stripe_ledger
    account = await ledger.account(name="Room 5")
    url = await pay_link(ledger, account["id"])
    outcomes = []
    for event in (
        checkout_completed(account["number"], 1500, payment_status="unpaid"),
        checkout_completed(account["number"], 900, "usd"),  # the account uses EUR
    ):
        body, headers = stripe_delivery(event)
        outcomes.append(
            await ledger.ok("POST", "/webhooks/stripe", data=body, headers=headers, token=None)
        )
    waiting, checking = (o["order_id"] for o in outcomes)
    assert [o["status"] for o in outcomes] == ["processing", "needs_attention"]
    async with ledger.http.get(url) as resp:
        page = await resp.text()
    rows = dict(re.findall(r"<tr data-order='(\d+)'>(.*?)</tr>", page, re.DOTALL))
    assert (
        "We received this payment and are checking it; your landlord has been told."
        in (rows[str(checking)])
    )
    assert "waiting for the payment provider" in rows[str(waiting)].lower()
    assert "checking it" not in rows[str(waiting)]


# ---- Pay links come from public_base_url only: no Host header, no guessed port -------------


async def test_without_public_base_url_no_pay_link_is_issued(tmp_path: Path) -> None:
    # The landlord's page comes through ingress (the Supervisor stands at 127.0.0.1 here).
    settings = make_settings(tmp_path, None, ingress_proxy="127.0.0.1")
    async with running_ledger(settings) as ledger:
        account = await ledger.account()
        status, body = await ledger.call("POST", f"/api/v1/accounts/{account['id']}/pay-link")
        assert status == 409
        assert body["error"]["code"] == "no_public_base_url"
        assert "public_base_url" in body["error"]["message"]
        # Refused before anything changed: no tenant token was made (nor the old one revoked).
        entries = (await ledger.ok("GET", "/api/v1/audit"))["entries"]
        assert [e for e in entries if e["action"].startswith("token.")] == []
        # The landlord page carries the (empty) setting, so it can say pay links need it.
        ingress = {"X-Ingress-Path": "/api/hassio_ingress/abc123"}
        async with ledger.http.get(ledger.base_url + "/", headers=ingress) as resp:
            assert resp.status == 200
            page = await resp.text()
        assert 'data-public-base-url=""' in page
        assert 'id="account-pay-link-notice"' in page


@pytest.mark.parametrize(
    "base",
    [
        "https://pay.example.com",
        "https://pay.example.com/",  # a trailing slash is not doubled
        "https://203.0.113.7:8443/ledger",
        "http://homeassistant.local",  # no port: none is added (Core may be on 80 or 8123)
    ],
)
async def test_pay_link_uses_exactly_the_public_base_url(tmp_path: Path, base: str) -> None:
    settings = make_settings(tmp_path, None, public_base_url=base)
    async with running_ledger(settings) as ledger:
        account = await ledger.account()
        # Whatever Host the request names, the link is built from the setting alone.
        issued = await ledger.ok(
            "POST",
            f"/api/v1/accounts/{account['id']}/pay-link",
            headers={"Host": "attacker.example:8123", "X-Forwarded-Host": "evil.example"},
        )
        url = issued["url"]
        assert re.fullmatch(re.escape(base.rstrip("/")) + r"/pay/plt_[\w-]+", url)
        for guessed in ("127.0.0.1", "attacker", "evil", ":8123", ":8099"):
            assert guessed not in url
        assert issued["qr_svg"].startswith("<svg")


async def test_checkout_without_public_base_url_says_so_and_charges_nothing(
    tmp_path: Path,
) -> None:
    async with serve_fake_stripe() as (fake, stripe_base):
        settings = make_settings(
            tmp_path, None, stripe_api_key="sk_test_pay", stripe_api_base=stripe_base
        )
        async with running_ledger(settings) as ledger:
            account = await ledger.account()
            # A tenant token from before (or made by hand): the page shows, payment does not.
            token = (
                await ledger.ok(
                    "POST", "/api/v1/tokens", json={"scope": "tenant", "account_id": account["id"]}
                )
            )["token"]
            async with ledger.http.get(
                f"{ledger.base_url}/pay/{token}", headers={"Host": "attacker.example:8123"}
            ) as resp:
                assert resp.status == 200
                page = await resp.text()
            # The form posts to the page's own path: no address from the Host header or a port.
            assert f"action='/pay/{token}/checkout'" in page
            assert "attacker" not in page
            assert "8123" not in page
            async with ledger.http.post(
                f"{ledger.base_url}/pay/{token}/checkout", data={"amount": "10"}
            ) as resp:
                assert resp.status == 409
                refused = await resp.text()
            assert "public address (public_base_url)" in refused
            assert "Nothing was charged" in refused
            assert fake.created == []
            assert (await ledger.ok("GET", "/api/v1/topups"))["topups"] == []


async def test_stripe_returns_the_tenant_under_the_public_base_url(tmp_path: Path) -> None:
    async with serve_fake_stripe() as (fake, stripe_base):
        settings = make_settings(
            tmp_path, None, stripe_api_key="sk_test_pay", stripe_api_base=stripe_base
        )
        async with running_public_ledger(settings, "/ledger") as ledger:
            account = await ledger.account()
            url = (await ledger.ok("POST", f"/api/v1/accounts/{account['id']}/pay-link"))["url"]
            assert url.startswith(f"{ledger.base_url}/ledger/pay/")
            token = url.rsplit("/", 1)[1]
            # The tenant reached the ledger some other way (a LAN address, say): Stripe's return
            # addresses and the form still use the public base URL, never the request's Host.
            async with ledger.http.post(
                f"{ledger.base_url}/pay/{token}/checkout",
                data={"amount": "10"},
                headers={"Host": "lan-name:9999"},
                allow_redirects=False,
            ) as resp:
                assert resp.status == 303
            (created,) = fake.created
            assert created["success_url"] == f"{url}?paid={{CHECKOUT_SESSION_ID}}"
            assert created["cancel_url"] == f"{url}?cancelled=1"
