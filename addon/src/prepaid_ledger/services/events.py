"""Writing to the event stream (read by the SSE endpoint)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from prepaid_ledger.store.models import StreamEvent


def emit(
    session: AsyncSession, event_type: str, account_id: int | None, payload: dict[str, Any]
) -> None:
    """Add an event in the current transaction; it becomes visible when the change commits."""
    session.add(StreamEvent(type=event_type, account_id=account_id, payload=payload))
