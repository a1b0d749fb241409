"""Writing to the event stream (read by the SSE endpoint)."""

from __future__ import annotations

from datetime import datetime

from prepaid_meter_contract.events import StreamPayload, event_json
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from prepaid_ledger.store.models import StreamEvent
from prepaid_ledger.store.stream import queue_event


def emit(session: AsyncSession, account_id: int | None, event: StreamPayload) -> None:
    """Queue an event of an account (tenants see their own); written with the transaction."""
    queue_event(
        session,
        StreamEvent(type=event.event_type, account_id=account_id, payload=event_json(event)),
    )


async def prune(session: AsyncSession, before: datetime) -> int:
    """Delete stream events older than a time (the journal keeps the history; ids go on)."""
    result = await session.execute(delete(StreamEvent).where(StreamEvent.at < before))
    return int(getattr(result, "rowcount", 0) or 0)


async def oldest_id(session: AsyncSession) -> int | None:
    """Return the smallest event id still stored (None when the stream is empty)."""
    found = await session.scalar(select(func.min(StreamEvent.id)))
    return None if found is None else int(found)
