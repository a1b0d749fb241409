"""Asking the payment provider (Stripe's API, when a key is set) instead of waiting for it.

Three uses: the admin's (or Home Assistant's) re-check of one order; the automatic re-check of
orders stuck pending or processing longer than the stuck-order minutes; and the periodic
reconciliation, which lists Stripe's paid-checkout events (services/reconcile.py applies them
through the webhook's own code path).

The provider is asked outside any database transaction (no row lock is held while waiting on
the network); what it says is then applied in one transaction.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator, Mapping
from datetime import datetime
from typing import Any

import stripe
from aiohttp import web
from prepaid_meter_contract.resources import RecheckedOrder
from prepaid_meter_contract.topups import OrderAction
from prepaid_meter_contract.vocabulary import OrderStatus

from prepaid_ledger.api.auth import Principal
from prepaid_ledger.api.context import db_of, settings_of
from prepaid_ledger.api.http_helpers import model_response
from prepaid_ledger.api.stripe_api import fetch_checkout_session, stripe_client
from prepaid_ledger.config import Settings
from prepaid_ledger.errors import ApiError, ConflictError
from prepaid_ledger.services import reconcile, topups
from prepaid_ledger.services.topups import get_order
from prepaid_ledger.services.webhooks import PAID_CHECKOUT_EVENTS, apply_stripe_recheck
from prepaid_ledger.store.database import Database
from prepaid_ledger.store.models import utcnow

_LOGGER = logging.getLogger(__name__)
_PAGE_SIZE = 100  # Stripe's largest page


def reconcile_enabled(settings: Settings) -> bool:
    """Return whether the ledger asks Stripe on its own (API key set, minutes above 0)."""
    return bool(settings.stripe_api_key) and settings.reconcile_minutes > 0


async def recheck_order(
    db: Database, settings: Settings, order_id: int, actor: str, reason: str
) -> RecheckedOrder:
    """Ask the provider about one order and apply its answer; return the order and that answer."""
    order = await db.read(lambda s: get_order(s, order_id))
    if order.provider != "stripe" or not order.provider_payment_id:
        raise ConflictError("no_provider_api", f"order {order_id} has no provider to ask")
    checkout = await fetch_checkout_session(settings, order.provider_payment_id)
    result = await db.write(lambda s: apply_stripe_recheck(s, order_id, checkout, actor, reason))
    return RecheckedOrder.model_validate(result)


async def recheck(
    request: web.Request, principal: Principal, order_id: int, command: OrderAction
) -> web.Response:
    """Handle an admin or integration re-check of an order (the body was parsed at the edge)."""
    result = await recheck_order(
        db_of(request), settings_of(request), order_id, principal.actor, command.reason
    )
    return model_response(result)


async def paid_checkout_events(
    settings: Settings, created_gte: int
) -> AsyncIterator[list[Mapping[str, Any]]]:
    """Yield pages of Stripe's checkout-paid events created at or after a Unix time.

    ``GET /v1/events`` with ``types[]`` (completed, async_payment_succeeded),
    ``created[gte]`` and ``limit=100``, following ``has_more`` with ``starting_after`` (the
    last event id of the page, Stripe's cursor). Raises ApiError 502 when Stripe does not
    answer.
    """
    async with stripe_client(settings) as client:
        starting_after: str | None = None
        while True:
            params: dict[str, Any] = {
                "types": list(PAID_CHECKOUT_EVENTS),
                "created": {"gte": created_gte},
                "limit": _PAGE_SIZE,
            }
            if starting_after is not None:
                params["starting_after"] = starting_after
            try:
                page = await client.v1.events.list_async(params)  # type: ignore[arg-type]
            except stripe.StripeError as err:
                raise ApiError(
                    502, "provider_unavailable", f"Stripe did not answer: {err}"
                ) from err
            events: list[Mapping[str, Any]] = [event.to_dict() for event in page.data]
            if events:
                yield events
            if not page.has_more or not events:
                return
            starting_after = str(events[-1]["id"])


async def reconcile_now(db: Database, settings: Settings) -> dict[str, Any]:
    """Run one reconciliation with Stripe's event list; return its stored outcome."""

    def pages(created_gte: int) -> AsyncIterator[list[Mapping[str, Any]]]:
        return paid_checkout_events(settings, created_gte)

    return await reconcile.run_once(db, pages)


async def recheck_stuck_orders(
    db: Database, settings: Settings, now: datetime | None = None
) -> tuple[int, int]:
    """Re-check with Stripe every order pending/processing beyond the stuck-order time.

    Paid: credited (or needs_attention if it cannot be). Expired: expired. A checkout still
    open and unpaid stays pending (no money has moved; Stripe expires it). Anything else
    (an async payment still outstanding, Stripe not knowing the session, Stripe unreachable,
    no provider to ask) becomes needs_attention, code ``stuck_processing``, with its alert.
    Returns (re-checked, flagged).
    """
    now = now or utcnow()
    timeout = settings.processing_timeout_s
    stuck = await db.read(lambda s: topups.stuck_orders(s, timeout, now))
    rechecked = flagged = 0
    for order in stuck:
        order_id, payment_id = order.id, order.provider_payment_id
        note: str | None = None
        if order.provider == "stripe" and payment_id:
            try:
                checkout = await fetch_checkout_session(settings, payment_id)
            except (ApiError, ConflictError) as err:
                note = f"could not re-check with Stripe: {err.message}"
            else:
                rechecked += 1
                after = await db.write(
                    functools.partial(
                        apply_stripe_recheck,
                        order_id=order_id,
                        checkout=checkout,
                        actor=reconcile.ACTOR,
                        reason="automatic re-check",
                        stuck_after_s=timeout,
                    )
                )
                flagged += after["status"] == OrderStatus.NEEDS_ATTENTION
                continue
        else:
            note = "no provider to ask"
        flagged += await db.write(
            functools.partial(
                topups.flag_stuck,
                order_id=order_id,
                timeout_s=timeout,
                actor=reconcile.ACTOR,
                note=note,
                now=now,
            )
        )
    if flagged:
        _LOGGER.warning("stuck orders: %d order(s) need attention", flagged)
    return rechecked, flagged
