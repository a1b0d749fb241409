"""The ids of committed books, remembered by the database for later transactions.

Looked up in every payment (the payments clearing book) and every batch of readings (the
revenue books): a round trip each, for a value that never changes once committed. Only ids seen
in a transaction that then committed are remembered, so a book created by a transaction that
rolled back is never handed out: a book this transaction created (in a savepoint that may yet
roll back) is remembered only once a later transaction finds it.
"""

from __future__ import annotations

from typing import Final

from sqlalchemy.ext.asyncio import AsyncSession

#: Where a write transaction's session finds its database's KnownBooks.
KNOWN_BOOKS_KEY: Final = "ledger_known_books"
#: Where it keeps the ids it saw, until it commits.
_SEEN_KEY: Final = "ledger_seen_books"
_CREATED_KEY: Final = "ledger_created_books"
#: Keys remembered at most (a site has about ten system books).
MAX_KNOWN: Final = 100_000


class KnownBooks:
    """Book key -> id of books known to be committed."""

    def __init__(self) -> None:
        self._ids: dict[str, int] = {}

    @staticmethod
    def of(session: AsyncSession) -> KnownBooks | None:
        """Return the KnownBooks of SESSION's database (None: the session remembers none)."""
        known = session.info.get(KNOWN_BOOKS_KEY)
        return known if isinstance(known, KnownBooks) else None

    def get(self, key: str) -> int | None:
        """Return the id of the committed book KEY, if known."""
        return self._ids.get(key)

    def seen(self, session: AsyncSession, key: str, book_id: int) -> None:
        """Note that SESSION's transaction found book KEY with BOOK_ID."""
        if key not in session.info.get(_CREATED_KEY, ()):
            session.info.setdefault(_SEEN_KEY, {})[key] = book_id

    def created(self, session: AsyncSession, key: str) -> None:
        """Note that SESSION's transaction is creating book KEY: not remembered from it."""
        session.info.setdefault(_CREATED_KEY, set()).add(key)

    def committed(self, session: AsyncSession) -> None:
        """Remember what SESSION's transaction saw: it has committed."""
        session.info.pop(_CREATED_KEY, None)
        seen = session.info.pop(_SEEN_KEY, None)
        if seen and len(self._ids) < MAX_KNOWN:
            self._ids.update(seen)
