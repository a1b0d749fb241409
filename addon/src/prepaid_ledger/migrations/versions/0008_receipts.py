"""Receipts: one per succeeded top-up, numbered gap-free by a counter row in ledger_meta.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 05:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

#: The ledger_meta row holding the last receipt number issued (services/receipts.py).
COUNTER_KEY = "receipt_number"


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "receipts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("number", sa.BigInteger(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("issued_at", sa.DateTime(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("account_number", sa.String(length=32), nullable=True),
        sa.Column("account_name", sa.String(length=200), nullable=False),
        sa.Column("room", sa.Text(), nullable=True),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("bonus_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column("balance_after_minor", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_receipts_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["order_id"], ["topup_orders.id"], name=op.f("fk_receipts_order_id_topup_orders")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_receipts")),
        sa.UniqueConstraint("number", name=op.f("uq_receipts_number")),
        sa.UniqueConstraint("order_id", name=op.f("uq_receipts_order_id")),
    )
    op.create_index(op.f("ix_receipts_account_id"), "receipts", ["account_id"], unique=False)
    # The counter exists before the first credit, so no two first credits race to create it.
    ledger_meta = sa.table("ledger_meta", sa.column("key", sa.String), sa.column("value", sa.Text))
    op.bulk_insert(ledger_meta, [{"key": COUNTER_KEY, "value": "0"}])


def downgrade() -> None:
    """Revert this revision."""
    op.execute(sa.text("DELETE FROM ledger_meta WHERE key = :key").bindparams(key=COUNTER_KEY))
    op.drop_index(op.f("ix_receipts_account_id"), table_name="receipts")
    op.drop_table("receipts")
