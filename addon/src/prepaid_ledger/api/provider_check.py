"""Admin re-check of an order with its payment provider (Stripe's API, when a key is set).

The provider is asked outside any database transaction (no row lock is held while waiting on
the network); what it says is then applied in one transaction.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from prepaid_ledger.api.auth import Principal
from prepaid_ledger.api.context import db_of, settings_of
from prepaid_ledger.api.stripe_api import fetch_checkout_session
from prepaid_ledger.config import Settings
from prepaid_ledger.services.accounts import ConflictError
from prepaid_ledger.services.topups import get_order
from prepaid_ledger.services.validation import require_str
from prepaid_ledger.services.webhooks import apply_stripe_recheck
from prepaid_ledger.store.database import Database


async def recheck_order(
    db: Database, settings: Settings, order_id: int, actor: str, reason: str
) -> dict[str, Any]:
    """Ask the provider about one order and apply its answer; return the order."""
    order = await db.read(lambda s: get_order(s, order_id))
    if order.provider != "stripe" or not order.provider_payment_id:
        raise ConflictError("no_provider_api", f"order {order_id} has no provider to ask")
    checkout = await fetch_checkout_session(settings, order.provider_payment_id)
    result: dict[str, Any] = await db.write(
        lambda s: apply_stripe_recheck(s, order_id, checkout, actor, reason)
    )
    return result


async def recheck(
    request: web.Request, principal: Principal, order_id: int, body: dict[str, Any]
) -> web.Response:
    """Handle an admin or integration re-check of an order."""
    reason = require_str(body, "reason", max_length=500)
    result = await recheck_order(
        db_of(request), settings_of(request), order_id, principal.actor, reason
    )
    return web.json_response(result)
