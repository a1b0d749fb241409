"""Double-entry posting: every transaction's entries sum to zero, balances move with them.

Customer books hold an account's balance (positive = credit, negative = debt). System books
take the other side: consumption and standing-charge revenue, the payments clearing book that
money from providers and cash arrives through, adjustments, refunds payable, and the
promotions book that top-up bonuses are given from.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

from sqlalchemy import Table, bindparam, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from prepaid_ledger.errors import InputError
from prepaid_ledger.store.known_books import KnownBooks
from prepaid_ledger.store.models import DEFAULT_SITE_ID, Book, JournalEntry, JournalTransaction

MAX_AMOUNT_MINOR = 10**15  # far beyond any real payment; keeps balances inside BIGINT
REVENUE_CONSUMPTION = "revenue:consumption"
REVENUE_STANDING = "revenue:standing"
PAYMENTS_CLEARING = "clearing:payments"
ADJUSTMENTS = "adjustments"
REFUNDS_PAYABLE = "refunds:payable"
#: Refunds paid out when an account closed, by a recorded method (cash, bank transfer).
REFUNDS_PAID = "refunds:paid"
#: What promotions' bonuses cost the landlord (apart from revenue and payments).
PROMOTIONS = "promotions"
SETTLEMENT_WRITE_OFF = "settlement:write_off"


def customer_book_key(account_id: int) -> str:
    """Key of the book that holds an account's balance."""
    return f"customer:{account_id}"


def system_book_key(name: str, currency: str, site_id: int = DEFAULT_SITE_ID) -> str:
    """Key of a system book in one currency, one per site.

    Each site has its own revenue, clearing, ... books, so postings from different sites never
    wait on one row (the books of site 1 keep the keys they had before sites existed).
    """
    key = f"system:{name}:{currency}"
    return key if site_id == DEFAULT_SITE_ID else f"{key}:site:{site_id}"


@dataclass(frozen=True, slots=True)
class Leg:
    """One side of a posting."""

    book_id: int
    amount_minor: int


async def book_id_for(session: AsyncSession, key: str, kind: str, currency: str) -> int:
    """Return the id of a book, creating it once (safe under concurrent first use).

    A book's key never changes and no book is deleted, so the database remembers the ids of
    committed books (``store.known_books``): every payment and every batch of readings
    would otherwise look up the same system books again.
    """
    known = KnownBooks.of(session)
    if known is not None and (cached := known.get(key)) is not None:
        return cached
    found = await session.scalar(select(Book.id).where(Book.key == key))
    if found is not None:
        if known is not None:
            known.seen(session, key, int(found))
        return int(found)
    if known is not None:
        known.created(session, key)
    try:
        async with session.begin_nested():
            book = Book(key=key, kind=kind, currency=currency, balance_minor=0)
            session.add(book)
            await session.flush()
            return book.id
    except IntegrityError:
        found = await session.scalar(select(Book.id).where(Book.key == key))
        if found is None:  # pragma: no cover - the conflicting insert must be visible now
            raise
        return int(found)


async def system_book(
    session: AsyncSession, name: str, currency: str, site_id: int = DEFAULT_SITE_ID
) -> int:
    """Id of a site's system book, created on first use."""
    key = system_book_key(name, currency, site_id)
    return await book_id_for(session, key, "system", currency)


@dataclass(frozen=True, slots=True)
class Posting:
    """One balanced transaction to write: its kind, account, description and legs."""

    kind: str
    account_id: int | None
    description: str
    legs: Sequence[Leg]


async def post(
    session: AsyncSession,
    *,
    kind: str,
    account_id: int | None,
    description: str,
    legs: Sequence[Leg],
) -> JournalTransaction:
    """Write one balanced transaction and move the stored balances in the same DB transaction."""
    posting = Posting(kind, account_id, description, legs)
    _check(posting)
    txn = JournalTransaction(kind=kind, account_id=account_id, description=description)
    session.add(txn)
    await session.flush()
    await _write_entries(session, [(txn.id, posting)])
    return txn


def _check(posting: Posting) -> None:
    if any(abs(leg.amount_minor) > MAX_AMOUNT_MINOR for leg in posting.legs):
        raise InputError("amount_out_of_range", "amount is too large for the ledger")
    if sum(leg.amount_minor for leg in posting.legs) != 0:
        raise ValueError(f"unbalanced transaction {posting.kind}: {posting.legs}")


async def post_many(session: AsyncSession, postings: Sequence[Posting]) -> list[int]:
    """Write several balanced transactions; return their ids, in order.

    A batch of readings posts one transaction per meter, all against the same revenue books:
    written together they cost one INSERT per table and one balance update per book, not a
    statement (and an ORM object) per meter.
    """
    for posting in postings:
        _check(posting)
    if not postings:
        return []
    rows = [
        {"kind": p.kind, "account_id": p.account_id, "description": p.description} for p in postings
    ]
    if session.get_bind().dialect.name == "sqlite":
        ids = await _next_ids_on_sqlite(session, len(rows))
        await session.execute(
            insert(_TRANSACTIONS), [row | {"id": id_} for row, id_ in zip(rows, ids, strict=True)]
        )
    else:
        returned = await session.execute(
            insert(_TRANSACTIONS).returning(_TRANSACTIONS.c.id, sort_by_parameter_order=True),
            rows,
        )
        ids = [int(id_) for id_ in returned.scalars()]
    await _write_entries(session, list(zip(ids, postings, strict=True)))
    return ids


async def _write_entries(session: AsyncSession, posted: Sequence[tuple[int, Posting]]) -> None:
    """Write the entries of posted transactions and move each book's balance once."""
    totals: dict[int, int] = {}
    entries: list[dict[str, int]] = []
    for txn_id, posting in posted:
        for leg in posting.legs:
            totals[leg.book_id] = totals.get(leg.book_id, 0) + leg.amount_minor
            if leg.amount_minor:
                entry = {"book_id": leg.book_id, "amount_minor": leg.amount_minor}
                entries.append({"transaction_id": txn_id} | entry)
    # Entries are never read back here: one bulk INSERT (no RETURNING, no row at a time).
    if entries:
        await session.execute(insert(_ENTRIES), entries)  # Core: no ORM bulk bookkeeping
    # A fixed lock order (by book id) keeps concurrent PostgreSQL writers free of deadlocks.
    moves = [{"book": b, "delta": totals[b]} for b in sorted(totals) if totals[b]]
    if moves:
        await session.execute(_MOVE_BALANCE, moves)
        for book in session.identity_map.values():  # loaded books: read the new balance
            if isinstance(book, Book) and book.id in totals:
                session.expire(book, ["balance_minor"])


async def _next_ids_on_sqlite(session: AsyncSession, count: int) -> list[int]:
    """Return the ids the next COUNT transactions get, so SQLite stores them in one statement.

    SQLite cannot return generated ids in the order of a multi-row INSERT, so without ids
    SQLAlchemy inserts one row per statement (a batch of readings: a hundred statements).
    Every SQLite write runs alone (BEGIN IMMEDIATE), so the next ids are the largest + 1...
    """
    last = int(await session.scalar(select(func.coalesce(func.max(_TRANSACTIONS.c.id), 0))) or 0)
    return list(range(last + 1, last + 1 + count))


_TRANSACTIONS = cast("Table", JournalTransaction.__table__)
_BOOKS = cast("Table", Book.__table__)
_ENTRIES = cast("Table", JournalEntry.__table__)
#: One statement for every book a posting moves (executemany, in the order given).
_MOVE_BALANCE = (
    update(_BOOKS)
    .where(_BOOKS.c.id == bindparam("book"))
    .values(balance_minor=_BOOKS.c.balance_minor + bindparam("delta"))
)


async def book_balances(session: AsyncSession, book_ids: Sequence[int]) -> dict[int, int]:
    """Return the stored balances of several books in one query."""
    rows = await session.execute(
        select(Book.id, Book.balance_minor).where(Book.id.in_(sorted(set(book_ids))))
    )
    return {int(book_id): int(balance or 0) for book_id, balance in rows}


async def book_balance(session: AsyncSession, book_id: int) -> int:
    """Return the stored balance of a book."""
    balance = await session.scalar(select(Book.balance_minor).where(Book.id == book_id))
    return int(balance or 0)
