"""PostgreSQL: ``readings`` partitioned by month of ``at`` (UTC); SQLite is left as it is.

The new ``readings`` is partitioned by RANGE (``at``), one partition a calendar month named
``readings_yYYYYmMM`` (``readings_y2026m01`` holds 2026-01-01 00:00 up to, not including,
2026-02-01 00:00 UTC), and a DEFAULT partition ``readings_default`` for a reading of a month
that has no partition of its own. This revision creates a partition for every month existing
readings fall in and for the current and the next two months; the service creates the coming
months' partitions at start and once a day (store/partitions.py), and
``prepaid-ledger readings-retention`` drops old ones.

PostgreSQL wants the partition key in every unique constraint, so the primary key is
(``id``, ``at``); ids still come from the same sequence, which continues where it was (the
ORM maps ``id`` alone as the primary key, as on SQLite). Same columns, defaults, foreign keys
and indexes (``ix_readings_meter_at``, ``ix_readings_account_at``, created on the parent and so
on every partition). The rows are copied inside the migration's transaction: on a large table
the upgrade (run at the service's start, or by ``prepaid-ledger migrate``) takes as long as
copying and indexing every reading once.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-08 10:00:00.000000
"""

from datetime import UTC, date, datetime

from alembic import op
from sqlalchemy import text

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

#: The columns, in the order of revision 0001 (and of every partition).
_COLUMNS = (
    "id, meter_id, account_id, value, at, received_at, status, consumption, charged_minor, "
    "transaction_id"
)
#: The foreign keys of revision 0001, under the names the models' naming convention gives.
_FOREIGN_KEYS = (
    ("fk_readings_meter_id_meters", "meter_id", "meters"),
    ("fk_readings_account_id_accounts", "account_id", "accounts"),
    ("fk_readings_transaction_id_journal_transactions", "transaction_id", "journal_transactions"),
)
_INDEXES = (
    ("ix_readings_meter_at", "meter_id, at"),
    ("ix_readings_account_at", "account_id, at"),
)
#: Partitions made for the current month and this many after it.
_MONTHS_AHEAD = 2


def _add_months(month: date, count: int) -> date:
    index = month.year * 12 + month.month - 1 + count
    return date(index // 12, index % 12 + 1, 1)


def _partition_sql(month: date) -> str:
    end = _add_months(month, 1)
    return (
        f"CREATE TABLE readings_y{month.year:04d}m{month.month:02d} PARTITION OF readings "
        f"FOR VALUES FROM ('{month.isoformat()} 00:00:00') TO ('{end.isoformat()} 00:00:00')"
    )


def _set_aside(old_name: str) -> str:
    """Rename ``readings`` (its primary key and indexes too); return its id sequence's name."""
    bind = op.get_bind()
    sequence = bind.execute(text("SELECT pg_get_serial_sequence('readings', 'id')")).scalar_one()
    op.execute(f"ALTER TABLE readings RENAME TO {old_name}")
    op.execute(f"ALTER TABLE {old_name} RENAME CONSTRAINT pk_readings TO pk_{old_name}")
    for index, _ in _INDEXES:
        op.execute(f"ALTER INDEX {index} RENAME TO {index}_{old_name}")
    # The sequence stays (so ids go on after the last one) and moves to the new table below.
    op.execute(f"ALTER SEQUENCE {sequence} OWNED BY NONE")
    return str(sequence)


def _finish(old_name: str, sequence: str, primary_key: str) -> None:
    """Copy the rows over, add the keys and indexes, hand over the sequence, drop the old."""
    copy = f"INSERT INTO readings ({_COLUMNS}) SELECT {_COLUMNS} FROM {old_name}"  # noqa: S608
    op.execute(copy)  # (constant names only: no input reaches this SQL)
    op.execute(f"ALTER TABLE readings ADD CONSTRAINT pk_readings PRIMARY KEY ({primary_key})")
    for name, column, target in _FOREIGN_KEYS:
        op.execute(
            f"ALTER TABLE readings ADD CONSTRAINT {name} "
            f"FOREIGN KEY ({column}) REFERENCES {target} (id)"
        )
    for index, columns in _INDEXES:
        op.execute(f"CREATE INDEX {index} ON readings ({columns})")
    op.execute(f"ALTER SEQUENCE {sequence} OWNED BY readings.id")
    op.execute(f"DROP TABLE {old_name}")


def upgrade() -> None:
    """Apply this revision."""
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    sequence = _set_aside("readings_unpartitioned")
    op.execute(
        "CREATE TABLE readings (LIKE readings_unpartitioned INCLUDING DEFAULTS) "
        "PARTITION BY RANGE (at)"
    )
    op.execute("CREATE TABLE readings_default PARTITION OF readings DEFAULT")
    months = {
        date(found.year, found.month, 1)
        for found in bind.execute(
            text("SELECT DISTINCT date_trunc('month', at) FROM readings_unpartitioned")
        ).scalars()
    }
    now = datetime.now(UTC)
    current = date(now.year, now.month, 1)
    months.update(_add_months(current, ahead) for ahead in range(_MONTHS_AHEAD + 1))
    for month in sorted(months):
        op.execute(_partition_sql(month))
    _finish("readings_unpartitioned", sequence, "id, at")


def downgrade() -> None:
    """Revert this revision: one plain table again, every row and id kept."""
    if op.get_bind().dialect.name != "postgresql":
        return
    sequence = _set_aside("readings_partitioned")
    op.execute("CREATE TABLE readings (LIKE readings_partitioned INCLUDING DEFAULTS)")
    _finish("readings_partitioned", sequence, "id")  # drops the partitions with their parent
