"""Top-up promotions, and the bonus each order earned (its promotion, amount, taken back).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 06:40:00.000000
"""

import sqlalchemy as sa
from alembic import op

#: What 0010 adds to topup_orders (also what a SQLite downgrade leaves there; see downgrade).
_ORDER_COLUMNS = ("promotion_id", "bonus_minor", "bonus_taken_back_minor")
_ORDER_FK = "fk_topup_orders_promotion_id_promotions"

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
    # Plain ADD COLUMN, never a batch copy: on SQLite a batch drops topup_orders, which fails
    # (even deferred, at commit) once receipts and vouchers refer to its rows.
    present = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("topup_orders")}
    if "promotion_id" not in present:
        if op.get_bind().dialect.name == "sqlite":
            op.execute(
                "ALTER TABLE topup_orders ADD COLUMN promotion_id INTEGER "
                f"CONSTRAINT {_ORDER_FK} REFERENCES promotions (id)"
            )
        else:
            op.add_column("topup_orders", sa.Column("promotion_id", sa.Integer(), nullable=True))
            op.create_foreign_key(_ORDER_FK, "topup_orders", "promotions", ["promotion_id"], ["id"])
    for name in _ORDER_COLUMNS[1:]:
        if name not in present:
            column = sa.Column(name, sa.BigInteger(), nullable=False, server_default="0")
            op.add_column("topup_orders", column)
    op.create_index(
        op.f("ix_topup_orders_promotion_id"), "topup_orders", ["promotion_id"], unique=False
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_index(op.f("ix_topup_orders_promotion_id"), table_name="topup_orders")
    if op.get_bind().dialect.name == "sqlite":
        # SQLite cannot drop a column a foreign key uses, nor copy topup_orders while other
        # tables refer to it: the columns stay (promotion_id emptied; 0009 ignores them, and
        # an upgrade again finds them in place).
        op.execute("UPDATE topup_orders SET promotion_id = NULL")
    else:
        op.drop_constraint(_ORDER_FK, "topup_orders", type_="foreignkey")
        for name in reversed(_ORDER_COLUMNS):
            op.drop_column("topup_orders", name)
    op.drop_table("promotions")
