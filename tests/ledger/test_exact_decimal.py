"""ExactDecimal: Decimal in Python, the same plain text as always in the database.

The expected texts are written out from the rule in ``domain/money.py`` (``format_decimal``:
a plain decimal string, never an exponent, zero without a sign, trailing zeros kept), not
computed by the code under test, so a change to the stored text fails here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest
from prepaid_ledger.store.database import Database
from prepaid_ledger.store.models import ExactDecimal
from sqlalchemy import Column, Integer, MetaData, Table, insert, select, text
from sqlalchemy.exc import StatementError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

pytestmark = pytest.mark.usefixtures("socket_enabled")

# (what Python stores, the text the database must hold)
CASES = [
    (Decimal(0), "0"),
    (Decimal("-0"), "0"),
    (Decimal("0.00"), "0.00"),
    (Decimal("-0.00"), "0.00"),
    (Decimal("1E+3"), "1000"),
    (Decimal("0.000001"), "0.000001"),
    (Decimal("1E-7"), "0.0000001"),
    (Decimal("12345678901234567890.123456"), "12345678901234567890.123456"),
    (Decimal("-42.50"), "-42.50"),
    (Decimal("5.0"), "5.0"),
]


class _Base(DeclarativeBase):
    pass


class _Probe(_Base):
    __tablename__ = "exact_decimal_orm_probe"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    value: Mapped[Decimal] = mapped_column(ExactDecimal())


_metadata = MetaData()
_table = Table(
    "exact_decimal_probe",
    _metadata,
    Column("id", Integer, primary_key=True),
    Column("value", ExactDecimal()),
)


@pytest.fixture
async def db(tmp_path: Path, database_url: str | None) -> AsyncIterator[Database]:
    database = Database(database_url or f"sqlite+aiosqlite:///{tmp_path / 'exact.sqlite3'}")
    async with database.engine.begin() as conn:
        await conn.run_sync(_metadata.create_all)
        await conn.run_sync(_Base.metadata.create_all)
    yield database
    await database.close()


async def test_round_trip_keeps_the_plain_text(db: Database) -> None:
    async with db.engine.begin() as conn:
        await conn.execute(
            insert(_table), [{"id": i, "value": value} for i, (value, _) in enumerate(CASES)]
        )
        await conn.execute(insert(_table), [{"id": len(CASES), "value": None}])
    async with db.engine.connect() as conn:
        stored = await conn.execute(text("SELECT value FROM exact_decimal_probe ORDER BY id"))
        texts = [row[0] for row in stored]
        read = (await conn.execute(select(_table.c.value).order_by(_table.c.id))).scalars().all()
    assert texts == [expected for _, expected in CASES] + [None]
    assert read[-1] is None
    for got, (value, expected) in zip(read, CASES, strict=False):
        assert isinstance(got, Decimal)
        assert got == value
        # Digit for digit what the text says (5.0 stays 5.0, not 5 or 5.00).
        assert got.as_tuple() == Decimal(expected).as_tuple()


async def test_sql_comparison_matches_the_stored_text(db: Database) -> None:
    async with db.engine.begin() as conn:
        await conn.execute(insert(_table), [{"id": 1, "value": Decimal("1E+3")}])
        await conn.execute(insert(_table), [{"id": 2, "value": Decimal("5.0")}])
    async with db.engine.connect() as conn:
        found = await conn.scalar(select(_table.c.id).where(_table.c.value == Decimal(1000)))
        # Text, as before: 5.00 is not the stored 5.0.
        other = await conn.scalar(select(_table.c.id).where(_table.c.value == Decimal("5.00")))
        same = await conn.scalar(select(_table.c.id).where(_table.c.value == Decimal("5.0")))
    assert (found, other, same) == (1, None, 2)


@pytest.mark.parametrize(
    "bad",
    [1.5, "1.5", 1, True, Decimal("NaN"), Decimal("sNaN"), Decimal("Infinity"), Decimal("-Inf")],
    ids=repr,
)
async def test_refuses_anything_but_a_finite_decimal(db: Database, bad: object) -> None:
    async with db.engine.begin() as conn:
        with pytest.raises(StatementError) as caught:
            await conn.execute(insert(_table), [{"id": 1, "value": bad}])
    assert isinstance(caught.value.orig, TypeError)


async def test_a_change_of_digits_only_is_written(db: Database) -> None:
    """5.0 -> 5.00 is equal as a number but is another text, so the ORM must write it."""
    async with AsyncSession(db.engine) as session:
        session.add(_Probe(id=1, value=Decimal("5.0")))
        await session.commit()
    async with AsyncSession(db.engine) as session:
        probe = await session.get(_Probe, 1)
        assert probe is not None
        probe.value = Decimal("5.00")
        await session.commit()
    async with db.engine.connect() as conn:
        stored = await conn.scalar(text("SELECT value FROM exact_decimal_orm_probe"))
    assert stored == "5.00"
