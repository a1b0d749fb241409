"""Which database failures mean "busy, try again later" rather than "bug".

Under load the database answers with errors that say nothing about the request: the
connection pool had no connection free in time, PostgreSQL refused another connection, a lock
or statement timeout fired, a deadlock or serialization failure outlived the write's retries,
SQLite stayed locked by another process past its busy timeout. Each of these aborted its
transaction (nothing was written), so the client may simply send the request again: the HTTP
answer is 503 with Retry-After (api/error_middleware.py), never a 500.
"""

from __future__ import annotations

from typing import Final

from sqlalchemy.exc import TimeoutError as PoolTimeoutError

#: PostgreSQL SQLSTATEs that mean the server is overloaded or the transaction lost a race.
OVERLOAD_SQLSTATES: Final[dict[str, str]] = {
    "40001": "serialization failure",
    "40P01": "deadlock",
    "53000": "insufficient resources",
    "53200": "out of memory",
    "53300": "too many connections",
    "55P03": "lock not available (lock timeout)",
    "57014": "statement cancelled (statement timeout)",
    "57P03": "database is starting up",
    "08000": "connection failure",
    "08001": "could not connect",
    "08003": "connection does not exist",
    "08004": "connection refused by server",
    "08006": "connection failure",
}
#: SQLite's words for a lock it could not get within its busy timeout.
_SQLITE_BUSY: Final = ("database is locked", "database table is locked", "database is busy")
_MAX_CHAIN: Final = 8


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


def overload_reason(error: BaseException) -> str | None:
    """Return why ERROR is a transient overload of the database, or None when it is not."""
    for current in _chain(error):
        if isinstance(current, PoolTimeoutError):
            return "no database connection free in time (connection pool timeout)"
        for attribute in ("sqlstate", "pgcode"):
            code = getattr(current, attribute, None)
            if isinstance(code, str) and code in OVERLOAD_SQLSTATES:
                return f"PostgreSQL {code}: {OVERLOAD_SQLSTATES[code]}"
        text = str(current).lower()
        for words in _SQLITE_BUSY:
            if words in text:
                return f"SQLite: {words}"
    return None
