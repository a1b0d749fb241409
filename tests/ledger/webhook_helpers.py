"""Building and signing provider webhook deliveries the way the providers do."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
import standardwebhooks
import stripe
from aiohttp import web

from tests.ledger.conftest import STANDARD_SECRET, STRIPE_SECRET, Ledger


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
    payment_method_types: list[str] | None = None,
) -> dict[str, Any]:
    """A checkout.session.completed event shaped like Stripe's documented payload.

    ``payment_method_types`` (the methods the session offered, as Stripe's Session object
    lists them) is left out unless given.
    """
    session_id = session_id or f"cs_test_{uuid.uuid4().hex}"
    event: dict[str, Any] = {
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
    if payment_method_types is not None:
        event["data"]["object"]["payment_method_types"] = payment_method_types
    return event


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
    """Stripe at its HTTP boundary: Checkout Sessions created and retrieved, a hosted page.

    ``POST /v1/checkout/sessions`` takes the form-encoded parameters the official client sends
    and answers with a session shaped like Stripe's documented object; its ``url`` is a page on
    this fake where a "Pay" button marks the session paid, delivers the signed
    ``checkout.session.completed`` webhook to ``webhook_url`` (as Stripe does, shortly after)
    and redirects to the session's ``success_url``.

    The session offers the ``allowed_payment_method_types[]`` it was created with (its
    ``payment_method_types``; ``card`` if none), with their ``payment_method_options``; the
    hosted page has a button per method (``#pay`` pays with the first). A method in
    ``delayed_methods`` (Stripe's delayed notification methods: SEPA Direct Debit) completes
    the session ``unpaid`` and delivers ``checkout.session.completed`` so; ``settle()`` then
    delivers ``checkout.session.async_payment_succeeded`` or ``_failed``, as Stripe does days
    later. As Stripe does since API version 2026-09-30 (the version the official client pins
    is sent as ``Stripe-Version`` and recorded in ``versions``), a ``payment_method_types[]``
    parameter is refused with 400 ``payment_method_types_no_longer_supported``; a currency in
    ``refused_currencies`` is refused with 400 as by an account that does not take it.

    ``GET /v1/events`` lists ``events`` as Stripe documents it (https://docs.stripe.com/api/
    events/list): newest first, filtered by ``type`` or ``types[]`` and ``created[gte|gt|lte|
    lt]``, at most ``limit`` (and at most ``events_page_size``) per page, the rest reached
    with ``starting_after`` (an event id), answered as a list object ``{"object": "list",
    "data": [...], "has_more": ..., "url": "/v1/events"}``. ``event_queries`` and
    ``events_auth`` record the query and the Authorization header of every call.
    """

    def __init__(self) -> None:
        self.sessions: dict[str, dict[str, Any]] = {}
        self.created: list[dict[str, str]] = []
        self.auth: list[str] = []
        self.idempotency_keys: list[str] = []
        #: When set, answer every API request with a server error, as Stripe does in an outage.
        self.broken = False
        self.base_url = ""
        self.webhook_url: str | None = None
        self.webhook_delay_s = 0.5
        self.deliveries: list[int] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self.events: list[dict[str, Any]] = []
        self.events_page_size = 100
        self.event_queries: list[list[tuple[str, str]]] = []
        self.events_auth: list[str] = []
        self.versions: list[str] = []
        self.delayed_methods = frozenset({"sepa_debit"})
        self.refused_currencies: set[str] = set()
        #: The method each session was paid with on the hosted page.
        self.paid_with: dict[str, str] = {}

    def _outage(self) -> web.Response | None:
        if not self.broken:
            return None
        return web.json_response(
            {"error": {"type": "api_error", "message": "Stripe is down"}}, status=500
        )

    async def handle(self, request: web.Request) -> web.Response:
        self.auth.append(request.headers.get("Authorization", ""))
        if (outage := self._outage()) is not None:
            return outage
        found = self.sessions.get(request.match_info["id"])
        if found is None:
            return web.json_response(
                {"error": {"type": "invalid_request_error", "message": "No such session"}},
                status=404,
            )
        return web.json_response(found)

    async def create(self, request: web.Request) -> web.Response:
        self.auth.append(request.headers.get("Authorization", ""))
        self.idempotency_keys.append(request.headers.get("Idempotency-Key", ""))
        if (outage := self._outage()) is not None:
            return outage
        form = {key: str(value) for key, value in (await request.post()).items()}
        self.created.append(form)
        version = request.headers.get("Stripe-Version", "")
        self.versions.append(version)
        if version >= "2026-09-30" and any(k.startswith("payment_method_types[") for k in form):
            return web.json_response(
                {
                    "error": {
                        "type": "invalid_request_error",
                        "code": "payment_method_types_no_longer_supported",
                        "message": "payment_method_types is no longer supported; use "
                        "allowed_payment_method_types",
                    }
                },
                status=400,
            )
        currency = form["line_items[0][price_data][currency]"]
        if currency in self.refused_currencies:
            return web.json_response(
                {
                    "error": {
                        "type": "invalid_request_error",
                        "param": "line_items[0][price_data][currency]",
                        "message": f"Invalid currency: {currency}.",
                    }
                },
                status=400,
            )
        allowed = "allowed_payment_method_types["
        methods = [
            value
            for _, value in sorted(
                (int(key[len(allowed) : -1]), value)
                for key, value in form.items()
                if key.startswith(allowed)
            )
        ] or ["card"]
        options = {
            key[len("payment_method_options[") :].split("]")[0]: {
                key.rsplit("[", 1)[1].rstrip("]"): value
            }
            for key, value in form.items()
            if key.startswith("payment_method_options[")
        }
        session_id = f"cs_test_{uuid.uuid4().hex}"
        amount = int(form["line_items[0][price_data][unit_amount]"]) * int(
            form.get("line_items[0][quantity]", "1")
        )
        self.sessions[session_id] = {
            "id": session_id,
            "object": "checkout.session",
            "amount_subtotal": amount,
            "amount_total": amount,
            "cancel_url": form.get("cancel_url"),
            "client_reference_id": form.get("client_reference_id"),
            "currency": form["line_items[0][price_data][currency]"],
            "customer": None,
            "livemode": False,
            "metadata": {"account": form.get("metadata[account]", "")},
            "mode": form.get("mode"),
            "payment_intent": None,
            "payment_method_options": options,
            "payment_method_types": methods,
            "payment_status": "unpaid",
            "status": "open",
            "success_url": form.get("success_url"),
            "url": f"{self.base_url}/c/pay/{session_id}",
        }
        return web.json_response(self.sessions[session_id])

    async def list_events(self, request: web.Request) -> web.Response:
        # Kept apart from ``auth``: a ledger with an API key lists events on its own at start.
        self.events_auth.append(request.headers.get("Authorization", ""))
        query = list(request.query.items())
        self.event_queries.append(query)
        if (outage := self._outage()) is not None:
            return outage
        types = {value for key, value in query if key == "type" or key.startswith("types[")}
        bounds = {
            key[len("created[") : -1]: int(value)
            for key, value in query
            if key.startswith("created[")
        }
        checks = {
            "gte": lambda c, b: c >= b,
            "gt": lambda c, b: c > b,
            "lte": lambda c, b: c <= b,
            "lt": lambda c, b: c < b,
        }
        ordered = sorted(enumerate(self.events), key=lambda p: (p[1]["created"], p[0]))
        found = [
            event
            for _, event in reversed(ordered)  # newest first
            if (not types or event["type"] in types)
            and all(checks[op](event["created"], bound) for op, bound in bounds.items())
        ]
        if after := request.query.get("starting_after"):
            ids = [event["id"] for event in found]
            if after not in ids:
                return web.json_response(
                    {"error": {"type": "invalid_request_error", "message": "No such event"}},
                    status=400,
                )
            found = found[ids.index(after) + 1 :]
        limit = min(int(request.query.get("limit", "10")), self.events_page_size)
        return web.json_response(
            {
                "object": "list",
                "data": found[:limit],
                "has_more": len(found) > limit,
                "url": "/v1/events",
            }
        )

    async def hosted_page(self, request: web.Request) -> web.Response:
        session = self.sessions[request.match_info["id"]]
        amount = session["amount_total"] / 100
        return web.Response(
            text=(
                "<!doctype html><title>Fake Stripe Checkout</title><h1>Fake Stripe Checkout</h1>"
                f"<p id=total>{amount:.2f} {session['currency'].upper()}</p>"
                "<form method=post><button id=pay type=submit>Pay</button>"
                + "".join(
                    f"<button id=pay-{method} name=method value={method} type=submit>"
                    f"{method}</button>"
                    for method in session.get("payment_method_types") or ["card"]
                )
                + "</form>"
            ),
            content_type="text/html",
        )

    async def hosted_pay(self, request: web.Request) -> web.Response:
        session_id = request.match_info["id"]
        session = self.sessions[session_id]
        offered = session.get("payment_method_types") or ["card"]
        method = str((await request.post()).get("method") or offered[0])
        if method not in offered:
            return web.Response(status=400, text=f"{method} is not offered")
        self.paid_with[session_id] = method
        session |= {
            "status": "complete",
            "payment_status": "unpaid" if method in self.delayed_methods else "paid",
            "payment_intent": f"pi_{session_id[8:]}",
        }
        if self.webhook_url is not None:
            task = asyncio.create_task(self._deliver(session))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        success = str(session["success_url"]).replace("{CHECKOUT_SESSION_ID}", session_id)
        raise web.HTTPSeeOther(success)

    async def settle(self, session_id: str, *, succeeded: bool) -> None:
        """Report a delayed payment's outcome days later, as Stripe does (signed webhook)."""
        session = self.sessions[session_id]
        assert self.paid_with.get(session_id) in self.delayed_methods, "not a delayed payment"
        if succeeded:
            session["payment_status"] = "paid"
        outcome = "succeeded" if succeeded else "failed"
        await self._deliver(session, f"checkout.session.async_payment_{outcome}")

    async def _deliver(
        self, session: dict[str, Any], event_type: str = "checkout.session.completed"
    ) -> None:
        await asyncio.sleep(self.webhook_delay_s)
        event = checkout_completed(
            session["client_reference_id"],
            session["amount_total"],
            session["currency"],
            session_id=session["id"],
            event_type=event_type,
        )
        event["data"]["object"] = dict(session)
        body, headers = stripe_delivery(event)
        assert self.webhook_url is not None
        async with (
            aiohttp.ClientSession() as http,
            http.post(self.webhook_url, data=body, headers=headers) as resp,
        ):
            self.deliveries.append(resp.status)


@contextlib.asynccontextmanager
async def serve_fake_stripe() -> AsyncIterator[tuple[FakeStripe, str]]:
    """Run a fake Stripe API on a free loopback port; yield it and its base URL."""
    fake = FakeStripe()
    app = web.Application()
    app.router.add_get("/v1/checkout/sessions/{id}", fake.handle)
    app.router.add_post("/v1/checkout/sessions", fake.create)
    app.router.add_get("/v1/events", fake.list_events)
    app.router.add_get("/c/pay/{id}", fake.hosted_page)
    app.router.add_post("/c/pay/{id}", fake.hosted_pay)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    fake.base_url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        yield fake, fake.base_url
    finally:
        await runner.cleanup()


async def attention_alerts(ledger: Ledger) -> dict[int, list[dict[str, Any]]]:
    """Every ``order_needs_attention`` alert on the event stream so far, by order id."""
    from tests.ledger.test_stream import read_events  # noqa: PLC0415 - a test module's helper

    found: dict[int, list[dict[str, Any]]] = {}
    for event in await read_events(ledger, 100_000, last_id=0, stop_idle=0.5):
        data = event["data"]
        if event["type"] == "alert" and data.get("kind") == "order_needs_attention":
            found.setdefault(data["order_id"], []).append(data)
    return found


def assert_alert(
    alert: dict[str, Any],
    *,
    expected: dict[str, Any],
    created_between: tuple[datetime, datetime],
) -> None:
    """The alert names the order with exactly these values, created within the window."""
    assert alert["kind"] == "order_needs_attention"
    assert {key: alert[key] for key in expected} == expected
    created = datetime.fromisoformat(alert["created_at"])
    assert created_between[0] <= created <= created_between[1], alert["created_at"]
    assert isinstance(alert["age_minutes"], int)
