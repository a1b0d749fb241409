"""A backlog is written by worker processes (backlog_worker.py), parts of other meters and
accounts side by side, on PostgreSQL and on SQLite (priced on a snapshot, written once the
service grants the one writer); nothing is lost if one dies or hangs.

A worker is the service's child, found here as a process whose parent is this test process
(the service under test runs in it) and whose command line names the module.
"""

from __future__ import annotations

import asyncio
import os
import signal
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from prepaid_ledger import backlog_worker
from prepaid_ledger.services import readings
from prepaid_ledger.store.database import Database
from prepaid_meter_contract.readings import Reading

from tests.ledger.conftest import Ledger, make_settings, running_ledger
from tests.ledger.test_stream import read_events
from tests.ledger.test_webhooks import post_stripe
from tests.ledger.webhook_helpers import checkout_completed, stripe_delivery

pytestmark = pytest.mark.usefixtures("socket_enabled")
#: The tests that need the worker: a ``ledger`` on PostgreSQL or in a SQLite file.
on_both = pytest.mark.parametrize("backend", ["postgres", "sqlite"])

T0 = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)
PRICE = "0.10"


def worker_pids() -> set[int]:
    """The backlog workers this process's service started and that are running."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            status = (entry / "status").read_text()
        except OSError:
            continue
        parent = next(line for line in status.splitlines() if line.startswith("PPid:"))
        ours = int(parent.split()[1]) == os.getpid() and "State:\tZ" not in status
        if ours and b"prepaid_ledger.backlog_worker" in cmdline:
            found.add(int(entry.name))
    return found


def worker_pid() -> int | None:
    """The one backlog worker running (the parts of one account go to one), if any."""
    pids = worker_pids()
    assert len(pids) <= 1, f"more than one worker for one account's backlog: {pids}"
    return next(iter(pids), None)


async def until_gone(pid: int, within: float) -> None:
    """Wait until the worker PID has exited (a zombie counts as gone)."""
    async with asyncio.timeout(within):
        while True:
            if pid not in worker_pids():
                return
            await asyncio.sleep(0.05)


def cpu_seconds(pid: int) -> float:
    """User and system CPU time a process has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def niceness(pid: int) -> int:
    """A process's nice value (higher: less CPU when the machine is busy)."""
    return int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[16])


def backlog(meter_id: int, count: int, step: str, start: int = 0) -> list[dict[str, Any]]:
    """COUNT readings a minute apart, the register rising by STEP kWh each, from reading START."""
    return [
        {
            "meter_id": meter_id,
            "value": str(Decimal(step) * i),
            "at": (T0 + timedelta(minutes=i)).isoformat(),
        }
        for i in range(start, start + count)
    ]


async def two_meters(ledger: Ledger) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    tariff = await ledger.tariff(price=PRICE)
    account = await ledger.account()
    a = await ledger.meter(account["id"], tariff["id"])
    b = await ledger.meter(account["id"], tariff["id"])
    return account, a, b


@on_both
async def test_a_backlog_is_written_by_the_worker_with_the_money_of_small_batches(
    ledger: Ledger,
) -> None:
    """Worked by hand: A rises 0.1 kWh a minute, B 0.2, at 0.10 EUR/kWh.

    First backlog: A 1,500 readings (149.9 kWh: 14.99 EUR), B 1,000 (199.8 kWh: 19.98 EUR).
    Second: A's next 2,000 (200 kWh: 20.00 EUR), B's next 1,000 (200 kWh: 20.00 EUR).
    """
    account, a, b = await two_meters(ledger)
    first = backlog(a["id"], 1500, "0.1") + backlog(b["id"], 1000, "0.2")
    result = await ledger.ok("POST", "/api/v1/readings", json={"readings": first})
    assert sum(m["charged_minor"] for m in result["meters"]) == 1499 + 1998
    pid = worker_pid()
    assert pid is not None, "a batch of three parts did not start the worker"
    assert niceness(pid) > niceness(os.getpid())  # background work: the others' payments first
    before = cpu_seconds(pid)
    second = backlog(a["id"], 2000, "0.1", start=1500) + backlog(b["id"], 1000, "0.2", start=1000)
    result = await ledger.ok("POST", "/api/v1/readings", json={"readings": second})
    by_meter = {m["meter_id"]: m for m in result["meters"]}
    assert by_meter[a["id"]]["accepted"] == 2000
    assert by_meter[a["id"]]["charged_minor"] == 2000
    assert by_meter[b["id"]]["charged_minor"] == 2000
    assert await ledger.balance(account["id"]) == -(1499 + 1998 + 2000 + 2000)
    # 3,000 readings priced and written there: at 10 us each at the very least (about 30 in
    # 2026-12), 0.03 s of its CPU; a worker that wrote nothing uses none.
    assert worker_pid() == pid
    assert cpu_seconds(pid) - before >= 0.03
    statement = await ledger.ok("GET", f"/api/v1/accounts/{account['id']}/statement")
    assert statement["consumption_total_minor"] == 1499 + 1998 + 2000 + 2000
    assert statement["ties_out"] is True


@on_both
async def test_the_backlogs_of_two_accounts_are_written_side_by_side(ledger: Ledger) -> None:
    """Two rooms, each an account with a meter, at 0.10 EUR/kWh (worked by hand): room 1 rises
    0.1 kWh a minute for 2,000 readings (199.9 kWh: 19.99 EUR), room 2 0.3 kWh for 1,500
    (449.7 kWh: 44.97 EUR). Their parts share nothing, so both workers write them.
    """
    tariff = await ledger.tariff(price=PRICE)
    rooms = [await ledger.account(name=f"Room {n}") for n in (1, 2)]
    meters = [await ledger.meter(room["id"], tariff["id"]) for room in rooms]
    batch = backlog(meters[0]["id"], 2000, "0.1") + backlog(meters[1]["id"], 1500, "0.3")
    result = await ledger.ok("POST", "/api/v1/readings", json={"readings": batch})
    by_meter = {m["meter_id"]: m for m in result["meters"]}
    assert by_meter[meters[0]["id"]]["accepted"] == 1999
    assert by_meter[meters[0]["id"]]["charged_minor"] == 1999
    assert by_meter[meters[1]["id"]]["charged_minor"] == 4497
    assert by_meter[meters[1]["id"]]["balance_minor"] == -4497
    assert [await ledger.balance(room["id"]) for room in rooms] == [-1999, -4497]
    pids = worker_pids()
    assert len(pids) == backlog_worker.WORKERS == 2, pids
    before = {pid: cpu_seconds(pid) for pid in pids}
    # 2,000 more each: 200 kWh (20.00 EUR), 600 kWh (60.00). No part of 1,000 holds readings of
    # both, so they share nothing.
    later = backlog(meters[0]["id"], 2000, "0.1", start=2000)
    later += backlog(meters[1]["id"], 2000, "0.3", start=1500)
    await ledger.ok("POST", "/api/v1/readings", json={"readings": later})
    assert [await ledger.balance(room["id"]) for room in rooms] == [-3999, -10497]
    assert worker_pids() == pids
    for pid in pids:  # each priced and wrote 2,000 readings: 0.02 s of CPU at the least
        assert cpu_seconds(pid) - before[pid] >= 0.02, pid


@on_both
async def test_a_poll_batch_is_written_by_the_service_itself(ledger: Ledger) -> None:
    """One part (a poll, up to 1,000 readings): no second process is started for it."""
    account, a, b = await two_meters(ledger)
    batch = backlog(a["id"], 250, "0.1") + backlog(b["id"], 250, "0.2")
    await ledger.ok("POST", "/api/v1/readings", json={"readings": batch})
    assert await ledger.balance(account["id"]) == -(249 + 498)
    assert worker_pid() is None


async def assert_the_service_writes_a_backlog_itself(ledger: Ledger) -> None:
    """A five-part backlog is charged as worked by hand, and no worker was started for it."""
    account, a, b = await two_meters(ledger)
    batch = backlog(a["id"], 1500, "0.1") + backlog(b["id"], 1000, "0.2")
    await ledger.ok("POST", "/api/v1/readings", json={"readings": batch})
    assert await ledger.balance(account["id"]) == -(1499 + 1998)
    assert worker_pid() is None


@on_both
async def test_the_event_stream_hears_of_what_the_worker_wrote(ledger: Ledger) -> None:
    account, a, _b = await two_meters(ledger)
    reader = asyncio.create_task(read_events(ledger, 1000, stop_idle=3.0))
    await asyncio.sleep(0.2)
    await ledger.ok("POST", "/api/v1/readings", json={"readings": backlog(a["id"], 1200, "0.1")})
    assert worker_pid() is not None
    updates = [e["data"] for e in await reader if e["type"] == "account.updated"]
    assert updates, "no account.updated reached the stream"
    assert updates[-1]["account_id"] == account["id"]
    assert updates[-1]["balance_minor"] == -1199 == await ledger.balance(account["id"])


@on_both
async def test_a_killed_worker_loses_nothing_and_charges_nothing_twice(ledger: Ledger) -> None:
    account, a, b = await two_meters(ledger)
    first = backlog(a["id"], 800, "0.1") + backlog(b["id"], 800, "0.2")
    await ledger.ok("POST", "/api/v1/readings", json={"readings": first})
    pid = worker_pid()
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    await until_gone(pid, 10)
    second = backlog(a["id"], 1200, "0.1", start=800) + backlog(b["id"], 600, "0.2", start=800)
    result = await ledger.ok("POST", "/api/v1/readings", json={"readings": second})
    assert sum(m["accepted"] for m in result["meters"]) == 1800
    expected = -(799 + 1598 + 1200 + 1200)
    assert await ledger.balance(account["id"]) == expected
    again = await ledger.ok("POST", "/api/v1/readings", json={"readings": first + second})
    assert sum(m["duplicates"] for m in again["meters"]) == 3400
    assert await ledger.balance(account["id"]) == expected


@on_both
async def test_a_payment_is_credited_while_the_worker_writes_a_backlog(ledger: Ledger) -> None:
    """The service's event loop is free: a payment does not wait for the rest of the backlog."""
    account, a, b = await two_meters(ledger)
    warm = backlog(a["id"], 1200, "0.1")
    await ledger.ok("POST", "/api/v1/readings", json={"readings": warm})  # the worker starts
    big = backlog(a["id"], 2500, "0.1", start=1200) + backlog(b["id"], 2500, "0.2")
    posting = asyncio.create_task(ledger.ok("POST", "/api/v1/readings", json={"readings": big}))
    async with asyncio.timeout(30):  # the first part is in: the backlog is under way
        while True:
            if posting.done() or await ledger.balance(account["id"]) != -1199:
                break
            await asyncio.sleep(0.005)
    status, _ = await post_stripe(
        ledger, *stripe_delivery(checkout_completed(account["number"], 10_000))
    )
    assert status == 200
    assert not posting.done(), "the payment waited for the whole backlog"
    await posting
    assert await ledger.balance(account["id"]) == 10_000 - (1199 + 2500 + 4998)


@on_both
async def test_a_worker_that_hangs_is_stopped_and_the_service_writes_the_part(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker stopped mid-backlog (SIGSTOP: it may hold SQLite's writer) is killed after
    the timeout; the service writes what was left, a payment made meanwhile is credited, and
    the balance is the one worked by hand."""
    monkeypatch.setattr(backlog_worker, "PART_TIMEOUT_S", 3.0)
    monkeypatch.setattr(backlog_worker, "WRITING_TIMEOUT_S", 1.0)
    account, a, b = await two_meters(ledger)
    await ledger.ok("POST", "/api/v1/readings", json={"readings": backlog(a["id"], 1200, "0.1")})
    pid = worker_pid()
    assert pid is not None
    big = backlog(a["id"], 2500, "0.1", start=1200) + backlog(b["id"], 2500, "0.2")
    posting = asyncio.create_task(ledger.ok("POST", "/api/v1/readings", json={"readings": big}))
    async with asyncio.timeout(30):  # the backlog is under way
        while True:
            if await ledger.balance(account["id"]) != -1199:
                break
            await asyncio.sleep(0.002)
    os.kill(pid, signal.SIGSTOP)
    status, _ = await post_stripe(
        ledger, *stripe_delivery(checkout_completed(account["number"], 10_000))
    )
    assert status == 200
    await posting
    assert pid not in worker_pids()
    assert await ledger.balance(account["id"]) == 10_000 - (1199 + 2500 + 4998)


@on_both
async def test_a_service_without_the_worker_writes_backlogs_itself(
    tmp_path: Path, database_url: str
) -> None:
    settings = make_settings(tmp_path, database_url, backlog_worker=False)
    async with running_ledger(settings) as ledger:
        await assert_the_service_writes_a_backlog_itself(ledger)


@on_both
async def test_an_idle_worker_is_stopped_and_started_again_by_the_next_backlog(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(backlog_worker, "IDLE_STOP_S", 0.5)
    account, a, _b = await two_meters(ledger)
    first = backlog(a["id"], 1200, "0.1")
    await ledger.ok("POST", "/api/v1/readings", json={"readings": first})
    pid = worker_pid()
    assert pid is not None
    await until_gone(pid, 15)  # it exits by itself once the service closes its stdin
    second = backlog(a["id"], 1200, "0.1", start=1200)
    await ledger.ok("POST", "/api/v1/readings", json={"readings": second})
    assert worker_pid() not in {None, pid}
    assert await ledger.balance(account["id"]) == -2399


def parts_of(*meters_per_part: list[int]) -> list[list[tuple[int, Reading]]]:
    """Parts with one reading per meter listed (the lanes look at meters only)."""
    position = iter(range(10_000))
    return [
        [(next(position), Reading(meter_id=m, value=Decimal(1), at=T0)) for m in meters]
        for meters in meters_per_part
    ]


def test_parts_sharing_a_meter_stay_in_one_lane_in_order() -> None:
    """Meter 1 runs on from part 0 into 1, meter 2 from 1 into 2: one chain; part 3 is free."""
    parts = parts_of([1, 1], [1, 2], [2], [3])
    assert backlog_worker.lanes(parts, {1: 10, 2: 20, 3: 30}, 2) == [[0, 1, 2], [3]]


def test_parts_of_one_account_stay_in_one_lane() -> None:
    """Meters 1 and 3 belong to account 10: parts 0 and 2 go together, part 1 beside them."""
    parts = parts_of([1], [2], [3])
    assert backlog_worker.lanes(parts, {1: 10, 2: 20, 3: 10}, 2) == [[0, 2], [1]]


def test_independent_parts_go_to_the_lane_with_the_fewest_readings() -> None:
    """Part 0 has 5 readings, parts 1-3 one each, part 4 three: the second lane holds 1, 2 and
    3 readings (fewer than 5) when parts 2, 3 and 4 come; part 5's 2 go beside part 0 (5 < 6).
    """
    parts = parts_of([1, 1, 1, 1, 1], [2], [3], [4], [5, 5, 5], [6, 6])
    owners = {meter: 100 + meter for meter in range(1, 7)}
    assert backlog_worker.lanes(parts, owners, 2) == [[0, 5], [1, 2, 3, 4]]
    assert backlog_worker.lanes(parts, owners, 1) == [[0, 1, 2, 3, 4, 5]]


def test_an_unknown_meter_is_grouped_by_itself() -> None:
    """Meter 9 has no account (its part will be refused): nothing joins it to the others."""
    parts = parts_of([1], [9], [1])
    assert backlog_worker.lanes(parts, {1: 10}, 2) == [[0, 2], [1]]


async def test_a_part_priced_on_a_snapshot_is_priced_again_if_its_meter_moved_meanwhile(
    sqlite_ledger: Ledger,
) -> None:
    """SQLite in a worker: a part is priced on a snapshot, and the service charges a later
    reading of its meter before the worker is granted the writer. The part sees that once it
    has the writer and is priced again from there: its readings are older than the meter's
    last one, so they charge nothing (3 kWh at 0.10 EUR: -0.30 EUR in all). Priced from the
    snapshot it would have charged 1 kWh more and moved the meter back to 10 minutes past."""
    account, a, _b = await two_meters(sqlite_ledger)
    baseline = backlog(a["id"], 1, "0.1")
    await sqlite_ledger.ok("POST", "/api/v1/readings", json={"readings": baseline})
    later = {"meter_id": a["id"], "value": "3", "at": (T0 + timedelta(minutes=30)).isoformat()}
    asked = 0

    async def ask_for_writer() -> None:
        nonlocal asked
        asked += 1
        if asked == 1:
            await sqlite_ledger.ok("POST", "/api/v1/readings", json={"readings": [later]})

    db = Database(sqlite_ledger.settings.database_url, pool_size=1, max_overflow=1)
    db.price_on_snapshots(ask_for_writer)
    part = [
        (i, Reading.model_validate(r)) for i, r in enumerate(backlog(a["id"], 10, "0.1", start=1))
    ]
    try:
        result = await readings.write_part(db, part, "test", None)
    finally:
        await db.close()
    assert asked == 2
    (meter,) = result.meters
    assert (meter.flagged, meter.accepted, meter.charged_minor) == (10, 0, 0)
    assert meter.balance_minor == -30 == await sqlite_ledger.balance(account["id"])
