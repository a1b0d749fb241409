"""Writing to the event stream (read by the SSE endpoint)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from prepaid_ledger.store.models import StreamEvent
from prepaid_ledger.store.stream import queue_event


def emit(
    session: AsyncSession, event_type: str, account_id: int | None, payload: dict[str, Any]
) -> None:
    """Queue an event; it is written with the transaction and visible when it commits."""
    queue_event(session, StreamEvent(type=event_type, account_id=account_id, payload=payload))
