"""Receipts for the top-ups credited before receipts existed (before revision 0008).

Every order that was credited (it has its credit's journal transaction and is succeeded,
partially refunded or refunded: a receipt records what was paid then) and has no receipt gets
one, numbered after the counter's current value in the order the orders were credited (credit
time, then order id); the counter row is advanced to the last number, so the numbers stay
gap-free and unique with the receipts issued live afterwards. Orders that already have a
receipt are skipped.

The receipt holds what ``services/receipts.issue`` writes, taken from the stored rows:

- issued_at: when the order was credited, the time of its first ``succeeded`` timeline step
  (the very time the live path stamps on the receipt), else its journal transaction's time;
- account number, name and room (the account's meters' names in creation order, as
  ``receipts.room_of``): their values now, the only ones stored;
- amount, currency, bonus 0, and the method from the source/provider mapping frozen below;
- balance_after_minor: the sum of the account book's journal entries up to and including the
  credit's transaction (``topup_orders.transaction_id``), by transaction id. That is exactly
  the stored balance the live path reads right after posting: every posting to a customer
  book happens with the account row locked (PostgreSQL) or in the one serialised writer
  (SQLite), so per book the transaction ids are in commit order.

The numbers this revision issued are recorded in ledger_meta (``BACKFILL_KEY``). The downgrade
deletes exactly those receipts and gives their numbers back, when they are still the last
numbers issued. Once a later receipt exists, deleting them would leave a gap in the numbering
(and an upgrade again would number those orders anew), so they are kept for good, as receipts
issued by then; only the record of the range is dropped.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 06:00:00.000000
"""

import json
import logging
from collections import defaultdict
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_LOGGER = logging.getLogger(__name__)

#: The ledger_meta row holding the last receipt number issued (made by revision 0008).
COUNTER_KEY = "receipt_number"
#: The ledger_meta row naming the numbers this revision issued: {"first": n, "last": m}.
BACKFILL_KEY = "receipt_backfill_0009"
#: An order in one of these states was credited (refunds keep the receipt of what was paid).
CREDITED_STATUSES = ("succeeded", "partially_refunded", "refunded")
#: services/receipts.py's source (else provider) -> payment method, as of this revision.
METHODS = {"stripe": "card", "manual": "cash", "voucher": "voucher", "standard": "online"}
OTHER_METHOD = "other"

_meta = sa.table("ledger_meta", sa.column("key", sa.String), sa.column("value", sa.Text))
_orders = sa.table(
    "topup_orders",
    sa.column("id", sa.Integer),
    sa.column("account_id", sa.Integer),
    sa.column("amount_minor", sa.BigInteger),
    sa.column("currency", sa.String),
    sa.column("status", sa.String),
    sa.column("source", sa.String),
    sa.column("provider", sa.String),
    sa.column("transaction_id", sa.Integer),
)
_events = sa.table(
    "topup_order_events",
    sa.column("order_id", sa.Integer),
    sa.column("status", sa.String),
    sa.column("at", sa.DateTime),
)
_transactions = sa.table(
    "journal_transactions",
    sa.column("id", sa.Integer),
    sa.column("account_id", sa.Integer),
    sa.column("created_at", sa.DateTime),
)
_entries = sa.table(
    "journal_entries",
    sa.column("transaction_id", sa.Integer),
    sa.column("book_id", sa.Integer),
    sa.column("amount_minor", sa.BigInteger),
)
_accounts = sa.table(
    "accounts",
    sa.column("id", sa.Integer),
    sa.column("number", sa.String),
    sa.column("name", sa.String),
    sa.column("book_id", sa.Integer),
)
_meters = sa.table(
    "meters",
    sa.column("id", sa.Integer),
    sa.column("name", sa.String),
    sa.column("account_id", sa.Integer),
)
_receipts = sa.table(
    "receipts",
    sa.column("number", sa.BigInteger),
    sa.column("order_id", sa.Integer),
    sa.column("issued_at", sa.DateTime),
    sa.column("account_id", sa.Integer),
    sa.column("account_number", sa.String),
    sa.column("account_name", sa.String),
    sa.column("room", sa.Text),
    sa.column("amount_minor", sa.BigInteger),
    sa.column("bonus_minor", sa.BigInteger),
    sa.column("currency", sa.String),
    sa.column("method", sa.String),
    sa.column("balance_after_minor", sa.BigInteger),
)


def method_of(source: str | None, provider: str | None) -> str:
    """Return how an order was paid: its source decides, else its provider, else other."""
    for word in (source, provider):
        if word is not None and word in METHODS:
            return METHODS[word]
    return OTHER_METHOD


def _meta_value(conn: sa.Connection, key: str, *, lock: bool = False) -> str | None:
    query = sa.select(_meta.c.value).where(_meta.c.key == key)
    if lock:  # FOR UPDATE on PostgreSQL; SQLite's write transaction is exclusive already
        query = query.with_for_update()
    value = conn.scalar(query)
    return None if value is None else str(value)


def _set_meta(conn: sa.Connection, key: str, value: str | None) -> None:
    """Write a ledger_meta row (updated in place, so a lock on it holds), or delete it (None)."""
    if value is None:
        conn.execute(sa.delete(_meta).where(_meta.c.key == key))
        return
    if conn.execute(sa.update(_meta).where(_meta.c.key == key).values(value=value)).rowcount:
        return
    conn.execute(sa.insert(_meta).values(key=key, value=value))


def _credited_without_receipt(conn: sa.Connection) -> list[sa.Row[Any]]:
    """Credited orders with no receipt, in credit order (credit time, then order id)."""
    succeeded = (
        sa.select(_events.c.order_id, sa.func.min(_events.c.at).label("at"))
        .where(_events.c.status == "succeeded")
        .group_by(_events.c.order_id)
        .subquery()
    )
    credited_at = sa.func.coalesce(succeeded.c.at, _transactions.c.created_at)
    query = (
        sa.select(
            _orders.c.id,
            _orders.c.amount_minor,
            _orders.c.currency,
            _orders.c.source,
            _orders.c.provider,
            _orders.c.transaction_id,
            _accounts.c.id.label("account_id"),
            _accounts.c.number,
            _accounts.c.name,
            _accounts.c.book_id,
            credited_at.label("credited_at"),
        )
        .select_from(
            _orders.join(_transactions, _transactions.c.id == _orders.c.transaction_id)
            .join(
                _accounts,
                _accounts.c.id
                == sa.func.coalesce(_orders.c.account_id, _transactions.c.account_id),
            )
            .outerjoin(succeeded, succeeded.c.order_id == _orders.c.id)
        )
        .where(
            _orders.c.transaction_id.is_not(None),
            _orders.c.status.in_(CREDITED_STATUSES),
            ~sa.exists().where(_receipts.c.order_id == _orders.c.id),
        )
    )
    rows = list(conn.execute(query))
    rows.sort(key=lambda row: (row.credited_at, row.id))
    return rows


def _balances_after(conn: sa.Connection, book_id: int, transaction_ids: set[int]) -> dict[int, int]:
    """Return the book's balance right after each of these transactions (entries by id)."""
    targets = sorted(transaction_ids)
    found: dict[int, int] = {}
    total = 0
    ahead = 0  # targets[ahead] is the first target not passed yet
    rows = conn.execute(
        sa.select(_entries.c.transaction_id, _entries.c.amount_minor)
        .where(_entries.c.book_id == book_id, _entries.c.transaction_id <= targets[-1])
        .order_by(_entries.c.transaction_id)
        .execution_options(yield_per=5000)  # streamed: a book may hold many charges
    )
    for transaction_id, amount in rows:
        while ahead < len(targets) and targets[ahead] < transaction_id:
            found[targets[ahead]] = total
            ahead += 1
        total += int(amount)
    for target in targets[ahead:]:
        found[target] = total
    return found


def _rooms(conn: sa.Connection) -> dict[int, str]:
    """Each account's meters' names, in creation order, without repeats."""
    names: dict[int, dict[str, None]] = defaultdict(dict)
    for account_id, name in conn.execute(
        sa.select(_meters.c.account_id, _meters.c.name).order_by(_meters.c.id)
    ):
        names[int(account_id)][str(name)] = None
    return {account_id: ", ".join(found) for account_id, found in names.items() if found}


def upgrade() -> None:
    """Apply this revision."""
    conn = op.get_bind()
    counter = _meta_value(conn, COUNTER_KEY, lock=True)
    highest = conn.scalar(sa.select(sa.func.max(_receipts.c.number)))
    last = max(int(counter or 0), int(highest or 0))
    _set_meta(conn, BACKFILL_KEY, None)
    orders = _credited_without_receipt(conn)
    if not orders:
        return
    wanted: dict[int, set[int]] = defaultdict(set)
    for order in orders:
        wanted[order.book_id].add(order.transaction_id)
    balances = {book: _balances_after(conn, book, ids) for book, ids in wanted.items()}
    rooms = _rooms(conn)
    first = last + 1
    rows: list[dict[str, Any]] = []
    for number, order in enumerate(orders, start=first):
        credited_at: datetime = order.credited_at
        rows.append(
            {
                "number": number,
                "order_id": order.id,
                "issued_at": credited_at,
                "account_id": order.account_id,
                "account_number": order.number,
                "account_name": order.name,
                "room": rooms.get(order.account_id),
                "amount_minor": order.amount_minor,
                "bonus_minor": 0,
                "currency": order.currency,
                "method": method_of(order.source, order.provider),
                "balance_after_minor": balances[order.book_id][order.transaction_id],
            }
        )
    conn.execute(sa.insert(_receipts), rows)
    last = first + len(rows) - 1
    _set_meta(conn, COUNTER_KEY, str(last))
    _set_meta(conn, BACKFILL_KEY, json.dumps({"first": first, "last": last}))


def downgrade() -> None:
    """Revert this revision: delete its receipts if no receipt was issued after them."""
    conn = op.get_bind()
    recorded = _meta_value(conn, BACKFILL_KEY)
    if recorded is None:
        return  # this revision issued no receipt
    issued = json.loads(recorded)
    first, last = int(issued["first"]), int(issued["last"])
    counter = int(_meta_value(conn, COUNTER_KEY, lock=True) or 0)
    highest = int(conn.scalar(sa.select(sa.func.max(_receipts.c.number))) or 0)
    if counter == last and highest <= last:
        conn.execute(sa.delete(_receipts).where(_receipts.c.number.between(first, last)))
        _set_meta(conn, COUNTER_KEY, str(first - 1))
    else:
        _LOGGER.warning(
            "receipts %d..%d were issued for earlier top-ups and later receipts follow them; "
            "they stay (deleting them would leave a gap in the numbering)",
            first,
            last,
        )
    _set_meta(conn, BACKFILL_KEY, None)
