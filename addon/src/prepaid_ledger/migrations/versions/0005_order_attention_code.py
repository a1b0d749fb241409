"""Top-up orders: a stable code for why an order needs attention.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05 14:10:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("topup_orders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("attention_code", sa.String(length=32), nullable=True))


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("topup_orders", schema=None) as batch_op:
        batch_op.drop_column("attention_code")
