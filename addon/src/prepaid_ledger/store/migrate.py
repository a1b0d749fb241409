"""Bring the schema to the newest Alembic revision (at start and by `prepaid-ledger migrate`)."""

from __future__ import annotations

import uuid
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, select
from sqlalchemy.ext.asyncio import AsyncSession

from prepaid_ledger.store.database import Database
from prepaid_ledger.store.models import LedgerMeta

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(connection: Connection | None = None) -> Config:
    """Return an Alembic config pointing at the migrations shipped in the package."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def _upgrade(connection: Connection) -> None:
    command.upgrade(alembic_config(connection), "head")


async def migrate(database: Database) -> str:
    """Upgrade the schema and make sure the database has its ledger_id; return the ledger_id."""
    async with database.engine.begin() as conn:
        await conn.run_sync(_upgrade)

    async def ensure_ledger_id(session: AsyncSession) -> str:
        row = await session.scalar(select(LedgerMeta).where(LedgerMeta.key == "ledger_id"))
        if row is not None:
            return row.value
        ledger_id = str(uuid.uuid4())
        session.add(LedgerMeta(key="ledger_id", value=ledger_id))
        return ledger_id

    return await database.write(ensure_ledger_id)
