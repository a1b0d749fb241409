"""Meter limits for the reading guard: model, maximum power, counter modulus.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 16:40:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("meters", schema=None) as batch_op:
        batch_op.add_column(sa.Column("model", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("max_power", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("register_modulus", sa.Text(), nullable=True))


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("meters", schema=None) as batch_op:
        batch_op.drop_column("register_modulus")
        batch_op.drop_column("max_power")
        batch_op.drop_column("model")
