"""The accounting outbox: events recorded in the transaction of the change they report.

``record`` adds an event (``outbox_messages``) and one delivery per enabled endpoint subscribed
to its type (``outbox_deliveries``) to the caller's transaction, so the event exists exactly
when the credit, refund, adjustment or flag it reports does: a rollback takes it away, a crash
after the commit keeps it. ``services/outbox_delivery.py`` sends what is recorded here.

An account's events are recorded with the account's row locked (a no-op where the caller holds
the lock already; SQLite serialises every write anyway), so their ids follow the order their
transactions committed in, and the worker can send them in id order per account and endpoint.

An event that no enabled endpoint subscribes to is not stored: endpoints get the events recorded
from their creation on. Also here: the daily ``charge.posted`` (``charge_days_due``,
``record_charge_day``) and the admin side (endpoints, the delivery log, replay).
"""

from __future__ import annotations

import asyncio
import base64
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, Final

from prepaid_meter_contract.accounting import (
    MAX_ENABLED_ENDPOINTS,
    SECRET_PREFIX,
    SECRET_SHOWN_CHARS,
    AccountingEventType,
    AdjustmentCreated,
    ChargeLineTotal,
    ChargePosted,
    CreatedEndpoint,
    Deliveries,
    Delivery,
    DeliveryStatus,
    Endpoint,
    EndpointRequest,
    Endpoints,
    OrderNeedsAttention,
    TopupRefunded,
    TopupSucceeded,
)
from prepaid_meter_contract.receipts import Receipt
from prepaid_meter_contract.topups import Adjustment
from prepaid_meter_contract.vocabulary import AttentionCode, OrderStatus
from pydantic import BaseModel
from sqlalchemy import event, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from prepaid_ledger.domain.charging import STANDING_BAND
from prepaid_ledger.domain.localtime import local_to_instant, parse_timezone
from prepaid_ledger.domain.money import currency_exponent
from prepaid_ledger.errors import ConflictError, InputError
from prepaid_ledger.services import audit
from prepaid_ledger.services.lookup import load_by_id
from prepaid_ledger.store.models import (
    Account,
    AccountingEndpoint,
    Book,
    ChargeLine,
    JournalEntry,
    JournalTransaction,
    OutboxDelivery,
    OutboxMessage,
    TopupOrder,
    utcnow,
)

#: A local day is reported this long after it ended, so a charge posted in its last moments
#: (its transaction stamped before midnight, committing just after) is in it.
CHARGE_DAY_GRACE: Final = timedelta(minutes=5)
#: Most days of one account recorded per run (a ledger that was down for long catches up).
MAX_CHARGE_DAYS_PER_RUN: Final = 31
#: Secret bytes of a new endpoint (Standard Webhooks: 24 to 64).
SECRET_BYTES: Final = 32

# --------------------------------------------------------------------------- waking the worker

#: Set after every commit that recorded an event or made a delivery due (the workers' alarms).
_WAKERS: set[asyncio.Event] = set()
_WAKE_KEY: Final = "prepaid_outbox_wake"


def add_waker(alarm: asyncio.Event) -> None:
    """Have ``alarm`` set whenever a transaction that recorded an event commits."""
    _WAKERS.add(alarm)


def remove_waker(alarm: asyncio.Event) -> None:
    """Stop setting ``alarm``."""
    _WAKERS.discard(alarm)


def wake_workers() -> None:
    """Set every registered alarm (a delivery may be due now)."""
    for alarm in list(_WAKERS):
        alarm.set()


def _wake_after_commit(session: AsyncSession) -> None:
    """Wake the workers once this session's transaction has committed (never before)."""
    sync = session.sync_session
    if sync.info.get(_WAKE_KEY):
        return
    sync.info[_WAKE_KEY] = True

    def committed(_session: Session) -> None:
        sync.info.pop(_WAKE_KEY, None)
        wake_workers()

    event.listen(sync, "after_commit", committed, once=True)


# --------------------------------------------------------------------------- recording


def new_message_id() -> str:
    """Return a fresh ``webhook-id``: ``msg_`` and 32 hex digits (never a '.')."""
    return f"msg_{uuid.uuid4().hex}"


def new_secret() -> str:
    """Return a fresh endpoint secret: ``whsec_`` + base64 of SECRET_BYTES random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


async def subscribed_endpoints(
    session: AsyncSession, kind: AccountingEventType
) -> list[AccountingEndpoint]:
    """Return the enabled endpoints that receive events of this type, by id."""
    enabled = await session.scalars(
        select(AccountingEndpoint)
        .where(AccountingEndpoint.enabled.is_(True))
        .order_by(AccountingEndpoint.id)
    )
    return [e for e in enabled if kind in e.event_types]


async def record(
    session: AsyncSession,
    kind: AccountingEventType,
    account_id: int | None,
    payload: BaseModel | Mapping[str, Any],
    *,
    day: date | None = None,
    now: datetime | None = None,
) -> OutboxMessage | None:
    """Add an event and its deliveries to the caller's transaction; None when nobody wants it.

    ``day`` (``charge.posted`` only) makes the event once per account and day: when one is
    recorded already (by another worker, or before a restart), nothing is added.
    """
    endpoints = await subscribed_endpoints(session, kind)
    if not endpoints:
        return None
    if account_id is not None:
        # Held until commit: the account's events get ids in the order they commit.
        await session.execute(select(Account.id).where(Account.id == account_id).with_for_update())
    if day is not None:
        done = await session.scalar(
            select(OutboxMessage.id).where(
                OutboxMessage.type == kind,
                OutboxMessage.account_id == account_id,
                OutboxMessage.day == day,
            )
        )
        if done is not None:
            return None
    now = now or utcnow()
    data = payload.model_dump(mode="json") if isinstance(payload, BaseModel) else dict(payload)
    message = OutboxMessage(
        message_id=new_message_id(),
        type=kind,
        account_id=account_id,
        day=day,
        payload=data,
        created_at=now,
    )
    session.add(message)
    await session.flush()  # a second charge.posted for the day fails here (UNIQUE)
    session.add_all(
        OutboxDelivery(
            outbox_id=message.id,
            endpoint_id=endpoint.id,
            account_id=account_id,
            status=DeliveryStatus.PENDING,
            attempts=0,
            next_attempt_at=now,
            created_at=now,
        )
        for endpoint in endpoints
    )
    await session.flush()
    _wake_after_commit(session)
    return message


async def _balance(session: AsyncSession, account: Account) -> int:
    if account.book_id is None:  # pragma: no cover - every account has its book
        return 0
    found = await session.scalar(select(Book.balance_minor).where(Book.id == account.book_id))
    return int(found or 0)


async def topup_succeeded(
    session: AsyncSession, order: TopupOrder, account: Account, receipt: Receipt
) -> None:
    """Record ``topup.succeeded`` for an order just credited (``topups.credit_order``)."""
    if order.transaction_id is None:  # pragma: no cover - credit_order sets it first
        raise RuntimeError(f"order {order.id} is not credited")
    await record(
        session,
        AccountingEventType.TOPUP_SUCCEEDED,
        account.id,
        TopupSucceeded(
            order_id=order.id,
            account_id=account.id,
            account_number=account.number,
            amount_minor=order.amount_minor,
            bonus_minor=receipt.bonus_minor,
            currency=order.currency,
            currency_exponent=currency_exponent(order.currency),
            source=order.source,
            provider=order.provider,
            provider_payment_id=order.provider_payment_id,
            reference=order.reference,
            transaction_id=order.transaction_id,
            receipt_number=receipt.number,
            balance_after_minor=receipt.balance_after_minor,
            credited_at=receipt.issued_at,
        ),
    )


async def topup_refunded(
    session: AsyncSession, order: TopupOrder, account: Account, refund_minor: int, reason: str
) -> None:
    """Record ``topup.refunded`` for a refund just posted (``topups.refund``)."""
    await record(
        session,
        AccountingEventType.TOPUP_REFUNDED,
        account.id,
        TopupRefunded(
            order_id=order.id,
            account_id=account.id,
            account_number=account.number,
            refund_minor=refund_minor,
            refunded_minor=order.refunded_minor,
            credited_minor=order.credited_minor,
            currency=order.currency,
            currency_exponent=currency_exponent(order.currency),
            status=OrderStatus(order.status),
            reason=reason,
            provider=order.provider,
            provider_payment_id=order.provider_payment_id,
            balance_after_minor=await _balance(session, account),
            refunded_at=order.updated_at,
        ),
    )


async def adjustment_created(
    session: AsyncSession, account: Account, adjustment: Adjustment, actor: str
) -> None:
    """Record ``adjustment.created`` for a correction just posted (``topups.adjust``)."""
    await record(
        session,
        AccountingEventType.ADJUSTMENT_CREATED,
        account.id,
        AdjustmentCreated(
            transaction_id=adjustment.transaction_id,
            account_id=account.id,
            account_number=account.number,
            amount_minor=adjustment.amount_minor,
            currency=account.currency,
            currency_exponent=currency_exponent(account.currency),
            reason=adjustment.reason,
            actor=actor,
            balance_after_minor=await _balance(session, account),
            created_at=utcnow(),
        ),
    )


async def order_needs_attention(session: AsyncSession, order: TopupOrder, now: datetime) -> None:
    """Record ``order.needs_attention`` for an order just flagged (``topups.set_status``)."""
    await record(
        session,
        AccountingEventType.ORDER_NEEDS_ATTENTION,
        order.account_id,
        OrderNeedsAttention(
            order_id=order.id,
            account_id=order.account_id,
            account_ref=order.account_ref or order.reference or None,
            amount_minor=order.amount_minor,
            currency=order.currency,
            reason=AttentionCode(order.attention_code) if order.attention_code else None,
            detail=order.attention_reason,
            provider=order.provider,
            provider_payment_id=order.provider_payment_id,
            order_created_at=order.created_at or now,
            flagged_at=now,
        ),
        now=now,
    )


# --------------------------------------------------------------------------- charge.posted


@dataclass(frozen=True, slots=True)
class ChargeDays:
    """The ended local days of one account whose ``charge.posted`` is still to be recorded."""

    account_id: int
    days: list[date]


def _days(first: date, last: date) -> list[date]:
    count = min((last - first).days + 1, MAX_CHARGE_DAYS_PER_RUN)
    return [first + timedelta(days=n) for n in range(max(count, 0))]


async def charge_days_due(session: AsyncSession, now: datetime) -> list[ChargeDays]:
    """Return, per account, the ended local days not reported yet (at most 31 each).

    Days are reported from the day the earliest subscribed endpoint was created (or the
    account opened) on, through the last day that ended at least CHARGE_DAY_GRACE ago (or the
    day the account closed); none while no enabled endpoint subscribes to ``charge.posted``.
    """
    endpoints = await subscribed_endpoints(session, AccountingEventType.CHARGE_POSTED)
    if not endpoints:
        return []
    since = min(endpoint.created_at for endpoint in endpoints)
    last_days = await session.execute(
        select(OutboxMessage.account_id, func.max(OutboxMessage.day))
        .where(OutboxMessage.type == AccountingEventType.CHARGE_POSTED)
        .group_by(OutboxMessage.account_id)
    )
    reported: dict[int | None, date | None] = dict(last_days.tuples().all())
    accounts = await session.scalars(
        select(Account)
        .where(or_(Account.closed_at.is_(None), Account.closed_at >= since))
        .order_by(Account.id)
    )
    due: list[ChargeDays] = []
    for account in accounts:
        zone = parse_timezone(account.timezone)
        last = (now - CHARGE_DAY_GRACE).astimezone(zone).date() - timedelta(days=1)
        if account.closed_at is not None:
            last = min(last, account.closed_at.astimezone(zone).date())
        first = max(since.astimezone(zone).date(), account.created_at.astimezone(zone).date())
        done = reported.get(account.id)
        if done is not None:
            first = max(first, done + timedelta(days=1))
        days = _days(first, last)
        if days:
            due.append(ChargeDays(account.id, days))
    return due


async def record_charge_day(
    session: AsyncSession, account_id: int, day: date, now: datetime | None = None
) -> OutboxMessage | None:
    """Record ``charge.posted`` for one account and ended local day (None: done already).

    The day's charges are the charge transactions posted to the account in its local day
    [midnight, next midnight): their total on the account's book, and their charge lines by
    consumption day and band.
    """
    account = await load_by_id(session, Account, account_id, "account")
    zone = parse_timezone(account.timezone)
    starts = local_to_instant(day, time(0), zone)
    ends = local_to_instant(day + timedelta(days=1), time(0), zone)
    charges = (
        select(JournalTransaction.id)
        .where(
            JournalTransaction.account_id == account.id,
            JournalTransaction.kind == "charge",
            JournalTransaction.created_at >= starts,
            JournalTransaction.created_at < ends,
        )
        .scalar_subquery()
    )
    count = int(
        await session.scalar(
            select(func.count(JournalTransaction.id)).where(
                JournalTransaction.account_id == account.id,
                JournalTransaction.kind == "charge",
                JournalTransaction.created_at >= starts,
                JournalTransaction.created_at < ends,
            )
        )
        or 0
    )
    moved = await session.scalar(
        select(func.coalesce(func.sum(JournalEntry.amount_minor), 0)).where(
            JournalEntry.book_id == account.book_id, JournalEntry.transaction_id.in_(charges)
        )
    )
    totals: dict[tuple[date, str], tuple[Decimal, int]] = {}
    for line in await session.scalars(
        select(ChargeLine).where(ChargeLine.transaction_id.in_(charges))
    ):
        quantity, minor = totals.get((line.day, line.band), (Decimal(0), 0))
        totals[line.day, line.band] = (quantity + line.quantity, minor + line.amount_minor)
    lines = [
        ChargeLineTotal(day=d, band=band, quantity=quantity, amount_minor=minor)
        for (d, band), (quantity, minor) in sorted(totals.items())
    ]
    standing = sum(line.amount_minor for line in lines if line.band == STANDING_BAND)
    consumption = sum(line.amount_minor for line in lines if line.band != STANDING_BAND)
    return await record(
        session,
        AccountingEventType.CHARGE_POSTED,
        account.id,
        ChargePosted(
            account_id=account.id,
            account_number=account.number,
            currency=account.currency,
            currency_exponent=currency_exponent(account.currency),
            timezone=account.timezone,
            day=day,
            starts_at=starts,
            ends_at=ends,
            amount_minor=-int(moved or 0),
            consumption_minor=consumption,
            standing_minor=standing,
            transactions=count,
            lines=lines,
        ),
        day=day,
        now=now,
    )


# --------------------------------------------------------------------------- endpoints


def endpoint_view(row: AccountingEndpoint) -> Endpoint:
    """Return an endpoint as the API answers it (the secret only as its first characters)."""
    return Endpoint(
        id=row.id,
        url=row.url,
        description=row.description,
        event_types=[AccountingEventType(kind) for kind in row.event_types],
        enabled=row.enabled,
        secret_prefix=row.secret[:SECRET_SHOWN_CHARS],
        created_at=row.created_at,
        disabled_at=row.disabled_at,
        disabled_reason=row.disabled_reason,
    )


async def create_endpoint(
    session: AsyncSession, request: EndpointRequest, actor: str
) -> CreatedEndpoint:
    """Register an endpoint with a fresh secret (answered this once); audited."""
    enabled = await session.scalar(
        select(func.count(AccountingEndpoint.id)).where(AccountingEndpoint.enabled.is_(True))
    )
    if int(enabled or 0) >= MAX_ENABLED_ENDPOINTS:
        raise ConflictError(
            "too_many_endpoints",
            f"at most {MAX_ENABLED_ENDPOINTS} endpoints may be enabled; disable one first",
        )
    row = AccountingEndpoint(
        url=request.url,
        secret=new_secret(),
        description=request.description,
        event_types=[str(kind) for kind in request.event_types],
        enabled=True,
        created_at=utcnow(),
        created_by=actor,
    )
    session.add(row)
    await session.flush()
    view = endpoint_view(row)
    audit.record(
        session,
        actor=actor,
        action="accounting.endpoint.create",
        target=f"accounting_endpoint:{row.id}",
        before=None,
        after=view,
    )
    return CreatedEndpoint(endpoint=view, secret=row.secret)


async def list_endpoints(session: AsyncSession) -> Endpoints:
    """Return every endpoint, newest first."""
    rows = await session.scalars(select(AccountingEndpoint).order_by(AccountingEndpoint.id.desc()))
    return Endpoints(endpoints=[endpoint_view(row) for row in rows])


async def disable_endpoint(
    session: AsyncSession, endpoint_id: int, reason: str | None, actor: str
) -> Endpoint:
    """Send an endpoint nothing more (its undelivered events stay in the log); audited."""
    row = await load_by_id(session, AccountingEndpoint, endpoint_id, "endpoint", lock=True)
    if not row.enabled:
        raise ConflictError("already_disabled", f"endpoint {row.id} is already disabled")
    before = endpoint_view(row)
    row.enabled = False
    row.disabled_at = utcnow()
    row.disabled_by = actor
    row.disabled_reason = reason
    after = endpoint_view(row)
    audit.record(
        session,
        actor=actor,
        action="accounting.endpoint.disable",
        target=f"accounting_endpoint:{row.id}",
        before=before,
        after=after,
    )
    return after


# --------------------------------------------------------------------------- deliveries


def delivery_view(row: OutboxDelivery, message: OutboxMessage) -> Delivery:
    """Return one delivery as the delivery log shows it."""
    pending = row.status == DeliveryStatus.PENDING
    return Delivery(
        id=row.id,
        endpoint_id=row.endpoint_id,
        message_id=message.message_id,
        type=AccountingEventType(message.type),
        account_id=message.account_id,
        status=DeliveryStatus(row.status),
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at if pending else None,
        last_attempt_at=row.last_attempt_at,
        last_http_status=row.last_http_status,
        last_error=row.last_error,
        delivered_at=row.delivered_at,
        created_at=message.created_at,
        data=message.payload,
    )


def _status_filter(status: str | None) -> DeliveryStatus | None:
    if status is None or status == "":
        return None
    try:
        return DeliveryStatus(status)
    except ValueError:
        raise InputError(
            "invalid_field",
            "status must be one of " + ", ".join(DeliveryStatus),
            "status",
        ) from None


async def list_deliveries(
    session: AsyncSession,
    *,
    endpoint_id: int | None,
    status: str | None,
    account_id: int | None,
    limit: int,
) -> Deliveries:
    """Return the delivery log, newest first, filtered by endpoint, status and account."""
    wanted = _status_filter(status)
    query = (
        select(OutboxDelivery, OutboxMessage)
        .join(OutboxMessage, OutboxMessage.id == OutboxDelivery.outbox_id)
        .order_by(OutboxDelivery.id.desc())
        .limit(limit)
    )
    if endpoint_id is not None:
        query = query.where(OutboxDelivery.endpoint_id == endpoint_id)
    if wanted is not None:
        query = query.where(OutboxDelivery.status == wanted)
    if account_id is not None:
        query = query.where(OutboxDelivery.account_id == account_id)
    rows = await session.execute(query)
    return Deliveries(deliveries=[delivery_view(d, m) for d, m in rows.tuples()])


async def replay_delivery(session: AsyncSession, delivery_id: int, actor: str) -> Delivery:
    """Send a delivery again, with the same message id, from the start of the schedule.

    A pending one is only made due now (an attempt under way finishes first). It still waits
    for the earlier events of its account to the same endpoint, like any other.
    """
    row = await load_by_id(session, OutboxDelivery, delivery_id, "delivery", lock=True)
    endpoint = await load_by_id(session, AccountingEndpoint, row.endpoint_id, "endpoint")
    if not endpoint.enabled:
        raise ConflictError(
            "endpoint_disabled", f"endpoint {endpoint.id} is disabled; nothing is sent there"
        )
    message = await load_by_id(session, OutboxMessage, row.outbox_id, "message")
    before = delivery_view(row, message)
    if row.status != DeliveryStatus.PENDING:
        row.attempts = 0
    row.status = DeliveryStatus.PENDING
    row.next_attempt_at = utcnow()
    after = delivery_view(row, message)
    audit.record(
        session,
        actor=actor,
        action="accounting.delivery.replay",
        target=f"outbox_delivery:{row.id}",
        before=before.model_dump(mode="json", exclude={"data"}),
        after=after.model_dump(mode="json", exclude={"data"}),
    )
    _wake_after_commit(session)
    return after
