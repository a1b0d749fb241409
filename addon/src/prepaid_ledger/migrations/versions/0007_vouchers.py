"""Vouchers: batches, codes (keyed hashes only) and failed-entry counters.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 04:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "voucher_batches",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("value_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=True),
        sa.Column("expires_at", sa.DateTime(), nullable=True),
        sa.Column("note", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("voided_at", sa.DateTime(), nullable=True),
        sa.Column("voided_by", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_voucher_batches_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_voucher_batches")),
    )
    op.create_table(
        "vouchers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.Column("serial", sa.Integer(), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("redeemed_at", sa.DateTime(), nullable=True),
        sa.Column("account_id", sa.Integer(), nullable=True),
        sa.Column("order_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_vouchers_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["batch_id"], ["voucher_batches.id"], name=op.f("fk_vouchers_batch_id_voucher_batches")
        ),
        sa.ForeignKeyConstraint(
            ["order_id"], ["topup_orders.id"], name=op.f("fk_vouchers_order_id_topup_orders")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vouchers")),
        sa.UniqueConstraint("code_hash", name=op.f("uq_vouchers_code_hash")),
        sa.UniqueConstraint("order_id", name=op.f("uq_vouchers_order_id")),
    )
    op.create_index(op.f("ix_vouchers_batch_id"), "vouchers", ["batch_id"], unique=False)
    op.create_table(
        "voucher_attempts",
        sa.Column("source", sa.String(length=96), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_failure_at", sa.DateTime(), nullable=False),
        sa.Column("locked_until", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("source", name=op.f("pk_voucher_attempts")),
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table("voucher_attempts")
    op.drop_index(op.f("ix_vouchers_batch_id"), table_name="vouchers")
    op.drop_table("vouchers")
    op.drop_table("voucher_batches")
