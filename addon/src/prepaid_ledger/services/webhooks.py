"""Verified provider events -> orders and credits, exactly once per event and per payment."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from prepaid_meter_contract.vocabulary import OrderStatus, PaymentMethod, PaymentOutcome
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from prepaid_ledger.domain.money import currency_exponent
from prepaid_ledger.errors import InputError
from prepaid_ledger.services import audit, topups
from prepaid_ledger.services.validation import loads_bounded
from prepaid_ledger.store.database import Database
from prepaid_ledger.store.models import ProviderEvent, TopupOrder, WebhookRejection

#: Stripe's own words for a Checkout Session (``status``, ``payment_status``), not the ledger's.
STRIPE_SESSION_OPEN = "open"
STRIPE_SESSION_EXPIRED = "expired"
STRIPE_PAID = frozenset({"paid", "no_payment_required"})

#: Stripe events that close an open order: the status it takes, the outcome, the reason.
_CLOSING_EVENTS: dict[str, tuple[OrderStatus, PaymentOutcome, str]] = {
    "checkout.session.async_payment_failed": (
        OrderStatus.FAILED,
        PaymentOutcome.FAILED,
        "async payment failed",
    ),
    "checkout.session.expired": (
        OrderStatus.EXPIRED,
        PaymentOutcome.EXPIRED,
        "checkout session expired unpaid",
    ),
}
#: An order a provider's later word may still settle.
_UNSETTLED = frozenset({OrderStatus.PENDING, OrderStatus.PROCESSING, OrderStatus.NEEDS_ATTENTION})
_NO_CURRENCY = "XXX"  # ISO 4217 "no currency": kept when a provider omits it
_ATTEMPTS = 4


async def apply_event[T](db: Database, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run one event's transaction; a concurrent duplicate fails a UNIQUE insert and re-runs.

    On the re-run the look-up finds the row the other delivery wrote and answers "duplicate".
    """
    for attempt in range(_ATTEMPTS):
        try:
            return await db.write(work, urgent=True)  # a payment: before readings
        except IntegrityError:
            if attempt == _ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


MAX_REJECTION_REASON = 500


async def record_rejection(
    session: AsyncSession, provider: str, reason: str, body_sha256: str, *, keep: int
) -> None:
    """Keep a trace of a delivery that failed verification; only the newest ``keep`` stay.

    Forged deliveries come from the public port: the table must not grow with them.
    """
    row = WebhookRejection(
        provider=provider, reason=reason[:MAX_REJECTION_REASON], body_sha256=body_sha256
    )
    session.add(row)
    await session.flush()
    await session.execute(delete(WebhookRejection).where(WebhookRejection.id <= row.id - keep))


def _currency(value: object) -> str:
    if isinstance(value, str):
        code = value.strip().upper()
        try:
            currency_exponent(code)
        except InputError:
            return _NO_CURRENCY
        return code
    return _NO_CURRENCY


def _amount(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        return 0
    return value


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


async def _seen(session: AsyncSession, provider: str, event_id: str) -> dict[str, Any] | None:
    existing = await session.scalar(
        select(ProviderEvent).where(
            ProviderEvent.provider == provider, ProviderEvent.event_id == event_id
        )
    )
    if existing is None:
        return None
    return {
        "received": True,
        "duplicate": True,
        "outcome": existing.outcome,
        "order_id": existing.order_id,
    }


async def _finish(
    session: AsyncSession,
    *,
    provider: str,
    actor: str | None = None,
    event_id: str,
    event_type: str,
    outcome: PaymentOutcome,
    order: TopupOrder | None,
    payload: str,
) -> dict[str, Any]:
    session.add(
        ProviderEvent(
            provider=provider,
            event_id=event_id,
            type=event_type[:100],
            outcome=outcome,
            order_id=order.id if order else None,
            payload=payload,
        )
    )
    await session.flush()  # a concurrent duplicate of this event fails here (UNIQUE)
    audit.record(
        session,
        actor=actor or provider,
        action=f"webhook.{provider}",
        target=f"event:{event_id}"[:64],
        before=None,
        after={"type": event_type, "outcome": outcome, "order_id": order.id if order else None},
    )
    return {
        "received": True,
        "duplicate": False,
        "outcome": outcome,
        "order_id": order.id if order else None,
        "status": order.status if order else None,
    }


def stripe_payment(session_obj: Mapping[str, Any]) -> topups.Payment:
    """Read the payment out of a Stripe Checkout Session object."""
    metadata = _mapping(session_obj.get("metadata"))
    account_ref: object = session_obj.get("client_reference_id") or metadata.get("account") or ""
    if (
        isinstance(account_ref, str)
        and account_ref.isascii()
        and account_ref.isdigit()
        and len(account_ref) < 9
    ):
        account_ref = int(account_ref)  # a short all-digit reference is an account id
    payment_intent = session_obj.get("payment_intent")
    # Stripe's session names the methods it offered, not the one used: one offered is the one;
    # of several, only "online" is known; none named (an older payload): the card, as before.
    offered = session_obj.get("payment_method_types")
    method: str | None = None
    if isinstance(offered, list) and offered:
        method = str(offered[0]) if len(offered) == 1 else PaymentMethod.ONLINE.value
    return topups.Payment(
        provider="stripe",
        payment_id=str(session_obj.get("id") or ""),
        account_ref=account_ref,
        amount_minor=_amount(session_obj.get("amount_total")),
        currency=_currency(session_obj.get("currency")),
        reference=str(session_obj.get("id") or "")[:200] or None,
        payment_intent=payment_intent if isinstance(payment_intent, str) else None,
        method=method,
    )


PAID_CHECKOUT_EVENTS = ("checkout.session.completed", "checkout.session.async_payment_succeeded")


async def handle_stripe_event(
    session: AsyncSession, event: Mapping[str, Any], payload: str, actor: str = "stripe"
) -> dict[str, Any]:
    """Apply one verified Stripe event (idempotent on event id and on checkout session id).

    The webhook and the reconciliation with Stripe's event list (services.reconcile) both come
    here, so the same UNIQUE constraints make each event and each session count once.
    """
    event_id = str(event.get("id") or "")
    event_type = str(event.get("type") or "")
    if not event_id or len(event_id) > 255:
        raise InputError("invalid_event", "event id is missing or longer than 255 characters")
    seen = await _seen(session, "stripe", event_id)
    if seen is not None:
        return seen
    obj = _mapping(_mapping(event.get("data")).get("object"))
    order: TopupOrder | None = None
    outcome: PaymentOutcome
    if event_type in PAID_CHECKOUT_EVENTS:
        payment = stripe_payment(obj)
        if not payment.payment_id:
            outcome = PaymentOutcome.IGNORED_NO_SESSION_ID
        else:
            paid = event_type.endswith("async_payment_succeeded") or (
                obj.get("payment_status") in STRIPE_PAID
            )
            order, outcome = await topups.receive_payment(session, payment, actor, credit=paid)
    elif event_type in _CLOSING_EVENTS:
        status, closed, reason = _CLOSING_EVENTS[event_type]
        order = await session.scalar(
            select(TopupOrder)
            .where(
                TopupOrder.provider == "stripe",
                TopupOrder.provider_payment_id == str(obj.get("id")),
            )
            .with_for_update()
        )
        if order is not None and order.status in _UNSETTLED:
            await topups.set_status(session, order, status, actor, reason)
            outcome = closed
        else:
            outcome = PaymentOutcome.IGNORED
    elif event_type == "charge.refunded":
        order, outcome = await _stripe_refund(session, obj)
    else:
        outcome = PaymentOutcome.IGNORED
    return await _finish(
        session,
        provider="stripe",
        actor=actor,
        event_id=event_id,
        event_type=event_type,
        outcome=outcome,
        order=order,
        payload=payload,
    )


async def _stripe_refund(
    session: AsyncSession, charge: Mapping[str, Any]
) -> tuple[TopupOrder | None, PaymentOutcome]:
    intent = charge.get("payment_intent")
    if not isinstance(intent, str):
        return None, PaymentOutcome.IGNORED_NO_PAYMENT_INTENT
    order = await session.scalar(
        select(TopupOrder)
        .where(TopupOrder.provider == "stripe", TopupOrder.provider_payment_intent == intent)
        .with_for_update()
    )
    if order is None:
        return None, PaymentOutcome.IGNORED_UNKNOWN_PAYMENT
    refunded_total = _amount(charge.get("amount_refunded"))
    delta = min(refunded_total, order.credited_minor) - order.refunded_minor
    if delta <= 0 or order.status not in topups.REFUNDABLE_STATUSES:
        return order, PaymentOutcome.REFUND_ALREADY_APPLIED
    await topups.refund(session, order, delta, "stripe", "refunded at Stripe (charge.refunded)")
    return order, PaymentOutcome.REFUNDED


async def handle_standard_event(
    session: AsyncSession, message_id: str, event: Mapping[str, Any], payload: str
) -> dict[str, Any]:
    """Apply one verified Standard Webhooks payment event (idempotent on id and reference)."""
    seen = await _seen(session, "standard", message_id)
    if seen is not None:
        return seen
    event_type = str(event.get("type") or "")
    order: TopupOrder | None = None
    outcome: PaymentOutcome
    if event_type == "payment.succeeded":
        data = _mapping(event.get("data"))
        reference = data.get("reference")
        payment_id = reference if isinstance(reference, str) and reference else message_id
        payment = topups.Payment(
            provider="standard",
            payment_id=payment_id[:200],
            account_ref=data.get("account") if data.get("account") is not None else "",
            amount_minor=_amount(data.get("amount_minor")),
            currency=_currency(data.get("currency")),
            reference=payment_id[:200],
        )
        order, outcome = await topups.receive_payment(session, payment, "standard")
    else:
        outcome = PaymentOutcome.IGNORED
    return await _finish(
        session,
        provider="standard",
        event_id=message_id,
        event_type=event_type,
        outcome=outcome,
        order=order,
        payload=payload,
    )


def parse_event(payload: str) -> Mapping[str, Any]:
    """Return the verified body as a JSON object (bounded depth, valid Unicode)."""
    event = loads_bounded(payload, "webhook body")
    if not isinstance(event, Mapping):
        raise InputError("invalid_event", "webhook body must be a JSON object")
    if not isinstance(event.get("type"), str) or not isinstance(event.get("data"), Mapping):
        raise InputError("invalid_event", "webhook body needs a string type and a data object")
    return event


def parse_stripe_event(payload: str) -> Mapping[str, Any]:
    """Return a verified Stripe event: a string id and type, and a data.object object.

    Stripe always sends this shape; anything else was signed with the secret but is not an
    event, so it is refused (4xx) rather than half-read.
    """
    event = parse_event(payload)
    event_id = event.get("id")
    if not isinstance(event_id, str) or not 0 < len(event_id) <= 255:
        raise InputError("invalid_event", "event id must be a string of 1 to 255 characters")
    if not isinstance(event["data"].get("object"), Mapping):
        raise InputError("invalid_event", "event data.object must be a JSON object")
    return event


async def apply_stripe_recheck(
    session: AsyncSession,
    order_id: int,
    checkout: Mapping[str, Any],
    actor: str,
    reason: str,
    *,
    stuck_after_s: float | None = None,
) -> dict[str, Any]:
    """Apply what Stripe's API says about an order's checkout session (re-check).

    An admin's re-check leaves an undecided order as it is. The automatic re-check of an order
    stuck longer than ``stuck_after_s`` (services.reconcile) makes it needs_attention instead,
    unless it is a checkout still open and unpaid (no money has moved; Stripe expires it).
    """
    order = await topups.get_order(session, order_id, lock=True)
    before = topups.order_json(order)
    provider_status = f"{checkout.get('status')}/{checkout.get('payment_status')}"
    note = f"re-checked with Stripe ({provider_status}): {reason}"
    if order.transaction_id is None and order.status in _UNSETTLED:
        if checkout.get("payment_status") in STRIPE_PAID:
            await topups.credit_or_flag(session, order, stripe_payment(checkout), actor)
        elif checkout.get("status") == STRIPE_SESSION_EXPIRED:
            await topups.set_status(session, order, OrderStatus.EXPIRED, actor, note)
        elif (
            stuck_after_s is not None
            and order.status != OrderStatus.NEEDS_ATTENTION
            and not (
                order.status == OrderStatus.PENDING
                and checkout.get("status") == STRIPE_SESSION_OPEN
            )
        ):
            await topups.set_status(
                session,
                order,
                OrderStatus.NEEDS_ATTENTION,
                actor,
                f"stuck in {order.status} for more than {int(stuck_after_s)} s; {note}",
                code=topups.STUCK_PROCESSING,
            )
        else:
            await topups.set_status(session, order, OrderStatus(order.status), actor, note)
    after = topups.view_json(await topups.order_answer(session, order))
    audit.record(
        session,
        actor=actor,
        action="topup.recheck",
        target=f"order:{order.id}",
        before=before,
        after=after | {"reason": reason, "provider_status": provider_status},
    )
    return after | {"provider_status": provider_status}
