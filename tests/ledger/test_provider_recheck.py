"""Admin re-check of an order with Stripe's API (a local fake Stripe) and session expiry."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from prepaid_ledger.config import Settings

from tests.ledger.conftest import Ledger, make_settings, running_ledger
from tests.ledger.webhook_helpers import (
    FakeStripe,
    checkout_completed,
    serve_fake_stripe,
    stripe_delivery,
)

pytestmark = pytest.mark.usefixtures("socket_enabled")


@pytest.fixture
async def fake_stripe() -> AsyncIterator[tuple[FakeStripe, str]]:
    async with serve_fake_stripe() as served:
        yield served


async def processing_order(ledger: Ledger, account_id: int, amount: int) -> tuple[int, dict]:
    event = checkout_completed(account_id, amount, payment_status="unpaid")
    body, headers = stripe_delivery(event)
    _, result = await ledger.call(
        "POST", "/webhooks/stripe", data=body, headers=headers, token=None
    )
    assert result["outcome"] == "processing"
    return result["order_id"], event["data"]["object"]


async def test_recheck_credits_paid_and_expires_unpaid(
    tmp_path: Path, fake_stripe: tuple[FakeStripe, str]
) -> None:
    fake, base = fake_stripe
    settings = make_settings(tmp_path, None, stripe_api_key="sk_test_123", stripe_api_base=base)
    async with running_ledger(settings) as ledger:
        account = await ledger.account()
        paid_id, paid_session = await processing_order(ledger, account["id"], 700)
        fake.sessions[paid_session["id"]] = paid_session | {"payment_status": "paid"}
        result = await ledger.ok(
            "POST",
            f"/api/v1/topups/{paid_id}/actions",
            json={"action": "recheck", "reason": "tenant says paid"},
        )
        assert result["status"] == "succeeded"
        assert result["provider_status"] == "complete/paid"
        assert await ledger.balance(account["id"]) == 700
        assert fake.auth == ["Bearer sk_test_123"]
        # Re-checking again changes nothing (already credited).
        again = await ledger.ok(
            "POST",
            f"/api/v1/topups/{paid_id}/actions",
            json={"action": "recheck", "reason": "again"},
        )
        assert again["status"] == "succeeded"
        assert await ledger.balance(account["id"]) == 700

        unpaid_id, unpaid_session = await processing_order(ledger, account["id"], 300)
        fake.sessions[unpaid_session["id"]] = unpaid_session
        still = await ledger.ok(
            "POST",
            f"/api/v1/topups/{unpaid_id}/actions",
            json={"action": "recheck", "reason": "any news?"},
        )
        assert still["status"] == "processing"
        fake.sessions[unpaid_session["id"]] = unpaid_session | {"status": "expired"}
        expired = await ledger.ok(
            "POST",
            f"/api/v1/topups/{unpaid_id}/actions",
            json={"action": "recheck", "reason": "any news?"},
        )
        assert expired["status"] == "expired"
        order = await ledger.ok("GET", f"/api/v1/topups/{unpaid_id}")
        assert [t["status"] for t in order["timeline"]] == [
            "pending",
            "processing",
            "processing",
            "expired",
        ]
        assert await ledger.balance(account["id"]) == 700

        unknown_id, _ = await processing_order(ledger, account["id"], 100)
        status, err = await ledger.call(
            "POST",
            f"/api/v1/topups/{unknown_id}/actions",
            json={"action": "recheck", "reason": "?"},
        )
        assert status == 409
        assert err["error"]["code"] == "provider_not_found"
        audit = await ledger.ok("GET", "/api/v1/audit")
        assert sum(e["action"] == "topup.recheck" for e in audit["entries"]) == 4


async def test_unreachable_provider_is_502(tmp_path: Path) -> None:
    # A port bound but never listening refuses connections, and stays ours for the test: a
    # port merely found free could be handed to the ledger itself a moment later.
    with socket.socket() as reserved:
        reserved.bind(("127.0.0.1", 0))
        port = reserved.getsockname()[1]
        settings = make_settings(
            tmp_path, None, stripe_api_key="sk_test_123", stripe_api_base=f"http://127.0.0.1:{port}"
        )
        await _recheck_is_502(settings)


async def _recheck_is_502(settings: Settings) -> None:
    async with running_ledger(settings) as ledger:
        account = await ledger.account()
        order_id, _ = await processing_order(ledger, account["id"], 100)
        status, err = await ledger.call(
            "POST", f"/api/v1/topups/{order_id}/actions", json={"action": "recheck", "reason": "?"}
        )
        assert status == 502
        assert err["error"]["code"] == "provider_unavailable"


async def test_checkout_session_expired_event(ledger: Ledger) -> None:
    account = await ledger.account()
    order_id, session = await processing_order(ledger, account["id"], 100)
    expired = checkout_completed(
        account["id"],
        100,
        session_id=session["id"],
        event_type="checkout.session.expired",
        payment_status="unpaid",
    )
    body, headers = stripe_delivery(expired)
    _, result = await ledger.call(
        "POST", "/webhooks/stripe", data=body, headers=headers, token=None
    )
    assert result["outcome"] == "expired"
    order = await ledger.ok("GET", f"/api/v1/topups/{order_id}")
    assert order["status"] == "expired"


async def test_integration_may_recheck_but_not_move_money(
    tmp_path: Path, fake_stripe: tuple[FakeStripe, str]
) -> None:
    """Home Assistant's token re-checks an order; credit, refund and fail stay admin-only."""
    fake, base = fake_stripe
    settings = make_settings(tmp_path, None, stripe_api_key="sk_test_123", stripe_api_base=base)
    async with running_ledger(settings) as ledger:
        account = await ledger.account()
        integration = await ledger.ok("POST", "/api/v1/tokens", json={"scope": "integration"})
        tenant = await ledger.ok(
            "POST", "/api/v1/tokens", json={"scope": "tenant", "account_id": account["id"]}
        )
        order_id, session = await processing_order(ledger, account["id"], 450)
        path = f"/api/v1/topups/{order_id}/actions"
        for action in ("credit", "refund", "fail"):
            status, err = await ledger.call(
                "POST",
                path,
                json={"action": action, "reason": "by hand", "amount_minor": 450},
                token=integration["token"],
            )
            assert (status, err["error"]["code"]) == (403, "forbidden"), action
        status, err = await ledger.call(
            "POST", path, json={"action": "recheck", "reason": "?"}, token=tenant["token"]
        )
        assert (status, err["error"]["code"]) == (403, "forbidden")
        assert (await ledger.ok("GET", f"/api/v1/topups/{order_id}"))["status"] == "processing"
        assert await ledger.balance(account["id"]) == 0

        fake.sessions[session["id"]] = session | {"payment_status": "paid"}
        result = await ledger.ok(
            "POST",
            path,
            json={"action": "recheck", "reason": "from Home Assistant"},
            token=integration["token"],
        )
        assert result["status"] == "succeeded"
        assert await ledger.balance(account["id"]) == 450
        audit = await ledger.ok("GET", "/api/v1/audit")
        rechecks = [e for e in audit["entries"] if e["action"] == "topup.recheck"]
        assert [e["actor"] for e in rechecks] == [f"token:{integration['id']}"]
