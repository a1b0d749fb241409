"""Store exact decimals (readings, quantities, cumulative charges) as unbounded text.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 00:44:00.500280
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision (SQLite never enforces VARCHAR lengths: nothing to do there)."""
    if op.get_bind().dialect.name == "sqlite":
        return
    with op.batch_alter_table("charge_lines", schema=None) as batch_op:
        batch_op.alter_column(
            "quantity",
            existing_type=sa.VARCHAR(length=64),
            type_=sa.Text(),
            existing_nullable=False,
        )

    with op.batch_alter_table("charge_state", schema=None) as batch_op:
        batch_op.alter_column(
            "exact_total",
            existing_type=sa.VARCHAR(length=80),
            type_=sa.Text(),
            existing_nullable=False,
        )

    with op.batch_alter_table("meters", schema=None) as batch_op:
        batch_op.alter_column(
            "last_value",
            existing_type=sa.VARCHAR(length=64),
            type_=sa.Text(),
            existing_nullable=True,
        )
        batch_op.alter_column(
            "register_offset",
            existing_type=sa.VARCHAR(length=64),
            type_=sa.Text(),
            existing_nullable=False,
        )

    with op.batch_alter_table("period_usage", schema=None) as batch_op:
        batch_op.alter_column(
            "quantity",
            existing_type=sa.VARCHAR(length=64),
            type_=sa.Text(),
            existing_nullable=False,
        )

    with op.batch_alter_table("readings", schema=None) as batch_op:
        batch_op.alter_column(
            "value", existing_type=sa.VARCHAR(length=64), type_=sa.Text(), existing_nullable=False
        )
        batch_op.alter_column(
            "consumption",
            existing_type=sa.VARCHAR(length=64),
            type_=sa.Text(),
            existing_nullable=True,
        )


def downgrade() -> None:
    """Revert this revision."""
    if op.get_bind().dialect.name == "sqlite":
        return
    with op.batch_alter_table("readings", schema=None) as batch_op:
        batch_op.alter_column(
            "consumption",
            existing_type=sa.Text(),
            type_=sa.VARCHAR(length=64),
            existing_nullable=True,
        )
        batch_op.alter_column(
            "value", existing_type=sa.Text(), type_=sa.VARCHAR(length=64), existing_nullable=False
        )

    with op.batch_alter_table("period_usage", schema=None) as batch_op:
        batch_op.alter_column(
            "quantity",
            existing_type=sa.Text(),
            type_=sa.VARCHAR(length=64),
            existing_nullable=False,
        )

    with op.batch_alter_table("meters", schema=None) as batch_op:
        batch_op.alter_column(
            "register_offset",
            existing_type=sa.Text(),
            type_=sa.VARCHAR(length=64),
            existing_nullable=False,
        )
        batch_op.alter_column(
            "last_value",
            existing_type=sa.Text(),
            type_=sa.VARCHAR(length=64),
            existing_nullable=True,
        )

    with op.batch_alter_table("charge_state", schema=None) as batch_op:
        batch_op.alter_column(
            "exact_total",
            existing_type=sa.Text(),
            type_=sa.VARCHAR(length=80),
            existing_nullable=False,
        )

    with op.batch_alter_table("charge_lines", schema=None) as batch_op:
        batch_op.alter_column(
            "quantity",
            existing_type=sa.Text(),
            type_=sa.VARCHAR(length=64),
            existing_nullable=False,
        )
