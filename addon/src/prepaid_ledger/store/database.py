"""Engine setup and the one way to run a write transaction (locked, retried, atomic).

SQLite runs in WAL mode; writes are serialised in-process by a lock and start with
``BEGIN IMMEDIATE`` so two processes never deadlock on a lock upgrade. PostgreSQL writes run
in READ COMMITTED with explicit row locks and are retried on deadlock or serialization failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, cast

from sqlalchemy import (
    Executable,
    Integer,
    Table,
    bindparam,
    column,
    event,
    func,
    insert,
    select,
    text,
    true,
    values,
)
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from prepaid_ledger.store.known_books import KNOWN_BOOKS_KEY, KnownBooks
from prepaid_ledger.store.models import StreamEvent, utcnow
from prepaid_ledger.store.priority import LANES_KEY, Lanes, PriorityLock
from prepaid_ledger.store.snapshot_write import (
    SNAPSHOT_OPTION,
    SNAPSHOT_WRITE_KEY,
    SnapshotWrite,
    take_writer,
)
from prepaid_ledger.store.stream import take_pending
from prepaid_ledger.store.transient import StaleReadError

_LOGGER = logging.getLogger(__name__)
_RETRY_SQLSTATES = {"40001", "40P01"}
_MAX_ATTEMPTS = 8
_STREAM_LOCK = 0x4C454447  # advisory lock key ("LEDG") serialising event-stream inserts


def sqlite_url(data_dir: Path) -> str:
    """URL of the embedded database in the data directory."""
    return f"sqlite+aiosqlite:///{data_dir / 'ledger.sqlite3'}"


def _configure_sqlite(engine: AsyncEngine) -> None:
    """WAL, a busy timeout and BEGIN IMMEDIATE for every transaction."""

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")  # an acknowledged payment survives power loss
        cursor.execute("PRAGMA busy_timeout=15000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        options = connection.get_execution_options()
        if options.get("ledger_read") or options.get(SNAPSHOT_OPTION):
            connection.exec_driver_sql("BEGIN")  # a WAL snapshot that never blocks writers
        else:
            connection.exec_driver_sql("BEGIN IMMEDIATE")


def _is_retryable(error: DBAPIError) -> bool:
    """Deadlocks and serialization failures on PostgreSQL; 'locked' on SQLite."""
    orig = error.orig
    code = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if code in _RETRY_SQLSTATES:
        return True
    cause = getattr(orig, "__cause__", None)
    code = getattr(cause, "sqlstate", None)
    if code in _RETRY_SQLSTATES:
        return True
    return "database is locked" in str(error)


_EVENTS = cast("Table", StreamEvent.__table__)
_EVENT_COLUMNS = ("at", "type", "account_id", "payload")


#: Events written by one ``_locked_stream_insert`` (five parameters each); more take two.
_LOCKED_INSERT_MAX = 200


@functools.lru_cache(maxsize=_LOCKED_INSERT_MAX)
def _locked_stream_insert(count: int) -> Executable:
    """INSERT COUNT stream events after taking the stream's advisory lock, in one statement.

    The lock is held until commit, so stream ids are handed out in commit order (a reader that
    has seen id N never finds a smaller one committed later). One round trip instead of two
    for every write that emits events (every payment, every batch of readings); ids are
    assigned in the rows' order (ORDER BY the position).
    """
    types = {"n": Integer()} | {name: _EVENTS.c[name].type for name in _EVENT_COLUMNS}
    rows = values(*(column(name, type_) for name, type_ in types.items()), name="queued").data(
        [tuple(bindparam(f"{name}_{i}", type_=types[name]) for name in types) for i in range(count)]
    )
    lock = select(func.pg_advisory_xact_lock(_STREAM_LOCK).label("taken")).subquery("stream_lock")
    chosen = (
        select(*(rows.c[name] for name in _EVENT_COLUMNS))
        .select_from(rows.join(lock, true()))
        .order_by(rows.c.n)
    )
    return insert(_EVENTS).from_select(list(_EVENT_COLUMNS), chosen)


def _numbered(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Return the parameters of ``_locked_stream_insert`` for ROWS."""
    params: dict[str, Any] = {}
    for i, row in enumerate(rows):
        params[f"n_{i}"] = i
        params.update({f"{name}_{i}": row[name] for name in _EVENT_COLUMNS})
    return params


class Database:
    """The ledger's database: an async engine, sessions and serialised, retried writes."""

    def __init__(
        self,
        url: str,
        *,
        pool_size: int | None = None,
        max_overflow: int | None = None,
        pool_timeout_s: float = 30.0,
    ) -> None:
        """Open (lazily) the database at URL.

        ``pool_size`` and ``max_overflow`` default to 5 and 5 on SQLite, 10 and 10 on
        PostgreSQL; a request that finds no connection free within ``pool_timeout_s`` fails
        with SQLAlchemy's ``TimeoutError``, which the API answers with 503 (store/transient.py).
        The service sizes its admission control to the pool (api/admission.py) so that this
        stays rare.

        On PostgreSQL every connection taken from the pool is pinged first (``pool_pre_ping``):
        after a failover the pooled connections all point at the dead primary, and without the
        ping the first request after the standby's promotion failed (measured; docs/scaling.md).
        The ping costs about 0.4 ms per checkout on 127.0.0.1.
        """
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        default = 5 if self.is_sqlite else 10
        self.pool_size = default if pool_size is None else pool_size
        self.max_overflow = default if max_overflow is None else max_overflow
        self.engine = create_async_engine(
            url,
            pool_size=self.pool_size,
            max_overflow=self.max_overflow,
            pool_timeout=pool_timeout_s,
            pool_pre_ping=not self.is_sqlite,
        )
        if self.is_sqlite:
            _configure_sqlite(self.engine)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self._write_lock = PriorityLock() if self.is_sqlite else None
        #: SQLite in a backlog worker: asks the service for the writer (store/snapshot_write.py).
        self._ask_for_writer: Callable[[], Awaitable[None]] | None = None
        self.lanes = Lanes()
        self.known_books = KnownBooks()
        self._changed = asyncio.Event()

    def notify_change(self) -> None:
        """Wake everyone waiting for a commit (the event stream).

        Called after every write that emitted events; also after another process (the backlog
        worker) committed some.
        """
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def change_signal(self) -> asyncio.Event:
        """Return an event set at the next successful write; take it before reading."""
        return self._changed

    def price_on_snapshots(self, ask_for_writer: Callable[[], Awaitable[None]]) -> None:
        """SQLite in a backlog worker: writes begin as snapshots, ASK_FOR_WRITER before writing."""
        if not self.is_sqlite:
            raise ValueError("only SQLite has one writer to ask for")
        self._ask_for_writer = ask_for_writer

    def writer_held(self) -> contextlib.AbstractAsyncContextManager[None]:
        """Hold SQLite's writer for another process (a backlog worker's part); PostgreSQL: no-op."""
        if self._write_lock is None:
            return contextlib.nullcontext()
        return self._write_lock.held()

    async def read[T](self, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
        """Run read-only work in one snapshot (statements and verify see a single state)."""
        options: dict[str, Any] = {"ledger_read": True}
        if not self.is_sqlite:
            options["isolation_level"] = "REPEATABLE READ"
        async with self.sessions() as session:
            await session.connection(execution_options=options)
            return await work(session)

    async def write[T](
        self, work: Callable[[AsyncSession], Awaitable[T]], *, urgent: bool = False
    ) -> T:
        """Run work in one transaction: committed entirely or not at all; retried on deadlock.

        URGENT (a payment): goes before bulk work (store/priority.py).
        """
        with self.lanes.urgent() if urgent else contextlib.nullcontext():
            return await self._write(work, urgent=urgent)

    async def _write[T](self, work: Callable[[AsyncSession], Awaitable[T]], *, urgent: bool) -> T:
        for attempt in range(1, _MAX_ATTEMPTS + 1):
            try:
                if self._write_lock is not None:
                    async with self._write_lock.held(urgent=urgent):
                        result, emitted = await self._write_once(work)
                else:
                    result, emitted = await self._write_once(work)
            except (DBAPIError, StaleReadError) as err:
                if attempt == _MAX_ATTEMPTS or not (
                    isinstance(err, StaleReadError) or _is_retryable(err)
                ):
                    raise
                _LOGGER.debug("retrying write after %s (attempt %d)", err, attempt)
                await asyncio.sleep(0.01 * attempt)
            else:
                if emitted:  # the stream's readers wait for new events, not for any commit
                    self.notify_change()
                return result
        raise AssertionError("unreachable")  # pragma: no cover

    async def _write_once[T](self, work: Callable[[AsyncSession], Awaitable[T]]) -> tuple[T, bool]:
        """Run WORK in one transaction; return its result and whether it emitted events."""
        async with self.sessions() as session:
            async with session.begin():
                if self._ask_for_writer is not None:
                    await session.connection(execution_options={SNAPSHOT_OPTION: True})
                    snapshot = SnapshotWrite(session, self._ask_for_writer)
                    await snapshot.begin()
                    session.info[SNAPSHOT_WRITE_KEY] = snapshot
                result, emitted = await self._run_work(session, work)
            self.known_books.committed(session)
            return result, emitted

    async def _run_work[T](
        self, session: AsyncSession, work: Callable[[AsyncSession], Awaitable[T]]
    ) -> tuple[T, bool]:
        """Run WORK in SESSION's open transaction and write the events it emitted."""
        session.info[KNOWN_BOOKS_KEY] = self.known_books
        if not self.is_sqlite:
            session.info[LANES_KEY] = self.lanes
        result = await work(session)
        await take_writer(session)  # a snapshot write that wrote nothing still has events
        stream = take_pending(session)
        if stream:
            rows = [
                {
                    "at": queued.at or utcnow(),
                    "type": queued.type,
                    "account_id": queued.account_id,
                    "payload": queued.payload,
                }
                for queued in stream
            ]
            if not self.is_sqlite and len(rows) <= _LOCKED_INSERT_MAX:
                await session.execute(_locked_stream_insert(len(rows)), _numbered(rows))
            else:
                if not self.is_sqlite:
                    # Held until commit: stream ids are handed out in commit order.
                    await session.execute(
                        text("SELECT pg_advisory_xact_lock(:key)"), {"key": _STREAM_LOCK}
                    )
                # Nobody reads their ids here (subscribers read the table after commit):
                # one bulk INSERT, not a row at a time for RETURNING.
                await session.execute(insert(_EVENTS), rows)
        return result, bool(stream)

    async def close(self) -> None:
        """Close every pooled connection (and aiosqlite's worker threads)."""
        await self.engine.dispose()
