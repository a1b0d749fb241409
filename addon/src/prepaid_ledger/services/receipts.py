"""Receipts for succeeded top-ups, numbered without gaps.

Why the numbers have no gap and no duplicate, on both backends: the number comes from one
counter row (``ledger_meta`` key ``receipt_number``, the last number issued) that one
``UPDATE ... RETURNING`` increments inside the very transaction that credits the order
(``topups.credit_order`` is the one place every credit passes through, and takes the number
as late as it can: the row stays locked until commit).

- PostgreSQL (READ COMMITTED): the row lock makes a second crediting transaction wait until the
  first commits or rolls back; its UPDATE then increments the committed value. A rollback (a
  failed item of a batch inside its savepoint, a deadlock retried by ``Database.write``) undoes
  the increment with the receipt, so the number is handed out again. A sequence would not do
  this: its values are never given back.
- SQLite: every write transaction is serialised in the process and begins with
  ``BEGIN IMMEDIATE`` (``store/database.py``), so the read-increment-write cannot interleave
  and a rollback again undoes it.

The UNIQUE constraints on ``receipts.number`` and ``receipts.order_id`` are the last line of
defence. Refunds leave a receipt as it was: it records what was paid then. Orders credited
before receipts existed got theirs from migration 0009, numbered after the counter in the order
they were credited, dated when credited, with the balance after summed from the journal.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from prepaid_meter_contract.receipts import Receipt as ReceiptView
from prepaid_meter_contract.vocabulary import PaymentMethod
from sqlalchemy import BigInteger, String, cast, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from prepaid_ledger.domain.money import currency_exponent
from prepaid_ledger.errors import NotFoundError
from prepaid_ledger.services.validation import in_id_range
from prepaid_ledger.store.models import Account, LedgerMeta, Meter, Receipt, TopupOrder

#: The ledger_meta row holding the last receipt number issued (created by migration 0008).
COUNTER_KEY = "receipt_number"

#: An order's source (or provider) -> how it was paid, as the receipt prints it.
_METHODS: dict[str, PaymentMethod] = {
    "stripe": PaymentMethod.CARD,
    "manual": PaymentMethod.CASH,
    "voucher": PaymentMethod.VOUCHER,
    "standard": PaymentMethod.ONLINE,
}


def method_of(source: str | None, provider: str | None) -> PaymentMethod:
    """Return how an order was paid: its source decides, else its provider, else ``other``."""
    for word in (source, provider):
        if word is not None and word in _METHODS:
            return _METHODS[word]
    return PaymentMethod.OTHER


def _known(method: str | None) -> PaymentMethod | None:
    """Return the method a provider named, when it is one a receipt prints."""
    return PaymentMethod(method) if method in set(PaymentMethod) else None


async def next_number(session: AsyncSession) -> int:
    """Take the next receipt number: lock the counter row, increment it (this transaction).

    One locking statement (the row stays locked until commit: take it late). Core statements
    on the bare column, so a batch item's savepoint rollback restores the value without any
    ORM object holding a stale copy.
    """
    bump = (
        update(LedgerMeta)
        .where(LedgerMeta.key == COUNTER_KEY)
        .values(value=cast(cast(LedgerMeta.value, BigInteger) + 1, String))
        .returning(LedgerMeta.value)
        .execution_options(synchronize_session=False)
    )
    number = await session.scalar(bump)
    if number is None:  # a database whose counter row was never made (migration 0008 makes it)
        dialect = session.get_bind().dialect.name
        insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
        await session.execute(
            insert(LedgerMeta)
            .values(key=COUNTER_KEY, value="0")
            .on_conflict_do_nothing(index_elements=["key"])
        )
        number = await session.scalar(bump)
    if number is None:  # pragma: no cover - the row was just made
        raise RuntimeError("the receipt counter row is missing")
    return int(number)


async def room_of(session: AsyncSession, account_id: int) -> str | None:
    """Return the account's meters' names (its room), in creation order; None without one."""
    names = await session.scalars(
        select(Meter.name).where(Meter.account_id == account_id).order_by(Meter.id)
    )
    text = ", ".join(dict.fromkeys(names))
    return text or None


async def issue(
    session: AsyncSession,
    order: TopupOrder,
    account: Account,
    balance_after_minor: int,
    now: datetime,
    *,
    bonus_minor: int = 0,
    paid_by: str | None = None,
) -> ReceiptView:
    """Issue the receipt of an order being credited (inside the crediting transaction)."""
    room = await room_of(session, account.id)  # before the number: its lock is held to commit
    row = Receipt(
        number=await next_number(session),
        order_id=order.id,
        issued_at=now,
        account_id=account.id,
        account_number=account.number,
        account_name=account.name,
        room=room,
        amount_minor=order.amount_minor,
        bonus_minor=bonus_minor,
        currency=order.currency,
        method=_known(paid_by) or method_of(order.source, order.provider),
        balance_after_minor=balance_after_minor,
    )
    session.add(row)
    await session.flush()  # UNIQUE number and order: a second receipt fails here
    return receipt_view(row)


def receipt_view(row: Receipt) -> ReceiptView:
    """Return a stored receipt as the API answers it."""
    return ReceiptView(
        number=row.number,
        order_id=row.order_id,
        issued_at=row.issued_at,
        account_id=row.account_id,
        account_number=row.account_number,
        account_name=row.account_name,
        room=row.room,
        amount_minor=row.amount_minor,
        bonus_minor=row.bonus_minor,
        currency=row.currency,
        currency_exponent=currency_exponent(row.currency),
        method=PaymentMethod(row.method),
        balance_after_minor=row.balance_after_minor,
    )


async def for_orders(session: AsyncSession, order_ids: Iterable[int]) -> dict[int, ReceiptView]:
    """Return the receipts of these orders by order id (orders without one are left out)."""
    ids = list(order_ids)
    if not ids:
        return {}
    rows = await session.scalars(select(Receipt).where(Receipt.order_id.in_(ids)))
    return {row.order_id: receipt_view(row) for row in rows}


async def for_order(session: AsyncSession, order_id: int) -> ReceiptView | None:
    """Return an order's receipt, or None when it has none (not credited)."""
    return (await for_orders(session, [order_id])).get(order_id)


async def by_number(session: AsyncSession, number: int) -> ReceiptView:
    """Return the receipt with this number or raise NotFoundError."""
    if not in_id_range(number):  # larger path numbers are "not found", never an overflow
        raise NotFoundError(f"receipt {number}")
    row = await session.scalar(select(Receipt).where(Receipt.number == number))
    if row is None:
        raise NotFoundError(f"receipt {number}")
    return receipt_view(row)


async def of_order(session: AsyncSession, order_id: int) -> ReceiptView:
    """Return an order's receipt, or raise NotFoundError (no such order, or no receipt yet)."""
    found = await for_order(session, order_id) if in_id_range(order_id) else None
    if found is None:
        raise NotFoundError(f"receipt of order {order_id}")
    return found
