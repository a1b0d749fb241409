"""The database remembers committed book ids (store/known_books.py), and only committed ones."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from prepaid_ledger.services import journal
from prepaid_ledger.store.database import Database
from prepaid_ledger.store.migrate import migrate
from prepaid_ledger.store.models import Book
from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncSession

KEY = journal.system_book_key(journal.PAYMENTS_CLEARING, "EUR")


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'ledger.sqlite3'}")
    await migrate(database)
    yield database
    await database.close()


async def clearing_book(session: AsyncSession) -> int:
    return await journal.system_book(session, journal.PAYMENTS_CLEARING, "EUR")


async def book_ids(db: Database) -> list[int]:
    async def read(session: AsyncSession) -> list[int]:
        return list(await session.scalars(select(Book.id).where(Book.key == KEY)))

    return await db.read(read)


async def test_a_committed_book_is_looked_up_once(db: Database) -> None:
    created = await db.write(clearing_book)
    assert db.known_books.get(KEY) is None  # created by that transaction: not taken from it
    assert await db.write(clearing_book) == created  # found by a query, and remembered
    assert db.known_books.get(KEY) == created
    queries: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "FROM books" in statement:
            queries.append(statement)

    event.listen(db.engine.sync_engine, "before_cursor_execute", count)
    try:
        assert await db.write(clearing_book) == created
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", count)
    assert queries == []


async def test_a_book_of_a_rolled_back_transaction_is_never_remembered(db: Database) -> None:
    async def create_then_fail(session: AsyncSession) -> None:
        await clearing_book(session)
        raise RuntimeError("the payment failed after creating the book")

    with pytest.raises(RuntimeError):
        await db.write(create_then_fail)
    assert db.known_books.get(KEY) is None
    assert await book_ids(db) == []

    async def failing_item(session: AsyncSession) -> None:
        async with session.begin_nested():  # e.g. one item of a batch top-up
            await clearing_book(session)
            raise RuntimeError("this item failed")

    async def savepoint_rolled_back(session: AsyncSession) -> int:
        with pytest.raises(RuntimeError):
            await failing_item(session)
        return await clearing_book(session)  # created again, in the outer transaction

    book = await db.write(savepoint_rolled_back)
    assert db.known_books.get(KEY) is None
    assert await book_ids(db) == [book]
    assert await db.write(clearing_book) == book
    assert db.known_books.get(KEY) == book
