"""Receipts for top-ups credited before receipts existed (migration 0009, issue 22).

A ledger is built at revision 0007 with the real migrations and filled with the rows the code
of that time wrote (an order's timeline, its credit's journal transaction with one leg on the
account's customer book and one on the payments clearing book, stored book balances), then
upgraded. The expected numbers, dates and balances below are worked out by hand from the
amounts put in, never by the migration's code.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from prepaid_ledger.domain.account_number import account_number_for
from prepaid_ledger.services.verify import verify_ledger
from prepaid_ledger.store.database import Database
from prepaid_ledger.store.migrate import alembic_config
from sqlalchemy import Connection, DateTime, MetaData, Table, text

from tests.ledger.conftest import make_settings, running_ledger

pytestmark = pytest.mark.usefixtures("socket_enabled")

COUNTER_KEY = "receipt_number"
BACKFILL_KEY = "receipt_backfill_0009"
DAY = datetime(2026, 3, 1, tzinfo=UTC)


def at(hour: int, minute: int = 0) -> datetime:
    """A time of DAY as the ledger stores it: naive UTC."""
    return DAY.replace(hour=hour, minute=minute, tzinfo=None)


@dataclass
class OldLedger:
    """Writes a revision-0007 ledger's rows as that code stored them (services of that time)."""

    conn: Connection
    tables: dict[str, Table] = field(default_factory=dict)
    books: dict[str, int] = field(default_factory=dict)
    accounts: dict[str, dict[str, Any]] = field(default_factory=dict)
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    meters: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        reflected = MetaData()
        reflected.reflect(self.conn)
        self.tables = dict(reflected.tables)

    def setup(self) -> None:
        """The tariff and the system books every account below uses."""
        self.tariff = self.insert(
            "tariffs", name="Flat", currency="EUR", unit="kWh", kind="flat", created_at=at(0)
        )
        for name in ("clearing:payments", "revenue:consumption", "adjustments"):
            self.books[name] = self.insert(
                "books", key=f"system:{name}:EUR", kind="system", currency="EUR", balance_minor=0
            )

    def insert(self, table: str, **values: Any) -> int:
        result = self.conn.execute(self.tables[table].insert().values(**values))
        key = result.inserted_primary_key
        assert key is not None
        return int(key[0])

    def update(self, table: str, row_id: int, **values: Any) -> None:
        t = self.tables[table]
        self.conn.execute(t.update().where(t.c.id == row_id).values(**values))

    def account(self, key: str, name: str, meters: tuple[str, ...]) -> None:
        account_id = self.insert(
            "accounts",
            name=name,
            currency="EUR",
            timezone="Europe/Berlin",
            status="open",
            settings={},
            supply_allowed=True,
            alert_level=0,
            created_at=at(0),
        )
        book_id = self.insert(
            "books", key=f"customer:{account_id}", kind="customer", currency="EUR", balance_minor=0
        )
        number = account_number_for(account_id)
        self.update("accounts", account_id, book_id=book_id, number=number)
        self.books[key] = book_id
        self.accounts[key] = {"id": account_id, "number": number, "name": name}
        for meter in meters:
            meter_id = self.insert(
                "meters",
                name=meter,
                unit="kWh",
                tariff_id=self.tariff,
                account_id=account_id,
                register_offset="0",
                created_at=at(0),
            )
            self.insert(
                "meter_assignments", meter_id=meter_id, account_id=account_id, from_at=at(0)
            )
            self.meters[key] = meter_id

    def post(self, kind: str, account: str, amount: int, other: str, when: datetime) -> int:
        """journal.post: a balanced transaction, and both stored balances moved."""
        txn = self.insert(
            "journal_transactions",
            kind=kind,
            account_id=self.accounts[account]["id"],
            description=f"{kind} {amount}",
            created_at=when,
        )
        books = self.tables["books"]
        for book, signed in ((self.books[account], amount), (self.books[other], -amount)):
            self.insert("journal_entries", transaction_id=txn, book_id=book, amount_minor=signed)
            self.conn.execute(
                books.update()
                .where(books.c.id == book)
                .values(balance_minor=books.c.balance_minor + signed)
            )
        return txn

    def event(self, order: str, status: str, when: datetime, reason: str | None = None) -> None:
        order_id = self.orders[order]["id"]
        self.insert(
            "topup_order_events",
            order_id=order_id,
            status=status,
            at=when,
            reason=reason,
            actor="admin",
        )
        self.update("topup_orders", order_id, status=status, updated_at=when)

    def open(self, order: str, account: str, amount: int, source: str, when: datetime) -> None:
        """topups.new_order: a pending order with its first timeline step."""
        order_id = self.insert(
            "topup_orders",
            account_id=self.accounts[account]["id"],
            account_ref=self.accounts[account]["number"],
            amount_minor=amount,
            currency="EUR",
            status="pending",
            source=source,
            provider=source,
            provider_payment_id=f"{source}-{order}",
            credited_minor=0,
            refunded_minor=0,
            created_at=when,
            updated_at=when,
        )
        self.orders[order] = {"id": order_id, "account": account, "amount": amount}
        self.event(order, "pending", when)

    def credit(self, order: str, when: datetime) -> None:
        """topups.credit_order of revision 0007: post, then processing and succeeded steps."""
        found = self.orders[order]
        # The transaction's time is taken when it is flushed, a moment before the steps'.
        txn = self.post(
            "topup", found["account"], found["amount"], "clearing:payments", when - MOMENT
        )
        self.update("topup_orders", found["id"], transaction_id=txn, credited_minor=found["amount"])
        self.event(order, "processing", when)
        self.event(order, "succeeded", when)

    def refund(self, order: str, amount: int, status: str, when: datetime) -> None:
        found = self.orders[order]
        self.post("refund", found["account"], -amount, "clearing:payments", when)
        self.update("topup_orders", found["id"], refunded_minor=amount)
        self.event(order, status, when, "refund")

    def charge(self, account: str, amount: int, when: datetime) -> None:
        txn = self.post("charge", account, -amount, "revenue:consumption", when)
        self.insert(
            "charge_lines",
            transaction_id=txn,
            account_id=self.accounts[account]["id"],
            meter_id=self.meters[account],
            day=when.date(),
            band="flat",
            quantity="1",
            amount_minor=amount,
        )


MOMENT = timedelta(milliseconds=3)

# Method by source, as the issue names them: manual -> cash, stripe -> card, standard ->
# online, voucher -> voucher, anything else -> other.
# Balances by hand, account by account, in the order things happened:
#   anna: +2000 (o1) = 2000; -730 charge = 1270; +1000 (o5) = 2270; +500 (o8) = 2770;
#         +800 (o10) = 3570; -300 partial refund = 3270; -170 charge = 3100
#   ben:  +1500 (o2) = 1500; -420 charge = 1080; +600 (o6) = 1680; -600 refund = 1080
#   chen: +3000 (o3) = 3000; +250 (o7) = 3250; -100 adjustment = 3150
# Numbers follow the credit time (o2 was opened early but paid late), then the order id
# (o6 and o7 were credited at the same instant; o7's transaction was posted first).
EXPECTED = [
    # number, order, account, amount, method, balance after, credited at
    (1, "o1", "anna", 2000, "cash", 2000, at(9, 0)),
    (2, "o3", "chen", 3000, "online", 3000, at(9, 30)),
    (3, "o5", "anna", 1000, "cash", 2270, at(10, 30)),
    (4, "o2", "ben", 1500, "card", 1500, at(11, 0)),
    (5, "o6", "ben", 600, "cash", 1680, at(12, 0)),
    (6, "o7", "chen", 250, "voucher", 3250, at(12, 0)),
    (7, "o8", "anna", 500, "other", 2770, at(14, 0)),
    (8, "o10", "anna", 800, "card", 3570, at(15, 0)),
]
FINAL_BALANCES = {"anna": 3100, "ben": 1080, "chen": 3150}
ROOMS = {"anna": "Flat 1 kitchen, Flat 1 hall", "ben": "Flat 2", "chen": None}


def fill_0007_ledger(conn: Connection) -> OldLedger:
    old = OldLedger(conn)
    old.setup()
    old.account("anna", "Anna Weber", ("Flat 1 kitchen", "Flat 1 hall"))
    old.account("ben", "Ben Okafor", ("Flat 2",))
    old.account("chen", "Chen Li", ())
    old.open("o1", "anna", 2000, "manual", at(9, 0))
    old.credit("o1", at(9, 0))
    old.open("o2", "ben", 1500, "stripe", at(9, 10))  # a checkout opened, paid later
    old.open("o3", "chen", 3000, "standard", at(9, 30))
    old.credit("o3", at(9, 30))
    old.open("o4", "anna", 500, "stripe", at(9, 40))
    old.event("o4", "failed", at(10, 0), "checkout expired")  # never credited: no receipt
    old.charge("anna", 730, at(10, 15))
    old.open("o5", "anna", 1000, "manual", at(10, 30))
    old.credit("o5", at(10, 30))
    old.credit("o2", at(11, 0))
    old.charge("ben", 420, at(11, 15))
    old.open("o6", "ben", 600, "manual", at(12, 0))
    old.open("o7", "chen", 250, "voucher", at(12, 0))
    old.credit("o7", at(12, 0))
    old.credit("o6", at(12, 0))
    old.post("adjustment", "chen", -100, "adjustments", at(12, 30))
    old.refund("o6", 600, "refunded", at(13, 0))  # still has its receipt: it was paid then
    old.open("o8", "anna", 500, "legacy", at(14, 0))
    old.credit("o8", at(14, 0))
    old.open("o9", "ben", 900, "stripe", at(14, 30))  # still open: no receipt
    old.open("o10", "anna", 800, "stripe", at(15, 0))
    old.credit("o10", at(15, 0))
    old.refund("o10", 300, "partially_refunded", at(15, 30))
    old.charge("anna", 170, at(16, 0))
    return old


def expected_rows(old: OldLedger, first_number: int = 1) -> list[tuple[Any, ...]]:
    rows = []
    for number, order, account, amount, method, balance, credited in EXPECTED:
        who = old.accounts[account]
        rows.append(
            (
                number - 1 + first_number,
                old.orders[order]["id"],
                credited,
                who["id"],
                who["number"],
                who["name"],
                ROOMS[account],
                amount,
                0,
                "EUR",
                method,
                balance,
            )
        )
    return rows


RECEIPTS = text(
    "SELECT number, order_id, issued_at, account_id, account_number, account_name, room, "
    "amount_minor, bonus_minor, currency, method, balance_after_minor "
    "FROM receipts ORDER BY number"
).columns(issued_at=DateTime())
META = text("SELECT value FROM ledger_meta WHERE key = :key")


@dataclass
class Snapshot:
    receipts: list[tuple[Any, ...]]
    counter: str | None
    backfill: str | None


class Ledger0007:
    """A database file or PostgreSQL database moved through the real migrations."""

    def __init__(self, url: str) -> None:
        self.db = Database(url)

    async def to(self, revision: str, direction: str = "upgrade") -> None:
        move = command.upgrade if direction == "upgrade" else command.downgrade
        async with self.db.engine.begin() as conn:
            await conn.run_sync(lambda c: move(alembic_config(c), revision))

    async def fill(self) -> OldLedger:
        async with self.db.engine.begin() as conn:
            return await conn.run_sync(fill_0007_ledger)

    async def snapshot(self) -> Snapshot:
        async with self.db.engine.connect() as conn:
            rows = [tuple(row) for row in await conn.execute(RECEIPTS)]
            counter = (await conn.execute(META, {"key": COUNTER_KEY})).scalar()
            backfill = (await conn.execute(META, {"key": BACKFILL_KEY})).scalar()
        return Snapshot(rows, counter, backfill)

    async def balances(self, old: OldLedger) -> dict[str, int]:
        async with self.db.engine.connect() as conn:
            found = {
                book: int(balance)
                for book, balance in await conn.execute(text("SELECT id, balance_minor FROM books"))
            }
        return {key: found[old.books[key]] for key in FINAL_BALANCES}


def url_for(tmp_path: Path, database_url: str | None) -> str:
    # The file the ledger service of make_settings opens, so it can serve this database.
    return database_url or f"sqlite+aiosqlite:///{tmp_path / 'ledger.sqlite3'}"


async def test_backfill_numbers_old_credits_in_credit_order(
    tmp_path: Path, database_url: str | None
) -> None:
    ledger = Ledger0007(url_for(tmp_path, database_url))
    try:
        await ledger.to("0007")
        old = await ledger.fill()
        assert await ledger.balances(old) == FINAL_BALANCES  # the inputs are what I meant
        await ledger.to("0008")
        assert await ledger.snapshot() == Snapshot([], "0", None)

        await ledger.to("head")
        backfilled = expected_rows(old)
        assert await ledger.snapshot() == Snapshot(
            backfilled, "8", json.dumps({"first": 1, "last": 8})
        )
        assert await ledger.db.read(verify_ledger) == []

        # Downgraded before any later receipt: exactly the backfill goes, its numbers too.
        await ledger.to("0008", "downgrade")
        assert await ledger.snapshot() == Snapshot([], "0", None)
        await ledger.to("head")  # and comes back the same
        assert (await ledger.snapshot()).receipts == backfilled
    finally:
        await ledger.db.close()

    # A credit after the upgrade, through the service's API, takes the next number.
    async with running_ledger(make_settings(tmp_path, database_url)) as service:
        anna = old.accounts["anna"]
        live = await service.topup(anna["id"], 400, "after-backfill")
        assert live["receipt"]["number"] == 9
        assert live["receipt"]["balance_after_minor"] == 3100 + 400
        assert live["receipt"]["room"] == ROOMS["anna"]
        early = await service.ok("GET", f"/api/v1/topups/{old.orders['o2']['id']}/receipt")
        assert early["number"] == 4
        assert early["balance_after_minor"] == 1500
        assert early["method"] == "card"
        assert datetime.fromisoformat(early["issued_at"]) == at(11, 0).replace(tzinfo=UTC)
        refunded = await service.ok("GET", f"/api/v1/topups/{old.orders['o6']['id']}")
        assert refunded["status"] == "refunded"
        assert refunded["receipt"]["number"] == 5
        for never_paid in ("o4", "o9"):
            status, _ = await service.call(
                "GET", f"/api/v1/topups/{old.orders[never_paid]['id']}/receipt"
            )
            assert status == 404

    ledger = Ledger0007(url_for(tmp_path, database_url))
    try:
        after_live = await ledger.snapshot()
        assert [row[0] for row in after_live.receipts] == list(range(1, 10))
        assert after_live.receipts[:8] == backfilled
        assert after_live.counter == "9"
        # A later receipt exists now: deleting 1..8 would leave a gap, so they stay.
        await ledger.to("0008", "downgrade")
        assert await ledger.snapshot() == Snapshot(after_live.receipts, "9", None)
        await ledger.to("head")  # every credited order has its receipt: nothing to do
        assert await ledger.snapshot() == Snapshot(after_live.receipts, "9", None)
    finally:
        await ledger.db.close()


async def test_backfill_follows_receipts_issued_since_revision_0008(
    tmp_path: Path, database_url: str | None
) -> None:
    """A credit made between 0008 and 0009 keeps number 1; the old ones follow it."""
    ledger = Ledger0007(url_for(tmp_path, database_url))
    try:
        await ledger.to("0007")
        old = await ledger.fill()
        await ledger.to("0008")

        def credit_ben_as_0008(conn: Connection) -> None:
            """A cash top-up of 7.00 by revision 0008's code: credited, receipt number 1."""
            live = OldLedger(conn, books=old.books, accounts=old.accounts, meters=old.meters)
            live.open("live", "ben", 700, "manual", at(17, 0))
            live.credit("live", at(17, 0))
            meta = live.tables["ledger_meta"]
            conn.execute(meta.update().where(meta.c.key == COUNTER_KEY).values(value="1"))
            ben = old.accounts["ben"]
            live.insert(
                "receipts",
                number=1,
                order_id=live.orders["live"]["id"],
                issued_at=at(17, 0),
                account_id=ben["id"],
                account_number=ben["number"],
                account_name=ben["name"],
                room="Flat 2",
                amount_minor=700,
                bonus_minor=0,
                currency="EUR",
                method="cash",
                balance_after_minor=1080 + 700,  # ben's 10.80 (worked out below) + 7.00
            )

        async with ledger.db.engine.begin() as conn:
            await conn.run_sync(credit_ben_as_0008)
        first = await ledger.snapshot()
        assert first.counter == "1"

        await ledger.to("head")
        backfilled = expected_rows(old, first_number=2)
        assert await ledger.snapshot() == Snapshot(
            first.receipts + backfilled, "9", json.dumps({"first": 2, "last": 9})
        )
        await ledger.to("0008", "downgrade")
        assert await ledger.snapshot() == Snapshot(first.receipts, "1", None)
        await ledger.to("head")
        assert (await ledger.snapshot()).receipts == first.receipts + backfilled
    finally:
        await ledger.db.close()
