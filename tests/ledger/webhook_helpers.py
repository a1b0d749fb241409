"""Building and signing provider webhook deliveries the way the providers do."""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import standardwebhooks
import stripe
from aiohttp import web

from tests.ledger.conftest import STANDARD_SECRET, STRIPE_SECRET


def checkout_completed(
    account_ref: str | int | None,
    amount: int,
    currency: str = "eur",
    *,
    session_id: str | None = None,
    event_id: str | None = None,
    event_type: str = "checkout.session.completed",
    payment_status: str = "paid",
    metadata: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A checkout.session.completed event shaped like Stripe's documented payload."""
    session_id = session_id or f"cs_test_{uuid.uuid4().hex}"
    return {
        "id": event_id or f"evt_{uuid.uuid4().hex}",
        "object": "event",
        "api_version": "2025-09-30.clover",
        "created": int(time.time()),
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": event_type,
        "data": {
            "object": {
                "id": session_id,
                "object": "checkout.session",
                "amount_subtotal": amount,
                "amount_total": amount,
                "client_reference_id": None if account_ref is None else str(account_ref),
                "currency": currency,
                "customer": None,
                "customer_details": {"email": "tenant@example.com"},
                "livemode": False,
                "metadata": metadata or {},
                "mode": "payment",
                "payment_intent": f"pi_{session_id[8:]}",
                "payment_status": payment_status,
                "status": "complete",
                "success_url": "https://example.com/success",
            }
        },
    }


def charge_refunded(payment_intent: str, amount: int, refunded: int) -> dict[str, Any]:
    """A charge.refunded event (amount_refunded is cumulative)."""
    return {
        "id": f"evt_{uuid.uuid4().hex}",
        "object": "event",
        "type": "charge.refunded",
        "created": int(time.time()),
        "data": {
            "object": {
                "id": f"ch_{uuid.uuid4().hex}",
                "object": "charge",
                "amount": amount,
                "amount_refunded": refunded,
                "currency": "eur",
                "payment_intent": payment_intent,
                "refunded": refunded == amount,
            }
        },
    }


def stripe_delivery(
    event: dict[str, Any],
    *,
    secret: str = STRIPE_SECRET,
    timestamp: int | None = None,
    extra_bad_signature: bool = False,
) -> tuple[str, dict[str, str]]:
    """Body and headers of a signed Stripe delivery."""
    body = json.dumps(event)
    header = stripe.WebhookSignature.generate_signature_header(
        body, secret, timestamp=timestamp or int(time.time())
    )
    if extra_bad_signature:  # rotation: several v1 signatures, one of them valid
        t_part, v1_part = header.split(",")
        header = f"{t_part},v1={'0' * 64},{v1_part}"
    return body, {"Stripe-Signature": header, "Content-Type": "application/json"}


def standard_delivery(
    data: dict[str, Any],
    *,
    msg_id: str | None = None,
    secret: str = STANDARD_SECRET,
    event_type: str = "payment.succeeded",
) -> tuple[str, dict[str, str]]:
    """Body and headers of a signed Standard Webhooks delivery."""
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    now = datetime.now(UTC)
    body = json.dumps({"type": event_type, "timestamp": now.isoformat(), "data": data})
    signature = standardwebhooks.Webhook(secret).sign(msg_id, now, body)
    return body, {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature,
        "Content-Type": "application/json",
    }


class FakeStripe:
    """Serves GET /v1/checkout/sessions/{id} from a dict, like Stripe's API would."""

    def __init__(self) -> None:
        self.sessions: dict[str, dict[str, Any]] = {}
        self.auth: list[str] = []
        #: When set, answer every request with a server error, as Stripe does in an outage.
        self.broken = False

    async def handle(self, request: web.Request) -> web.Response:
        self.auth.append(request.headers.get("Authorization", ""))
        if self.broken:
            return web.json_response(
                {"error": {"type": "api_error", "message": "Stripe is down"}}, status=500
            )
        found = self.sessions.get(request.match_info["id"])
        if found is None:
            return web.json_response(
                {"error": {"type": "invalid_request_error", "message": "No such session"}},
                status=404,
            )
        return web.json_response(found)


@contextlib.asynccontextmanager
async def serve_fake_stripe() -> AsyncIterator[tuple[FakeStripe, str]]:
    """Run a fake Stripe API on a free loopback port; yield it and its base URL."""
    fake = FakeStripe()
    app = web.Application()
    app.router.add_get("/v1/checkout/sessions/{id}", fake.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield fake, f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()
