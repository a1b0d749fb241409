"""Overload: the ledger queues, sheds with 503 + Retry-After, and never answers 500 or loses money.

Issue 24: under a flood of reading batches the pool timed out and requests answered 500. Here
the real service (SQLite and PostgreSQL) gets far more concurrent reading batches and signed
payment webhooks than its (deliberately small) limits; a shed request must have changed
nothing, and every payment must be credited exactly once when its sender retries as Stripe
does.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from prepaid_ledger.api.admission import AdmissionGate, Lane, LaneLimits, Shed, lane_of
from prepaid_ledger.api.error_middleware import error_middleware
from prepaid_ledger.config import settings_from
from prepaid_ledger.services.verify import verify_ledger
from prepaid_ledger.store.database import Database
from prepaid_ledger.store.transient import overload_reason
from pydantic import ValidationError
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import create_async_engine

from tests.ledger.conftest import (
    Ledger,
    PostgresServer,
    free_port,
    fresh_postgres_database,
    make_settings,
    running_ledger,
)
from tests.ledger.webhook_helpers import standard_delivery

pytestmark = pytest.mark.usefixtures("socket_enabled")

T0 = datetime(2026, 5, 4, 8, 0, tzinfo=UTC)
PRICE = "0.25"


# --- a transient database failure inside a handler is 503, a bug is 500 --------------------


class _PgError(Exception):
    """Stands in for asyncpg's error: it carries a SQLSTATE."""

    def __init__(self, sqlstate: str) -> None:
        super().__init__(f"sqlstate {sqlstate}")
        self.sqlstate = sqlstate


def _raising(error: BaseException) -> Any:
    async def handler(_request: web.Request) -> web.StreamResponse:
        raise error

    return handler


POOL_TIMEOUT = PoolTimeoutError(
    "QueuePool limit of size 10 overflow 10 reached, connection timed out, timeout 30.00"
)


@pytest.mark.parametrize(
    "error",
    [
        POOL_TIMEOUT,
        OperationalError("INSERT ...", {}, Exception("database is locked")),
        DBAPIError("SELECT 1", {}, _PgError("53300")),  # too many connections
        DBAPIError("UPDATE ...", {}, _PgError("40P01")),  # deadlock beyond the retries
        DBAPIError("UPDATE ...", {}, _PgError("57014")),  # statement timeout
    ],
    ids=["pool-timeout", "sqlite-locked", "too-many-connections", "deadlock", "statement-timeout"],
)
async def test_a_transient_database_error_in_a_handler_is_503_with_retry_after(
    error: BaseException, caplog: pytest.LogCaptureFixture
) -> None:
    request = make_mocked_request("POST", "/api/v1/readings")
    with caplog.at_level(logging.WARNING):
        response = await error_middleware(request, _raising(error))
    assert isinstance(response, web.Response)
    assert response.status == 503
    assert int(response.headers["Retry-After"]) >= 1
    assert response.content_type == "application/json"
    assert isinstance(response.body, bytes)
    assert b'"code":"overloaded"' in response.body.replace(b" ", b"")
    assert overload_reason(error) is not None
    assert not [r for r in caplog.records if r.exc_info]  # a warning line, no traceback


async def test_a_pool_timeout_wrapped_by_a_handler_is_still_503() -> None:
    """A handler that wraps the pool timeout (``raise ... from``) is still an overload."""
    try:
        try:
            raise POOL_TIMEOUT
        except PoolTimeoutError as inner:
            raise RuntimeError("could not post the readings") from inner
    except RuntimeError as outer:
        wrapped = outer
    response = await error_middleware(
        make_mocked_request("GET", "/api/v1/accounts"), _raising(wrapped)
    )
    assert response.status == 503


async def test_a_real_bug_is_still_a_500_with_its_traceback_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    request = make_mocked_request("GET", "/api/v1/accounts")
    with caplog.at_level(logging.ERROR):
        response = await error_middleware(request, _raising(KeyError("balance")))
    assert response.status == 500
    assert "Retry-After" not in response.headers
    assert any(r.exc_info for r in caplog.records)
    # A bug raised while handling a pool timeout is a bug: only a stated cause counts.
    bug = ValueError("bug in the except clause")
    bug.__context__ = POOL_TIMEOUT
    assert overload_reason(bug) is None


async def test_a_real_pool_timeout_on_the_running_service_is_503(tmp_path: Path) -> None:
    """Admission set far above a one-connection pool: the pool times out, answered 503."""
    settings = make_settings(
        tmp_path,
        None,
        max_active_requests=200,
        max_active_readings=200,
        db_pool_size=1,
        db_max_overflow=0,
        db_pool_timeout_s=0.05,
    )
    async with running_ledger(settings) as ledger:
        account = await ledger.account()
        path = f"/api/v1/accounts/{account['id']}/statement"

        async def get() -> tuple[int, str | None, Any]:
            async with ledger.http.get(
                ledger.base_url + path, headers={"Authorization": "Bearer test-admin-token"}
            ) as resp:
                return resp.status, resp.headers.get("Retry-After"), await resp.json()

        answers = await asyncio.gather(*(get() for _ in range(60)))
    statuses = Counter(status for status, _, _ in answers)
    assert set(statuses) <= {200, 503}, statuses
    assert statuses[503] > 0, statuses  # the pool really timed out
    for status, retry_after, body in answers:
        if status == 503:
            assert retry_after is not None
            assert int(retry_after) >= 1
            assert body["error"]["code"] == "overloaded"


# --- the gate itself --------------------------------------------------------------------------


def _gate(
    capacity: int = 3, readings: int = 1, queued: int = 5, wait: float = 5.0
) -> AdmissionGate:
    return AdmissionGate(
        capacity,
        {
            Lane.PAYMENT: LaneLimits(capacity, queued, wait),
            Lane.API: LaneLimits(capacity, queued, wait),
            Lane.READINGS: LaneLimits(readings, queued, wait),
        },
        reserve=1,
    )


async def test_a_freed_slot_goes_to_a_waiting_payment_before_waiting_readings() -> None:
    gate = _gate(capacity=2, readings=2)
    await gate.acquire(Lane.READINGS)  # readings may hold 1 (2 minus the payment reserve)
    await gate.acquire(Lane.PAYMENT)  # the reserved slot
    order: list[str] = []

    async def wait_for(lane: Lane, name: str) -> None:
        await gate.acquire(lane)
        order.append(name)

    readings = asyncio.create_task(wait_for(Lane.READINGS, "readings"))
    await asyncio.sleep(0)
    payment = asyncio.create_task(wait_for(Lane.PAYMENT, "payment"))
    await asyncio.sleep(0)
    assert gate.queued(Lane.READINGS) == 1
    assert gate.queued(Lane.PAYMENT) == 1
    gate.release(Lane.PAYMENT, 0.01)
    await payment
    assert order == ["payment"]  # the readings batch waited longer, the payment went first
    gate.release(Lane.READINGS, 0.01)
    await readings
    assert order == ["payment", "readings"]


async def test_full_queue_and_long_wait_are_shed_and_leave_nothing_behind() -> None:
    gate = _gate(capacity=2, readings=1, queued=1, wait=0.1)
    await gate.acquire(Lane.READINGS)
    waiting = asyncio.create_task(gate.acquire(Lane.READINGS))
    await asyncio.sleep(0)
    with pytest.raises(Shed, match="queue full") as full:
        await gate.acquire(Lane.READINGS)
    assert full.value.retry_after_s >= 1
    with pytest.raises(Shed, match="no slot within"):
        await waiting
    assert gate.queued(Lane.READINGS) == 0
    assert gate.active[Lane.READINGS] == 1
    # A payment is not held up by the readings lane: the reserve is its own.
    await asyncio.wait_for(gate.acquire(Lane.PAYMENT), 1)
    gate.release(Lane.PAYMENT, 0.0)
    gate.release(Lane.READINGS, 0.0)
    assert gate.total_active == 0
    assert gate.shed[Lane.READINGS] == 2


async def test_a_cancelled_waiter_gives_its_place_back() -> None:
    gate = _gate(capacity=1, readings=1)
    await gate.acquire(Lane.API)
    waiter = asyncio.create_task(gate.acquire(Lane.API))
    await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert gate.queued(Lane.API) == 0
    gate.release(Lane.API, 0.0)
    assert gate.total_active == 0
    await gate.acquire(Lane.API)  # the slot is free again
    assert gate.total_active == 1


def test_lanes() -> None:
    assert lane_of(make_mocked_request("POST", "/webhooks/stripe")) is Lane.PAYMENT
    assert lane_of(make_mocked_request("POST", "/webhooks/standard")) is Lane.PAYMENT
    assert lane_of(make_mocked_request("POST", "/api/v1/readings")) is Lane.READINGS
    assert lane_of(make_mocked_request("GET", "/api/v1/readings/held")) is Lane.API
    assert lane_of(make_mocked_request("POST", "/api/v1/topups")) is Lane.API
    assert lane_of(make_mocked_request("GET", "/api/v1/health")) is None
    assert lane_of(make_mocked_request("GET", "/api/v1/events")) is None


# --- the flood, over HTTP, on SQLite and PostgreSQL ------------------------------------------

ACCOUNTS = 4
METERS = 24  # one Home Assistant sender per meter, all at once
BATCHES = 4  # cumulative readings each meter sends in order (the first is its baseline)
PAYMENTS = 30
#: The senders honour Retry-After, shortened to this (seconds) to keep the test short.
MAX_BACKOFF_S = 1.0


def backoff(headers: Any, rng: random.Random) -> float:
    """Seconds to wait before sending a shed request again: Retry-After, capped, jittered."""
    return min(float(headers["Retry-After"]), MAX_BACKOFF_S) * (0.5 + rng.random() / 2)


@dataclass
class Record:
    """What the senders saw."""

    statuses: Counter[int] = field(default_factory=Counter)
    shed_readings: int = 0
    shed_payments: int = 0
    reading_shed_times: list[float] = field(default_factory=list)
    payment_ok_times: list[float] = field(default_factory=list)
    charged: Counter[int] = field(default_factory=Counter)  # per account, acknowledged
    credited: Counter[int] = field(default_factory=Counter)  # per account, acknowledged
    outcomes: Counter[str] = field(default_factory=Counter)
    bad: list[Any] = field(default_factory=list)

    def check(self, status: int, headers: Any, body: Any) -> None:
        """Note the answer; anything 5xx must be 503 overloaded with Retry-After."""
        self.statuses[status] += 1
        if status >= 500 and (
            status != 503
            or int(headers.get("Retry-After", "0")) < 1
            or not isinstance(body, dict)
            or body.get("error", {}).get("code") != "overloaded"
        ):
            self.bad.append((status, dict(headers), body))


async def _post(http: aiohttp.ClientSession, url: str, **kwargs: Any) -> tuple[int, Any, Any]:
    async with http.post(url, **kwargs) as resp:
        body = await resp.json() if resp.content_type == "application/json" else await resp.text()
        return resp.status, resp.headers, body


async def _send_readings(
    ledger: Ledger, record: Record, meter_id: int, account_id: int, rng: random.Random
) -> None:
    """Send this meter's batches in order, each again after a 503 as Home Assistant does."""
    url = ledger.base_url + "/api/v1/readings"
    headers = {"Authorization": "Bearer test-admin-token"}
    for batch in range(BATCHES):
        at = T0 + timedelta(hours=batch)
        value = f"{100 + 2 * batch + rng.randint(0, 1)}"
        body = {"readings": [{"meter_id": meter_id, "value": value, "at": at.isoformat()}]}
        for _attempt in range(200):
            status, answer_headers, answer = await _post(
                ledger.http, url, json=body, headers=headers
            )
            record.check(status, answer_headers, answer)
            if status == 200:
                for outcome in answer["meters"]:
                    assert outcome["account_id"] == account_id
                    record.charged[account_id] += outcome["charged_minor"]
                    record.charged[account_id] += outcome["standing_charged_minor"]
                break
            assert status == 503, (status, answer)
            record.shed_readings += 1
            record.reading_shed_times.append(time.monotonic())
            await asyncio.sleep(backoff(answer_headers, rng))
        else:
            pytest.fail(f"meter {meter_id}: batch {batch} never admitted")


async def _send_payment(
    ledger: Ledger, record: Record, account_id: int, amount: int, n: int, rng: random.Random
) -> None:
    """Deliver one signed payment; on 503 the same delivery again later, as Stripe does.

    After it was acknowledged, it is delivered once more (providers deliver at least once).
    """
    data = {
        "account": account_id,
        "amount_minor": amount,
        "currency": "EUR",
        "reference": f"pay-{n}",
    }
    raw, headers = standard_delivery(data, msg_id=f"msg_overload_{n}")
    url = ledger.public_url + "/webhooks/standard"
    for _attempt in range(200):
        status, answer_headers, answer = await _post(ledger.http, url, data=raw, headers=headers)
        record.check(status, answer_headers, answer)
        if status == 200:
            record.payment_ok_times.append(time.monotonic())
            record.outcomes[answer["outcome"]] += 1
            assert answer["duplicate"] is False
            record.credited[account_id] += amount
            break
        assert status == 503, (status, answer)
        record.shed_payments += 1
        await asyncio.sleep(backoff(answer_headers, rng))
    else:
        pytest.fail(f"payment {n} never admitted")
    status, _, again = await _post(ledger.http, url, data=raw, headers=headers)
    if status == 200:
        assert again["duplicate"] is True


async def test_a_flood_is_queued_and_shed_never_500_and_loses_nothing(
    tmp_path: Path, database_url: str | None
) -> None:
    rng = random.Random(24)
    settings = make_settings(
        tmp_path,
        database_url,
        max_active_requests=4,
        max_active_readings=2,
        max_queued_readings=6,
        max_readings_wait_s=0.3,
        max_queued_requests=20,
        max_queue_wait_s=2.0,
    )
    async with running_ledger(settings) as ledger:
        tariff = await ledger.tariff(price=PRICE)
        accounts = [(await ledger.account(name=f"Room {i}"))["id"] for i in range(ACCOUNTS)]
        meters = [
            (
                (await ledger.meter(accounts[i % ACCOUNTS], tariff["id"]))["id"],
                accounts[i % ACCOUNTS],
            )
            for i in range(METERS)
        ]
        record = Record()
        payments = [(accounts[n % ACCOUNTS], rng.randint(100, 999), n) for n in range(PAYMENTS)]

        async def payments_later() -> None:
            await asyncio.sleep(0.2)  # arrive while the readings flood is on
            await asyncio.gather(
                *(_send_payment(ledger, record, a, amount, n, rng) for a, amount, n in payments)
            )

        started = time.monotonic()
        await asyncio.gather(
            *(_send_readings(ledger, record, m, a, rng) for m, a in meters), payments_later()
        )
        elapsed = time.monotonic() - started

        # No 500, no 502/504: every 5xx was 503 overloaded with Retry-After.
        assert not record.bad, record.bad[:3]
        assert set(record.statuses) <= {200, 503}, record.statuses
        assert record.shed_readings > METERS, record  # the flood really was shed
        # Webhooks were answered while readings were being shed (payments go first).
        first_shed, last_shed = min(record.reading_shed_times), max(record.reading_shed_times)
        during = [t for t in record.payment_ok_times if first_shed < t < last_shed]
        assert len(during) >= PAYMENTS // 4, (len(during), record.shed_payments)
        # Every payment credited exactly once.
        assert record.outcomes == Counter({"credited": PAYMENTS})
        for account_id in accounts:
            orders = await ledger.ok("GET", f"/api/v1/topups?account={account_id}&limit=500")
            references = [o["reference"] for o in orders["topups"]]
            assert len(references) == len(set(references))
            expected = {f"pay-{n}" for a, _, n in payments if a == account_id}
            assert set(references) == expected
            # Shed requests changed nothing: the balance is exactly what was acknowledged.
            balance = await ledger.balance(account_id)
            assert balance == record.credited[account_id] - record.charged[account_id], account_id
        print(  # the numbers for docs/performance.md
            f"\n{settings.database_url.split(':')[0]}: {METERS * BATCHES} batches + "
            f"{PAYMENTS} payments in {elapsed:.1f} s; answered "
            f"{sum(record.statuses.values())}: {dict(record.statuses)}; shed readings "
            f"{record.shed_readings}, shed payments {record.shed_payments}; payments "
            f"credited while readings were shed: {len(during)}"
        )
    db = Database(settings.database_url)
    try:
        assert await db.read(verify_ledger) == []
    finally:
        await db.close()


def test_the_limits_are_settings_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PREPAID_LEDGER_ADMIN_TOKEN", "t")
    defaults = settings_from(tmp_path, None)
    assert (defaults.max_active_requests, defaults.max_active_readings) == (12, 6)
    assert defaults.db_pool_size + defaults.db_max_overflow > defaults.max_active_requests
    monkeypatch.setenv("PREPAID_LEDGER_MAX_ACTIVE_READINGS", "3")
    monkeypatch.setenv("PREPAID_LEDGER_MAX_READINGS_WAIT_S", "2.5")
    monkeypatch.setenv("PREPAID_LEDGER_DB_POOL_TIMEOUT_S", "4")
    settings = settings_from(tmp_path, None)
    assert settings.max_active_readings == 3
    assert settings.max_readings_wait_s == 2.5
    assert settings.db_pool_timeout_s == 4.0
    gate = AdmissionGate.from_settings(settings)
    assert gate.limits[Lane.READINGS] == LaneLimits(3, 50, 2.5)
    monkeypatch.setenv("PREPAID_LEDGER_MAX_ACTIVE_REQUESTS", "0")
    with pytest.raises(ValidationError, match=r"(?i)max_active_requests"):
        settings_from(tmp_path, None)


# --- failover: a lost, refused or read-only PostgreSQL is 503 too (tests/ledger/test_failover.py)


async def _answer(work: Callable[[], Awaitable[object]]) -> web.Response:
    """Answer a request whose handler runs WORK, through the service's error middleware."""

    async def handler(_request: web.Request) -> web.StreamResponse:
        await work()
        return web.Response(text="done")

    response = await error_middleware(make_mocked_request("POST", "/api/v1/readings"), handler)
    assert isinstance(response, web.Response)
    return response


def _assert_busy(response: web.Response, words: str) -> None:
    """503 overloaded with Retry-After, naming the reason."""
    assert response.status == 503, response.body
    assert int(response.headers["Retry-After"]) >= 1
    assert isinstance(response.body, bytes)
    assert b'"code":"overloaded"' in response.body.replace(b" ", b"")
    assert words.encode() in response.body, response.body


def _server(request: pytest.FixtureRequest) -> PostgresServer:
    # Taken here, after socket_enabled: the session's server binds a port when it starts.
    server: PostgresServer = request.getfixturevalue("postgres_server")
    return server


@pytest.mark.parametrize("hosts", [1, 2], ids=["one-host", "multi-host"])
async def test_no_postgresql_listening_is_503_not_500(hosts: int) -> None:
    """What the ledger meets while the primary is dead: every listed host refuses."""
    query = "&".join(f"host=127.0.0.1:{free_port()}" for _ in range(hosts))
    db = Database(f"postgresql+asyncpg://ledger@/ledger?{query}&target_session_attrs=read-write")
    try:
        response = await _answer(lambda: db.read(lambda s: s.execute(text("SELECT 1"))))
    finally:
        await db.close()
    _assert_busy(response, "could not connect to PostgreSQL (ConnectionRefusedError)")


async def test_a_refused_connection_elsewhere_is_still_a_500() -> None:
    """Only the database driver's refusals are the database's: aiohttp's or ours are faults."""

    async def call_a_closed_port() -> None:
        async with aiohttp.ClientSession() as http:
            await http.get(f"http://127.0.0.1:{free_port()}/")

    async def refuse() -> None:
        raise ConnectionRefusedError("not the database")

    assert (await _answer(call_a_closed_port)).status == 500
    assert (await _answer(refuse)).status == 500


async def test_a_connection_the_server_ended_is_503(request: pytest.FixtureRequest) -> None:
    """A connection lost under a request (as when the primary dies) is answered 503.

    An engine without a pre-ping uses the pooled connection the server ended: SQLAlchemy
    raises "connection is closed" (no SQLSTATE) and marks it invalidated, the error a request
    in flight got when the primary was SIGKILLed.
    """
    server = _server(request)
    url = await fresh_postgres_database(server)
    engine = create_async_engine(url, pool_size=1, max_overflow=0)  # one pooled connection
    try:
        async with engine.connect() as conn:
            pid = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        admin = Database(url)
        try:
            ended = await admin.read(
                lambda s: s.scalar(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            )
        finally:
            await admin.close()
        assert ended is True
        await asyncio.sleep(0.1)  # the client has seen its connection close

        with pytest.raises(DBAPIError) as lost:
            async with engine.connect() as again:
                await again.execute(text("SELECT 1"))
    finally:
        await engine.dispose()
    assert lost.value.connection_invalidated
    assert getattr(lost.value.orig, "sqlstate", None) is None  # only the invalidation says so

    async def fail_as_the_request_did() -> None:
        raise lost.value

    _assert_busy(await _answer(fail_as_the_request_did), "the connection to the database was lost")


async def test_a_standby_not_promoted_yet_is_503(request: pytest.FixtureRequest) -> None:
    """Read-only (SQLSTATE 25006) and "no host accepts writes" both mean: not promoted yet."""
    server = _server(request)
    url = await fresh_postgres_database(server)
    database = url.rsplit("/", 1)[1]
    # A server that takes no host as the kind asked for: what read-write meets on a standby.
    wrong_kind = Database(url.replace(f"/{database}", f"/{database}?target_session_attrs=standby"))
    try:
        response = await _answer(lambda: wrong_kind.read(lambda s: s.execute(text("SELECT 1"))))
    finally:
        await wrong_kind.close()
    _assert_busy(response, "no listed PostgreSQL server accepts writes")
    db = Database(url)
    try:
        await db.write(
            lambda s: s.execute(
                text(f'ALTER DATABASE "{database}" SET default_transaction_read_only = on')
            )
        )
    finally:
        await db.close()
    read_only = Database(url)  # new connections: read-only, as on a hot standby
    try:
        response = await _answer(
            lambda: read_only.write(lambda s: s.execute(text("CREATE TABLE t (x int)")))
        )
    finally:
        await read_only.close()
    _assert_busy(response, "PostgreSQL 25006")


async def test_a_misconfigured_or_buggy_database_call_is_still_a_500(
    request: pytest.FixtureRequest,
) -> None:
    """A database that does not exist, or bad SQL, is a fault to fix, not a busy server."""
    server = _server(request)
    url = await fresh_postgres_database(server)
    missing = Database(url.rsplit("/", 1)[0] + "/no_such_database")
    try:
        response = await _answer(lambda: missing.read(lambda s: s.execute(text("SELECT 1"))))
    finally:
        await missing.close()
    assert response.status == 500
    db = Database(url)
    try:
        response = await _answer(lambda: db.read(lambda s: s.execute(text("SELECT * FROM nix"))))
    finally:
        await db.close()
    assert response.status == 500
