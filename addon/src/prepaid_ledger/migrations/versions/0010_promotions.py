"""Top-up promotions, and the bonus each order earned (its promotion, amount, taken back).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 06:40:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "promotions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("min_topup_minor", sa.BigInteger(), nullable=False),
        sa.Column("bonus_minor", sa.BigInteger(), nullable=True),
        sa.Column("bonus_percent", sa.Text(), nullable=True),
        sa.Column("max_bonus_minor", sa.BigInteger(), nullable=True),
        sa.Column("starts_at", sa.DateTime(), nullable=False),
        sa.Column("ends_at", sa.DateTime(), nullable=True),
        sa.Column("first_topup_only", sa.Boolean(), nullable=False),
        sa.Column("uses_per_account", sa.Integer(), nullable=True),
        sa.Column("uses_total", sa.Integer(), nullable=True),
        sa.Column("tariff_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("ended_at", sa.DateTime(), nullable=True),
        sa.Column("ended_by", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["tariff_id"], ["tariffs.id"], name=op.f("fk_promotions_tariff_id_tariffs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_promotions")),
    )
    with op.batch_alter_table("topup_orders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("promotion_id", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("bonus_minor", sa.BigInteger(), nullable=False, server_default="0")
        )
        batch_op.add_column(
            sa.Column("bonus_taken_back_minor", sa.BigInteger(), nullable=False, server_default="0")
        )
        batch_op.create_index(
            batch_op.f("ix_topup_orders_promotion_id"), ["promotion_id"], unique=False
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_topup_orders_promotion_id_promotions"),
            "promotions",
            ["promotion_id"],
            ["id"],
        )


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("topup_orders", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_topup_orders_promotion_id_promotions"), type_="foreignkey"
        )
        batch_op.drop_index(batch_op.f("ix_topup_orders_promotion_id"))
        batch_op.drop_column("bonus_taken_back_minor")
        batch_op.drop_column("bonus_minor")
        batch_op.drop_column("promotion_id")
    op.drop_table("promotions")
