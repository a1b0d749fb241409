"""A SQLite write that prices on a snapshot and takes the one writer only to write.

SQLite has one writer for the whole database. A backlog part is mostly pricing (tens of
milliseconds of Python) and a little writing; in the service the part holds the writer
throughout, which is harmless there (the service's own writes queue on its event loop anyway),
but it keeps the backlog on the service's one core. A backlog worker (backlog_worker.py)
instead reads and prices in a plain ``BEGIN`` (a WAL snapshot: it blocks no one), then asks the
service for the writer (``ask``: the service takes its own write lock for it, so its payments
and polls wait on the event loop, not in SQLite's busy loop) and only then lets the snapshot go
and begins ``IMMEDIATE``. What it read may have moved in between: the work checks what its
pricing depended on (``readings.ingest``) and, if anything moved, raises StaleReadError, and
the transaction is done again (with the writer still granted, so the second time nothing
moves).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Final

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

#: Where a session keeps its SnapshotWrite (``session.info``).
SNAPSHOT_WRITE_KEY: Final = "prepaid_ledger.snapshot_write"
#: The execution option whose transaction begins as a snapshot (store/database.py).
SNAPSHOT_OPTION: Final = "ledger_snapshot"

_CHANGES = text("SELECT total_changes()")


class SnapshotWrite:
    """One write transaction of a session that began as a read snapshot."""

    def __init__(self, session: AsyncSession, ask: Callable[[], Awaitable[None]]) -> None:
        self._session = session
        self._ask = ask
        self._changes: int | None = None
        self.taken = False

    async def begin(self) -> None:
        """Note what the connection had written so far (nothing may be written on the snapshot)."""
        self._changes = (await self._session.execute(_CHANGES)).scalar_one()

    async def take(self) -> None:
        """Wait for the service's grant, then trade the snapshot for the writer.

        RuntimeError if something was written on the snapshot: it would be committed here,
        apart from the rest.
        """
        connection = await self._session.connection()
        changes = (await connection.execute(_CHANGES)).scalar_one()
        if changes != self._changes:
            raise RuntimeError("a snapshot write wrote before it took the writer")
        await self._ask()
        await connection.exec_driver_sql("COMMIT")  # a read transaction: nothing to commit
        await connection.exec_driver_sql("BEGIN IMMEDIATE")
        self.taken = True


async def take_writer(session: AsyncSession) -> bool:
    """Take SQLite's writer if SESSION priced on a snapshot; whether what it read may be stale.

    False (nothing to do) for any other session: PostgreSQL, or SQLite holding the writer from
    its BEGIN.
    """
    write = session.info.get(SNAPSHOT_WRITE_KEY)
    if not isinstance(write, SnapshotWrite) or write.taken:
        return False
    await write.take()
    return True
