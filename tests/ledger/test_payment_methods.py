"""Payment methods over HTTP: the landlord's setting, what Checkout is asked to offer, currencies
from the pay page to Stripe and back, and delayed confirmation (SEPA Direct Debit).

Stripe sits at its HTTP boundary (tests/ledger/webhook_helpers.py FakeStripe): the official
client creates the Checkout Session there, the tenant "pays" on its hosted page with the method
of the test's choosing, and the fake delivers signed webhooks shaped like Stripe's documented
events (https://docs.stripe.com/api/events/types: checkout.session.completed with
payment_status "paid" or, for a delayed notification method, "unpaid"; then
checkout.session.async_payment_succeeded / checkout.session.async_payment_failed). The
official client pins API version 2026-10-28, on which Checkout Sessions no longer take
``payment_method_types`` (https://docs.stripe.com/changelog/endive/2026-09-30/remove-payment-
method-types-checkout-sessions): the fake refuses it as Stripe does, so the ledger must send
``allowed_payment_method_types``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import stripe
from prepaid_ledger.config import settings_from
from pydantic import ValidationError

from tests.ledger.conftest import Ledger, make_settings, running_ledger
from tests.ledger.test_cli import run_cli
from tests.ledger.test_pay_page import pay_link, post_amount, running_public_ledger
from tests.ledger.webhook_helpers import FakeStripe, serve_fake_stripe, stripe_delivery

pytestmark = pytest.mark.usefixtures("socket_enabled")
PATH = "/api/v1/settings/payment-methods"
ALL_METHODS = ["card", "alipay", "wechat_pay", "sepa_debit", "ideal", "bancontact", "link"]


@contextlib.asynccontextmanager
async def stripe_ledger(
    tmp_path: Path, currency: str = "EUR", methods: tuple[str, ...] = ("card",), **extra: Any
) -> AsyncIterator[tuple[Ledger, FakeStripe]]:
    """A ledger with a Stripe API key (the fake), default CURRENCY and add-on option METHODS."""
    async with serve_fake_stripe() as (fake, base):
        settings = make_settings(
            tmp_path,
            None,
            stripe_api_key="sk_test_methods",
            stripe_api_base=base,
            max_topup_minor=20_000,
            tenant_min_topup_minor=500,
            default_currency=currency,
            payment_methods=methods,
            **extra,
        )
        async with running_public_ledger(settings) as ledger:
            fake.webhook_url = f"{ledger.base_url}/webhooks/stripe"
            fake.webhook_delay_s = 0
            yield ledger, fake


async def deliveries(fake: FakeStripe, count: int) -> list[int]:
    for _ in range(200):
        if len(fake.deliveries) >= count:
            break
        await asyncio.sleep(0.02)
    return fake.deliveries


async def audit_entries(ledger: Ledger) -> list[dict[str, Any]]:
    entries = (await ledger.ok("GET", "/api/v1/audit?limit=1000"))["entries"]
    return [e for e in entries if e["action"] == "settings.payment_methods"]


async def only_order(ledger: Ledger, account_id: int) -> dict[str, Any]:
    (order,) = (await ledger.ok("GET", f"/api/v1/topups?account={account_id}"))["topups"]
    return dict(await ledger.ok("GET", f"/api/v1/topups/{order['id']}"))


async def order_row(ledger: Ledger, url: str, order_id: int) -> str:
    async with ledger.http.get(url) as resp:
        page = await resp.text()
    return dict(re.findall(r"<tr data-order='(\d+)'>(.*?)</tr>", page, re.DOTALL))[str(order_id)]


# ---- The setting --------------------------------------------------------------------------


async def test_the_add_on_option_is_in_force_until_the_landlord_chooses(tmp_path: Path) -> None:
    async with stripe_ledger(tmp_path, "EUR", ("card", "ideal")) as (ledger, _):
        setting = await ledger.ok("GET", PATH)
        assert setting["methods"] == setting["option_methods"] == ["card", "ideal"]
        assert (setting["source"], setting["default_currency"]) == ("add_on_option", "EUR")
        available = {item["method"]: item for item in setting["available"]}
        assert list(available) == ALL_METHODS
        assert available["sepa_debit"] == {
            "method": "sepa_debit",
            "currencies": ["EUR"],
            "confirms_later": True,
        }
        assert available["card"]["currencies"] is None
        assert "CNY" in available["alipay"]["currencies"]

        chosen = await ledger.ok("PUT", PATH, json={"methods": ["sepa_debit", "card", "link"]})
        assert chosen["methods"] == ["sepa_debit", "card", "link"]
        assert (chosen["source"], chosen["option_methods"]) == ("landlord", ["card", "ideal"])
        assert await ledger.ok("GET", PATH) == chosen
        (entry,) = await audit_entries(ledger)
        assert entry["actor"] == "admin"
        assert entry["before"] == {"methods": ["card", "ideal"], "source": "add_on_option"}
        assert entry["after"] == {"methods": ["sepa_debit", "card", "link"], "source": "landlord"}
    # The choice is kept in the database: it wins after a restart too.
    async with stripe_ledger(tmp_path, "EUR", ("card",)) as (ledger, _):
        assert (await ledger.ok("GET", PATH))["methods"] == ["sepa_debit", "card", "link"]


@pytest.mark.parametrize(
    ("body", "status", "code", "words"),
    [
        ({"methods": ["paypal"]}, 422, "unknown_payment_method", ["'paypal'", "card"]),
        ({"methods": ["card", "card"]}, 422, "duplicate_payment_method", ["'card' twice"]),
        ({"methods": []}, 422, "no_payment_method", ["at least one"]),
        ({"methods": ["card"] * 100_000}, 422, "too_many_payment_methods", ["at most 7"]),
        ({"methods": ["x" * 100_000]}, 422, "unknown_payment_method", ["..."]),
        ({"methods": [1]}, 422, "invalid_field", ["item 1", "int"]),
        ({"methods": [None, "card"]}, 422, "invalid_field", ["item 1"]),
        ({"methods": [["card"]]}, 422, "invalid_field", ["list"]),
        ({"methods": "card"}, 422, "invalid_field", ["must be a list"]),
        ({"methods": {"card": True}}, 422, "invalid_field", ["must be a list"]),
        ({"methods": None}, 422, "invalid_field", ["must be a list"]),
        ({}, 422, "invalid_field", ["required"]),
        (["card"], 422, "invalid_field", ["object"]),
    ],
)
async def test_bad_choices_are_refused_and_change_nothing(
    tmp_path: Path, body: object, status: int, code: str, words: list[str]
) -> None:
    async with stripe_ledger(tmp_path) as (ledger, _):
        before = await ledger.ok("GET", PATH)
        answer_status, answer = await ledger.call("PUT", PATH, json=body)
        assert answer_status == status, answer
        error = answer["error"]
        assert error["code"] == code
        for word in words:
            assert word in error["message"], error
        assert len(error["message"]) < 400  # a huge body is not echoed back
        assert await ledger.ok("GET", PATH) == before
        assert await audit_entries(ledger) == []


async def test_a_body_that_is_not_json_is_refused(tmp_path: Path) -> None:
    async with stripe_ledger(tmp_path) as (ledger, _):
        before = await ledger.ok("GET", PATH)
        status, answer = await ledger.call(
            "PUT", PATH, data=b'{"methods": ["card"', headers={"Content-Type": "application/json"}
        )
        assert status == 400, answer
        assert await ledger.ok("GET", PATH) == before


async def test_a_method_that_does_not_take_the_default_currency_is_refused(
    tmp_path: Path,
) -> None:
    async with stripe_ledger(tmp_path, "CNY", ("card", "alipay")) as (ledger, _):
        status, answer = await ledger.call(
            "PUT", PATH, json={"methods": ["wechat_pay", "sepa_debit"]}
        )
        assert status == 422
        error = answer["error"]
        assert (error["code"], error["field"]) == ("payment_method_currency", "methods")
        assert "sepa_debit" in error["message"]
        assert "CNY" in error["message"]
        assert "EUR" in error["message"]
        setting = await ledger.ok("GET", PATH)
        assert (setting["methods"], setting["source"]) == (["card", "alipay"], "add_on_option")
        assert await audit_entries(ledger) == []


async def test_only_the_landlord_reads_or_changes_the_setting(tmp_path: Path) -> None:
    async with stripe_ledger(tmp_path) as (ledger, _):
        issued = await ledger.ok("POST", "/api/v1/tokens", json={"scope": "integration"})
        for token in (None, issued["token"]):
            for method, body in (("GET", None), ("PUT", {"methods": ["link"]})):
                status, _ = await ledger.call(method, PATH, json=body, token=token)
                assert status == (401 if token is None else 403)
        assert (await ledger.ok("GET", PATH))["methods"] == ["card"]


async def test_the_setting_is_not_served_on_the_public_port(tmp_path: Path) -> None:
    async with running_ledger(make_settings(tmp_path, None)) as ledger:
        headers = {"Authorization": "Bearer test-admin-token"}
        async with ledger.http.get(ledger.public_url + PATH, headers=headers) as resp:
            assert resp.status == 404


# ---- Starting with the add-on option ------------------------------------------------------


@pytest.mark.parametrize(
    ("currency", "methods", "words"),
    [
        ("CNY", "card,sepa_debit", ["sepa_debit", "CNY", "EUR only"]),
        ("JPY", "alipay,ideal", ["ideal", "JPY"]),
        ("EUR", "card,paypal", ["'paypal'"]),
        ("EUR", "card,card", ["'card' twice"]),
        ("EUR", "", ["at least one"]),
        ("EUR", " , ", ["at least one"]),
    ],
)
async def test_a_wrong_option_stops_the_start_naming_it(
    tmp_path: Path, currency: str, methods: str, words: list[str]
) -> None:
    env = os.environ.copy() | {
        "PREPAID_LEDGER_CURRENCY": currency,
        "PREPAID_LEDGER_PAYMENT_METHODS": methods,
    }
    code, out = await run_cli("serve", "--data-dir", str(tmp_path), env=env)
    assert code == 2, out
    assert "prepaid-ledger: PREPAID_LEDGER_PAYMENT_METHODS:" in out
    for word in words:
        assert word in out, out
    assert "Traceback" not in out


def test_the_option_is_read_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PREPAID_LEDGER_CURRENCY", "CNY")
    monkeypatch.setenv("PREPAID_LEDGER_PAYMENT_METHODS", " wechat_pay, card ,alipay,")
    assert settings_from(tmp_path, None).payment_methods == ("wechat_pay", "card", "alipay")
    monkeypatch.delenv("PREPAID_LEDGER_PAYMENT_METHODS")
    assert settings_from(tmp_path, None).payment_methods == ("card",)
    monkeypatch.setenv("PREPAID_LEDGER_PAYMENT_METHODS", "sepa_debit")
    with pytest.raises(ValidationError, match="sepa_debit"):
        settings_from(tmp_path, None)


# ---- What Checkout is asked to offer ------------------------------------------------------


def offered(created: dict[str, str]) -> list[str]:
    return [
        value
        for key, value in sorted(created.items())
        if key.startswith("allowed_payment_method_types[")
    ]


async def test_checkout_offers_the_methods_that_take_the_orders_currency(tmp_path: Path) -> None:
    async with stripe_ledger(tmp_path) as (ledger, fake):
        await ledger.ok(
            "PUT", PATH, json={"methods": ["sepa_debit", "card", "alipay", "wechat_pay"]}
        )
        euro = await ledger.account(name="Room EUR")
        yuan = await ledger.account(name="Room CNY", currency="CNY", timezone="Asia/Shanghai")
        for account in (euro, yuan):
            status, page, _ = await post_amount(ledger, await pay_link(ledger, account["id"]), "20")
            assert status == 303, page
        for_euro, for_yuan = fake.created
        assert offered(for_euro) == ["sepa_debit", "card", "alipay", "wechat_pay"]
        assert offered(for_yuan) == ["card", "alipay", "wechat_pay"]  # SEPA takes EUR only
        for created in fake.created:
            # Checkout needs the client for WeChat Pay; the removed parameter is never sent.
            assert created["payment_method_options[wechat_pay][client]"] == "web"
            assert not any(key.startswith("payment_method_types") for key in created)
        assert fake.versions == [stripe.api_version] * 2
        assert stripe.api_version >= "2026-09-30"
        # The session Stripe answered offers them (its payment_method_types).
        assert [s["payment_method_types"] for s in fake.sessions.values()] == [
            ["sepa_debit", "card", "alipay", "wechat_pay"],
            ["card", "alipay", "wechat_pay"],
        ]


async def test_card_alone_sends_no_wechat_options(tmp_path: Path) -> None:
    async with stripe_ledger(tmp_path) as (ledger, fake):
        account = await ledger.account()
        await post_amount(ledger, await pay_link(ledger, account["id"]), "12.50")
        (created,) = fake.created
        assert offered(created) == ["card"]
        assert not any(key.startswith("payment_method_options") for key in created)


async def test_no_method_for_the_currency_is_a_clear_409_and_nothing_is_created(
    tmp_path: Path,
) -> None:
    async with stripe_ledger(tmp_path, "EUR", ("sepa_debit", "ideal")) as (ledger, fake):
        account = await ledger.account(name="Room JPY", currency="JPY", timezone="Asia/Tokyo")
        url = await pay_link(ledger, account["id"])
        for _ in range(3):  # refusals do not count against the page's attempt limit
            status, page, location = await post_amount(ledger, url, "1500")
            assert (status, location) == (409, None)
            assert "none of the payment methods the landlord offers" in page
            assert "sepa_debit, ideal" in page
            assert "JPY" in page
            assert "nothing was charged" in page
        assert fake.created == []
        assert (await ledger.ok("GET", "/api/v1/topups"))["topups"] == []


# ---- Currencies from the pay page to Stripe and back --------------------------------------


@pytest.mark.parametrize("method", ["card", "alipay", "wechat_pay"])
async def test_cny_from_the_typed_amount_to_the_credit(tmp_path: Path, method: str) -> None:
    async with stripe_ledger(tmp_path, "CNY", ("card", "alipay", "wechat_pay")) as (
        ledger,
        fake,
    ):
        account = await ledger.account(name="房间 3", currency="CNY", timezone="Asia/Shanghai")
        url = await pay_link(ledger, account["id"])
        status, _, location = await post_amount(ledger, url, "88.80")
        assert status == 303
        assert location is not None
        (created,) = fake.created
        assert created["line_items[0][price_data][unit_amount]"] == "8880"  # fen
        assert created["line_items[0][price_data][currency]"] == "cny"
        async with ledger.http.post(location, data={"method": method}, allow_redirects=False):
            pass
        assert await deliveries(fake, 1) == [200]
        assert fake.paid_with == {created_id(fake): method}
        assert await ledger.balance(account["id"]) == 8880
        order = await only_order(ledger, account["id"])
        assert (order["status"], order["amount_minor"], order["currency"]) == (
            "succeeded",
            8880,
            "CNY",
        )
        assert [step["status"] for step in order["timeline"]] == [
            "pending",
            "processing",
            "succeeded",
        ]
        assert "88.80 CNY" in await order_row(ledger, url, order["id"])


def created_id(fake: FakeStripe) -> str:
    (session_id,) = fake.sessions
    return session_id


async def test_jpy_has_no_decimals_from_the_page_to_stripe(tmp_path: Path) -> None:
    async with stripe_ledger(tmp_path, "JPY", ("card", "alipay")) as (ledger, fake):
        account = await ledger.account(name="Room JP", currency="JPY", timezone="Asia/Tokyo")
        url = await pay_link(ledger, account["id"])
        status, page, _ = await post_amount(ledger, url, "1500.5")
        assert status == 400
        assert "at most 0 decimal places" in page
        assert fake.created == []
        status, _, location = await post_amount(ledger, url, "1500")
        assert status == 303
        assert location is not None
        (created,) = fake.created
        assert created["line_items[0][price_data][unit_amount]"] == "1500"  # yen, not sen
        assert created["line_items[0][price_data][currency]"] == "jpy"
        assert offered(created) == ["card", "alipay"]
        async with ledger.http.post(location, data={"method": "alipay"}, allow_redirects=False):
            pass
        assert await deliveries(fake, 1) == [200]
        assert await ledger.balance(account["id"]) == 1500
        order = await only_order(ledger, account["id"])
        assert (order["status"], order["currency"]) == ("succeeded", "JPY")
        assert "1500 JPY" in await order_row(ledger, url, order["id"])


async def test_three_decimal_amounts_follow_stripes_rule_or_are_refused(tmp_path: Path) -> None:
    async with stripe_ledger(tmp_path, "KWD") as (ledger, fake):
        account = await ledger.account(name="Room KW", currency="KWD", timezone="Asia/Kuwait")
        url = await pay_link(ledger, account["id"])
        status, page, location = await post_amount(ledger, url, "5.125")
        assert (status, location) == (400, None)
        assert "Stripe takes KWD amounts in steps of 0.010" in page
        assert "last digit is 0" in page
        assert fake.created == []
        assert (await ledger.ok("GET", "/api/v1/topups"))["topups"] == []
        status, _, _ = await post_amount(ledger, url, "5.12")
        assert status == 303
        (created,) = fake.created
        assert created["line_items[0][price_data][unit_amount]"] == "5120"  # fils
        assert created["line_items[0][price_data][currency]"] == "kwd"


@pytest.mark.parametrize(
    ("currency", "amount", "words"),
    [("ISK", "500", "hundredths"), ("UGX", "5000", "hundredths"), ("IQD", "5", "no payments")],
)
async def test_currencies_stripe_counts_otherwise_are_refused_before_stripe(
    tmp_path: Path, currency: str, amount: str, words: str
) -> None:
    async with stripe_ledger(tmp_path, currency) as (ledger, fake):
        account = await ledger.account(name="Room", currency=currency, timezone="UTC")
        url = await pay_link(ledger, account["id"])
        status, page, _ = await post_amount(ledger, url, amount)
        assert status == 409
        assert words in page
        assert currency in page
        assert fake.created == []
        assert (await ledger.ok("GET", "/api/v1/topups"))["topups"] == []


async def test_a_currency_stripe_refuses_is_a_clear_409_and_nothing_is_recorded(
    tmp_path: Path,
) -> None:
    async with stripe_ledger(tmp_path, "JPY") as (ledger, fake):
        fake.refused_currencies = {"jpy"}  # an account whose country does not present JPY
        account = await ledger.account(name="Room JP", currency="JPY", timezone="Asia/Tokyo")
        status, page, _ = await post_amount(ledger, await pay_link(ledger, account["id"]), "900")
        assert status == 409
        assert "Stripe refused the payment: Invalid currency: jpy." in page
        assert len(fake.created) == 1  # asked, refused
        assert (await ledger.ok("GET", "/api/v1/topups"))["topups"] == []


# ---- Delayed confirmation: SEPA Direct Debit ----------------------------------------------


async def open_sepa_payment(
    ledger: Ledger, fake: FakeStripe, amount: str
) -> tuple[dict[str, Any], str, str]:
    """Pay AMOUNT EUR by SEPA Direct Debit on the fake's page; return account, url, session."""
    await ledger.ok("PUT", PATH, json={"methods": ["card", "sepa_debit"]})
    account = await ledger.account(name="Room SEPA")
    url = await pay_link(ledger, account["id"])
    status, _, location = await post_amount(ledger, url, amount)
    assert status == 303
    assert location is not None
    async with ledger.http.post(location, data={"method": "sepa_debit"}, allow_redirects=False):
        pass
    assert await deliveries(fake, 1) == [200]
    return account, url, created_id(fake)


async def test_sepa_waits_then_is_credited_once_when_stripe_confirms(tmp_path: Path) -> None:
    async with stripe_ledger(tmp_path) as (ledger, fake):
        account, url, session_id = await open_sepa_payment(ledger, fake, "20")
        # checkout.session.completed came with payment_status "unpaid": nothing credited yet.
        assert fake.sessions[session_id]["payment_status"] == "unpaid"
        order = await only_order(ledger, account["id"])
        assert order["status"] == "processing"
        assert await ledger.balance(account["id"]) == 0
        row = await order_row(ledger, url, order["id"])
        assert "processing" in row
        assert "confirming this payment" in row
        assert "bank debit such as SEPA" in row
        assert "Nothing more to do" in row

        await fake.settle(session_id, succeeded=True)  # days later
        assert await deliveries(fake, 2) == [200, 200]
        assert await ledger.balance(account["id"]) == 2000
        # Stripe delivers again (a retry), and another event for the same session: no more.
        event = {
            "id": "evt_sepa_retry",
            "object": "event",
            "type": "checkout.session.async_payment_succeeded",
            "created": 1_790_000_000,
            "data": {"object": dict(fake.sessions[session_id])},
        }
        for event_id in ("evt_sepa_retry", "evt_sepa_retry", "evt_sepa_other"):
            body, headers = stripe_delivery(event | {"id": event_id})
            await ledger.ok("POST", "/webhooks/stripe", data=body, headers=headers, token=None)
        assert await ledger.balance(account["id"]) == 2000
        order = await only_order(ledger, account["id"])
        assert (order["status"], order["credited_minor"]) == ("succeeded", 2000)
        assert [step["status"] for step in order["timeline"]] == [
            "pending",
            "processing",
            "succeeded",
        ]
        assert "confirming this payment" not in await order_row(ledger, url, order["id"])


async def test_sepa_failure_fails_the_order_with_the_reason(tmp_path: Path) -> None:
    async with stripe_ledger(tmp_path) as (ledger, fake):
        account, url, session_id = await open_sepa_payment(ledger, fake, "35")
        assert (await only_order(ledger, account["id"]))["status"] == "processing"
        await fake.settle(session_id, succeeded=False)
        assert await deliveries(fake, 2) == [200, 200]
        order = await only_order(ledger, account["id"])
        assert order["status"] == "failed"
        assert order["timeline"][-1]["status"] == "failed"
        assert order["timeline"][-1]["reason"] == "async payment failed"
        assert await ledger.balance(account["id"]) == 0
        row = await order_row(ledger, url, order["id"])
        assert "failed" in row
        assert "async payment failed" in row
        assert "confirming this payment" not in row


async def test_delayed_events_carry_stripes_documented_shape(tmp_path: Path) -> None:
    """The fake's deliveries are what the ledger stored: Stripe's event and session fields."""
    async with stripe_ledger(tmp_path) as (ledger, fake):
        _, _, session_id = await open_sepa_payment(ledger, fake, "20")
        await fake.settle(session_id, succeeded=False)
        await deliveries(fake, 2)
        session = fake.sessions[session_id]
        assert {
            key: session[key]
            for key in ("object", "mode", "status", "payment_status", "payment_method_types")
        } == {
            "object": "checkout.session",
            "mode": "payment",
            "status": "complete",
            "payment_status": "unpaid",
            "payment_method_types": ["card", "sepa_debit"],
        }
        assert json.loads(json.dumps(session)) == session  # plain JSON, as Stripe sends it


async def test_a_sepa_payment_outliving_the_stuck_time_is_flagged_then_credited(
    tmp_path: Path,
) -> None:
    """The stuck-order check re-checks it with Stripe (still unpaid) and puts it in front of
    the landlord; Stripe's later confirmation still credits it, once."""
    async with stripe_ledger(tmp_path, processing_timeout_s=0.5, watchdog_interval_s=0.2) as (
        ledger,
        fake,
    ):
        account, url, session_id = await open_sepa_payment(ledger, fake, "20")
        for _ in range(100):
            order = await only_order(ledger, account["id"])
            if order["status"] == "needs_attention":
                break
            await asyncio.sleep(0.1)
        assert order["status"] == "needs_attention"
        assert order["attention_code"] == "stuck_processing"
        assert "complete/unpaid" in order["timeline"][-1]["reason"]
        assert "your landlord has been told" in await order_row(ledger, url, order["id"])
        await fake.settle(session_id, succeeded=True)
        assert await deliveries(fake, 2) == [200, 200]
        assert await ledger.balance(account["id"]) == 2000
        assert (await only_order(ledger, account["id"]))["status"] == "succeeded"
