"""Alembic environment: runs on the connection handed over by prepaid_ledger.store.migrate."""

from alembic import context

from prepaid_ledger.store.models import Base

_connection = context.config.attributes.get("connection")
if _connection is None:  # pragma: no cover - only through prepaid_ledger.store.migrate
    raise RuntimeError("run migrations through `prepaid-ledger migrate`")
context.configure(
    connection=_connection,
    target_metadata=Base.metadata,
    render_as_batch=_connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
