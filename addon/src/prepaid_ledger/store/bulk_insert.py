"""Many rows into one table in one statement: COPY on PostgreSQL, executemany elsewhere.

A backlog part writes 500 readings; through SQLAlchemy's executemany every row's every value
goes through the bind processing of its column type and a parameter set of its own (about an
eighth of a backlog worker's time, profiled). COPY sends the rows in one go; each value is
still made what its column type makes of it (``process_bind_param`` of the ledger's exact
decimals and UTC times), so a row reads back the same either way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Table, insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import TypeDecorator


def _to_column(table: Table, name: str, dialect: Any) -> Callable[[Any], Any]:
    """Return what the column's type does to a Python value before the driver sees it."""
    column_type = table.c[name].type
    if isinstance(column_type, TypeDecorator):
        return lambda value: column_type.process_bind_param(value, dialect)
    return lambda value: value


async def insert_rows(
    session: AsyncSession, table: Table, rows: Sequence[Mapping[str, Any]]
) -> None:
    """Insert ROWS (column -> value, the same columns in each) in SESSION's transaction."""
    if not rows:
        return
    dialect = session.get_bind().dialect
    if dialect.name != "postgresql":
        await session.execute(insert(table), rows)
        return
    columns = list(rows[0])
    convert = [(name, _to_column(table, name, dialect)) for name in columns]
    records = [tuple(to(row[name]) for name, to in convert) for row in rows]
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    driver = raw.driver_connection
    if driver is None:  # pragma: no cover - a pooled connection always has its driver's
        raise RuntimeError("no database connection for COPY")
    await driver.copy_records_to_table(table.name, records=records, columns=columns)
