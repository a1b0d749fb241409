"""Event-stream rows queued during a write transaction and inserted at its end.

``Database.write`` inserts them last (on PostgreSQL under a transaction-level advisory lock),
so stream ids are handed out in commit order: a reader resuming after id N never misses a
smaller id that commits later.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from prepaid_ledger.store.models import StreamEvent

_PENDING = "ledger_pending_events"


def queue_event(session: AsyncSession, event: StreamEvent) -> None:
    """Queue an event row for the end of the current transaction."""
    pending: list[StreamEvent] = session.info.setdefault(_PENDING, [])
    pending.append(event)


def take_pending(session: AsyncSession) -> list[StreamEvent]:
    """Return the events queued in this transaction and forget them."""
    pending: list[StreamEvent] = session.info.pop(_PENDING, [])
    return pending


def pending_count(session: AsyncSession) -> int:
    """Return how many events are queued (a mark to roll back to with discard_after)."""
    return len(session.info.get(_PENDING, []))


def discard_after(session: AsyncSession, mark: int) -> None:
    """Drop events queued after a mark (their savepoint was rolled back)."""
    pending: list[StreamEvent] = session.info.get(_PENDING, [])
    del pending[mark:]
