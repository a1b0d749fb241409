"""The landlord's account list with 10,000 rooms: how long one page takes the ledger.

A landlord with a fleet (issue 24) and the landlord page (issue 25) ask the ledger for one
page of accounts at a time (``GET /api/v1/accounts?limit=50``, searched and filtered on the
server), and Home Assistant's integration pages through them 500 at a time. Each row carries
the account's balance, supply decision and days left. This bench seeds ``--accounts`` rooms
straight into the database of a running service (the rows ``create_account`` writes, bulk:
10,000 API calls would take minutes), then times each kind of request ``--repeat`` times,
over HTTP, against this checkout and, with ``--baseline DIR``, another revision's sources in
the same run (make DIR with ``git worktree add --detach DIR REV`` outside the environment):

    scripts/run python bench/account_list.py [--accounts 10000] [--repeat 20]
        [--baseline /tmp/ledger-base] [--postgres]

Per request kind: p50 and p99 in ms. Last line: ``account_list: page50_p50_ms=N
page500_p50_ms=N`` for this checkout.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import asyncpg

sys.path.insert(0, str(Path(__file__).parent))
from ingest_batches import ledger, revision
from ledger_throughput import ADMIN, percentile, postgres
from prepaid_ledger.domain.account_number import account_number_for
from prepaid_ledger.services.accounts import stored_settings
from prepaid_meter_contract.accounts import AccountInput

KINDS = {
    "page of 50": "/api/v1/accounts?limit=50",
    "search, page of 50": "/api/v1/accounts?limit=50&q=room%2099",
    "supply off, page of 50": "/api/v1/accounts?limit=50&supply=off",
    "page of 500": "/api/v1/accounts?limit=500",
}


def rows(count: int) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    """Books and accounts of COUNT rooms, as ``create_account`` writes them (no audit rows)."""
    policy = json.dumps(stored_settings(AccountInput(name="x", currency="EUR", timezone="UTC")))
    now = datetime.now(UTC).replace(tzinfo=None)
    books, accounts = [], []
    for n in range(1, count + 1):
        books.append((n, f"customer:{n}", "customer", "EUR", 0))
        name = f"Block {n // 100:03d} Room {n % 100:02d}"
        accounts.append(
            (n, account_number_for(n), name, "EUR", "UTC", "open", policy, n, False, 0, now, now)
        )
    return books, accounts


INSERT_BOOK = "INSERT INTO books (id, key, kind, currency, balance_minor) VALUES ({})"
INSERT_ACCOUNT = (
    "INSERT INTO accounts (id, number, name, currency, timezone, status, settings, book_id, "
    "supply_allowed, alert_level, exhausted_since, created_at) VALUES ({})"
)


async def seed(data_dir: Path, url: str | None, count: int) -> None:
    """Insert COUNT rooms into the running service's (already migrated) database."""
    books, accounts = rows(count)
    if url is None:
        with sqlite3.connect(data_dir / "ledger.sqlite3") as db:
            db.executemany(INSERT_BOOK.format(", ".join("?" * 5)), books)
            as_text = [(*a[:10], str(a[10]), str(a[11])) for a in accounts]  # as SQLAlchemy stores
            db.executemany(INSERT_ACCOUNT.format(", ".join("?" * 12)), as_text)
        return
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
    try:
        await conn.executemany(INSERT_BOOK.format(", ".join(f"${i}" for i in range(1, 6))), books)
        await conn.executemany(
            INSERT_ACCOUNT.format(", ".join(f"${i}" for i in range(1, 13))), accounts
        )
        for table in ("books", "accounts"):  # the next row made through the API gets a new id
            await conn.execute("SELECT setval(pg_get_serial_sequence($1, 'id'), $2)", table, count)
    finally:
        await conn.close()


async def measure(base: str, repeat: int) -> dict[str, list[float]]:
    """Time each kind of request REPEAT times (ms)."""
    headers = {"Authorization": f"Bearer {ADMIN}"}
    times: dict[str, list[float]] = {kind: [] for kind in KINDS}
    async with aiohttp.ClientSession(headers=headers) as http:
        for _ in range(repeat):
            for kind, path in KINDS.items():
                started = time.perf_counter()
                async with http.get(base + path) as resp:
                    assert resp.status == 200, await resp.text()
                    await resp.read()
                times[kind].append((time.perf_counter() - started) * 1000)
    return times


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--baseline", help="another revision's source tree, measured alike")
    parser.add_argument("--postgres", action="store_true", help="PostgreSQL instead of SQLite")
    args = parser.parse_args()
    targets = [("this checkout", None)]
    if args.baseline:
        targets.append((f"baseline {args.baseline}", Path(args.baseline)))
    results: dict[str, dict[str, list[float]]] = {}
    for label, tree in targets:
        database = postgres() if args.postgres else contextlib.nullcontext()
        with tempfile.TemporaryDirectory() as tmp, database as url:
            data_dir = Path(tmp)
            async with ledger(data_dir, url, revision(tree)) as base:
                await seed(data_dir, url, args.accounts)
                results[label] = await measure(base, args.repeat)
    for label, times in results.items():
        for kind, values in times.items():
            print(
                f"{label}: {kind}: p50 {statistics.median(values):.0f} ms, "
                f"p99 {percentile(values, 0.99):.0f} ms ({args.accounts} accounts)"
            )
    mine = results["this checkout"]
    print(
        f"account_list: page50_p50_ms={statistics.median(mine['page of 50']):.0f} "
        f"page500_p50_ms={statistics.median(mine['page of 500']):.0f}"
    )


if __name__ == "__main__":
    asyncio.run(main())
