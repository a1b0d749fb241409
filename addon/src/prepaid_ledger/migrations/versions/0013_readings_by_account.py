"""An index of readings by account and time: days left without scanning every reading.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 21:55:00.000000
"""

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_index("ix_readings_account_at", "readings", ["account_id", "at"], unique=False)


def downgrade() -> None:
    """Revert this revision."""
    op.drop_index("ix_readings_account_at", table_name="readings")
