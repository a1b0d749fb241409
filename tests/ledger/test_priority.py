"""Payments first (store/priority.py): the order the lock serves, and how bulk work gives way."""

from __future__ import annotations

import asyncio
import mmap
import sys
import tempfile
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prepaid_ledger.services import readings
from prepaid_ledger.store import priority
from prepaid_ledger.store.database import Database
from prepaid_ledger.store.migrate import migrate
from prepaid_ledger.store.priority import GiveWay, Lanes, PriorityLock
from prepaid_ledger.store.transient import StaleReadError, overload_reason
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from tests.ledger.conftest import Ledger


async def _settle() -> None:
    """Let every ready task run until all are waiting again."""
    for _ in range(10):
        await asyncio.sleep(0)


async def test_urgent_waiters_are_served_before_bulk_ones_first_come_within_each() -> None:
    lock = PriorityLock()
    served: list[str] = []

    async def take(name: str, *, urgent: bool) -> None:
        async with lock.held(urgent=urgent):
            served.append(name)
            await asyncio.sleep(0)

    await lock.acquire()
    waiters = [
        asyncio.create_task(take("bulk 1", urgent=False)),
        asyncio.create_task(take("bulk 2", urgent=False)),
        asyncio.create_task(take("urgent 1", urgent=True)),
        asyncio.create_task(take("urgent 2", urgent=True)),
    ]
    await _settle()
    assert served == []  # all wait for the holder
    lock.release()
    await asyncio.gather(*waiters)
    assert served == ["urgent 1", "urgent 2", "bulk 1", "bulk 2"]
    assert not lock.locked()


async def test_a_cancelled_waiter_neither_keeps_nor_loses_the_lock() -> None:
    lock = PriorityLock()
    await lock.acquire()
    gone = asyncio.create_task(lock.acquire(urgent=True))
    handed = asyncio.create_task(lock.acquire(urgent=True))
    after = asyncio.create_task(lock.acquire())
    await _settle()
    gone.cancel()  # cancelled while waiting: simply leaves the queue
    await _settle()
    lock.release()  # handed to the second urgent waiter ...
    handed.cancel()  # ... which is cancelled before it runs: it passes the lock on
    with pytest.raises(asyncio.CancelledError):
        await handed
    await asyncio.wait_for(after, 1)
    assert lock.locked()
    lock.release()
    assert not lock.locked()
    with pytest.raises(RuntimeError):
        lock.release()


async def test_bulk_work_gives_way_until_the_urgent_write_is_done() -> None:
    lanes = Lanes()
    steps: list[str] = []
    release = asyncio.Event()

    async def payment() -> None:
        with lanes.urgent():
            steps.append("payment starts")
            await release.wait()
            steps.append("payment done")

    async def batch() -> None:
        await lanes.give_way(GiveWay(seconds=60))
        steps.append("batch goes on")

    paying = asyncio.create_task(payment())
    await _settle()
    pricing = asyncio.create_task(batch())
    await _settle()
    assert steps == ["payment starts"]  # the batch waits while the payment is in flight
    release.set()
    await asyncio.gather(paying, pricing)
    assert steps == ["payment starts", "payment done", "batch goes on"]
    assert lanes.urgent_in_flight == 0


async def test_bulk_work_in_another_process_gives_way_to_the_payments_published_to_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The backlog worker's lanes watch the count the service's lanes publish (shared memory)."""
    monkeypatch.setattr(priority, "GIVE_WAY_MAX_S", 5.0)
    with tempfile.TemporaryFile() as backing:  # as backlog_worker.py shares it
        backing.truncate(priority.SHARED_COUNT.size)
        fd = backing.fileno()
        service, worker = Lanes(), Lanes()
        service.publish_to(mmap.mmap(fd, priority.SHARED_COUNT.size))
        worker.watch(mmap.mmap(fd, priority.SHARED_COUNT.size))  # a mapping of its own
        steps: list[str] = []
        release = asyncio.Event()

        async def payment() -> None:
            with service.urgent():
                steps.append("payment starts")
                await release.wait()
                steps.append("payment done")

        async def backlog_part() -> None:
            await worker.give_way(GiveWay(seconds=60))
            steps.append("backlog goes on")

        paying = asyncio.create_task(payment())
        await _settle()
        pricing = asyncio.create_task(backlog_part())
        await asyncio.sleep(0.05)
        assert steps == ["payment starts"]
        assert worker.urgent_in_flight == 1
        # A real second process sees the count too.
        script = (
            "import mmap, struct, sys; "
            "print(struct.unpack_from('=q', mmap.mmap(int(sys.argv[1]), 8))[0])"
        )
        seen = await asyncio.create_subprocess_exec(
            sys.executable, "-c", script, str(fd), pass_fds=(fd,), stdout=asyncio.subprocess.PIPE
        )
        assert (await seen.communicate())[0].strip() == b"1"
        release.set()
        await asyncio.gather(paying, pricing)
        assert steps == ["payment starts", "payment done", "backlog goes on"]
        assert worker.urgent_in_flight == 0


async def test_giving_way_is_bounded_per_piece_and_per_transaction(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(priority, "GIVE_WAY_MAX_S", 0.02)
    lanes = Lanes()
    budget = GiveWay(seconds=0.05)
    with lanes.urgent():  # a payment that never finishes (it waits for a row the batch holds)
        loop = asyncio.get_running_loop()
        started = loop.time()
        await lanes.give_way(budget)
        assert 0.015 <= loop.time() - started < 1  # one piece waits at most GIVE_WAY_MAX_S
        for _ in range(5):
            await lanes.give_way(budget)
        assert budget.left <= 0  # the transaction's budget is spent ...
        started = loop.time()
        await lanes.give_way(budget)
        assert loop.time() - started < 0.015  # ... so it no longer waits at all


async def test_on_sqlite_a_waiting_payment_takes_the_writer_before_waiting_batches(
    tmp_path: Path,
) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'ledger.sqlite3'}")
    await migrate(db)
    committed: list[str] = []
    holding = asyncio.Event()
    go_on = asyncio.Event()

    def work(name: str, *, hold: bool = False) -> Callable[[AsyncSession], Awaitable[None]]:
        async def run(session: AsyncSession) -> None:
            await session.execute(text("SELECT 1"))
            if hold:
                holding.set()
                await go_on.wait()
            committed.append(name)

        return run

    first = asyncio.create_task(db.write(work("batch 1", hold=True)))
    await holding.wait()
    second = asyncio.create_task(db.write(work("batch 2")))
    await _settle()
    paid = asyncio.create_task(db.write(work("payment"), urgent=True))
    await _settle()
    go_on.set()
    await asyncio.gather(first, second, paid)
    assert committed == ["batch 1", "payment", "batch 2"]
    await db.close()


@pytest.mark.usefixtures("socket_enabled")
@pytest.mark.parametrize("backend", ["postgres"])  # on SQLite the batch holds the one writer
async def test_a_payment_is_not_held_up_by_a_batch_being_priced_for_its_account(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The batch reads its accounts unlocked while it prices, and locks them only to write."""
    tariff = await ledger.tariff(price="0.10", standing_charge_minor_per_day=0)
    account = await ledger.account()
    meters = [await ledger.meter(account["id"], tariff["id"]) for _ in range(2)]
    t0 = datetime(2026, 5, 4, 8, 0, tzinfo=UTC)

    def batch(value: str, minutes: int) -> dict[str, Any]:
        at = (t0 + timedelta(minutes=minutes)).isoformat()
        return {"readings": [{"meter_id": m["id"], "value": value, "at": at} for m in meters]}

    await ledger.ok("POST", "/api/v1/readings", json=batch("100", 0))  # the baselines
    pricing, go_on = asyncio.Event(), asyncio.Event()

    async def paused(session: AsyncSession, budget: GiveWay) -> None:
        pricing.set()  # the first meter is priced; the batch holds its meters' locks
        await go_on.wait()

    monkeypatch.setattr(readings, "give_way", paused)
    posting = asyncio.create_task(ledger.ok("POST", "/api/v1/readings", json=batch("110", 60)))
    await asyncio.wait_for(pricing.wait(), 10)
    order = await asyncio.wait_for(ledger.topup(account["id"], 5_000, "while-priced"), 10)
    assert order["status"] == "succeeded"
    go_on.set()
    result = await asyncio.wait_for(posting, 10)
    # 2 meters x 10 kWh x 0.10 EUR = 2.00 EUR, charged after the 50.00 EUR top-up.
    assert sum(m["charged_minor"] for m in result["meters"]) == 200
    assert await ledger.balance(account["id"]) == 5_000 - 200


async def test_a_write_whose_unlocked_read_went_stale_runs_again(tmp_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'ledger.sqlite3'}")
    await migrate(db)
    runs: list[int] = []

    async def work(session: AsyncSession) -> str:
        runs.append(len(runs))
        if len(runs) == 1:
            raise StaleReadError("changed under it")
        return "written"

    assert await db.write(work) == "written"
    assert runs == [0, 1]

    async def never(session: AsyncSession) -> None:
        raise StaleReadError("changed under it")

    with pytest.raises(StaleReadError):
        await db.write(never)  # not forever: answered as busy (503), having written nothing
    assert overload_reason(StaleReadError("x")) is not None
    await db.close()
