"""Remember what account.updated last said, so unchanged accounts emit no event.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 01:04:59.627133
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("last_published", sa.JSON(), nullable=True))


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_column("last_published")
