"""Which database failures mean "busy, try again later" rather than "bug".

Under load the database answers with errors that say nothing about the request: the
connection pool had no connection free in time, PostgreSQL refused another connection, a lock
or statement timeout fired, a deadlock or serialization failure outlived the write's retries,
SQLite stayed locked by another process past its busy timeout. Each of these aborted its
transaction (nothing was written), so the client may simply send the request again: the HTTP
answer is 503 with Retry-After (api/error_middleware.py), never a 500.

A PostgreSQL failover (docs/scaling.md) is answered the same way: the primary's connections
are lost (SQLAlchemy invalidates them), new connections are refused, and the standby is
read-only until it is promoted. A connection lost during COMMIT is in doubt (the commit may
have reached the standby); the requests senders retry are idempotent (a payment by its event
id, a reading by meter, time and value, a top-up by its Idempotency-Key), so sending one again
never applies it twice. tests/ledger/test_failover.py measured which errors a killed primary
and a standby not yet promoted raise.
"""

from __future__ import annotations

import errno
import traceback
from typing import Final

from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

#: PostgreSQL SQLSTATEs that mean the server is overloaded, going away or not yet writable (a
#: failover), or that the transaction lost a race.
OVERLOAD_SQLSTATES: Final[dict[str, str]] = {
    "40001": "serialization failure",
    "40P01": "deadlock",
    "53000": "insufficient resources",
    "53200": "out of memory",
    "53300": "too many connections",
    "55P03": "lock not available (lock timeout)",
    "57014": "statement cancelled (statement timeout)",
    "57P01": "server shutting down (admin shutdown)",
    "57P02": "server restarting after a crash (crash shutdown)",
    "57P03": "database is starting up",
    "25006": "read-only transaction (a standby not promoted yet)",
    "08000": "connection failure",
    "08001": "could not connect",
    "08003": "connection does not exist",
    "08004": "connection refused by server",
    "08006": "connection failure",
}
#: SQLite's words for a lock it could not get within its busy timeout.
_SQLITE_BUSY: Final = ("database is locked", "database table is locked", "database is busy")
_MAX_CHAIN: Final = 8
#: OSErrors other than ConnectionError/TimeoutError that mean the server cannot be reached.
_UNREACHABLE_ERRNOS: Final = frozenset(
    {errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN, errno.ENETDOWN}
)


class StaleReadError(Exception):
    """What a write read without a lock changed before it took the lock: run it again.

    ``Database.write`` runs the work again (like a deadlock); one that keeps losing is answered
    as busy (503), having written nothing.
    """


def _chain(error: BaseException) -> list[BaseException]:
    """Return the error, the driver error it wraps and their causes (bounded, no cycles)."""
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [error]
    while todo and len(seen) < _MAX_CHAIN:
        current = todo.pop(0)
        if current is None or any(current is known for known in seen):
            continue
        seen.append(current)
        orig = getattr(current, "orig", None)
        # Only what the error says it wraps: an error raised while handling an overload
        # (__context__) is a fault of its own.
        todo.extend([orig if isinstance(orig, BaseException) else None, current.__cause__])
    return seen


def _raised_by_driver(error: BaseException) -> bool:
    """Whether ERROR was raised inside asyncpg (its connect), not by our code or aiohttp."""
    return any(
        str(frame.f_globals.get("__name__", "")).partition(".")[0] == "asyncpg"
        for frame, _ in traceback.walk_tb(error.__traceback__)
    )


def _unreachable_reason(error: BaseException) -> str | None:
    """Return why ERROR means the PostgreSQL server is gone or not writable (failover)."""
    if isinstance(error, DBAPIError) and error.connection_invalidated:
        # SQLAlchemy found the connection closed (the dialect's is_disconnect) and dropped it
        # and every connection pooled before it.
        return "the connection to the database was lost"
    if not _raised_by_driver(error):
        return None
    # asyncpg.connect raises these unwrapped: the pool hands them on as they are.
    if type(error).__name__ == "TargetServerAttributeNotMatched":
        return "no listed PostgreSQL server accepts writes (a standby not promoted yet)"
    if isinstance(error, (ConnectionError, TimeoutError)) or (
        isinstance(error, OSError) and error.errno in _UNREACHABLE_ERRNOS
    ):
        return f"could not connect to PostgreSQL ({type(error).__name__})"
    return None


def overload_reason(error: BaseException) -> str | None:
    """Return why ERROR is a transient overload of the database, or None when it is not."""
    for current in _chain(error):
        if isinstance(current, StaleReadError):
            return "the rows a write read kept changing under it"
        if isinstance(current, PoolTimeoutError):
            return "no database connection free in time (connection pool timeout)"
        if (reason := _unreachable_reason(current)) is not None:
            return reason
        for attribute in ("sqlstate", "pgcode"):
            code = getattr(current, attribute, None)
            if isinstance(code, str) and code in OVERLOAD_SQLSTATES:
                return f"PostgreSQL {code}: {OVERLOAD_SQLSTATES[code]}"
        text = str(current).lower()
        for words in _SQLITE_BUSY:
            if words in text:
                return f"SQLite: {words}"
    return None
