"""Payment webhooks: verify the signature with the provider's own library, then apply once."""

from __future__ import annotations

import hashlib
import logging
from typing import Any

import standardwebhooks
import stripe
from aiohttp import web

from prepaid_ledger.api.context import db_of, settings_of
from prepaid_ledger.api.errors import ApiError
from prepaid_ledger.services.webhooks import (
    apply_event,
    handle_standard_event,
    handle_stripe_event,
    parse_event,
    record_rejection,
)

_LOGGER = logging.getLogger(__name__)
routes = web.RouteTableDef()


async def _reject(request: web.Request, provider: str, reason: str, body: bytes) -> web.Response:
    digest = hashlib.sha256(body).hexdigest()

    async def work(session: Any) -> None:
        record_rejection(session, provider, reason, digest)

    await db_of(request).write(work)
    _LOGGER.warning("rejected %s webhook: %s", provider, reason)
    raise ApiError(400, "invalid_signature", f"webhook rejected: {reason}")


async def _apply(request: web.Request, work: Any) -> web.Response:
    """Run the event's transaction (the one reconciliation with Stripe uses too)."""
    return web.json_response(await apply_event(db_of(request), work))


@routes.post("/webhooks/stripe")
async def stripe_webhook(request: web.Request) -> web.Response:
    """Stripe: Stripe-Signature verified by stripe.Webhook.construct_event (300 s tolerance)."""
    settings = settings_of(request)
    body = await request.read()
    if not settings.stripe_webhook_secret:
        raise ApiError(404, "not_configured", "Stripe webhooks are not configured")
    try:
        payload = body.decode("utf-8")
        stripe.Webhook.construct_event(
            payload,
            request.headers.get("Stripe-Signature"),
            settings.stripe_webhook_secret,
            tolerance=settings.webhook_tolerance_s,
        )
    except (stripe.SignatureVerificationError, ValueError) as err:
        return await _reject(request, "stripe", str(err) or type(err).__name__, body)
    event = parse_event(payload)
    return await _apply(request, lambda s: handle_stripe_event(s, event, payload))


@routes.post("/webhooks/standard")
async def standard_webhook(request: web.Request) -> web.Response:
    """Handle standard Webhooks: webhook-id/-timestamp/-signature verified by standardwebhooks."""
    settings = settings_of(request)
    body = await request.read()
    if not settings.standard_webhook_secret:
        raise ApiError(404, "not_configured", "Standard Webhooks are not configured")
    headers = {k.lower(): v for k, v in request.headers.items()}
    try:
        payload = body.decode("utf-8")
        standardwebhooks.Webhook(settings.standard_webhook_secret).verify(payload, headers)
    except (standardwebhooks.WebhookVerificationError, ValueError) as err:
        return await _reject(request, "standard", str(err) or type(err).__name__, body)
    event = parse_event(payload)
    message_id = headers["webhook-id"][:255]
    return await _apply(request, lambda s: handle_standard_event(s, message_id, event, payload))
