"""Payment webhooks: verify the signature with the provider's own library, then apply once."""

from __future__ import annotations

import functools
import hashlib
import logging
import time
from typing import Any

import standardwebhooks
import stripe
from aiohttp import web
from prepaid_meter_contract.topups import WebhookResult

from prepaid_ledger.api.context import STATE_KEY, db_of, settings_of
from prepaid_ledger.api.documented import Param, documented
from prepaid_ledger.api.http_helpers import model_response
from prepaid_ledger.api.rate_limit import SlidingWindow
from prepaid_ledger.errors import ApiError, InputError
from prepaid_ledger.services.webhooks import (
    apply_event,
    handle_standard_event,
    handle_stripe_event,
    parse_event,
    parse_stripe_event,
    record_rejection,
)

_LOGGER = logging.getLogger(__name__)
routes = web.RouteTableDef()


async def _reject(request: web.Request, provider: str, reason: str, body: bytes) -> web.Response:
    """Refuse the delivery; write it to webhook_rejections at a bounded rate."""
    settings = settings_of(request)
    state = request.app[STATE_KEY]
    if state.rejection_log_limit is None:
        state.rejection_log_limit = SlidingWindow(settings.webhook_rejections_per_minute, 60)
    if state.rejection_log_limit.allow(provider, time.monotonic()):
        digest = hashlib.sha256(body).hexdigest()
        await db_of(request).write(
            functools.partial(
                record_rejection,
                provider=provider,
                reason=reason,
                body_sha256=digest,
                keep=settings.webhook_rejections_kept,
            )
        )
        _LOGGER.warning("rejected %s webhook: %s", provider, reason)
    else:
        _LOGGER.debug("rejected %s webhook (not recorded: over the rate): %s", provider, reason)
    raise ApiError(400, "invalid_signature", f"webhook rejected: {reason[:500]}")


async def _apply(request: web.Request, work: Any) -> web.Response:
    """Run the event's transaction (the one reconciliation with Stripe uses too).

    The services answer plain JSON because reconciliation reads the same result; it is read
    into the contract's ``WebhookResult`` here, so the answer is exactly the documented one.
    """
    result = WebhookResult.model_validate(await apply_event(db_of(request), work))
    return model_response(result)


@routes.post("/webhooks/stripe")
@documented(
    "Stripe webhook (Stripe-Signature, 300 s tolerance)",
    response=WebhookResult,
    body={"type": "object"},
    errors=(400, 404),
    secured=False,
    params=(Param("Stripe-Signature", "header", {"type": "string"}, required=True),),
)
async def stripe_webhook(request: web.Request) -> web.Response:
    """Stripe: Stripe-Signature verified by stripe.Webhook.construct_event (300 s tolerance)."""
    settings = settings_of(request)
    body = await request.read()
    if not settings.stripe_webhook_secret:
        raise ApiError(404, "not_configured", "Stripe webhooks are not configured")
    try:
        payload = body.decode("utf-8")
        # Only the signature: building Stripe's event object from a body of the wrong shape
        # fails inside the library; the shape is checked by parse_stripe_event instead.
        stripe.WebhookSignature.verify_header(
            payload,
            request.headers.get("Stripe-Signature", ""),
            settings.stripe_webhook_secret,
            tolerance=settings.webhook_tolerance_s,
        )
    except (stripe.SignatureVerificationError, ValueError) as err:
        return await _reject(request, "stripe", str(err) or type(err).__name__, body)
    event = parse_stripe_event(payload)
    return await _apply(request, lambda s: handle_stripe_event(s, event, payload))


@routes.post("/webhooks/standard")
@documented(
    "Standard Webhooks payment event",
    response=WebhookResult,
    body={"type": "object"},
    errors=(400, 404),
    secured=False,
    params=tuple(
        Param(name, "header", {"type": "string"}, required=True)
        for name in ("webhook-id", "webhook-timestamp", "webhook-signature")
    ),
)
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
    except RecursionError as err:  # signed, then parsed by the library: nested far too deep
        raise InputError("too_deep", "webhook body nests too deep to be an event") from err
    event = parse_event(payload)
    message_id = headers["webhook-id"][:255]
    return await _apply(request, lambda s: handle_standard_event(s, message_id, event, payload))
