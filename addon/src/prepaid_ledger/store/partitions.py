"""Monthly partitions of ``readings`` (PostgreSQL), and removing old readings (retention).

On PostgreSQL ``readings`` is partitioned by RANGE of ``at`` (migration 0014): one partition a
calendar month in UTC, named ``readings_yYYYYmMM``, and the DEFAULT partition
``readings_default`` for a reading of a month without a partition of its own. SQLite keeps one
plain table; everything here works on both, partitions being PostgreSQL's only.

``ensure_months`` creates missing monthly partitions (the service: the current and the next two
months, at start and once a day). A month whose readings already went to the default partition
(the service did not run for months, a clock far off) is not refused: its rows are moved out
of the default partition into the new one, in the same transaction.

``remove_readings_before`` is the retention behind ``prepaid-ledger readings-retention``:
readings taken before a month's first day are removed, except held readings (their status
starts with ``held_``: they wait for a person) which always stay. Money never depends on old
readings: balances are in the journal, statements in the charge lines, and each meter keeps its
last value itself. Recent readings feed days-left estimates and charts, so a cutoff later than
the first day of the month 35 days ago is refused.

* PostgreSQL: each monthly partition wholly before the cutoff is detached (a brief lock of
  ``readings``), its held readings are moved into ``readings_default``, it is archived if asked
  and then dropped whole; older rows in ``readings_default`` are deleted like on SQLite. A
  detached partition left behind by an interrupted run is finished by the next run.
* SQLite: the rows are deleted month by month, ``CHUNK_ROWS`` per transaction, so the ledger
  stays responsive to the landlord and the integration meanwhile.

With an archive directory, each month's removed readings are first written to
``readings-YYYY-MM.csv`` (a header row, then one row per reading; times in UTC as
``YYYY-MM-DDTHH:MM:SS.ffffffZ``), under a temporary name that is renamed only once the file is
complete and on disk; only then are the rows removed, and only the ones in the file. A month
archived before (held readings resolved since, an interrupted run) gets
``readings-YYYY-MM.2.csv`` and so on: no file is ever overwritten.
"""

from __future__ import annotations

import csv
import logging
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import IO, Final, cast

from prepaid_meter_contract.vocabulary import HELD_PREFIX
from sqlalchemy import (
    ColumnElement,
    CursorResult,
    Table,
    TableClause,
    TextClause,
    and_,
    bindparam,
    column,
    delete,
    func,
    select,
    table,
    text,
)
from sqlalchemy.ext.asyncio import AsyncSession

from prepaid_ledger.domain.money import format_decimal
from prepaid_ledger.store.database import Database
from prepaid_ledger.store.models import Reading, utcnow

_LOGGER = logging.getLogger(__name__)

PARENT: Final = "readings"
DEFAULT_PARTITION: Final = "readings_default"
#: The service keeps partitions for the current month and this many after it.
MONTHS_AHEAD: Final = 2
#: Readings of the last this many days are never removed (days left, charts).
RECENT_DAYS: Final = 35
#: Rows deleted per transaction outside whole partitions.
CHUNK_ROWS: Final = 10_000
#: How long partition changes wait for a lock on ``readings`` before giving up (a long query
#: holds it): a waiting ACCESS EXCLUSIVE request would stall every reading behind it.
LOCK_TIMEOUT: Final = "5s"
#: Advisory lock key ("PART") serialising partition changes between processes.
_PARTITION_LOCK: Final = 0x50415254
_PARTITION_NAME: Final = re.compile(r"^readings_y(\d{4})m(\d{2})$")
_MONTH_TEXT: Final = re.compile(r"^(\d{4})-(\d{2})$")
_READINGS = cast("Table", Reading.__table__)
#: The archive's columns: every column of ``readings``, in the table's order.
COLUMNS: Final = tuple(c.name for c in _READINGS.columns)
_TIMES: Final = frozenset({"at", "received_at"})
_TIME_FORMAT: Final = "%Y-%m-%dT%H:%M:%S.%fZ"
_COLUMN_LIST: Final = ", ".join(COLUMNS)
#: The archive's columns in PostgreSQL's COPY: times formatted as ``_TIME_FORMAT`` does.
_ARCHIVE_COLUMNS: Final = ", ".join(
    f"""to_char({name}, 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS {name}""" if name in _TIMES else name
    for name in COLUMNS
)
#: A held reading, in SQL: its status starts with HELD_PREFIX (no LIKE: ``_`` is a wildcard).
_HELD: Final = f"substr(status, 1, {len(HELD_PREFIX)}) = '{HELD_PREFIX}'"


class CutoffTooRecentError(ValueError):
    """A retention cutoff that would remove readings of the last ``RECENT_DAYS`` days."""


# ---------------------------------------------------------------------------------------------
# Months


def month_of(moment: datetime) -> date:
    """Return the first day of MOMENT's calendar month in UTC."""
    utc = moment.astimezone(UTC)
    return date(utc.year, utc.month, 1)


def add_months(month: date, count: int) -> date:
    """Return the first day of the month COUNT months after MONTH's (before, if negative)."""
    index = month.year * 12 + month.month - 1 + count
    return date(index // 12, index % 12 + 1, 1)


def month_bounds(month: date) -> tuple[datetime, datetime]:
    """Return [start, end) of MONTH in UTC: its first instant and the next month's."""
    end = add_months(month, 1)
    return (
        datetime(month.year, month.month, 1, tzinfo=UTC),
        datetime(end.year, end.month, 1, tzinfo=UTC),
    )


def months_between(first: date, end: date) -> list[date]:
    """Return every month from FIRST's up to, not including, END's."""
    months: list[date] = []
    month = date(first.year, first.month, 1)
    while month < end:
        months.append(month)
        month = add_months(month, 1)
    return months


def format_month(month: date) -> str:
    """Return MONTH as ``YYYY-MM``."""
    return f"{month.year:04d}-{month.month:02d}"


def parse_month(value: str) -> date:
    """Parse ``YYYY-MM`` into its first day; ValueError for anything else."""
    found = _MONTH_TEXT.fullmatch(value.strip())
    if found is None or not 1 <= int(found[2]) <= 12 or int(found[1]) < 1:
        raise ValueError(f"{value!r} is not a month as YYYY-MM (e.g. 2026-01)")
    return date(int(found[1]), int(found[2]), 1)


def partition_name(month: date) -> str:
    """Return the name of MONTH's partition, e.g. ``readings_y2026m01``."""
    return f"readings_y{month.year:04d}m{month.month:02d}"


def partition_month(name: str) -> date | None:
    """Return the month a partition name stands for, or None for any other name."""
    found = _PARTITION_NAME.fullmatch(name)
    if found is None or not 1 <= int(found[2]) <= 12:
        return None
    return date(int(found[1]), int(found[2]), 1)


def latest_cutoff(now: datetime) -> date:
    """Return the latest month retention may cut at: the month RECENT_DAYS days before NOW."""
    return month_of(now - timedelta(days=RECENT_DAYS))


def check_cutoff(before: date, now: datetime) -> None:
    """Refuse a cutoff that would remove readings of the last RECENT_DAYS days."""
    latest = latest_cutoff(now)
    if before > latest:
        raise CutoffTooRecentError(
            f"--before {format_month(before)} is too recent: readings of the last "
            f"{RECENT_DAYS} days feed days-left estimates and charts; the latest allowed "
            f"today is {format_month(latest)}"
        )


def _literal(moment: datetime) -> str:
    """Return a naive UTC timestamp literal, as ``readings.at`` stores it (for DDL)."""
    return f"'{_naive(moment).isoformat(sep=' ')}'"


def _naive(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None)


_IDENTIFIER: Final = re.compile(r"[a-z_][a-z0-9_]*")
_TIMESTAMP: Final = re.compile(r"'\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}'")


def _sql(template: str, **names: str) -> TextClause:
    """Return TEMPLATE as SQL, its ``{names}`` filled in after checking each.

    Table names and DDL's partition bounds cannot be bind parameters: each must be a plain
    identifier (the partition names this module makes) or a timestamp literal (``_literal``).
    ``{columns}``, ``{archived}`` and ``{held}`` are this module's own constant SQL.
    """
    for value in names.values():
        if not (_IDENTIFIER.fullmatch(value) or _TIMESTAMP.fullmatch(value)):
            raise ValueError(f"not a table name or timestamp: {value!r}")
    return text(
        template.format(columns=_COLUMN_LIST, archived=_ARCHIVE_COLUMNS, held=_HELD, **names)
    )


# ---------------------------------------------------------------------------------------------
# Partitions


async def is_partitioned(session: AsyncSession) -> bool:
    """Whether ``readings`` is a partitioned table (PostgreSQL after migration 0014)."""
    if (await session.connection()).dialect.name != "postgresql":
        return False
    found = await session.scalar(
        text(
            "SELECT count(*) FROM pg_partitioned_table p JOIN pg_class c ON c.oid = p.partrelid "
            "WHERE c.oid = to_regclass(:name)"
        ),
        {"name": PARENT},
    )
    return bool(found)


async def _exists(session: AsyncSession, name: str) -> bool:
    """Whether table NAME exists, as committed now (not as this backend's catalog cache has it).

    A plain query of pg_class, not ``to_regclass``: after waiting for another process's lock,
    only a fresh snapshot is sure to see the partition that process just created.
    """
    found = await session.scalar(
        text(
            "SELECT EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n "
            "ON n.oid = c.relnamespace WHERE n.nspname = current_schema() AND c.relname = :name)"
        ),
        {"name": name},
    )
    return bool(found)


async def _lock_partitions(session: AsyncSession) -> None:
    """Bound lock waits and take the partition lock (both until the transaction ends)."""
    await session.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
    await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PARTITION_LOCK})


async def ensure_months(session: AsyncSession, first_month: date, count: int) -> list[str]:
    """Create the monthly partitions of COUNT months from FIRST_MONTH that do not exist yet.

    Returns the names created (none on SQLite, or when all exist: then no lock is taken).
    Safe when several processes do it at once: they take turns on an advisory lock and
    ``CREATE TABLE IF NOT EXISTS``. Rows of such a month already in the default partition are
    moved into the new partition (PostgreSQL refuses a partition the default one has rows of).
    """
    if not await is_partitioned(session):
        return []
    months = [add_months(first_month, ahead) for ahead in range(count)]
    missing = [month for month in months if not await _exists(session, partition_name(month))]
    if not missing:
        return []
    await _lock_partitions(session)
    created: list[str] = []
    for month in missing:
        name = partition_name(month)
        if await _exists(session, name):
            continue  # another process made it while this one waited for the lock
        start, end = month_bounds(month)
        names = {
            "name": name,
            "parent": PARENT,
            "default": DEFAULT_PARTITION,
            "start": _literal(start),
            "end": _literal(end),
        }
        in_month = {"start": _naive(start), "end": _naive(end)}
        stray = await session.scalar(
            _sql(
                "SELECT count(*) FROM {default} WHERE at >= :start AND at < :end",
                default=DEFAULT_PARTITION,
            ),
            in_month,
        )
        if stray:
            _LOGGER.warning(
                "moving %d reading(s) of %s out of %s into the new partition %s",
                stray,
                format_month(month),
                DEFAULT_PARTITION,
                name,
            )
            await session.execute(
                _sql("CREATE TABLE {name} (LIKE {parent} INCLUDING DEFAULTS)", **names)
            )
            await session.execute(
                _sql(
                    "WITH moved AS (DELETE FROM {default} WHERE at >= :start AND at < :end "
                    "RETURNING {columns}) "
                    "INSERT INTO {name} ({columns}) SELECT {columns} FROM moved",
                    **names,
                ),
                in_month,
            )
            # Attaching adds the parent's keys and indexes to the new partition.
            await session.execute(
                _sql(
                    "ALTER TABLE {parent} ATTACH PARTITION {name} "
                    "FOR VALUES FROM ({start}) TO ({end})",
                    **names,
                )
            )
        else:
            await session.execute(
                _sql(
                    "CREATE TABLE IF NOT EXISTS {name} PARTITION OF {parent} "
                    "FOR VALUES FROM ({start}) TO ({end})",
                    **names,
                )
            )
        created.append(name)
    return created


async def ensure_coming_months(db: Database, now: datetime | None = None) -> list[str]:
    """Make sure the current and the next MONTHS_AHEAD months have partitions (PostgreSQL)."""
    if db.is_sqlite:
        return []
    current = month_of(now or utcnow())

    async def work(session: AsyncSession) -> list[str]:
        return await ensure_months(session, current, MONTHS_AHEAD + 1)

    return await db.write(work)


async def monthly_partitions(session: AsyncSession) -> list[tuple[str, date, bool]]:
    """Return (name, month, attached) of every monthly partition table, oldest first.

    ``attached`` is False for a partition detached by a retention run that did not finish.
    """
    rows = await session.execute(
        text(
            "SELECT c.relname, c.relispartition FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = current_schema() AND c.relkind = 'r' "
            "AND c.relname LIKE 'readings\\_y%'"
        )
    )
    found: list[tuple[str, date, bool]] = []
    for name, attached in rows:
        month = partition_month(str(name))
        if month is not None:
            found.append((str(name), month, bool(attached)))
    return sorted(found, key=lambda item: item[1])


# ---------------------------------------------------------------------------------------------
# Retention


@dataclass(slots=True)
class MonthRemoval:
    """What retention removed (or, in a dry run, would remove) of one month."""

    month: date
    removed: int = 0
    held_kept: int = 0
    #: The month's partition that was (or would be) dropped, if it had one.
    partition: str | None = None
    archives: list[Path] = field(default_factory=list)


@dataclass(slots=True)
class RetentionSummary:
    """The outcome of ``remove_readings_before``, month by month."""

    before: date
    dry_run: bool
    months: list[MonthRemoval]

    @property
    def removed(self) -> int:
        """Readings removed in all (or that would be)."""
        return sum(month.removed for month in self.months)

    @property
    def held_kept(self) -> int:
        """Held readings kept in all."""
        return sum(month.held_kept for month in self.months)


def _is_held(rows: TableClause) -> ColumnElement[bool]:
    return func.substr(rows.c.status, 1, len(HELD_PREFIX)) == HELD_PREFIX


def _rows_table(name: str) -> TableClause:
    """Return ``readings`` or one of its partitions, with the model's column types."""
    return table(name, *(column(c.name, c.type) for c in _READINGS.columns))


async def remove_readings_before(
    db: Database,
    before: date,
    *,
    archive_dir: Path | None,
    dry_run: bool,
    now: datetime | None = None,
    chunk_rows: int = CHUNK_ROWS,
) -> RetentionSummary:
    """Remove readings taken before BEFORE's first day (UTC), except held ones.

    ARCHIVE_DIR: write each month's removed readings there first. DRY_RUN: change nothing,
    count what would go. CutoffTooRecentError when BEFORE is later than ``latest_cutoff``.
    """
    check_cutoff(before, now or utcnow())
    months: dict[date, MonthRemoval] = {}
    if not db.is_sqlite and await db.read(is_partitioned):
        for name, month, attached in await db.read(monthly_partitions):
            if month < before:
                removal = months.setdefault(month, MonthRemoval(month))
                await _remove_partition(
                    db,
                    name=name,
                    attached=attached,
                    removal=removal,
                    archive_dir=archive_dir,
                    dry_run=dry_run,
                )
        rows = _rows_table(DEFAULT_PARTITION)
    else:
        rows = _rows_table(PARENT)
    cutoff = month_bounds(before)[0]
    oldest = await db.read(
        lambda session: session.scalar(select(func.min(rows.c.at)).where(rows.c.at < cutoff))
    )
    if oldest is not None:
        for month in months_between(month_of(oldest), before):
            removal = months.setdefault(month, MonthRemoval(month))
            await _remove_rows(
                db,
                rows=rows,
                removal=removal,
                archive_dir=archive_dir,
                dry_run=dry_run,
                chunk_rows=chunk_rows,
            )
    found = [
        months[month]
        for month in sorted(months)
        if months[month].removed or months[month].held_kept or months[month].partition
    ]
    return RetentionSummary(before, dry_run, found)


async def _remove_partition(
    db: Database,
    *,
    name: str,
    attached: bool,
    removal: MonthRemoval,
    archive_dir: Path | None,
    dry_run: bool,
) -> None:
    """Detach one monthly partition, keep its held readings, archive it, drop it."""
    removal.partition = name
    counts = _sql(
        "SELECT count(*) FILTER (WHERE NOT {held}), count(*) FILTER (WHERE {held}) FROM {name}",
        name=name,
    )
    if dry_run:
        removable, held = (await db.read(lambda session: session.execute(counts))).one()
        removal.removed += removable
        removal.held_kept += held
        return

    # Found before readings is locked: the scan of a whole month must not hold up the ingest.
    held_ids = list(
        await db.read(
            lambda session: session.scalars(_sql("SELECT id FROM {name} WHERE {held}", name=name))
        )
    )

    async def move_held(session: AsyncSession, only_found: bool) -> int:
        """Move the partition's held readings into readings_default (no partition holds them)."""
        if only_found:
            insert = _sql(
                "INSERT INTO {parent} ({columns}) SELECT {columns} FROM {name} "
                "WHERE {held} AND id IN :ids",
                parent=PARENT,
                name=name,
            )
            remove = _sql("DELETE FROM {name} WHERE {held} AND id IN :ids", name=name)
            insert = insert.bindparams(bindparam("ids", held_ids, expanding=True))
            remove = remove.bindparams(bindparam("ids", held_ids, expanding=True))
        else:
            insert = _sql(
                "INSERT INTO {parent} ({columns}) SELECT {columns} FROM {name} WHERE {held}",
                parent=PARENT,
                name=name,
            )
            remove = _sql("DELETE FROM {name} WHERE {held}", name=name)
        moved = cast("CursorResult[object]", await session.execute(insert)).rowcount
        await session.execute(remove)
        return moved

    async def detach(session: AsyncSession) -> int:
        await _lock_partitions(session)
        if attached:
            await session.execute(
                _sql("ALTER TABLE {parent} DETACH PARTITION {name}", parent=PARENT, name=name)
            )
        # By id (index look-ups), while readings is locked: held readings never go missing.
        return await move_held(session, only_found=True) if held_ids else 0

    async def move_late(session: AsyncSession) -> int:
        # Held readings that arrived after the look-up: a scan, with readings free again.
        return await move_held(session, only_found=False)

    moved = await db.write(detach) + await db.write(move_late)
    # Counted as kept where they are now, in readings_default.
    _LOGGER.info("detached %s; its %d held reading(s) moved to %s", name, moved, DEFAULT_PARTITION)
    archived: int | None = None
    if archive_dir is not None:
        query = _copy_query("SELECT {archived} FROM {name} ORDER BY id", name=name)
        path, archived = await _archive(db, archive_dir, removal.month, query)
        removal.archives.append(path)

    async def drop(session: AsyncSession) -> int:
        await _lock_partitions(session)
        count = int(await session.scalar(_sql("SELECT count(*) FROM {name}", name=name)) or 0)
        if archived is not None and count != archived:  # nobody writes a detached table
            raise RuntimeError(f"{name} has {count} rows but {archived} were archived")
        await session.execute(_sql("DROP TABLE {name}", name=name))
        return count

    removal.removed += await db.write(drop)
    _LOGGER.info("dropped %s", name)


async def _remove_rows(
    db: Database,
    *,
    rows: TableClause,
    removal: MonthRemoval,
    archive_dir: Path | None,
    dry_run: bool,
    chunk_rows: int,
) -> None:
    """Delete one month's rows but the held ones, in chunks; archive them first if asked."""
    start, end = month_bounds(removal.month)
    in_month = and_(rows.c.at >= start, rows.c.at < end)
    removable_rows = and_(in_month, ~_is_held(rows))
    counted = select(
        func.count().filter(~_is_held(rows)), func.count().filter(_is_held(rows))
    ).where(in_month)
    removable, held = (await db.read(lambda session: session.execute(counted))).one()
    removal.held_kept += held
    if dry_run or not removable:
        removal.removed += removable if dry_run else 0
        return

    async def delete_ids(ids: list[int]) -> int:
        statement = delete(rows).where(rows.c.id.in_(ids), removable_rows)

        async def work(session: AsyncSession) -> int:
            return cast("CursorResult[object]", await session.execute(statement)).rowcount

        return await db.write(work)

    if archive_dir is not None:
        source: str | tuple[TableClause, ColumnElement[bool]] = (rows, removable_rows)
        if not db.is_sqlite:
            source = _copy_query(
                "SELECT {archived} FROM {name} WHERE at >= {start} AND at < {end} "
                "AND NOT {held} ORDER BY id",
                name=rows.name,
                start=_literal(start),
                end=_literal(end),
            )
        path, _ = await _archive(db, archive_dir, removal.month, source)
        removal.archives.append(path)
        # Only the rows in the complete file: a reading arriving meanwhile waits for next time.
        for ids in _ids_in_archive(path, chunk_rows):
            removal.removed += await delete_ids(ids)
        return
    chunk = select(rows.c.id).where(removable_rows).order_by(rows.c.id).limit(chunk_rows)
    while True:
        ids = list(await db.read(lambda session: session.scalars(chunk)))
        if not ids:
            return
        removal.removed += await delete_ids(ids)


# ---------------------------------------------------------------------------------------------
# Archive files


def _copy_query(template: str, **names: str) -> str:
    """Return the text of a query for COPY (``_sql``'s checks and placeholders)."""
    return _sql(template, **names).text


def _free_archive_path(directory: Path, month: date) -> Path:
    """``readings-YYYY-MM.csv``, or ``.2.csv``, ``.3.csv``... if that exists: never overwrite."""
    stem = f"readings-{format_month(month)}"
    path = directory / f"{stem}.csv"
    number = 1
    while path.exists():
        number += 1
        path = directory / f"{stem}.{number}.csv"
    return path


def _csv_value(name: str, value: object) -> object:
    if value is None:
        return ""
    if name in _TIMES and isinstance(value, datetime):
        return value.astimezone(UTC).strftime(_TIME_FORMAT)
    if isinstance(value, Decimal):  # exactly the stored text
        return format_decimal(value)
    return value


def _open_partial(path: Path) -> IO[str]:
    return path.open("w", encoding="utf-8", newline="")


def _sync_file(path: Path) -> None:
    with path.open("rb") as written:
        os.fsync(written.fileno())


def _sync_dir(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


async def _archive(
    db: Database,
    directory: Path,
    month: date,
    source: str | tuple[TableClause, ColumnElement[bool]],
) -> tuple[Path, int]:
    """Write one month's rows to a complete CSV file; return its path and its row count.

    SOURCE: a query for PostgreSQL's COPY, or (table, condition) read CHUNK_ROWS at a time by
    id (SQLite). The file is written as ``.NAME.partial``, flushed to disk, then renamed; on
    failure the partial file is removed (and nothing was deleted).
    """
    path = _free_archive_path(directory, month)
    partial = directory / f".{path.name}.partial"
    try:
        if isinstance(source, str):
            count = await db.read(lambda session: _copy_out(session, source, partial))
        else:
            rows, where = source
            count = await db.read(lambda session: _write_rows(session, rows, where, partial))
        _sync_file(partial)
        partial.replace(path)
        _sync_dir(directory)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    _LOGGER.info("archived %d reading(s) of %s in %s", count, format_month(month), path)
    return path, count


async def _copy_out(session: AsyncSession, query: str, output: Path) -> int:
    """COPY a query's rows to OUTPUT as CSV with a header (PostgreSQL, asyncpg)."""
    connection = await session.connection()
    await connection.execute(text("SELECT 1"))  # the snapshot's transaction has begun
    raw = await connection.get_raw_connection()
    driver = raw.driver_connection
    if driver is None:  # pragma: no cover - a pooled connection always has its driver's
        raise RuntimeError("no database connection for COPY")
    status: str = await driver.copy_from_query(query, output=str(output), format="csv", header=True)
    return int(status.rsplit(" ", 1)[-1])


async def _write_rows(
    session: AsyncSession, rows: TableClause, where: ColumnElement[bool], output: Path
) -> int:
    """Write the ROWS matching WHERE to OUTPUT as CSV, by id, in chunks."""
    count = 0
    last_id = 0
    with _open_partial(output) as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(COLUMNS)
        while True:
            page = (
                await session.execute(
                    select(*rows.c)
                    .where(where, rows.c.id > last_id)
                    .order_by(rows.c.id)
                    .limit(CHUNK_ROWS)
                )
            ).all()
            if not page:
                return count
            writer.writerows(
                [_csv_value(name, value) for name, value in zip(COLUMNS, row, strict=True)]
                for row in page
            )
            count += len(page)
            last_id = int(page[-1].id)


def _ids_in_archive(path: Path, chunk_rows: int) -> Iterator[list[int]]:
    """Yield the ids of an archive file's rows, CHUNK_ROWS at a time."""
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        next(reader)  # the header
        ids: list[int] = []
        for row in reader:
            ids.append(int(row[0]))
            if len(ids) == chunk_rows:
                yield ids
                ids = []
        if ids:
            yield ids
