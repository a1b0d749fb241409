"""Admin re-check of an order with its payment provider (Stripe's API, when a key is set).

The provider is asked outside any database transaction (no row lock is held while waiting on
the network); what it says is then applied in one transaction.
"""

from __future__ import annotations

from typing import Any

import aiohttp
import stripe
from aiohttp import web

from prepaid_ledger.api.auth import Principal
from prepaid_ledger.api.context import db_of, settings_of
from prepaid_ledger.api.errors import ApiError
from prepaid_ledger.config import Settings
from prepaid_ledger.services.accounts import ConflictError
from prepaid_ledger.services.topups import get_order
from prepaid_ledger.services.validation import require_str
from prepaid_ledger.services.webhooks import apply_stripe_recheck

_TIMEOUT = aiohttp.ClientTimeout(total=20)


async def fetch_checkout_session(settings: Settings, session_id: str) -> dict[str, Any]:
    """Retrieve a Checkout Session with the official client over aiohttp."""
    if not settings.stripe_api_key:
        raise ConflictError(
            "no_provider_api", "no Stripe API key is configured; cannot re-check with Stripe"
        )
    async with aiohttp.ClientSession(timeout=_TIMEOUT) as http:
        client = stripe.StripeClient(
            settings.stripe_api_key,
            http_client=stripe.AIOHTTPClient(session=http),
            base_addresses={"api": settings.stripe_api_base} if settings.stripe_api_base else None,
            max_network_retries=1,
        )
        try:
            found = await client.v1.checkout.sessions.retrieve_async(session_id)
        except stripe.InvalidRequestError as err:
            raise ConflictError("provider_not_found", f"Stripe does not know it: {err}") from err
        except stripe.StripeError as err:
            raise ApiError(502, "provider_unavailable", f"Stripe did not answer: {err}") from err
    result: dict[str, Any] = found.to_dict()
    return result


async def recheck(
    request: web.Request, principal: Principal, order_id: int, body: dict[str, Any]
) -> web.Response:
    """Ask the provider about an order and apply the answer."""
    reason = require_str(body, "reason", max_length=500)
    db = db_of(request)
    order = await db.read(lambda s: get_order(s, order_id))
    if order.provider != "stripe" or not order.provider_payment_id:
        raise ConflictError("no_provider_api", f"order {order_id} has no provider to ask")
    checkout = await fetch_checkout_session(settings_of(request), order.provider_payment_id)
    result = await db.write(
        lambda s: apply_stripe_recheck(s, order_id, checkout, principal.actor, reason)
    )
    return web.json_response(result)
