"""The append-only audit log of every mutating call."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from prepaid_ledger.store.models import AuditLog

#: What a row looked like before or after a change: as the API shows it, or a plain JSON object.
type Snapshot = BaseModel | Mapping[str, Any] | None


def _json(snapshot: Snapshot) -> dict[str, Any] | None:
    if snapshot is None:
        return None
    if isinstance(snapshot, BaseModel):
        return snapshot.model_dump(mode="json")
    return dict(snapshot)


def record(
    session: AsyncSession,
    *,
    actor: str,
    action: str,
    target: str,
    before: Snapshot,
    after: Snapshot,
) -> None:
    """Add an audit row to the current transaction (so it exists exactly when the change does)."""
    row = AuditLog(actor=actor, action=action, target=target)
    row.before, row.after = _json(before), _json(after)
    session.add(row)
