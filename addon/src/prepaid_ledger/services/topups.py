"""Top-up orders: the state machine, crediting exactly once, refunds, adjustments, watchdog.

Exactly-once rests on UNIQUE constraints (provider + payment id on orders, provider + event id
on provider events, actor + key on idempotency keys). Every function here first looks for the
row a previous attempt would have written and returns that outcome; a concurrent duplicate that
slips past the look-up fails its INSERT, the caller re-runs the function, and the look-up wins.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from prepaid_meter_contract.events import OrderNeedsAttentionAlert, TopupUpdated
from prepaid_meter_contract.receipts import Receipt as ReceiptView
from prepaid_meter_contract.resources import Bonus, TimelineStep
from prepaid_meter_contract.resources import TopupOrder as OrderView
from prepaid_meter_contract.topups import (
    Adjustment,
    AdjustmentRequest,
    OrderAction,
    ResolvedOrder,
    TopupRequest,
)
from prepaid_meter_contract.vocabulary import (
    AccountStatus,
    AlertKind,
    AttentionCode,
    OrderStatus,
    PaymentOutcome,
)
from sqlalchemy import inspect, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from prepaid_ledger.domain.money import MAX_MINOR, currency_exponent
from prepaid_ledger.errors import ConflictError, InputError, NotFoundError
from prepaid_ledger.services import audit, events, journal, promotions, receipts
from prepaid_ledger.services import outbox as accounting_outbox
from prepaid_ledger.services.accounts import (
    book_of,
    get_account,
    refresh_account,
    resolve_account_ref,
)
from prepaid_ledger.services.lookup import load_by_id
from prepaid_ledger.services.paging import (
    Order,
    Page,
    contains,
    cut_page,
    decode_cursor,
    page_query,
)
from prepaid_ledger.services.sites import of_site
from prepaid_ledger.store.models import Account, TopupOrder, TopupOrderEvent, utcnow

STATUSES = tuple(OrderStatus)
#: Where an order may go from each status (a note keeps it where it is).
_TRANSITIONS: dict[str, frozenset[OrderStatus]] = {
    OrderStatus.PENDING: frozenset(
        {
            OrderStatus.PROCESSING,
            OrderStatus.FAILED,
            OrderStatus.EXPIRED,
            OrderStatus.NEEDS_ATTENTION,
        }
    ),
    OrderStatus.PROCESSING: frozenset(
        {
            OrderStatus.SUCCEEDED,
            OrderStatus.FAILED,
            OrderStatus.EXPIRED,
            OrderStatus.NEEDS_ATTENTION,
        }
    ),
    OrderStatus.NEEDS_ATTENTION: frozenset(
        {
            OrderStatus.SUCCEEDED,
            OrderStatus.FAILED,
            OrderStatus.PROCESSING,
            OrderStatus.EXPIRED,
        }
    ),
    OrderStatus.SUCCEEDED: frozenset({OrderStatus.REFUNDED, OrderStatus.PARTIALLY_REFUNDED}),
    OrderStatus.PARTIALLY_REFUNDED: frozenset(
        {OrderStatus.REFUNDED, OrderStatus.PARTIALLY_REFUNDED}
    ),
    # A payment the provider confirms for a failed or expired order is never dropped.
    OrderStatus.FAILED: frozenset({OrderStatus.NEEDS_ATTENTION}),
    OrderStatus.EXPIRED: frozenset({OrderStatus.NEEDS_ATTENTION}),
    OrderStatus.REFUNDED: frozenset(),
}
#: An order not settled yet: the stuck-order watchdog's and the provider re-check's candidates.
OPEN_STATUSES: tuple[OrderStatus, ...] = (OrderStatus.PENDING, OrderStatus.PROCESSING)
#: An order that credited its account and can still be (further) refunded.
REFUNDABLE_STATUSES = frozenset({OrderStatus.SUCCEEDED, OrderStatus.PARTIALLY_REFUNDED})

# Why an order needs attention: stable codes carried by the order and by its alert.
UNKNOWN_ACCOUNT = AttentionCode.UNKNOWN_ACCOUNT
CLOSED_ACCOUNT = AttentionCode.CLOSED_ACCOUNT
CURRENCY_MISMATCH = AttentionCode.CURRENCY_MISMATCH
INVALID_AMOUNT = AttentionCode.INVALID_AMOUNT
STUCK_PROCESSING = AttentionCode.STUCK_PROCESSING
PAID_NOT_CREDITED = AttentionCode.PAID_NOT_CREDITED
ATTENTION_CODES = tuple(AttentionCode)


@dataclass(frozen=True, slots=True)
class Payment:
    """Money a provider says arrived, in the provider-neutral shape crediting needs."""

    provider: str
    payment_id: str
    account_ref: object
    amount_minor: int
    currency: str
    reference: str | None = None
    payment_intent: str | None = None
    #: Why the amount cannot be credited although a provider sent it (shown on the order).
    amount_problem: str | None = None
    #: How it was paid when the provider says (a receipt's method; None: from the source).
    method: str | None = None


def within_ledger_range(payment: Payment) -> Payment:
    """Return the payment, or one with amount 0 and the reason when it exceeds MAX_MINOR.

    A signed provider event is never dropped, but an amount beyond what any money field may
    hold cannot even be stored (64-bit columns): the order records 0 and needs attention.
    """
    if abs(payment.amount_minor) <= MAX_MINOR:
        return payment
    problem = (
        f"amount {payment.amount_minor} is beyond what the ledger can hold "
        f"(at most {MAX_MINOR} minor units)"
    )
    return replace(payment, amount_minor=0, amount_problem=problem)


def order_view(
    order: TopupOrder,
    timeline: list[TopupOrderEvent] | None = None,
    receipt: ReceiptView | None = None,
    bonus: Bonus | None = None,
) -> OrderView:
    """Return an order as the API answers it (the contract's ``TopupOrder``)."""
    return OrderView(
        id=order.id,
        account_id=order.account_id,
        account_ref=order.account_ref,
        amount_minor=order.amount_minor,
        currency=order.currency,
        status=OrderStatus(order.status),
        source=order.source,
        reference=order.reference,
        provider=order.provider,
        provider_payment_id=order.provider_payment_id,
        credited_minor=order.credited_minor,
        refunded_minor=order.refunded_minor,
        attention_reason=order.attention_reason,
        attention_code=order.attention_code,
        created_at=order.created_at,
        updated_at=order.updated_at,
        timeline=None
        if timeline is None
        else [
            TimelineStep(status=OrderStatus(e.status), at=e.at, reason=e.reason, actor=e.actor)
            for e in timeline
        ],
        receipt=receipt,
        bonus=bonus,
    )


async def order_answer(
    session: AsyncSession, order: TopupOrder, timeline: list[TopupOrderEvent] | None = None
) -> OrderView:
    """Return an order as the API answers it, with its receipt and bonus when it has them."""
    receipt = await receipts.for_order(session, order.id)
    bonus = (await promotions.bonuses_of(session, [order])).get(order.id)
    return order_view(order, timeline, receipt, bonus)


def view_json(view: OrderView) -> dict[str, Any]:
    """Return an order's answer as plain JSON, as the audit log keeps it (no empty timeline)."""
    return view.model_dump(mode="json", exclude={"timeline"} if view.timeline is None else None)


def order_json(order: TopupOrder, timeline: list[TopupOrderEvent] | None = None) -> dict[str, Any]:
    """Return an order as plain JSON (audit entries, the pay page, the provider re-check)."""
    return view_json(order_view(order, timeline))


async def set_status(
    session: AsyncSession,
    order: TopupOrder,
    status: OrderStatus,
    actor: str,
    reason: str | None = None,
    *,
    now: datetime | None = None,
    code: str | None = None,
    receipt: ReceiptView | None = None,
) -> None:
    """Move an order along the state machine, timestamped in its timeline; emit topup.updated.

    The move to ``succeeded`` carries the receipt issued with the credit, so Home Assistant
    gets it in the same event (an automation can send it on).

    Moving to ``needs_attention`` takes a stable ``code`` (one of ATTENTION_CODES) besides the
    human reason, and raises the order's alert (attention_alert). A note on an order already
    needing attention (a re-check that changed nothing: no code) keeps its cause and raises
    no second alert.
    """
    if order.status != status and status not in _TRANSITIONS.get(order.status, frozenset()):
        raise ConflictError(
            "invalid_transition", f"order {order.id} cannot go from {order.status} to {status}"
        )
    now = now or utcnow()
    flagged = status == OrderStatus.NEEDS_ATTENTION and (order.status != status or code is not None)
    order.status = status
    order.updated_at = now
    if flagged:
        order.attention_reason = reason
        order.attention_code = code or order.attention_code or PAID_NOT_CREDITED
    if inspect(order).pending:
        await session.flush()  # a new order: its id goes into the timeline and the events
    session.add(
        TopupOrderEvent(order_id=order.id, status=status, at=now, reason=reason, actor=actor)
    )
    events.emit(
        session,
        order.account_id,
        TopupUpdated(
            order_id=order.id,
            account_id=order.account_id,
            status=OrderStatus(status),
            amount_minor=order.amount_minor,
            currency=order.currency,
            reason=reason,
            receipt=receipt,
        ),
    )
    if flagged:
        events.emit(session, order.account_id, attention_alert(order, now))
        await accounting_outbox.order_needs_attention(session, order, now)


def attention_alert(order: TopupOrder, now: datetime | None = None) -> OrderNeedsAttentionAlert:
    """Return the alert that puts an order in front of a person: the whole order, and why.

    The one place that shapes ``order_needs_attention``, whatever the cause (set_status raises
    it on every move to needs_attention). Home Assistant fires
    ``prepaid_meter_order_needs_attention`` and raises a repair issue from it, also for a
    payment that matches no account (a typo), so every field is the order's own.
    """
    now = now or utcnow()
    created = order.created_at or now
    if created.tzinfo is None:
        created = created.replace(tzinfo=UTC)
    return OrderNeedsAttentionAlert(
        kind=AlertKind.ORDER_NEEDS_ATTENTION,
        order_id=order.id,
        account_id=order.account_id,
        amount_minor=order.amount_minor,
        currency=order.currency,
        currency_exponent=_exponent_or_none(order.currency),
        # What the payer typed (client_reference_id, metadata.account, a provider's account
        # field), else whatever reference the payment carried; None when it carried nothing.
        account_number=order.account_ref or order.reference or None,
        reason=AttentionCode(order.attention_code) if order.attention_code else None,
        detail=order.attention_reason,
        provider=order.provider,
        provider_payment_id=order.provider_payment_id,
        created_at=created,
        age_minutes=max(0, int((now - created).total_seconds() // 60)),
    )


def _exponent_or_none(currency: str) -> int | None:
    try:
        return currency_exponent(currency)
    except InputError:
        return None


async def new_order(
    session: AsyncSession,
    *,
    account: Account | None,
    account_ref: object,
    amount_minor: int,
    currency: str,
    source: str,
    provider: str,
    payment_id: str | None,
    reference: str | None,
    payment_intent: str | None,
    actor: str,
) -> TopupOrder:
    """Open a pending order with its first timeline step (every channel opens its orders here)."""
    now = utcnow()
    order = TopupOrder(
        account_id=account.id if account else None,
        account_ref=str(account_ref)[:64],
        amount_minor=amount_minor,
        currency=currency,
        status=OrderStatus.PENDING,
        source=source,
        reference=reference,
        provider=provider,
        provider_payment_id=payment_id,
        provider_payment_intent=payment_intent,
        credited_minor=0,
        refunded_minor=0,
        created_at=now,
        updated_at=now,
    )
    session.add(order)
    await session.flush()  # a duplicate provider payment id fails here (UNIQUE)
    session.add(TopupOrderEvent(order_id=order.id, status=OrderStatus.PENDING, at=now, actor=actor))
    return order


async def credit_order(
    session: AsyncSession,
    order: TopupOrder,
    account: Account,
    actor: str,
    reason: str | None = None,
    *,
    method: str | None = None,
) -> ReceiptView:
    """Credit an order's amount to an account (once: the order records the transaction).

    Every credit of every channel (cash, batch, webhooks, reconciliation, re-check, a person's
    credit, vouchers) passes through here, so this is where its receipt is issued: in the same
    transaction, so a credit that rolls back takes its receipt number with it.
    """
    if order.transaction_id is not None:
        raise ConflictError("already_credited", f"order {order.id} is already credited")
    book_id = book_of(account)
    clearing = await journal.system_book(
        session, journal.PAYMENTS_CLEARING, account.currency, account.site_id
    )
    txn = await journal.post(
        session,
        kind="topup",
        account_id=account.id,
        # The reference (a cash receipt, "auto top-up") shows on the statement line.
        description=f"top-up order {order.id} ({order.source})"
        + (f": {order.reference}" if order.reference else ""),
        legs=[
            journal.Leg(book_id, order.amount_minor),
            journal.Leg(clearing, -order.amount_minor),
        ],
    )
    order.account_id = account.id
    order.transaction_id = txn.id
    order.credited_minor = order.amount_minor
    bonus = await promotions.grant(session, order, account)
    now = utcnow()
    balance = await journal.book_balance(session, book_id)
    # The account's new state before the receipt: its number's counter is one row every
    # credit locks until it commits, so as little as possible comes after taking it.
    await refresh_account(session, account, now, balance=balance)
    receipt = await receipts.issue(
        session, order, account, balance, now, bonus_minor=bonus, paid_by=method
    )
    if order.status == OrderStatus.PENDING:
        await set_status(session, order, OrderStatus.PROCESSING, actor, now=now)
    await set_status(session, order, OrderStatus.SUCCEEDED, actor, reason, now=now, receipt=receipt)
    await accounting_outbox.topup_succeeded(session, order, account, receipt)
    return receipt


async def manual_topup(
    session: AsyncSession, request: TopupRequest, actor: str, max_minor: int
) -> OrderView:
    """Return a cash/manual top-up, credited at once; a reference maps to at most one order.

    The request's shape was checked at the edge; the ledger's own limit (``--max-topup-minor``,
    a setting the contract cannot know) is checked here.
    """
    amount = request.amount_minor
    if amount > max_minor:
        raise InputError(
            "amount_too_large", f"amount_minor must be at most {max_minor}", "amount_minor"
        )
    reference = request.reference
    account = await resolve_account_ref(session, request.account, lock=True)
    if account.status != AccountStatus.OPEN:
        raise ConflictError("account_closed", f"account {account.id} is closed")
    if reference is not None:
        existing = await session.scalar(
            select(TopupOrder).where(
                TopupOrder.provider == "manual", TopupOrder.provider_payment_id == reference
            )
        )
        if existing is not None:
            raise ConflictError(
                "duplicate_reference",
                f"reference {reference!r} was already used by order {existing.id}",
            )
    order = await new_order(
        session,
        account=account,
        account_ref=request.account,
        amount_minor=amount,
        currency=account.currency,
        source="manual",
        provider="manual",
        payment_id=reference,
        reference=reference,
        payment_intent=None,
        actor=actor,
    )
    await credit_order(session, order, account, actor)
    result = await order_answer(session, order)
    audit.record(
        session,
        actor=actor,
        action="topup.create",
        target=f"order:{order.id}",
        before=None,
        after=view_json(result),
    )
    return result


async def receive_payment(
    session: AsyncSession, payment: Payment, actor: str, *, credit: bool = True
) -> tuple[TopupOrder, PaymentOutcome]:
    """Turn a verified provider payment into an order, credited once or needing attention.

    Returns the order and the outcome: credited, duplicate_payment, needs_attention, or
    processing (credit=False: money not yet final).
    """
    payment = within_ledger_range(payment)
    existing = await session.scalar(
        select(TopupOrder)
        .where(
            TopupOrder.provider == payment.provider,
            TopupOrder.provider_payment_id == payment.payment_id,
        )
        .with_for_update()
    )
    if existing is not None:
        return existing, await _payment_for_existing(session, existing, payment, actor, credit)
    account: Account | None = None
    try:
        account = await resolve_account_ref(session, payment.account_ref, lock=True)
    except (InputError, NotFoundError):
        account = None
    order = await new_order(
        session,
        account=account,
        account_ref=payment.account_ref,
        amount_minor=payment.amount_minor,
        currency=payment.currency,
        source=payment.provider,
        provider=payment.provider,
        payment_id=payment.payment_id,
        reference=payment.reference,
        payment_intent=payment.payment_intent,
        actor=actor,
    )
    if not credit:
        await set_status(session, order, OrderStatus.PROCESSING, actor, "payment not final yet")
        return order, PaymentOutcome.PROCESSING
    return order, await credit_or_flag(session, order, payment, actor, account=account)


async def _payment_for_existing(
    session: AsyncSession, order: TopupOrder, payment: Payment, actor: str, credit: bool
) -> PaymentOutcome:
    """Apply a payment to the order that already holds its provider payment id."""
    if order.transaction_id is not None:
        return PaymentOutcome.DUPLICATE_PAYMENT
    # A Checkout Session the pay page opened is pending until its webhook arrives; an order
    # flagged as stuck is credited when the provider finally confirms it.
    open_order = order.status in OPEN_STATUSES or (
        order.status == OrderStatus.NEEDS_ATTENTION and order.attention_code == STUCK_PROCESSING
    )
    if credit and open_order:
        return await credit_or_flag(session, order, payment, actor)
    if credit and order.status in {OrderStatus.FAILED, OrderStatus.EXPIRED}:
        await set_status(
            session,
            order,
            OrderStatus.NEEDS_ATTENTION,
            actor,
            f"the provider reports this payment paid, but the order was {order.status}",
            code=PAID_NOT_CREDITED,
        )
        return PaymentOutcome.NEEDS_ATTENTION
    if not credit and order.status == OrderStatus.PENDING:
        await set_status(session, order, OrderStatus.PROCESSING, actor, "payment not final yet")
        return PaymentOutcome.PROCESSING
    return PaymentOutcome.DUPLICATE_PAYMENT


async def open_checkout_order(
    session: AsyncSession, account: Account, checkout_id: str, amount_minor: int, actor: str
) -> dict[str, Any]:
    """Record a tenant's Stripe Checkout Session as a pending order, visible at once.

    The session id is the provider payment id, so the webhook for it credits this order (and
    only once: the pair is UNIQUE).
    """
    order = await new_order(
        session,
        account=account,
        account_ref=account.number or account.id,
        amount_minor=amount_minor,
        currency=account.currency,
        source="stripe",
        provider="stripe",
        payment_id=checkout_id,
        reference=checkout_id,
        payment_intent=None,
        actor=actor,
    )
    result = order_json(order)
    # Visible at once: the landlord's page and Home Assistant show the order as pending.
    events.emit(
        session,
        account.id,
        TopupUpdated(
            order_id=order.id,
            account_id=account.id,
            status=OrderStatus.PENDING,
            amount_minor=amount_minor,
            currency=account.currency,
            reason="checkout opened",
        ),
    )
    audit.record(
        session,
        actor=actor,
        action="topup.checkout",
        target=f"order:{order.id}",
        before=None,
        after=result,
    )
    return result


async def credit_or_flag(
    session: AsyncSession,
    order: TopupOrder,
    payment: Payment,
    actor: str,
    *,
    account: Account | None = None,
) -> PaymentOutcome:
    """Credit a payment to its account, or mark the order needs_attention saying why.

    ACCOUNT: the payment's account, already resolved and locked by the caller (else resolved
    here).
    """
    payment = within_ledger_range(payment)
    try:
        if account is None:
            account = await resolve_account_ref(session, payment.account_ref, lock=True)
    except (InputError, NotFoundError) as err:
        await set_status(
            session,
            order,
            OrderStatus.NEEDS_ATTENTION,
            actor,
            f"cannot credit: {getattr(err, 'message', str(err))}",
            code=UNKNOWN_ACCOUNT,
        )
        return PaymentOutcome.NEEDS_ATTENTION
    if account.status != AccountStatus.OPEN:
        code, reason = CLOSED_ACCOUNT, f"account {account.id} is closed"
    elif account.currency != payment.currency:
        code = CURRENCY_MISMATCH
        reason = f"currency mismatch: paid {payment.currency}, account uses {account.currency}"
    elif payment.amount_minor <= 0:
        code = INVALID_AMOUNT
        reason = payment.amount_problem or "amount mismatch: amount must be positive"
    else:
        await credit_order(session, order, account, actor, method=payment.method)
        return PaymentOutcome.CREDITED
    order.account_id = account.id
    await set_status(session, order, OrderStatus.NEEDS_ATTENTION, actor, reason, code=code)
    return PaymentOutcome.NEEDS_ATTENTION


async def get_order(session: AsyncSession, order_id: int, *, lock: bool = False) -> TopupOrder:
    """Load an order or raise NotFoundError."""
    return await load_by_id(session, TopupOrder, order_id, "order", lock=lock)


async def order_with_timeline(session: AsyncSession, order_id: int) -> OrderView:
    """Return an order and its status timeline."""
    order = await get_order(session, order_id)
    timeline = list(
        await session.scalars(
            select(TopupOrderEvent)
            .where(TopupOrderEvent.order_id == order_id)
            .order_by(TopupOrderEvent.id)
        )
    )
    return await order_answer(session, order, timeline)


async def refund(
    session: AsyncSession, order: TopupOrder, amount_minor: int, actor: str, reason: str
) -> OrderView:
    """Refund part or all of a credited order (never more than was credited)."""
    if order.status not in REFUNDABLE_STATUSES or order.account_id is None:
        raise ConflictError("not_refundable", f"order {order.id} is {order.status}")
    refundable = order.credited_minor - order.refunded_minor
    if amount_minor <= 0 or amount_minor > refundable:
        raise InputError(
            "invalid_amount", f"refund must be between 1 and {refundable} (not yet refunded)"
        )
    account = await get_account(session, order.account_id, lock=True)
    book_id = book_of(account)
    before = order_json(order)
    clearing = await journal.system_book(
        session, journal.PAYMENTS_CLEARING, account.currency, account.site_id
    )
    await journal.post(
        session,
        kind="refund",
        account_id=account.id,
        description=f"refund of order {order.id}: {reason}",
        legs=[journal.Leg(book_id, -amount_minor), journal.Leg(clearing, amount_minor)],
    )
    order.refunded_minor += amount_minor
    await promotions.take_back(session, order, account)
    status = (
        OrderStatus.REFUNDED
        if order.refunded_minor == order.credited_minor
        else OrderStatus.PARTIALLY_REFUNDED
    )
    await set_status(session, order, status, actor, reason)
    await accounting_outbox.topup_refunded(session, order, account, amount_minor, reason)
    await refresh_account(session, account, utcnow())
    after = await order_answer(session, order)
    audit.record(
        session,
        actor=actor,
        action="topup.refund",
        target=f"order:{order.id}",
        before=before,
        after=view_json(after) | {"refund_minor": amount_minor, "reason": reason},
    )
    return after


async def admin_action(
    session: AsyncSession, order_id: int, command: OrderAction, actor: str
) -> ResolvedOrder:
    """Resolve an order by hand: credit, refund or fail; always with a reason.

    A recheck asks the payment provider first (``api/provider_check``), so it never comes here.
    """
    action, reason = command.action, command.reason
    order = await get_order(session, order_id, lock=True)
    before = order_json(order)
    if action == "refund":
        amount = command.amount_minor
        if amount is None:
            amount = order.credited_minor - order.refunded_minor
        refunded = await refund(session, order, amount, actor, reason)
        return ResolvedOrder.model_validate(refunded.model_dump())
    if action == "credit":
        if order.status not in {OrderStatus.NEEDS_ATTENTION, *OPEN_STATUSES}:
            raise ConflictError("not_creditable", f"order {order.id} is {order.status}")
        ref: object = command.account
        if ref is None:
            ref = order.account_id or order.account_ref
        account = await resolve_account_ref(session, ref, lock=True)
        if account.status != AccountStatus.OPEN:
            raise ConflictError("account_closed", f"account {account.id} is closed")
        if account.currency != order.currency:
            raise ConflictError("currency_mismatch", "order and account currencies differ")
        await credit_order(session, order, account, actor, reason)
    elif action == "fail":
        await set_status(session, order, OrderStatus.FAILED, actor, reason)
    else:
        raise InputError("invalid_field", "action must be credit, refund or fail here", "action")
    after = await order_answer(session, order)
    audit.record(
        session,
        actor=actor,
        action=f"topup.{action}",
        target=f"order:{order.id}",
        before=before,
        after=view_json(after) | {"reason": reason},
    )
    return ResolvedOrder.model_validate(after.model_dump())


async def adjust(
    session: AsyncSession, request: AdjustmentRequest, actor: str, max_minor: int
) -> Adjustment:
    """Post a signed correction to an account's balance, with a reason (a new transaction).

    The request's shape (an integer, not zero, a reason) was checked at the edge; the ledger's
    own limit (``--max-topup-minor``) is checked here.
    """
    amount, reason = request.amount_minor, request.reason
    if amount < -max_minor:
        raise InputError("invalid_field", f"amount_minor must be >= {-max_minor}", "amount_minor")
    if amount > max_minor:
        raise InputError("invalid_field", f"amount_minor must be <= {max_minor}", "amount_minor")
    account = await resolve_account_ref(session, request.account, lock=True)
    if account.status != AccountStatus.OPEN:
        raise ConflictError("account_closed", f"account {account.id} is closed")
    book_id = book_of(account)
    other = await journal.system_book(
        session, journal.ADJUSTMENTS, account.currency, account.site_id
    )
    txn = await journal.post(
        session,
        kind="adjustment",
        account_id=account.id,
        description=reason,
        legs=[journal.Leg(book_id, amount), journal.Leg(other, -amount)],
    )
    await refresh_account(session, account, utcnow())
    result = Adjustment(
        transaction_id=txn.id, account_id=account.id, amount_minor=amount, reason=reason
    )
    audit.record(
        session,
        actor=actor,
        action="account.adjust",
        target=f"account:{account.id}",
        before=None,
        after=result.model_dump(mode="json"),
    )
    await accounting_outbox.adjustment_created(session, account, result, actor)
    return result


#: Orders newest first; the order id is unique.
NEWEST_ORDERS = Order("orders:newest", (TopupOrder.id,), descending=True)


async def list_orders(
    session: AsyncSession,
    status: str | None,
    account_id: int | None,
    limit: int,
    *,
    search: str | None = None,
    cursor: str | None = None,
    site_id: int | None = None,
) -> Page[OrderView]:
    """One page of orders, newest first, by status, account, site and text (id, ref, payer)."""
    query = select(TopupOrder)
    if site_id is not None:  # a site's orders (unclaimed ones: the landlord's own site's)
        query = query.where(of_site(TopupOrder.account_id, site_id))
    if status is not None:
        if status not in STATUSES:
            raise InputError(
                "invalid_field", f"status must be one of {', '.join(STATUSES)}", "status"
            )
        query = query.where(TopupOrder.status == status)
    if account_id is not None:
        query = query.where(TopupOrder.account_id == account_id)
    if search:
        pattern = contains(search)
        terms: list[ColumnElement[bool]] = [
            TopupOrder.reference.like(pattern, escape="\\"),
            TopupOrder.account_ref.like(pattern, escape="\\"),
            TopupOrder.provider_payment_id.like(pattern, escape="\\"),
        ]
        if search.removeprefix("#").isascii() and search.removeprefix("#").isdigit():
            terms.append(TopupOrder.id == int(search.removeprefix("#")[:12]))
        query = query.where(or_(*terms))
    after = decode_cursor(NEWEST_ORDERS, cursor)
    rows = list(await session.scalars(page_query(query, NEWEST_ORDERS, after, limit)))
    page = cut_page(rows, NEWEST_ORDERS, limit, key=lambda order: (order.id,))
    issued = await receipts.for_orders(session, [o.id for o in page.rows])
    bonuses = await promotions.bonuses_of(session, page.rows)
    views = [order_view(o, receipt=issued.get(o.id), bonus=bonuses.get(o.id)) for o in page.rows]
    return Page(views, page.next_cursor)


async def stuck_orders(
    session: AsyncSession,
    timeout_s: float,
    now: datetime | None = None,
    statuses: tuple[OrderStatus, ...] = OPEN_STATUSES,
) -> list[TopupOrder]:
    """Return the uncredited orders in these states, untouched for longer than the timeout."""
    cutoff = (now or utcnow()) - timedelta(seconds=timeout_s)
    return list(
        await session.scalars(
            select(TopupOrder)
            .where(
                TopupOrder.status.in_(statuses),
                TopupOrder.transaction_id.is_(None),
                TopupOrder.updated_at < cutoff,
            )
            .order_by(TopupOrder.id)
        )
    )


async def flag_stuck(
    session: AsyncSession,
    order_id: int,
    timeout_s: float,
    actor: str,
    *,
    note: str | None = None,
    now: datetime | None = None,
) -> bool:
    """Mark one order needs_attention (stuck_processing) if it is still stuck; say if it was."""
    now = now or utcnow()
    order = await get_order(session, order_id, lock=True)
    if not (
        order.status in OPEN_STATUSES
        and order.transaction_id is None
        and order.updated_at < now - timedelta(seconds=timeout_s)
    ):
        return False
    reason = f"stuck in {order.status} for more than {int(timeout_s)} s"
    await set_status(
        session,
        order,
        OrderStatus.NEEDS_ATTENTION,
        actor,
        f"{reason}; {note}" if note else reason,
        now=now,
        code=STUCK_PROCESSING,
    )
    return True


async def watchdog(session: AsyncSession, timeout_s: float, now: datetime | None = None) -> int:
    """Mark orders stuck in processing beyond the timeout as needs_attention (+ alert).

    Used when Stripe cannot be asked (no API key, reconciliation off); otherwise
    services.reconcile re-checks each stuck pending or processing order with Stripe first.
    """
    now = now or utcnow()
    flagged = 0
    for order in await stuck_orders(session, timeout_s, now, (OrderStatus.PROCESSING,)):
        flagged += await flag_stuck(session, order.id, timeout_s, "watchdog", now=now)
    return flagged
