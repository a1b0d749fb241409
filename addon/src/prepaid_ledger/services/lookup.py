"""Loading one row by id, with the same "not found" rule for every kind of record."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from prepaid_ledger.errors import NotFoundError
from prepaid_ledger.services.validation import in_id_range
from prepaid_ledger.store.models import Base


async def load_by_id[RowT: Base](
    session: AsyncSession, model: type[RowT], row_id: int, what: str, *, lock: bool = False
) -> RowT:
    """Load the row with this id (row-locked on PostgreSQL when ``lock``) or raise NotFoundError.

    Ids outside the range a row id can have are "not found" too, never a database overflow.
    """
    if not in_id_range(row_id):
        raise NotFoundError(f"{what} {row_id}")
    query = select(model).where(model.id == row_id)  # type: ignore[attr-defined]
    if lock:
        query = query.with_for_update()
    row = await session.scalar(query)
    if row is None:
        raise NotFoundError(f"{what} {row_id}")
    return row
