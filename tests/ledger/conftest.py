"""Fixtures: the ledger service running for real on 127.0.0.1, on SQLite or PostgreSQL.

PostgreSQL: a throwaway cluster (Debian's binaries under /usr/lib/postgresql/*/bin) is
initialised and started once per test session on a free loopback port, as user ``nobody``
when the tests run as root; each test gets its own database.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
from prepaid_ledger.config import Settings
from prepaid_ledger.server import start_sites

ADMIN_TOKEN = "test-admin-token"
STRIPE_SECRET = "whsec_test_stripe_secret"
STANDARD_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def postgres_bin_dir() -> Path | None:
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"))
    if candidates:
        return candidates[-1].parent
    found = shutil.which("postgres")
    return Path(found).parent if found else None


@dataclass
class PostgresServer:
    port: int
    user: str = "ledger"

    def url(self, database: str) -> str:
        return f"postgresql+asyncpg://{self.user}@127.0.0.1:{self.port}/{database}"


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """Start a real PostgreSQL server for the session (skipped when the binaries are absent)."""
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        pytest.skip("PostgreSQL binaries not installed (scripts/lib/system-packages.txt)")
    root = Path(tempfile.mkdtemp(prefix="ledger-pg-", dir="/tmp"))
    data = root / "data"
    as_user: dict[str, Any] = {}
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        shutil.chown(root, "nobody", "nogroup")
        as_user = {"user": "nobody", "group": "nogroup", "extra_groups": []}
    subprocess.run(
        [
            str(bin_dir / "initdb"),
            "-D",
            str(data),
            "-U",
            "ledger",
            "--auth=trust",
            "--no-sync",
            "-E",
            "UTF8",
        ],
        check=True,
        capture_output=True,
        **as_user,
    )
    port = free_port()
    log = root / "postgres.log"
    proc = subprocess.Popen(
        [
            str(bin_dir / "postgres"),
            "-D",
            str(data),
            "-p",
            str(port),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            "unix_socket_directories=",
            "-c",
            "fsync=off",
            "-c",
            "synchronous_commit=off",
            "-c",
            "full_page_writes=off",
            "-c",
            "max_connections=200",
            "-c",
            f"log_directory={root}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        **as_user,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            ready = subprocess.run(
                [str(bin_dir / "pg_isready"), "-h", "127.0.0.1", "-p", str(port)],
                capture_output=True,
                check=False,
            )
            if ready.returncode == 0:
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"PostgreSQL did not start (see {log})")
            time.sleep(0.1)
        yield PostgresServer(port)
    finally:
        proc.send_signal(signal.SIGINT)  # fast shutdown: do not wait for clients
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(root, ignore_errors=True)


_db_counter = itertools.count(1)


async def fresh_postgres_database(server: PostgresServer) -> str:
    name = f"ledger_test_{os.getpid()}_{next(_db_counter)}"
    conn = await asyncpg.connect(
        host="127.0.0.1", port=server.port, user=server.user, database="postgres"
    )
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return server.url(name)


class Ledger:
    """A running ledger service plus an HTTP client for it.

    ``base_url`` is the private listener (everything); ``public_url`` the public one (webhooks,
    pay pages, health).
    """

    def __init__(
        self,
        base_url: str,
        session: aiohttp.ClientSession,
        settings: Settings,
        public_url: str = "",
    ) -> None:
        self.base_url = base_url
        self.public_url = public_url
        self.http = session
        self.settings = settings

    async def call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        token: str | None = ADMIN_TOKEN,
        headers: dict[str, str] | None = None,
        data: bytes | str | None = None,
    ) -> tuple[int, Any]:
        all_headers = dict(headers or {})
        if token is not None:
            all_headers["Authorization"] = f"Bearer {token}"
        async with self.http.request(
            method, self.base_url + path, json=json, data=data, headers=all_headers
        ) as resp:
            if resp.content_type == "application/json":
                return resp.status, await resp.json()
            return resp.status, await resp.text()

    async def ok(self, method: str, path: str, **kwargs: Any) -> Any:
        status, body = await self.call(method, path, **kwargs)
        assert status < 300, (status, body)
        return body

    # Helpers that build the usual fixtures through the public API.
    async def tariff(self, **overrides: Any) -> dict[str, Any]:
        body = {
            "name": "Flat",
            "currency": "EUR",
            "unit": "kWh",
            "kind": "flat",
            "price": "0.25",
            "standing_charge_minor_per_day": 0,
        } | overrides
        body = {key: value for key, value in body.items() if value is not None}
        return await self.ok("POST", "/api/v1/tariffs", json=body)

    async def account(self, **overrides: Any) -> dict[str, Any]:
        body = {
            "name": "Room 1",
            "currency": "EUR",
            "timezone": "Europe/Berlin",
            "emergency_credit_minor": 0,
        } | overrides
        return await self.ok("POST", "/api/v1/accounts", json=body)

    async def meter(
        self, account_id: int, tariff_id: int, unit: str = "kWh", **extra: Any
    ) -> dict[str, Any]:
        body = {"account_id": account_id, "tariff_id": tariff_id, "name": "Meter", "unit": unit}
        return await self.ok("POST", "/api/v1/meters", json=body | extra)

    async def topup(self, account: int | str, amount: int, key: str, **extra: Any) -> Any:
        return await self.ok(
            "POST",
            "/api/v1/topups",
            json={"account": account, "amount_minor": amount} | extra,
            headers={"Idempotency-Key": key},
        )

    async def balance(self, account_id: int) -> int:
        return int((await self.ok("GET", f"/api/v1/accounts/{account_id}"))["balance_minor"])


def make_settings(data_dir: Path, database_url: str | None, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "database_url": database_url or f"sqlite+aiosqlite:///{data_dir / 'ledger.sqlite3'}",
        "admin_token": ADMIN_TOKEN,
        "stripe_webhook_secret": STRIPE_SECRET,
        "standard_webhook_secret": STANDARD_SECRET,
        "watchdog_interval_s": 3600.0,
    } | overrides
    return Settings(**values)


@contextlib.asynccontextmanager
async def running_ledger(settings: Settings) -> AsyncIterator[Ledger]:
    """Serve both listeners on 127.0.0.1 (the service's own server settings, real TCP sites).

    Everything is torn down afterwards.
    """
    listeners = await start_sites(
        settings,
        host="127.0.0.1",
        port=0,
        public_host="127.0.0.1",
        public_port=0,
        shutdown_timeout=2,
    )
    try:
        connector = aiohttp.TCPConnector(limit=100)
        async with aiohttp.ClientSession(connector=connector) as http:
            yield Ledger(listeners.private_url, http, settings, listeners.public_url)
    finally:
        await listeners.cleanup()


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def database_url(backend: str, request: pytest.FixtureRequest) -> str | None:
    if backend == "sqlite":
        return None
    server = request.getfixturevalue("postgres_server")
    return await fresh_postgres_database(server)


@pytest.fixture
async def ledger(tmp_path: Path, database_url: str | None) -> AsyncIterator[Ledger]:
    async with running_ledger(make_settings(tmp_path, database_url)) as running:
        yield running


@pytest.fixture
async def sqlite_ledger(tmp_path: Path) -> AsyncIterator[Ledger]:
    async with running_ledger(make_settings(tmp_path, None)) as running:
        yield running
