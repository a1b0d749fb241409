"""PostgreSQL failover (issue 24): kill the primary under load, promote the standby, lose nothing.

A primary and a synchronous streaming standby are started from Debian's binaries; the ledger
connects with a multi-host URL (``target_session_attrs=read-write``). Signed Stripe webhooks
and reading batches flow, each sent again until it is acknowledged (as Stripe and Home
Assistant do); in the middle the primary is SIGKILLed and, a little later, the standby is
promoted. Afterwards the promoted server must hold every acknowledged payment exactly once and
every acknowledged reading, and ``prepaid-ledger verify`` must be clean. The outage must have
been answered with 503 + Retry-After, never with a 500.

docs/scaling.md describes the same setup for an operator and quotes the numbers printed here.
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from prepaid_ledger.store.database import Database
from prepaid_ledger.store.models import Reading
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from tests.ledger.conftest import (
    ADMIN_TOKEN,
    Ledger,
    PostgresServer,
    free_port,
    fresh_postgres_database,
    make_settings,
    postgres_bin_dir,
    running_ledger,
)
from tests.ledger.webhook_helpers import checkout_completed, stripe_delivery

pytestmark = pytest.mark.usefixtures("socket_enabled")

#: The standby's name; the primary's synchronous_standby_names waits for it.
STANDBY_NAME = "standby1"
#: Settings both servers start with. fsync is off because the test kills processes, not the
#: machine: what a killed process wrote is still in the page cache. Production keeps fsync on.
COMMON_SETTINGS = (
    "listen_addresses=127.0.0.1",
    "unix_socket_directories=",
    "fsync=off",
    "max_connections=100",
)
PRIMARY_SETTINGS = (
    "wal_level=replica",
    "max_wal_senders=4",
    "synchronous_commit=on",  # with synchronous_standby_names: on the standby before the ack
)
STANDBY_SETTINGS = ("hot_standby=on",)


def _as_nobody() -> dict[str, Any]:
    """PostgreSQL refuses to run as root: run its programs as nobody when the tests are root."""
    if os.geteuid() == 0:
        return {"user": "nobody", "group": "nogroup", "extra_groups": []}
    return {}


@dataclass
class PostgresNode:
    """One PostgreSQL server of the pair: its data directory, port and process."""

    name: str
    bin_dir: Path
    data: Path
    port: int
    settings: tuple[str, ...]
    proc: subprocess.Popen[bytes] | None = None

    @property
    def log(self) -> Path:
        return self.data.parent / f"{self.name}.log"

    def tool(self, name: str) -> str:
        return str(self.bin_dir / name)

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        args = [self.tool("postgres"), "-D", str(self.data), "-p", str(self.port)]
        for setting in self.settings:
            args += ["-c", setting]
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(args, stdout=log, stderr=log, **_as_nobody())
        deadline = time.monotonic() + 30
        while not self.ready():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} did not start: {self.log.read_text()[-2000:]}")
            time.sleep(0.05)

    def ready(self) -> bool:
        probe = [self.tool("pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)]
        return subprocess.run(probe, capture_output=True, check=False).returncode == 0

    def psql(self, *commands: str, database: str = "postgres") -> str:
        """Run each command in its own transaction (ALTER SYSTEM refuses a transaction block)."""
        args = [self.tool("psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "ledger"]
        args += ["-d", database, "-v", "ON_ERROR_STOP=1", "-tA"]
        for command in commands:
            args += ["-c", command]
        return subprocess.run(args, check=True, capture_output=True, text=True).stdout.strip()

    def kill(self) -> None:
        """SIGKILL the postmaster: no shutdown checkpoint, no goodbye to the clients."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def promote(self) -> None:
        """What the operator runs on failover; waits until the server accepts writes."""
        subprocess.run(
            [self.tool("pg_ctl"), "promote", "-D", str(self.data), "-w", "-t", "30"],
            check=True,
            capture_output=True,
            **_as_nobody(),
        )

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGINT)  # fast shutdown
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@dataclass
class ReplicatedPair:
    """A primary and its synchronous streaming standby, and the URL the ledger is given."""

    primary: PostgresNode
    standby: PostgresNode

    @property
    def url(self) -> str:
        """The multi-host URL docs/configuration.md documents: whichever host accepts writes."""
        return (
            f"postgresql+asyncpg://ledger@/ledger?host=127.0.0.1:{self.primary.port}"
            f"&host=127.0.0.1:{self.standby.port}&target_session_attrs=read-write"
        )


def _start_pair(pair: ReplicatedPair) -> None:
    """initdb the primary, pg_basebackup -R the standby, then make replication synchronous."""
    primary, standby = pair.primary, pair.standby
    # initdb's pg_hba.conf with --auth=trust lets 127.0.0.1 in, replication connections too.
    initdb = [primary.tool("initdb"), "-D", str(primary.data), "-U", "ledger", "--auth=trust"]
    initdb += ["--no-sync", "-E", "UTF8"]
    subprocess.run(initdb, check=True, capture_output=True, **_as_nobody())
    primary.start()
    primary.psql("CREATE ROLE replicator WITH REPLICATION LOGIN")
    conninfo = f"host=127.0.0.1 port={primary.port} user=replicator application_name={STANDBY_NAME}"
    backup = [primary.tool("pg_basebackup"), "-d", conninfo, "-D", str(standby.data)]
    backup += ["-R", "-X", "stream", "--no-sync"]  # -R: standby.signal + primary_conninfo
    subprocess.run(backup, check=True, capture_output=True, **_as_nobody())
    standby.start()
    # Only now: a synchronous primary without its standby would wait forever at every commit.
    primary.psql(
        f"ALTER SYSTEM SET synchronous_standby_names = '{STANDBY_NAME}'", "SELECT pg_reload_conf()"
    )
    deadline = time.monotonic() + 15
    query = "SELECT application_name || ' ' || sync_state FROM pg_stat_replication"
    while primary.psql(query) != f"{STANDBY_NAME} sync":
        assert time.monotonic() < deadline, "the standby never became synchronous"
        time.sleep(0.05)
    primary.psql("CREATE DATABASE ledger")  # itself a synchronous commit


@pytest.fixture
def replicated_pair() -> Iterator[ReplicatedPair]:
    """A primary and a synchronous standby (skipped when the PostgreSQL binaries are absent)."""
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        pytest.skip("PostgreSQL binaries not installed (scripts/lib/system-packages.txt)")
    root = Path(tempfile.mkdtemp(prefix="ledger-failover-", dir="/tmp"))
    if os.geteuid() == 0:
        shutil.chown(root, "nobody", "nogroup")
    pair = ReplicatedPair(
        PostgresNode(
            "primary", bin_dir, root / "primary", free_port(), COMMON_SETTINGS + PRIMARY_SETTINGS
        ),
        PostgresNode(
            "standby", bin_dir, root / "standby", free_port(), COMMON_SETTINGS + STANDBY_SETTINGS
        ),
    )
    try:
        _start_pair(pair)
        yield pair
    finally:
        pair.primary.stop()
        pair.standby.stop()
        shutil.rmtree(root, ignore_errors=True)


# --- the senders --------------------------------------------------------------------------

T0 = datetime(2026, 5, 4, 8, 0, tzinfo=UTC)
PRICE_MINOR_PER_KWH = 25  # the flat tariff's "0.25" per kWh, in cents
ACCOUNTS = 4
METERS = 8  # two per account
PAYERS = 4
#: The senders honour Retry-After, shortened to this (seconds) to keep the test short.
MAX_BACKOFF_S = 0.2
#: How long the primary stays dead before the standby is promoted (the operator's reaction).
OUTAGE_S = 1.5
#: Acknowledged requests wanted before the kill and again after the promotion.
ACKS_EACH_SIDE = 30


@dataclass(frozen=True)
class Payment:
    """An acknowledged payment: to whom, how much, and its event id for a redelivery."""

    account_id: int
    amount: int
    event_id: str


@dataclass
class Traffic:
    """What the senders saw, with the times needed to place it around the failover."""

    statuses: Counter[int] = field(default_factory=Counter)
    bad: list[Any] = field(default_factory=list)
    #: (sent, answered, status) of every request.
    answers: list[tuple[float, float, int]] = field(default_factory=list)
    #: session id -> every acknowledged payment.
    payments: dict[str, Payment] = field(default_factory=dict)
    #: (meter id, at, value) of every acknowledged reading.
    readings: list[tuple[int, datetime, Decimal]] = field(default_factory=list)
    #: Retries that found the first attempt applied (its answer was lost with the primary).
    in_doubt_applied: Counter[str] = field(default_factory=Counter)
    acks: int = 0
    acked: asyncio.Event = field(default_factory=asyncio.Event)
    want_acks: int = 0

    def note(self, sent: float, status: int, headers: Any, body: Any) -> None:
        """Keep the answer; any 5xx must be 503 overloaded with Retry-After."""
        self.statuses[status] += 1
        self.answers.append((sent, time.monotonic(), status))
        code = body.get("error", {}).get("code") if isinstance(body, dict) else None
        if status != 200 and (
            status != 503 or int(headers.get("Retry-After", "0")) < 1 or code != "overloaded"
        ):
            self.bad.append((status, body))

    def acknowledged(self) -> None:
        self.acks += 1
        if self.acks >= self.want_acks:
            self.acked.set()

    async def wait_for_acks(self, more: int) -> None:
        self.want_acks, self.acked = self.acks + more, asyncio.Event()
        await self.acked.wait()


async def _send_until_acknowledged(
    ledger: Ledger, traffic: Traffic, url: str, rng: random.Random, **request: Any
) -> Any:
    """POST until a 2xx, waiting Retry-After (capped) after each 503, as the senders do."""
    while True:
        sent = time.monotonic()
        async with ledger.http.post(url, **request) as resp:
            json_body = resp.content_type == "application/json"
            body = await resp.json() if json_body else await resp.text()
            traffic.note(sent, resp.status, resp.headers, body)
            if resp.status == 200:
                return body
            assert resp.status == 503, (resp.status, body)  # anything else: stop at once
            retry_after = float(resp.headers.get("Retry-After", "1"))
        await asyncio.sleep(min(retry_after, MAX_BACKOFF_S) * (0.5 + rng.random() / 2))


async def _pay(
    ledger: Ledger,
    traffic: Traffic,
    stop: asyncio.Event,
    payer: int,
    accounts: list[int],
    rng: random.Random,
) -> None:
    """One Stripe-like sender: a checkout.session.completed after another, each until a 2xx."""
    n = 0
    while not stop.is_set():
        account_id, amount = accounts[(payer + n) % len(accounts)], rng.randint(500, 5000)
        session_id, event_id = f"cs_test_failover_{payer}_{n}", f"evt_failover_{payer}_{n}"
        event = checkout_completed(account_id, amount, session_id=session_id, event_id=event_id)
        body, headers = stripe_delivery(event)
        answer = await _send_until_acknowledged(
            ledger, traffic, ledger.public_url + "/webhooks/stripe", rng, data=body, headers=headers
        )
        assert answer["outcome"] == "credited", answer
        if answer["duplicate"]:
            traffic.in_doubt_applied["payment"] += 1
        traffic.payments[session_id] = Payment(account_id, amount, event_id)
        traffic.acknowledged()
        n += 1
        await asyncio.sleep(0.05)


async def _read(
    ledger: Ledger, traffic: Traffic, stop: asyncio.Event, meter_id: int, rng: random.Random
) -> None:
    """One meter's Home Assistant: a cumulative reading an hour later each time, until a 2xx."""
    value, hour = 1000, 0
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    while not stop.is_set():
        at = T0 + timedelta(hours=hour)
        batch = {"readings": [{"meter_id": meter_id, "value": str(value), "at": at.isoformat()}]}
        answer = await _send_until_acknowledged(
            ledger, traffic, ledger.base_url + "/api/v1/readings", rng, json=batch, headers=headers
        )
        (outcome,) = answer["meters"]
        assert outcome["held"] == 0, outcome
        assert outcome["flagged"] == 0, outcome
        if outcome["duplicates"]:
            traffic.in_doubt_applied["reading"] += 1
        traffic.readings.append((meter_id, at, Decimal(value)))
        traffic.acknowledged()
        value, hour = value + rng.randint(1, 3), hour + 1
        await asyncio.sleep(0.05)


async def _check_payments(ledger: Ledger, traffic: Traffic, accounts: list[int]) -> None:
    """Each acknowledged payment is one succeeded order credited once; a redelivery is a no-op."""
    for account_id in accounts:
        orders = await ledger.ok("GET", f"/api/v1/topups?account={account_id}&limit=500")
        assert orders["next_cursor"] is None
        by_session = Counter(order["provider_payment_id"] for order in orders["topups"])
        expected = {s: p.amount for s, p in traffic.payments.items() if p.account_id == account_id}
        assert set(by_session) == set(expected), account_id
        assert set(by_session.values()) == {1}, by_session.most_common(3)
        for order in orders["topups"]:
            assert order["status"] == "succeeded", order
            assert order["credited_minor"] == expected[order["provider_payment_id"]], order
    # Providers deliver at least once: every payment delivered again now changes nothing.
    for session_id, payment in traffic.payments.items():
        event = checkout_completed(
            payment.account_id, payment.amount, session_id=session_id, event_id=payment.event_id
        )
        body, headers = stripe_delivery(event)
        status, again = await ledger.call(
            "POST", "/webhooks/stripe", data=body, headers=headers, token=None
        )
        assert (status, again["duplicate"]) == (200, True), (session_id, again)


def _expected_balances(
    traffic: Traffic, meters: dict[int, int], accounts: list[int]
) -> dict[int, int]:
    """Payments minus the flat tariff's charge for every kWh read, from what was sent."""
    balances = dict.fromkeys(accounts, 0)
    for payment in traffic.payments.values():
        balances[payment.account_id] += payment.amount
    for meter_id, account_id in meters.items():
        values = [value for m, _, value in traffic.readings if m == meter_id]
        balances[account_id] -= PRICE_MINOR_PER_KWH * int(values[-1] - values[0])
    return balances


async def _stored_readings(session: AsyncSession) -> Counter[tuple[int, datetime, Decimal]]:
    rows = await session.execute(select(Reading.meter_id, Reading.at, Reading.value))
    return Counter((meter_id, at, Decimal(value)) for meter_id, at, value in rows)


async def _check_promoted_server(url: str, traffic: Traffic) -> None:
    """Every acknowledged reading is stored once, and ``prepaid-ledger verify`` is clean."""
    db = Database(url)
    try:
        stored = await db.read(_stored_readings)
    finally:
        await db.close()
    missing = [reading for reading in traffic.readings if stored[reading] != 1]
    assert not missing, missing[:5]
    assert len(stored) == len(traffic.readings)  # nothing stored that was not acknowledged
    verify = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "prepaid_ledger", "verify", "--database-url", url),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await verify.communicate()
    assert verify.returncode == 0, (out, err)
    assert b"verify: ok" in out


async def test_killing_the_primary_loses_no_acknowledged_payment_or_reading(
    replicated_pair: ReplicatedPair, tmp_path: Path
) -> None:
    rng = random.Random(24)
    traffic = Traffic()
    async with running_ledger(make_settings(tmp_path, replicated_pair.url)) as ledger:
        tariff = await ledger.tariff(price="0.25")
        accounts = [(await ledger.account(name=f"Room {i}"))["id"] for i in range(ACCOUNTS)]
        meters = {
            (await ledger.meter(account_id, tariff["id"]))["id"]: account_id
            for account_id in accounts * (METERS // ACCOUNTS)
        }
        stop = asyncio.Event()
        senders = [
            asyncio.create_task(_pay(ledger, traffic, stop, payer, accounts, rng))
            for payer in range(PAYERS)
        ] + [asyncio.create_task(_read(ledger, traffic, stop, m, rng)) for m in meters]
        try:
            async with asyncio.timeout(60):  # generous: a loaded CI machine is slow, not wrong
                await traffic.wait_for_acks(ACKS_EACH_SIDE)
            acks_before = traffic.acks
            killed = time.monotonic()
            replicated_pair.primary.kill()
            await asyncio.sleep(OUTAGE_S)
            await asyncio.to_thread(replicated_pair.standby.promote)
            promoted = time.monotonic()
            async with asyncio.timeout(60):  # generous: a loaded CI machine is slow, not wrong
                await traffic.wait_for_acks(ACKS_EACH_SIDE)
        finally:
            stop.set()
            async with asyncio.timeout(90):
                await asyncio.gather(*senders)

        # The outage was answered, and only with 503 overloaded + Retry-After: never a 500.
        assert not traffic.bad, traffic.bad[:3]
        assert set(traffic.statuses) <= {200, 503}, traffic.statuses
        during = [status for sent, _, status in traffic.answers if killed <= sent <= promoted]
        assert during.count(503) >= METERS, Counter(during)  # traffic flowed into the outage
        assert acks_before >= ACKS_EACH_SIDE
        assert traffic.acks >= acks_before + ACKS_EACH_SIDE

        await _check_payments(ledger, traffic, accounts)
        # A double credit or a lost charge would show in a balance.
        for account_id, balance in _expected_balances(traffic, meters, accounts).items():
            assert await ledger.balance(account_id) == balance, account_id

    # On the promoted server alone (the old primary is dead).
    port = replicated_pair.standby.port
    await _check_promoted_server(f"postgresql+asyncpg://ledger@127.0.0.1:{port}/ledger", traffic)

    oks = [(sent, done) for sent, done, status in traffic.answers if status == 200]
    first_ok = min(done for _, done in oks if done > promoted)
    last_ok_before = max(done for _, done in oks if done < killed)
    print(  # the numbers for docs/scaling.md
        f"\nfailover: {traffic.acks} acknowledged ({len(traffic.payments)} payments, "
        f"{len(traffic.readings)} readings); answers {dict(traffic.statuses)}, of them "
        f"{during.count(503)} 503s to requests sent while no server took writes; primary "
        f"killed to standby promoted {promoted - killed:.2f} s (pg_ctl promote "
        f"{promoted - killed - OUTAGE_S:.2f} s); first 200 {first_ok - promoted:.2f} s after "
        f"the promotion; clients saw no 200 for {first_ok - last_ok_before:.2f} s; retries "
        f"that found their first attempt applied: {dict(traffic.in_doubt_applied)}"
    )


async def _terminate_other_backends(server: PostgresServer, database: str) -> int:
    """End every connection to DATABASE, as the death of a primary ends them; return how many."""
    admin = Database(server.url("postgres"))
    try:
        ended = await admin.read(
            lambda s: s.scalar(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = :database AND pid <> pg_backend_pid()"
                ),
                {"database": database},
            )
        )
    finally:
        await admin.close()
    return int(ended)


async def test_pooled_connections_the_server_ended_do_not_fail_the_next_request(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """After a failover every pooled connection is dead; the next request must not notice.

    The server ending every connection of the ledger's database leaves the pool in the state a
    failover does. Without ``pool_pre_ping`` the first request after it failed (a 503).
    """
    # Taken here, after socket_enabled: the session's server binds a port when it starts.
    postgres_server: PostgresServer = request.getfixturevalue("postgres_server")
    url = await fresh_postgres_database(postgres_server)
    database = url.rsplit("/", 1)[1]
    async with running_ledger(make_settings(tmp_path, url)) as ledger:
        account = (await ledger.account())["id"]
        path = f"/api/v1/accounts/{account}"
        await asyncio.gather(*(ledger.ok("GET", path) for _ in range(8)))  # fill the pool
        assert await _terminate_other_backends(postgres_server, database) >= 2
        await asyncio.sleep(0.1)  # the ledger's side has seen the connections close
        status, body = await ledger.call("GET", path)
        assert status == 200, body
        assert await _terminate_other_backends(postgres_server, database) >= 1
        await asyncio.sleep(0.1)
        body_text, headers = stripe_delivery(checkout_completed(account, 700))
        status, answer = await ledger.call(
            "POST", "/webhooks/stripe", data=body_text, headers=headers, token=None
        )
        assert (status, answer["outcome"]) == (200, "credited"), answer
        assert await ledger.balance(account) == 700
