"""Readings by month: PostgreSQL partitions (migration 0014) and the retention command.

Months are worked out here from today's date (the partitions follow the real clock); the
expected charges are worked by hand from a 1.00 EUR/kWh tariff without a standing charge.
"""

from __future__ import annotations

import asyncio
import csv
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from prepaid_ledger.store import partitions
from prepaid_ledger.store.database import Database
from prepaid_ledger.store.migrate import alembic_config, migrate
from prepaid_ledger.store.models import Account, Book, Meter, Reading, Tariff
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from tests.ledger.conftest import (
    Ledger,
    PostgresServer,
    fresh_postgres_database,
    make_settings,
    running_ledger,
)
from tests.ledger.test_cli import run_cli

pytestmark = pytest.mark.usefixtures("socket_enabled")

ARCHIVE_HEADER = [
    "id",
    "meter_id",
    "account_id",
    "value",
    "at",
    "received_at",
    "status",
    "consumption",
    "charged_minor",
    "transaction_id",
]


def shift(month: date, count: int) -> date:
    """The first day of the month COUNT months from MONTH (worked out without the ledger)."""
    year, index = divmod(month.year * 12 + month.month - 1 + count, 12)
    return date(year, index + 1, 1)


def this_month() -> date:
    now = datetime.now(UTC)
    return date(now.year, now.month, 1)


def name_of(month: date) -> str:
    return f"readings_y{month.year:04d}m{month.month:02d}"


def text_of(month: date) -> str:
    return f"{month.year:04d}-{month.month:02d}"


def at(month: date, day: int, hour: int = 10) -> datetime:
    return datetime(month.year, month.month, day, hour, tzinfo=UTC)


def reading(meter_id: int, value: str, when: datetime) -> dict[str, object]:
    return {"meter_id": meter_id, "value": value, "at": when.isoformat()}


async def query(url: str, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    db = Database(url)
    try:
        async with db.engine.connect() as conn:
            return [tuple(row) for row in await conn.execute(text(sql), params)]
    finally:
        await db.close()


async def execute(url: str, *statements: str) -> None:
    db = Database(url)
    try:
        async with db.engine.begin() as conn:
            for statement in statements:
                await conn.execute(text(statement))
    finally:
        await db.close()


async def ensure(url: str, first: date, count: int) -> list[str]:
    db = Database(url)
    try:

        async def work(session: AsyncSession) -> list[str]:
            return await partitions.ensure_months(session, first, count)

        return await db.write(work)
    finally:
        await db.close()


async def partitions_of_readings(url: str) -> set[str]:
    rows = await query(
        url,
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'readings'::regclass",
    )
    return {row[0] for row in rows}


async def where_readings_are(url: str) -> list[tuple[str, str]]:
    """(value, the table it is stored in) of every reading, by id."""
    rows = await query(url, "SELECT value, tableoid::regclass::text FROM readings ORDER BY id")
    return [(row[0], row[1]) for row in rows]


@pytest.fixture
async def pg_url(socket_enabled: None, request: pytest.FixtureRequest) -> str:
    """A new, empty database on the session's PostgreSQL (sockets allowed first)."""
    server: PostgresServer = request.getfixturevalue("postgres_server")
    return await fresh_postgres_database(server)


async def migrated(url: str) -> str:
    db = Database(url)
    try:
        await migrate(db)
    finally:
        await db.close()
    return url


# --- Pure helpers ----------------------------------------------------------------------------


def test_month_names_bounds_and_parsing() -> None:
    assert partitions.partition_name(date(2026, 1, 1)) == "readings_y2026m01"
    assert partitions.partition_month("readings_y2025m12") == date(2025, 12, 1)
    assert partitions.partition_month("readings_default") is None
    assert partitions.month_bounds(date(2026, 12, 1)) == (
        datetime(2026, 12, 1, tzinfo=UTC),
        datetime(2027, 1, 1, tzinfo=UTC),
    )
    assert partitions.add_months(date(2026, 1, 1), -2) == date(2025, 11, 1)
    assert partitions.parse_month("2026-03") == date(2026, 3, 1)
    for bad in ("2026-13", "2026-00", "26-03", "2026-3", "2026-03-01", "March", ""):
        with pytest.raises(ValueError, match="YYYY-MM"):
            partitions.parse_month(bad)


def test_cutoff_may_not_reach_into_the_last_35_days() -> None:
    # 2026-03-10 minus 35 days is 2026-02-03: February's first day is the latest cutoff.
    ten_march = datetime(2026, 3, 10, 12, tzinfo=UTC)
    partitions.check_cutoff(date(2026, 2, 1), ten_march)
    with pytest.raises(partitions.CutoffTooRecentError, match="latest allowed today is 2026-02"):
        partitions.check_cutoff(date(2026, 3, 1), ten_march)
    # 2026-03-03 minus 35 days is 2026-01-27: only January may be cut at.
    third_march = datetime(2026, 3, 3, tzinfo=UTC)
    partitions.check_cutoff(date(2026, 1, 1), third_march)
    with pytest.raises(partitions.CutoffTooRecentError):
        partitions.check_cutoff(date(2026, 2, 1), third_march)


# --- PostgreSQL: the partitioned table -------------------------------------------------------


async def test_migrate_partitions_readings_by_month(pg_url: str) -> None:
    url = await migrated(pg_url)
    (strategy,) = await query(
        url,
        "SELECT p.partstrat::text, a.attname FROM pg_partitioned_table p "
        "JOIN pg_attribute a ON a.attrelid = p.partrelid AND a.attnum = p.partattrs[0] "
        "WHERE p.partrelid = 'readings'::regclass",
    )
    assert strategy == ("r", "at")  # RANGE over at
    month = this_month()
    expected = {"readings_default"} | {name_of(shift(month, ahead)) for ahead in range(3)}
    assert await partitions_of_readings(url) == expected
    (bound,) = await query(
        url,
        "SELECT pg_get_expr(relpartbound, oid) FROM pg_class WHERE relname = :name",
        name=name_of(month),
    )
    start, end = month.isoformat(), shift(month, 1).isoformat()
    assert bound == (f"FOR VALUES FROM ('{start} 00:00:00') TO ('{end} 00:00:00')",)
    primary_key = await query(
        url,
        "SELECT a.attname FROM pg_index i JOIN pg_attribute a "
        "ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) "
        "WHERE i.indrelid = 'readings'::regclass AND i.indisprimary ORDER BY a.attname",
    )
    assert primary_key == [("at",), ("id",)]
    indexes = await query(
        url, "SELECT indexname FROM pg_indexes WHERE tablename = 'readings' ORDER BY indexname"
    )
    assert indexes == [("ix_readings_account_at",), ("ix_readings_meter_at",), ("pk_readings",)]


@pytest.mark.parametrize("backend", ["postgres"])
async def test_readings_land_in_their_months_partition(ledger: Ledger) -> None:
    url = ledger.settings.database_url
    month = this_month()
    # The migration made this month's; the two before get theirs now. Five months back: none.
    assert await ensure(url, shift(month, -2), 3) == [
        name_of(shift(month, -2)),
        name_of(shift(month, -1)),
    ]
    assert await ensure(url, shift(month, -2), 3) == []  # idempotent
    tariff = await ledger.tariff(price="1.00")
    account = await ledger.account()
    meter = (await ledger.meter(account["id"], tariff["id"]))["id"]
    readings = [
        reading(meter, "100", at(shift(month, -5), 2)),
        reading(meter, "110", at(shift(month, -2), 3)),
        reading(meter, "120", at(shift(month, -1), 3)),
        reading(meter, "130", at(month, 1, 0)),  # the month's first instant: never in the future
    ]
    await ledger.ok("POST", "/api/v1/readings", json={"readings": readings})
    assert await where_readings_are(url) == [
        ("100", "readings_default"),
        ("110", name_of(shift(month, -2))),
        ("120", name_of(shift(month, -1))),
        ("130", name_of(month)),
    ]
    ids_before = await query(url, "SELECT id, value FROM readings ORDER BY id")

    # A partition made for a month the default partition already holds rows of takes them over.
    assert await ensure(url, shift(month, -5), 1) == [name_of(shift(month, -5))]
    assert (await where_readings_are(url))[0] == ("100", name_of(shift(month, -5)))
    assert await query(url, "SELECT count(*) FROM readings_default") == [(0,)]
    assert await query(url, "SELECT id, value FROM readings ORDER BY id") == ids_before
    # It has the parent's primary key, foreign keys and indexes, like a partition made empty.
    moved = await query(
        url,
        "SELECT contype::text, count(*) FROM pg_constraint "
        "WHERE conrelid = CAST(:name AS regclass) AND contype IN ('f', 'p') "
        "GROUP BY contype ORDER BY contype",
        name=name_of(shift(month, -5)),
    )
    assert moved == [("f", 3), ("p", 1)]
    index_count = "SELECT count(*) FROM pg_indexes WHERE tablename = :name"
    assert await query(url, index_count, name=name_of(shift(month, -5))) == [(3,)]
    # The account was charged as usual: 100 -> 130 kWh at 1.00 EUR.
    assert await ledger.balance(account["id"]) == -3000


async def test_two_processes_creating_the_same_partitions(pg_url: str) -> None:
    url = await migrated(pg_url)
    first = shift(this_month(), 3)
    made = await asyncio.gather(*(ensure(url, first, 3) for _ in range(4)))
    wanted = [name_of(shift(first, ahead)) for ahead in range(3)]
    assert sorted(name for names in made for name in names) == wanted  # each made once
    assert set(wanted) <= await partitions_of_readings(url)


async def test_the_service_creates_the_coming_months_at_start(pg_url: str, tmp_path: Path) -> None:
    url = await migrated(pg_url)
    month = this_month()
    await execute(url, f"DROP TABLE {name_of(shift(month, 1))}", f"DROP TABLE {name_of(month)}")
    assert name_of(month) not in await partitions_of_readings(url)
    async with running_ledger(make_settings(tmp_path, url)) as ledger:
        await ledger.ok("GET", "/api/v1/health")
        assert {name_of(shift(month, ahead)) for ahead in range(3)} <= (
            await partitions_of_readings(url)
        )


async def downgrade_and_upgrade_again(url: str) -> None:
    # Downgrade: one plain table again, every row and id kept, the sequence going on.
    db = Database(url)
    try:
        async with db.engine.begin() as conn:
            await conn.run_sync(lambda c: command.downgrade(alembic_config(c), "0013"))
    finally:
        await db.close()
    assert await query(url, "SELECT relkind::text FROM pg_class WHERE relname = 'readings'") == [
        ("r",)
    ]
    assert await query(url, "SELECT count(*) FROM pg_class WHERE relname LIKE 'readings_y%'") == [
        (0,)
    ]
    assert await query(url, "SELECT id FROM readings ORDER BY id") == [
        (5,),
        (9,),
        (17,),
        (23,),
        (41,),
    ]
    assert await query(url, "SELECT nextval('readings_id_seq')") == [(42,)]
    db = Database(url)
    try:
        await migrate(db)  # and up again
    finally:
        await db.close()
    assert await query(url, "SELECT relkind::text FROM pg_class WHERE relname = 'readings'") == [
        ("p",)
    ]
    assert await query(url, "SELECT count(*) FROM readings") == [(5,)]


async def test_upgrade_from_0013_keeps_rows_ids_and_the_sequence(pg_url: str) -> None:
    url = pg_url
    db = Database(url)
    old = [  # (id, at, value, status): three months with rows, December 2025 without any
        (5, datetime(2025, 11, 3, 8, tzinfo=UTC), "100", "baseline"),
        (9, datetime(2025, 11, 30, 23, 59, 59, tzinfo=UTC), "101.5", "charged"),
        (17, datetime(2026, 1, 1, tzinfo=UTC), "7", "held_surge"),
        (23, datetime(2026, 2, 14, 12, 30, tzinfo=UTC), "102", "charged"),
    ]
    try:
        async with db.engine.begin() as conn:
            await conn.run_sync(lambda c: command.upgrade(alembic_config(c), "0013"))

        async def fill(session: AsyncSession) -> None:
            session.add(Book(id=1, key="customer:1", kind="customer", currency="EUR"))
            session.add(Tariff(id=1, name="Flat", currency="EUR", unit="kWh", kind="flat"))
            await session.flush()
            session.add(
                Account(id=1, name="Old", currency="EUR", timezone="UTC", book_id=1, settings={})
            )
            await session.flush()
            session.add(Meter(id=1, name="M", unit="kWh", tariff_id=1, account_id=1))
            await session.flush()
            for reading_id, when, value, status in old:
                session.add(
                    Reading(
                        id=reading_id,
                        meter_id=1,
                        account_id=1,
                        value=Decimal(value),
                        at=when,
                        status=status,
                    )
                )
            await session.flush()
            # As if readings 24 to 40 had been written and removed: the next id is 41.
            await session.execute(text("SELECT setval('readings_id_seq', 40)"))

        await db.write(fill)
        await migrate(db)

        async def add_one(session: AsyncSession) -> int:
            row = Reading(
                meter_id=1,
                account_id=1,
                value=Decimal(103),
                at=datetime(2026, 2, 15, tzinfo=UTC),
                status="charged",
            )
            session.add(row)
            await session.flush()
            return row.id

        assert await db.write(add_one) == 41
    finally:
        await db.close()
    rows = await query(
        url,
        "SELECT id, to_char(at, 'YYYY-MM-DD HH24:MI:SS'), value, status, "
        "tableoid::regclass::text FROM readings",
    )
    assert sorted(rows) == [
        (5, "2025-11-03 08:00:00", "100", "baseline", "readings_y2025m11"),
        (9, "2025-11-30 23:59:59", "101.5", "charged", "readings_y2025m11"),
        (17, "2026-01-01 00:00:00", "7", "held_surge", "readings_y2026m01"),
        (23, "2026-02-14 12:30:00", "102", "charged", "readings_y2026m02"),
        (41, "2026-02-15 00:00:00", "103", "charged", "readings_y2026m02"),
    ]
    names = await partitions_of_readings(url)
    assert {"readings_y2025m11", "readings_y2026m01", "readings_y2026m02"} <= names
    assert "readings_y2025m12" not in names  # no reading was taken in December 2025
    assert await query(url, "SELECT pg_get_serial_sequence('readings', 'id')") == [
        ("public.readings_id_seq",)
    ]

    await downgrade_and_upgrade_again(url)


# --- Retention (SQLite and PostgreSQL) -------------------------------------------------------


async def fill_five_months(ledger: Ledger) -> dict[str, Any]:
    """One meter read over six months, a held reading among the old ones.

    On PostgreSQL the four months before this one get partitions; the fifth does not, so its
    reading is in the default partition.
    """
    month = this_month()
    if not ledger.settings.database_url.startswith("sqlite"):
        await ensure(ledger.settings.database_url, shift(month, -4), 4)
    tariff = await ledger.tariff(price="1.00")
    account = await ledger.account()
    meter = await ledger.meter(account["id"], tariff["id"], model="eastron_sdm120")
    mid = meter["id"]
    readings = [
        reading(mid, "100", at(shift(month, -5), 2)),  # baseline
        reading(mid, "110", at(shift(month, -4), 2)),  # 10 kWh
        reading(mid, "12345678.9", at(shift(month, -4), 3)),  # held: no SDM120 counts that fast
        reading(mid, "120", at(shift(month, -4), 4)),  # 10 kWh from 110
        reading(mid, "130", at(shift(month, -3), 2)),  # 10 kWh
        reading(mid, "131", at(shift(month, -3), 3)),  # 1 kWh
        reading(mid, "140", at(shift(month, -2), 2)),  # 9 kWh
        reading(mid, "150", at(shift(month, -1), 2)),  # 10 kWh
        reading(mid, "151", at(month, 1, 0)),  # 1 kWh
    ]
    for one in readings:  # one by one: the held one must follow 110 to be held
        await ledger.ok("POST", "/api/v1/readings", json={"readings": [one]})
    # 100 -> 151 kWh without the held reading: 51 kWh at 1.00 EUR.
    assert await ledger.balance(account["id"]) == -5100
    return {"account": account, "meter": meter, "month": month}


async def stored_values(url: str) -> list[tuple[str, str]]:
    return [
        (row[0], row[1])
        for row in await query(url, "SELECT value, status FROM readings ORDER BY id")
    ]


ALL_NINE = [
    ("100", "baseline"),
    ("110", "charged"),
    ("12345678.9", "held_surge"),
    ("120", "charged"),
    ("130", "charged"),
    ("131", "charged"),
    ("140", "charged"),
    ("150", "charged"),
    ("151", "charged"),
]


#: The readings of the month four back: not in readings while its partition is detached.
TAKEN_AWAY = {"110", "12345678.9", "120"}


async def test_retention_archives_and_removes_old_months_but_keeps_held(
    ledger: Ledger, tmp_path: Path
) -> None:
    facts = await fill_five_months(ledger)
    url = ledger.settings.database_url
    month = facts["month"]
    cutoff = shift(month, -2)  # always allowed: the month of "35 days ago" is never earlier
    archive = tmp_path / "archive"
    store = ("--database-url", url)
    assert await stored_values(url) == ALL_NINE

    code, out = await run_cli(
        "readings-retention",
        *store,
        "--before",
        text_of(cutoff),
        "--dry-run",
        "--archive-dir",
        str(archive),
    )
    assert code == 0, out
    assert f"{text_of(shift(month, -4))}: would remove 2 reading(s), kept 1 held" in out
    assert "would remove 5 reading(s)" in out
    assert await stored_values(url) == ALL_NINE  # a dry run changes nothing
    assert not archive.exists()

    code, out = await run_cli(
        "readings-retention", *store, "--before", text_of(cutoff), "--archive-dir", str(archive)
    )
    assert code == 0, out
    assert "removed 5 reading(s)" in out
    # Left: the held reading (it waits for a person) and everything from the cutoff on.
    assert await stored_values(url) == [
        ("12345678.9", "held_surge"),
        ("140", "charged"),
        ("150", "charged"),
        ("151", "charged"),
    ]
    files = sorted(path.name for path in archive.iterdir())
    expected_files = {
        f"readings-{text_of(shift(month, back))}.csv": values
        for back, values in ((-5, ["100"]), (-4, ["110", "120"]), (-3, ["130", "131"]))
    }
    assert files == sorted(expected_files)  # no partial file left behind
    for name, values in expected_files.items():
        with (archive / name).open(newline="") as handle:
            rows = list(csv.reader(handle))
        assert rows[0] == ARCHIVE_HEADER
        assert [row[3] for row in rows[1:]] == values
    with (archive / f"readings-{text_of(shift(month, -4))}.csv").open(newline="") as handle:
        first = next(csv.DictReader(handle))
    day2 = shift(month, -4)
    assert first["at"] == f"{day2.isoformat()[:8]}02T10:00:00.000000Z"
    assert (first["status"], first["consumption"], first["charged_minor"]) == (
        "charged",
        "10",
        "1000",
    )
    if not url.startswith("sqlite"):
        names = await partitions_of_readings(url)
        assert name_of(shift(month, -4)) not in names
        assert name_of(shift(month, -3)) not in names
        assert name_of(shift(month, -2)) in names
        held_place = await query(
            url, "SELECT tableoid::regclass::text FROM readings WHERE status = 'held_surge'"
        )
        assert held_place == [("readings_default",)]

    code, out = await run_cli("verify", *store)
    assert (code, out.strip().splitlines()[-1][:10]) == (0, "verify: ok"), out
    assert await ledger.balance(facts["account"]["id"]) == -5100  # money never read them
    held = await ledger.ok("GET", f"/api/v1/readings/held?meter={facts['meter']['id']}")
    assert [one["value"] for one in held["readings"]] == ["12345678.9"]

    # Once more: nothing left to remove, the held reading still kept, no file written.
    code, out = await run_cli(
        "readings-retention", *store, "--before", text_of(cutoff), "--archive-dir", str(archive)
    )
    assert code == 0, out
    assert "removed 0 reading(s)" in out
    assert "kept 1 held" in out
    assert sorted(path.name for path in archive.iterdir()) == files


async def test_retention_without_archive_in_small_chunks(ledger: Ledger) -> None:
    facts = await fill_five_months(ledger)
    url = ledger.settings.database_url
    db = Database(url)
    try:
        summary = await partitions.remove_readings_before(
            db, shift(facts["month"], -1), archive_dir=None, dry_run=False, chunk_rows=2
        )
    finally:
        await db.close()
    assert summary.removed == 6
    assert summary.held_kept == 1
    by_month = {removal.month: removal.removed for removal in summary.months}
    assert by_month == {
        shift(facts["month"], -5): 1,
        shift(facts["month"], -4): 2,
        shift(facts["month"], -3): 2,
        shift(facts["month"], -2): 1,
    }
    assert await stored_values(url) == [
        ("12345678.9", "held_surge"),
        ("150", "charged"),
        ("151", "charged"),
    ]
    assert await ledger.balance(facts["account"]["id"]) == -5100


@pytest.mark.parametrize("backend", ["postgres"])
async def test_retention_finishes_a_partition_an_earlier_run_detached(
    ledger: Ledger, tmp_path: Path
) -> None:
    facts = await fill_five_months(ledger)
    url = ledger.settings.database_url
    month = shift(facts["month"], -4)  # the month with the held reading
    old = name_of(month)
    # A run died after detaching: the table is no partition now, its held reading not moved.
    await execute(url, f"ALTER TABLE readings DETACH PARTITION {old}")
    assert await stored_values(url) == [row for row in ALL_NINE if row[0] not in TAKEN_AWAY]
    code, out = await run_cli(
        "readings-retention",
        "--database-url",
        url,
        "--before",
        text_of(shift(facts["month"], -2)),
        "--archive-dir",
        str(tmp_path),
    )
    assert code == 0, out
    with (tmp_path / f"readings-{text_of(month)}.csv").open() as handle:
        assert [row["value"] for row in csv.DictReader(handle)] == ["110", "120"]
    assert await query(url, "SELECT to_regclass(:name) IS NULL", name=old) == [(True,)]
    held_place = await query(
        url, "SELECT value, tableoid::regclass::text FROM readings WHERE status = 'held_surge'"
    )
    assert held_place == [("12345678.9", "readings_default")]


async def test_bad_or_too_recent_cutoffs_are_refused(ledger: Ledger, tmp_path: Path) -> None:
    await fill_five_months(ledger)
    url = ledger.settings.database_url
    month = this_month()
    archive = tmp_path / "archive"
    for before, why in (
        (text_of(month), "too recent"),
        (text_of(shift(month, 3)), "too recent"),
        (f"{month.year}-13", "not a month as YYYY-MM"),
        ("last-month", "not a month as YYYY-MM"),
    ):
        code, out = await run_cli(
            "readings-retention",
            "--database-url",
            url,
            "--before",
            before,
            "--archive-dir",
            str(archive),
        )
        assert (code, why in out) == (2, True), out
    assert await stored_values(url) == ALL_NINE
    assert not archive.exists()
