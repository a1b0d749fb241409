"""Alembic: a database at the first revision upgrades to head keeping its data."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from prepaid_ledger.store.database import Database
from prepaid_ledger.store.migrate import alembic_config, migrate
from sqlalchemy import Connection, inspect, text

pytestmark = pytest.mark.usefixtures("socket_enabled")


async def test_upgrade_from_first_revision_keeps_data(
    tmp_path: Path, database_url: str | None
) -> None:
    db = Database(database_url or f"sqlite+aiosqlite:///{tmp_path / 'old.sqlite3'}")
    try:
        async with db.engine.begin() as conn:
            await conn.run_sync(lambda c: command.upgrade(alembic_config(c), "0001"))
            await conn.execute(
                text(
                    "INSERT INTO books (id, key, kind, currency, balance_minor) "
                    "VALUES (1, 'customer:1', 'customer', 'EUR', -25)"
                )
            )
            await conn.execute(
                text(
                    "INSERT INTO accounts (id, number, name, currency, timezone, status, "
                    "settings, book_id, supply_allowed, alert_level, created_at) "
                    "VALUES (1, '1000001', 'Old', 'EUR', 'UTC', 'open', '{}', 1, true, 0, "
                    "'2026-01-01 00:00:00')"
                )
            )
        ledger_id = await migrate(db)
        assert len(ledger_id) == 36

        def columns(conn: Connection) -> dict[str, str]:
            return {c["name"]: str(c["type"]) for c in inspect(conn).get_columns("accounts")}

        async with db.engine.connect() as conn:
            account_columns = await conn.run_sync(columns)
            version = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar()
            row = (await conn.execute(text("SELECT name, last_published FROM accounts"))).one()
        assert "last_published" in account_columns
        assert version == ScriptDirectory.from_config(alembic_config()).get_current_head()
        assert tuple(row) == ("Old", None)
        assert await migrate(db) == ledger_id  # idempotent
    finally:
        await db.close()
