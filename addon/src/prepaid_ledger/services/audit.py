"""The append-only audit log of every mutating call."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from prepaid_ledger.store.models import AuditLog


def record(
    session: AsyncSession,
    *,
    actor: str,
    action: str,
    target: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> None:
    """Add an audit row to the current transaction (so it exists exactly when the change does)."""
    session.add(AuditLog(actor=actor, action=action, target=target, before=before, after=after))
