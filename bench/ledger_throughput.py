"""Ledger throughput: readings ingested per second, webhook latency, balance read latency.

Runs the real service (`python -m prepaid_ledger serve`) as a subprocess and talks HTTP:
- readings/s with batches of 500 (10 meters x 50 readings, time-of-use tariff), on SQLite and
  on PostgreSQL (a throwaway server started from Debian's binaries, skipped if absent);
- webhook-to-credited latency p50/p99: the ledger commits the credit before it answers, so
  the response time of a signed Stripe delivery is the time until the money is credited;
- balance read latency (GET /api/v1/accounts/{id}) with 1 thousand and with 1 million journal
  entries in the ledger, half of them on the account's book (each added transaction has one
  entry on the account and one on a system book): the stored balance keeps it flat.

    scripts/run python bench/ledger_throughput.py [--batches 20] [--entries 1000000]

Last line: ``ledger_throughput: sqlite_readings_per_s=N postgres_readings_per_s=N
webhook_p99_ms=N balance_read_ratio_1m_1k=N``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import stripe

ADMIN = "bench-admin-token"
SECRET = "whsec_bench_secret"  # noqa: S105 - a throwaway secret
HEADERS = {"Authorization": f"Bearer {ADMIN}"}
T0 = datetime(2026, 1, 5, tzinfo=UTC)
#: The benches' time-of-use tariff (night, day, evening) with a daily standing charge.
TOU_TARIFF: dict[str, Any] = {
    "currency": "EUR",
    "unit": "kWh",
    "kind": "tou",
    "standing_charge_minor_per_day": 20,
    "segments": [
        {"start": "00:00", "price": "0.12"},
        {"start": "07:00", "price": "0.31"},
        {"start": "22:00", "price": "0.18"},
    ],
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def postgres() -> Iterator[str | None]:
    """A throwaway PostgreSQL server (as `nobody` when root); None without the binaries."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"))
    if not found:
        yield None
        return
    bin_dir = found[-1].parent
    root = Path(tempfile.mkdtemp(prefix="ledger-bench-pg-", dir="/tmp"))
    as_user: dict[str, Any] = {}
    if os.geteuid() == 0:
        shutil.chown(root, "nobody", "nogroup")
        as_user = {"user": "nobody", "group": "nogroup", "extra_groups": []}
    subprocess.run(
        [
            str(bin_dir / "initdb"),
            "-D",
            str(root / "data"),
            "-U",
            "ledger",
            "--auth=trust",
            "--no-sync",
        ],
        check=True,
        capture_output=True,
        **as_user,
    )
    port = free_port()
    proc = subprocess.Popen(
        [
            str(bin_dir / "postgres"),
            "-D",
            str(root / "data"),
            "-p",
            str(port),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            "unix_socket_directories=",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        **as_user,
    )
    try:
        for _ in range(300):
            ready = subprocess.run(
                [str(bin_dir / "pg_isready"), "-h", "127.0.0.1", "-p", str(port)],
                capture_output=True,
                check=False,
            )
            if ready.returncode == 0:
                break
            time.sleep(0.1)
        yield f"postgresql+asyncpg://ledger@127.0.0.1:{port}/postgres"
    finally:
        proc.send_signal(signal.SIGINT)  # fast shutdown: do not wait for clients
        proc.wait(10)
        shutil.rmtree(root, ignore_errors=True)


@dataclass(frozen=True)
class Running:
    """A ledger service started by ``running_service``."""

    #: The private listener (API, event stream, landlord page).
    base: str
    #: The public listener (payment webhooks, pay pages), as a payment provider reaches it.
    public: str
    pid: int


@contextlib.asynccontextmanager
async def running_service(data_dir: Path, database_url: str | None) -> AsyncIterator[Running]:
    """Run the ledger service (its log in DATA_DIR/service.log); yield where it listens."""
    port, public_port = free_port(), free_port()
    env = os.environ | {
        "PREPAID_LEDGER_ADMIN_TOKEN": ADMIN,
        "PREPAID_LEDGER_STRIPE_WEBHOOK_SECRET": SECRET,
    }
    args = ["serve", "--data-dir", str(data_dir), "--port", str(port)]
    args += ["--public-port", str(public_port)]  # not the default 8100 another ledger may hold
    if database_url:
        args += ["--database-url", database_url]
    with (data_dir / "service.log").open("ab") as log:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "prepaid_ledger", *args, stdout=log, stderr=log, env=env
        )
        base = f"http://127.0.0.1:{port}"
        try:
            async with aiohttp.ClientSession() as http:
                for _ in range(600):
                    with contextlib.suppress(aiohttp.ClientError):
                        async with http.get(base + "/api/v1/health") as resp:
                            if resp.status == 200:
                                break
                    await asyncio.sleep(0.05)
            yield Running(base, f"http://127.0.0.1:{public_port}", proc.pid)
        finally:
            proc.terminate()
            await proc.wait()


@contextlib.asynccontextmanager
async def service(data_dir: Path, database_url: str | None) -> AsyncIterator[str]:
    """Run the ledger service; yield its base URL."""
    async with running_service(data_dir, database_url) as running:
        yield running.base


def checkout_completed(reference: str, amount_minor: int) -> str:
    """A Stripe ``checkout.session.completed`` event paying AMOUNT to the account REFERENCE."""
    event = {
        "id": f"evt_{secrets.token_hex(12)}",
        "object": "event",
        "type": "checkout.session.completed",
        "created": int(time.time()),
        "livemode": False,
        "data": {
            "object": {
                "id": f"cs_test_{secrets.token_hex(12)}",
                "object": "checkout.session",
                "amount_total": amount_minor,
                "currency": "eur",
                "client_reference_id": reference,
                "payment_status": "paid",
                "status": "complete",
                "payment_intent": f"pi_{secrets.token_hex(12)}",
                "metadata": {},
            }
        },
    }
    return json.dumps(event)


def stripe_signed(body: str, secret: str = SECRET) -> dict[str, str]:
    """The headers of one delivery of BODY signed as Stripe signs it (now; each retry anew)."""
    return {
        "Stripe-Signature": stripe.WebhookSignature.generate_signature_header(
            body, secret, timestamp=int(time.time())
        ),
        "Content-Type": "application/json",
    }


async def call(
    http: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    headers: dict[str, str] | None = None,
    **kwargs: Any,
) -> Any:
    async with http.request(method, url, headers=HEADERS | (headers or {}), **kwargs) as resp:
        body = await resp.json()
        if resp.status >= 300:
            raise RuntimeError(f"{method} {url}: {resp.status} {body}")
        return body


async def readings_per_second(base: str, batches: int) -> float:
    async with aiohttp.ClientSession() as http:
        tariff = await call(
            http,
            "POST",
            base + "/api/v1/tariffs",
            json=TOU_TARIFF | {"name": "TOU"},
        )
        meters = []
        for i in range(10):
            account = await call(
                http,
                "POST",
                base + "/api/v1/accounts",
                json={"name": f"bench {i}", "currency": "EUR", "timezone": "Europe/Berlin"},
            )
            meters.append(
                await call(
                    http,
                    "POST",
                    base + "/api/v1/meters",
                    json={
                        "account_id": account["id"],
                        "tariff_id": tariff["id"],
                        "name": "m",
                        "unit": "kWh",
                    },
                )
            )
        step = 0
        start = time.perf_counter()
        for _ in range(batches):
            readings = []
            for _ in range(50):
                step += 1
                at = (T0 + timedelta(minutes=5 * step)).isoformat()
                readings.extend(
                    {"meter_id": m["id"], "value": f"{step * 0.137:.3f}", "at": at} for m in meters
                )
            await call(http, "POST", base + "/api/v1/readings", json={"readings": readings})
        elapsed = time.perf_counter() - start
    return batches * 500 / elapsed


async def webhook_latencies(base: str, count: int) -> list[float]:
    async with aiohttp.ClientSession() as http:
        account = await call(
            http,
            "POST",
            base + "/api/v1/accounts",
            json={"name": "webhooks", "currency": "EUR", "timezone": "UTC"},
        )
        latencies = []
        for _ in range(count):
            body = checkout_completed(account["number"], 500)
            headers = stripe_signed(body)
            start = time.perf_counter()
            async with http.post(base + "/webhooks/stripe", data=body, headers=headers) as resp:
                result = await resp.json()
            latencies.append((time.perf_counter() - start) * 1000)
            if result.get("outcome") != "credited":
                raise RuntimeError(f"webhook not credited: {result}")
        balance = await call(http, "GET", f"{base}/api/v1/accounts/{account['id']}")
        if balance["balance_minor"] != 500 * count:
            raise RuntimeError("webhook credits do not add up")
    return latencies


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def balance_read_ms(base: str, account_id: int, reads: int = 300) -> float:
    async with aiohttp.ClientSession() as http:
        times = []
        for _ in range(reads):
            start = time.perf_counter()
            await call(http, "GET", f"{base}/api/v1/accounts/{account_id}")
            times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def add_entries(db_path: Path, account_id: int, entries: int) -> None:
    """Append balanced transactions (customer leg + clearing leg) straight into the journal."""
    with contextlib.closing(sqlite3.connect(db_path)) as db, db:
        book = db.execute("SELECT book_id FROM accounts WHERE id = ?", (account_id,)).fetchone()[0]
        other = db.execute("SELECT id FROM books WHERE kind = 'system' LIMIT 1").fetchone()[0]
        start = db.execute("SELECT COALESCE(MAX(id), 0) FROM journal_transactions").fetchone()[0]
        now = datetime.now(UTC).replace(tzinfo=None).isoformat(sep=" ")
        txns = entries // 2
        db.executemany(
            "INSERT INTO journal_transactions (id, kind, account_id, description, created_at) "
            "VALUES (?, 'adjustment', ?, 'bench', ?)",
            ((start + i + 1, account_id, now) for i in range(txns)),
        )
        db.executemany(
            "INSERT INTO journal_entries (transaction_id, book_id, amount_minor) VALUES (?, ?, ?)",
            (
                row
                for i in range(txns)
                for row in ((start + i + 1, book, 1), (start + i + 1, other, -1))
            ),
        )
        db.execute("UPDATE books SET balance_minor = balance_minor + ? WHERE id = ?", (txns, book))
        db.execute("UPDATE books SET balance_minor = balance_minor - ? WHERE id = ?", (txns, other))


async def balance_ratio(data_dir: Path, entries: int) -> tuple[float, float]:
    async with service(data_dir, None) as base, aiohttp.ClientSession() as http:
        account = await call(
            http,
            "POST",
            base + "/api/v1/accounts",
            json={"name": "big", "currency": "EUR", "timezone": "UTC"},
        )
        await call(
            http,
            "POST",
            base + "/api/v1/topups",
            json={"account": account["id"], "amount_minor": 100},
            headers={"Idempotency-Key": "seed"},
        )
    add_entries(data_dir / "ledger.sqlite3", account["id"], 1_000)
    async with service(data_dir, None) as base:
        small = await balance_read_ms(base, account["id"])
    add_entries(data_dir / "ledger.sqlite3", account["id"], entries - 1_000)
    async with service(data_dir, None) as base:
        large = await balance_read_ms(base, account["id"])
    return small, large


async def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="ledger-bench-") as tmp:
        root = Path(tmp)
        (root / "sqlite").mkdir()
        async with service(root / "sqlite", None) as base:
            sqlite_rps = await readings_per_second(base, args.batches)
            latencies = await webhook_latencies(base, args.webhooks)
        print(f"sqlite: {sqlite_rps:.0f} readings/s (batches of 500)")
        p50, p99 = percentile(latencies, 0.5), percentile(latencies, 0.99)
        print(f"webhook to credited: p50 {p50:.1f} ms, p99 {p99:.1f} ms ({args.webhooks} events)")
        pg_rps = 0.0
        with postgres() as url:
            if url is None:
                print("postgres: binaries not installed, skipped")
            else:
                (root / "pg").mkdir()
                async with service(root / "pg", url) as base:
                    pg_rps = await readings_per_second(base, args.batches)
                print(f"postgres: {pg_rps:.0f} readings/s (batches of 500)")
        (root / "balance").mkdir()
        small, large = await balance_ratio(root / "balance", args.entries)
        print(
            f"balance read p50: {small:.2f} ms with 1k entries, {large:.2f} ms with "
            f"{args.entries} entries"
        )
    print(
        f"ledger_throughput: sqlite_readings_per_s={sqlite_rps:.0f} "
        f"postgres_readings_per_s={pg_rps:.0f} webhook_p99_ms={p99:.1f} "
        f"balance_read_ratio_1m_1k={large / small:.2f}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--batches", type=int, default=20, help="batches of 500 readings")
    parser.add_argument("--webhooks", type=int, default=300)
    parser.add_argument("--entries", type=int, default=1_000_000)
    asyncio.run(run(parser.parse_args()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
