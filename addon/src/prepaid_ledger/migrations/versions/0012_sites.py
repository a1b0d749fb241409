"""Sites: one ledger for several Home Assistants, each confined to its own accounts.

Every existing account and integration token belongs to site 1, the landlord's own
Home Assistant (store.models.DEFAULT_SITE_ID).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 21:20:00.000000
"""

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    sites = op.create_table(
        "sites",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sites")),
        sa.UniqueConstraint("name", name=op.f("uq_sites_name")),
    )
    now = datetime.now(UTC).replace(tzinfo=None)
    op.bulk_insert(sites, [{"id": 1, "name": "Home", "created_at": now}])
    if op.get_bind().dialect.name == "postgresql":  # the next site gets id 2
        op.execute("SELECT setval(pg_get_serial_sequence('sites', 'id'), 1)")
    # Plain ADD COLUMN, never a batch copy (SQLite cannot drop accounts while other tables
    # refer to it), and no foreign key: SQLite refuses a REFERENCES column with a default.
    op.add_column(
        "accounts", sa.Column("site_id", sa.Integer(), server_default="1", nullable=False)
    )
    op.create_index(op.f("ix_accounts_site_id"), "accounts", ["site_id"], unique=False)
    op.add_column("api_tokens", sa.Column("site_id", sa.Integer(), nullable=True))
    op.execute("UPDATE api_tokens SET site_id = 1 WHERE scope = 'integration'")


def downgrade() -> None:
    """Revert this revision."""
    op.drop_column("api_tokens", "site_id")  # SQLite 3.35+ drops a plain column in place
    op.drop_index(op.f("ix_accounts_site_id"), table_name="accounts")
    op.drop_column("accounts", "site_id")
    op.drop_table("sites")
