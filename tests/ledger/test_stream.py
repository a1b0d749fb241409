"""The SSE event stream: increasing ids, Last-Event-ID resume, tenant filtering, alerts."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest
from prepaid_ledger.api.auth import Principal
from prepaid_ledger.api.stream_tail import StreamTail, TailEvent
from prepaid_ledger.services import events as stream_events
from prepaid_ledger.store.database import Database
from sqlalchemy import event
from sqlalchemy.engine import Engine

from tests.ledger.conftest import ADMIN_TOKEN, Ledger, make_settings, running_ledger

pytestmark = pytest.mark.usefixtures("socket_enabled")


async def read_events(
    ledger: Ledger,
    count: int,
    *,
    token: str = ADMIN_TOKEN,
    last_id: int | None = None,
    until: str | None = None,
    stop_idle: float | None = None,
) -> list[dict[str, Any]]:
    """Read events until `count` arrived, one of type `until`, or `stop_idle` s of silence."""
    headers = {"Authorization": f"Bearer {token}"}
    if last_id is not None:
        headers["Last-Event-ID"] = str(last_id)
    events: list[dict[str, Any]] = []
    async with (
        asyncio.timeout(10),
        ledger.http.get(ledger.base_url + "/api/v1/events", headers=headers) as resp,
    ):
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/event-stream")
        frame: dict[str, str] = {}
        while len(events) < count:
            try:
                raw = await asyncio.wait_for(resp.content.readline(), stop_idle)
            except TimeoutError:
                break
            line = raw.decode().rstrip("\n")
            if line:
                key, _, value = line.partition(": ")
                frame[key] = value
                continue
            if "data" in frame and "id" in frame:  # stream.hello / stream.reset carry no id
                event = {
                    "id": int(frame["id"]),
                    "type": frame["event"],
                    "data": json.loads(frame["data"]),
                }
                events.append(event)
                if until and event["type"] == until:
                    break
            frame = {}
    return events


async def test_stream_delivers_and_resumes(sqlite_ledger: Ledger) -> None:
    ledger = sqlite_ledger
    account = await ledger.account(low_balance_minor=[500, 100])
    other = await ledger.account(name="Other")
    reader = asyncio.create_task(read_events(ledger, 100, until="topup.updated"))
    await asyncio.sleep(0.2)
    await ledger.topup(account["id"], 300, "k1")
    live = await reader
    types = [e["type"] for e in live]
    assert "account.updated" in types
    assert "topup.updated" in types
    ids = [e["id"] for e in live]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)

    # Resume after the first event: everything later arrives, nothing earlier.
    resumed = await read_events(ledger, len(live) - 1, last_id=ids[0])
    assert [e["id"] for e in resumed] == ids[1:]

    # A tenant token streams only its own account's events.
    tenant = await ledger.ok(
        "POST", "/api/v1/tokens", json={"scope": "tenant", "account_id": other["id"]}
    )
    await ledger.topup(other["id"], 50, "k2")
    own = await read_events(ledger, 3, token=tenant["token"], until="topup.updated")
    assert {e["data"]["account_id"] for e in own} == {other["id"]}


async def test_low_balance_alerts(sqlite_ledger: Ledger) -> None:
    ledger = sqlite_ledger
    account = await ledger.account(low_balance_minor=[500, 100])
    await ledger.topup(account["id"], 1000, "k1")
    start = (await read_events(ledger, 1000, until="topup.updated"))[-1]["id"]
    await ledger.ok(
        "POST",
        "/api/v1/adjustments",
        json={"account": account["id"], "amount_minor": -600, "reason": "test"},
    )
    await ledger.ok(
        "POST",
        "/api/v1/adjustments",
        json={"account": account["id"], "amount_minor": -350, "reason": "test"},
    )
    events = await read_events(ledger, 5, last_id=start)
    alerts = [e["data"]["kind"] for e in events if e["type"] == "alert"]
    assert alerts == ["low_balance_level_1", "low_balance_level_2"]


async def test_live_reader_misses_nothing_under_concurrent_writes(ledger: Ledger) -> None:
    accounts = [await ledger.account(name=f"R{i}") for i in range(6)]
    start = (await read_events(ledger, len(accounts)))[-1]["id"]  # one per new account
    total = 30

    # Each top-up emits topup.updated (processing, succeeded) and account.updated.
    reader = asyncio.create_task(read_events(ledger, total * 3, last_id=start))
    await asyncio.sleep(0.1)
    await asyncio.gather(
        *(ledger.topup(accounts[i % len(accounts)]["id"], 100 + i, f"c-{i}") for i in range(total))
    )
    live = await reader
    assert sum(e["type"] == "topup.updated" for e in live) == total * 2
    replay = await read_events(ledger, len(live), last_id=start)
    assert [e["id"] for e in live] == [e["id"] for e in replay]


async def test_unchanged_accounts_stay_quiet(sqlite_ledger: Ledger) -> None:
    ledger = sqlite_ledger
    tariff = await ledger.tariff(price="1.00")
    account = await ledger.account()
    meter = await ledger.meter(account["id"], tariff["id"])
    batch = {
        "readings": [
            {"meter_id": meter["id"], "value": "1", "at": "2026-04-01T10:00:00+00:00"},
            {"meter_id": meter["id"], "value": "2", "at": "2026-04-01T11:00:00+00:00"},
        ]
    }
    await ledger.ok("POST", "/api/v1/readings", json=batch)
    mark = (await read_events(ledger, 1000, until="never", last_id=None, stop_idle=0.3))[-1]["id"]
    before = (await ledger.ok("GET", f"/api/v1/accounts/{account['id']}"))["balance_minor"]
    await ledger.ok("POST", "/api/v1/readings", json=batch)  # re-sent: nothing changes
    await ledger.topup(account["id"], 500, "after")
    # The next event is the top-up's (its account's new balance comes first), not the batch's.
    first = (await read_events(ledger, 1, last_id=mark))[0]
    assert (first["type"], first["data"]["balance_minor"]) == ("account.updated", before + 500)


async def test_resume_after_pruned_events_says_reset(sqlite_ledger: Ledger) -> None:
    ledger = sqlite_ledger
    account = await ledger.account()
    await ledger.topup(account["id"], 100, "before")
    first = (await read_events(ledger, 1))[0]["id"]
    db = Database(ledger.settings.database_url)
    try:
        pruned = await db.write(
            lambda s: stream_events.prune(s, datetime.now(UTC) + timedelta(seconds=1))
        )
    finally:
        await db.close()
    assert pruned >= 3
    await ledger.topup(account["id"], 100, "after")
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}", "Last-Event-ID": str(first)}
    async with (
        asyncio.timeout(5),
        ledger.http.get(ledger.base_url + "/api/v1/events", headers=headers) as resp,
    ):
        text = ""
        while "event: topup.updated" not in text:
            text += (await resp.content.readline()).decode()
    assert text.index("event: stream.reset") < text.index("event: topup.updated")


async def test_many_open_streams_cost_one_read_per_commit(tmp_path: Path) -> None:
    """Each commit is read from the table once for every open stream, not once per stream.

    A fleet holds a stream per site open: one query per stream per commit made 100 sites cost
    hundreds of queries a second. Every stream must still get every event it may see.
    """
    async with running_ledger(make_settings(tmp_path, None, max_streams_per_token=20)) as ledger:
        await _many_streams(ledger)


async def _many_streams(ledger: Ledger) -> None:
    accounts = [await ledger.account(name=f"Room {n}") for n in range(3)]
    reads: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "FROM stream_events" in statement:
            reads.append(statement)

    streams = 12
    readers = [
        asyncio.create_task(read_events(ledger, 3 * len(accounts), stop_idle=3))
        for _ in range(streams)
    ]
    await asyncio.sleep(0.5)  # every stream is open and has read where it starts
    event.listen(Engine, "before_cursor_execute", count)
    try:
        for n, account in enumerate(accounts):
            await ledger.topup(account["id"], 300 + n, f"many-{n}")
            await asyncio.sleep(0.2)  # every stream has taken the commit before the next one
        received = await asyncio.gather(*readers)
    finally:
        event.remove(Engine, "before_cursor_execute", count)
    expected = [e["id"] for e in received[0]]
    assert len(expected) >= 2 * len(accounts)  # account.updated and topup.updated each
    assert all([e["id"] for e in got] == expected for got in received)
    # One read per commit (a read may also come from a stream that woke late): far below one
    # per stream per commit (36).
    assert len(reads) <= 2 * len(accounts), reads


class _QuietDatabase:
    """The tail's database in a test of whom it rings: nothing is ever committed."""

    def __init__(self) -> None:
        self.signal = asyncio.Event()

    def change_signal(self) -> asyncio.Event:
        return self.signal

    async def read(self, _work: Any) -> int:
        return 0  # the newest event id: none yet


async def test_a_commit_rings_only_the_streams_that_may_see_its_events() -> None:
    """A site's events wake its own streams and the landlord's, not the other sites' streams."""
    tail = StreamTail(cast("Database", _QuietDatabase()))
    landlord = tail.subscribe(Principal("admin", None, "admin"))
    site_1 = tail.subscribe(Principal("integration", None, "HA 1", site_id=1))
    site_2 = tail.subscribe(Principal("integration", None, "HA 2", site_id=2))
    tenant = tail.subscribe(Principal("tenant", 7, "tenant:7", site_id=2))
    rung = {landlord: "landlord", site_1: "site 1", site_2: "site 2", tenant: "tenant 7"}

    def ringing() -> set[str]:
        found = {name for sub, name in rung.items() if sub._rung.is_set()}
        for sub in rung:
            sub.clear()
        return found

    try:
        tail._ring([TailEvent(1, 8, 2, b"")])
        assert ringing() == {"landlord", "site 2"}
        tail._ring([TailEvent(2, 7, 2, b"")])
        assert ringing() == {"landlord", "site 2", "tenant 7"}
        tail._ring([TailEvent(3, None, None, b"")])
        assert ringing() == {"landlord", "site 1"}  # the landlord's own site's
        tail.unsubscribe(site_2)
        tail._ring([TailEvent(4, 8, 2, b"")])
        assert ringing() == {"landlord"}
    finally:
        await tail.close()
    assert not tail.reading
