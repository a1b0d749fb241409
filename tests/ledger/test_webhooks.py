"""Signed payment webhooks: verified, credited exactly once, never dropped."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime

import pytest

from tests.ledger.conftest import Ledger
from tests.ledger.webhook_helpers import (
    assert_alert,
    attention_alerts,
    charge_refunded,
    checkout_completed,
    standard_delivery,
    stripe_delivery,
)

pytestmark = pytest.mark.usefixtures("socket_enabled")


async def post_stripe(ledger: Ledger, body: str, headers: dict[str, str]) -> tuple[int, object]:
    return await ledger.call("POST", "/webhooks/stripe", data=body, headers=headers, token=None)


async def test_fifty_concurrent_deliveries_credit_once(ledger: Ledger) -> None:
    account = await ledger.account()
    body, headers = stripe_delivery(checkout_completed(account["number"], 2500))
    results = await asyncio.gather(*(post_stripe(ledger, body, headers) for _ in range(50)))
    assert {status for status, _ in results} == {200}
    assert sum(1 for _, r in results if not r["duplicate"]) == 1
    assert await ledger.balance(account["id"]) == 2500
    orders = await ledger.ok("GET", f"/api/v1/topups?account={account['id']}")
    assert len(orders["topups"]) == 1
    assert orders["topups"][0]["status"] == "succeeded"


async def test_same_payment_in_two_events_and_out_of_order(ledger: Ledger) -> None:
    account = await ledger.account()
    completed = checkout_completed(account["id"], 900, payment_status="unpaid")
    session_id = completed["data"]["object"]["id"]
    succeeded = checkout_completed(
        account["id"],
        900,
        session_id=session_id,
        event_type="checkout.session.async_payment_succeeded",
    )
    # The success arrives first, then the (unpaid) completion, then the success again.
    for event in (succeeded, completed, succeeded):
        status, _ = await post_stripe(ledger, *stripe_delivery(event))
        assert status == 200
    assert await ledger.balance(account["id"]) == 900
    # A different event id for an already credited session credits nothing.
    paid_again = checkout_completed(account["id"], 900, session_id=session_id)
    status, result = await post_stripe(ledger, *stripe_delivery(paid_again))
    assert result["outcome"] == "duplicate_payment"
    assert await ledger.balance(account["id"]) == 900


async def test_unpaid_then_async_success_moves_processing_to_succeeded(ledger: Ledger) -> None:
    account = await ledger.account()
    completed = checkout_completed(account["id"], 300, payment_status="unpaid")
    _, result = await post_stripe(ledger, *stripe_delivery(completed))
    assert result["outcome"] == "processing"
    assert await ledger.balance(account["id"]) == 0
    succeeded = checkout_completed(
        account["id"],
        300,
        session_id=completed["data"]["object"]["id"],
        event_type="checkout.session.async_payment_succeeded",
    )
    _, result = await post_stripe(ledger, *stripe_delivery(succeeded))
    assert result["outcome"] == "credited"
    order = await ledger.ok("GET", f"/api/v1/topups/{result['order_id']}")
    assert [t["status"] for t in order["timeline"]] == ["pending", "processing", "succeeded"]
    assert await ledger.balance(account["id"]) == 300


async def test_bad_signatures_are_rejected_and_credit_nothing(ledger: Ledger) -> None:
    account = await ledger.account()
    event = checkout_completed(account["id"], 5000)
    body, headers = stripe_delivery(event)
    tampered = body.replace("5000", "9000")
    stale_body, stale_headers = stripe_delivery(event, timestamp=int(time.time()) - 301)
    _, wrong_secret = stripe_delivery(event, secret="whsec_other")
    attempts = [
        (tampered, headers),
        (body, {"Content-Type": "application/json"}),
        (stale_body, stale_headers),
        (body, wrong_secret),
        (body, {"Stripe-Signature": "garbage"}),
    ]
    for attempt_body, attempt_headers in attempts:
        status, result = await post_stripe(ledger, attempt_body, attempt_headers)
        assert status == 400, attempt_headers
        assert result["error"]["code"] == "invalid_signature"
    assert await ledger.balance(account["id"]) == 0
    rejections = await ledger.ok("GET", "/api/v1/webhook-rejections")
    assert len(rejections["rejections"]) == len(attempts)
    assert all(r["provider"] == "stripe" for r in rejections["rejections"])
    # Secret rotation: several v1 signatures, one valid, is accepted.
    status, result = await post_stripe(ledger, *stripe_delivery(event, extra_bad_signature=True))
    assert status == 200
    assert await ledger.balance(account["id"]) == 5000


async def test_uncreditable_payments_are_acknowledged_and_need_attention(ledger: Ledger) -> None:
    account = await ledger.account()
    closed = await ledger.account(name="Gone")
    await ledger.ok("POST", f"/api/v1/accounts/{closed['id']}/close", json={"reason": "moved"})
    number = account["number"]
    typo = number[:-1] + str((int(number[-1]) + 1) % 10)
    cases = [
        checkout_completed(typo, 100),
        checkout_completed(999_999, 100),
        checkout_completed(None, 100),
        checkout_completed(closed["id"], 100),
        checkout_completed(account["id"], 100, currency="usd"),
    ]
    for event in cases:
        status, result = await post_stripe(ledger, *stripe_delivery(event))
        assert status == 200
        assert result["outcome"] == "needs_attention"
    orders = await ledger.ok("GET", "/api/v1/topups?status=needs_attention")
    assert len(orders["topups"]) == len(cases)
    assert all(o["attention_reason"] for o in orders["topups"])
    assert await ledger.balance(account["id"]) == 0
    # An admin credits the typo'd payment to the right account, with a reason.
    typo_order = next(o for o in orders["topups"] if o["account_ref"] == typo)
    credited = await ledger.ok(
        "POST",
        f"/api/v1/topups/{typo_order['id']}/actions",
        json={
            "action": "credit",
            "account": account["id"],
            "reason": "tenant typo, confirmed by phone",
        },
    )
    assert credited["status"] == "succeeded"
    assert await ledger.balance(account["id"]) == 100
    # metadata.account works too.
    event = checkout_completed(None, 50, metadata={"account": number})
    _, result = await post_stripe(ledger, *stripe_delivery(event))
    assert result["outcome"] == "credited"


async def test_charge_refunded_reverses_once(ledger: Ledger) -> None:
    account = await ledger.account()
    event = checkout_completed(account["id"], 1000)
    await post_stripe(ledger, *stripe_delivery(event))
    intent = event["data"]["object"]["payment_intent"]
    partial = charge_refunded(intent, 1000, 300)
    for _ in range(2):
        await post_stripe(ledger, *stripe_delivery(partial))
    assert await ledger.balance(account["id"]) == 700
    await post_stripe(ledger, *stripe_delivery(charge_refunded(intent, 1000, 1000)))
    assert await ledger.balance(account["id"]) == 0
    orders = await ledger.ok("GET", f"/api/v1/topups?account={account['id']}")
    assert orders["topups"][0]["status"] == "refunded"


async def test_standard_webhooks(ledger: Ledger) -> None:
    account = await ledger.account()
    data = {
        "account": account["number"],
        "amount_minor": 1200,
        "currency": "EUR",
        "reference": "pay_123",
    }
    body, headers = standard_delivery(data)
    results = await asyncio.gather(
        *(
            ledger.call("POST", "/webhooks/standard", data=body, headers=headers, token=None)
            for _ in range(10)
        )
    )
    assert {status for status, _ in results} == {200}
    # The same payment (reference) under another message id is not credited twice.
    other_body, other_headers = standard_delivery(data)
    status, result = await ledger.call(
        "POST", "/webhooks/standard", data=other_body, headers=other_headers, token=None
    )
    assert result["outcome"] == "duplicate_payment"
    assert await ledger.balance(account["id"]) == 1200
    bad_headers = dict(headers, **{"webhook-signature": "v1,AAAA"})
    status, result = await ledger.call(
        "POST", "/webhooks/standard", data=body, headers=bad_headers, token=None
    )
    assert status == 400
    body2, headers2 = standard_delivery(data | {"currency": "USD", "reference": "pay_124"})
    status, result = await ledger.call(
        "POST", "/webhooks/standard", data=body2, headers=headers2, token=None
    )
    assert status == 200
    assert result["outcome"] == "needs_attention"
    assert json.loads(body2)["data"]["currency"] == "USD"


@pytest.mark.parametrize("amount", [10**12 + 1, 2**63, 10**30, -(10**30)])
async def test_a_payment_beyond_what_the_ledger_can_hold_needs_attention(
    ledger: Ledger, amount: int
) -> None:
    """Signed, so never dropped; but not storable (64-bit columns): a visible order, not a 500."""
    account = await ledger.account()
    body, headers = standard_delivery(
        {"account": account["number"], "amount_minor": amount, "currency": "EUR"}
    )
    status, result = await ledger.call(
        "POST", "/webhooks/standard", data=body, headers=headers, token=None
    )
    assert (status, result["outcome"]) == (200, "needs_attention"), result
    (order,) = (await ledger.ok("GET", "/api/v1/topups"))["topups"]
    assert (order["status"], order["amount_minor"], order["credited_minor"]) == (
        "needs_attention",
        0,
        0,
    )
    detail = await ledger.ok("GET", f"/api/v1/topups/{order['id']}")
    assert f"amount {amount} is beyond what the ledger can hold" in detail["timeline"][-1]["reason"]
    assert await ledger.balance(account["id"]) == 0


async def test_every_uncreditable_payment_alerts_with_its_order(ledger: Ledger) -> None:
    """Each cause raises one order_needs_attention alert carrying the order (issue 19)."""
    account = await ledger.account()
    closed = await ledger.account(name="Gone")
    await ledger.ok("POST", f"/api/v1/accounts/{closed['id']}/close", json={"reason": "moved"})
    number = account["number"]
    typo = number[:-1] + str((int(number[-1]) + 1) % 10)
    stripe_cases = [
        # (event, expected alert fields)
        (
            checkout_completed(typo, 1234),
            {"account_id": None, "amount_minor": 1234, "currency": "EUR"}
            | {"account_number": typo, "reason": "unknown_account"},
        ),
        (
            checkout_completed(closed["number"], 2345),
            {"account_id": closed["id"], "amount_minor": 2345, "currency": "EUR"}
            | {"account_number": closed["number"], "reason": "closed_account"},
        ),
        (
            checkout_completed(number, 3456, currency="usd"),
            {"account_id": account["id"], "amount_minor": 3456, "currency": "USD"}
            | {"account_number": number, "reason": "currency_mismatch"},
        ),
        (
            checkout_completed(None, 4567, metadata={"account": typo}),
            {"account_id": None, "amount_minor": 4567, "currency": "EUR"}
            | {"account_number": typo, "reason": "unknown_account"},
        ),
    ]
    start = datetime.now(UTC)
    expected: dict[int, dict[str, object]] = {}
    for event, fields in stripe_cases:
        status, result = await post_stripe(ledger, *stripe_delivery(event))
        assert (status, result["outcome"]) == (200, "needs_attention")
        expected[result["order_id"]] = fields
    standard_cases = [
        (
            {"account": "100000000", "amount_minor": 999, "currency": "EUR", "reference": "p1"},
            {"account_id": None, "amount_minor": 999, "currency": "EUR"}
            | {"account_number": "100000000", "reason": "unknown_account"},
        ),
        (
            # Beyond what the ledger can hold: the order records 0 and says why.
            {"account": number, "amount_minor": 10**30, "currency": "EUR", "reference": "p2"},
            {"account_id": account["id"], "amount_minor": 0, "currency": "EUR"}
            | {"account_number": number, "reason": "invalid_amount"},
        ),
    ]
    for data, fields in standard_cases:
        body, headers = standard_delivery(data)
        status, result = await ledger.call(
            "POST", "/webhooks/standard", data=body, headers=headers, token=None
        )
        assert (status, result["outcome"]) == (200, "needs_attention")
        expected[result["order_id"]] = fields
    end = datetime.now(UTC)
    alerts = await attention_alerts(ledger)
    assert set(alerts) == set(expected)
    for order_id, fields in expected.items():
        (alert,) = alerts[order_id]
        assert_alert(
            alert,
            expected={"order_id": order_id, "age_minutes": 0} | fields,
            created_between=(start, end),
        )
        order = await ledger.ok("GET", f"/api/v1/topups/{order_id}")
        assert order["attention_code"] == fields["reason"]
    assert await ledger.balance(account["id"]) == 0


async def test_paid_after_the_order_failed_needs_attention(ledger: Ledger) -> None:
    """Stripe confirms a payment for an order a person had failed: never dropped."""
    account = await ledger.account()
    start = datetime.now(UTC)
    completed = checkout_completed(account["number"], 800, payment_status="unpaid")
    _, result = await post_stripe(ledger, *stripe_delivery(completed))
    assert result["outcome"] == "processing"
    order_id = result["order_id"]
    await ledger.ok(
        "POST",
        f"/api/v1/topups/{order_id}/actions",
        json={"action": "fail", "reason": "tenant says they cancelled"},
    )
    succeeded = checkout_completed(
        account["number"],
        800,
        session_id=completed["data"]["object"]["id"],
        event_type="checkout.session.async_payment_succeeded",
    )
    _, result = await post_stripe(ledger, *stripe_delivery(succeeded))
    assert (result["outcome"], result["order_id"]) == ("needs_attention", order_id)
    end = datetime.now(UTC)
    (alert,) = (await attention_alerts(ledger))[order_id]
    assert_alert(
        alert,
        expected={
            "order_id": order_id,
            "account_id": account["id"],
            "amount_minor": 800,
            "currency": "EUR",
            "account_number": account["number"],
            "reason": "paid_not_credited",
            "age_minutes": 0,
        },
        created_between=(start, end),
    )
    assert await ledger.balance(account["id"]) == 0
    # The person credits it by hand; the same event again changes nothing.
    await ledger.ok(
        "POST",
        f"/api/v1/topups/{order_id}/actions",
        json={"action": "credit", "reason": "paid after all"},
    )
    _, again = await post_stripe(ledger, *stripe_delivery(succeeded))
    assert again["duplicate"] is True
    assert await ledger.balance(account["id"]) == 800
