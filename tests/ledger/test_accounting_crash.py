"""Accounting events survive SIGKILL mid-delivery: all of them arrive, in order, processed once.

The ledger runs as a real process (with a fast retry schedule) on SQLite or PostgreSQL and
sends its events to a real receiver (tests/ledger/accounting_receiver.py) that verifies each
with the ``standardwebhooks`` library and drops repeated ``webhook-id``s. Rounds of top-ups,
adjustments, refunds and payments that need attention alternate between two kinds of kill:

- mid-delivery: the receiver holds an attempt, the ledger is SIGKILLed while it waits, and the
  receiver then either processes the event (its acknowledgement lost with the ledger) or not;
- mid-request: the ledger is killed a few milliseconds after a change was sent (before,
  during or after its commit); the client sends the same request again (same Idempotency-Key).

Some first attempts also fail (500, an answer after the ledger's timeout). At the end every
event in the ledger's outbox was processed by the receiver exactly once, per account in the
order the ledger recorded them, the events match the ledger's own facts (orders,
adjustments, refunds), and ``prepaid-ledger verify`` is clean.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.ledger.accounting_receiver import Receiver, serve_receiver
from tests.ledger.conftest import STANDARD_SECRET, free_port
from tests.ledger.webhook_helpers import standard_delivery

pytestmark = pytest.mark.usefixtures("socket_enabled")

ADMIN = "accounting-crash-admin"
HEADERS = {"Authorization": f"Bearer {ADMIN}"}
ROUNDS = 8
#: The service with a fast schedule: retries every 0.2 s, leases of 1.5 s, 1 s timeouts.
SERVE = """
import sys
from prepaid_ledger.services import outbox_delivery as d
d.TUNING = d.Tuning(
    schedule_s=(0.2,) * 50, jitter=0.0, connect_timeout_s=1.0, request_timeout_s=1.0,
    lease_s=1.5, poll_s=0.3, charge_days_every_s=3600.0,
)
from prepaid_ledger.cli import main
sys.exit(main(sys.argv[1:]))
"""


class Ledger:
    """The ledger as a process that can be killed and started again on the same data."""

    def __init__(self, data_dir: Path, database_url: str | None) -> None:
        self.data_dir = data_dir
        self.database_url = database_url
        self.port = free_port()
        self.public_port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.public = f"http://127.0.0.1:{self.public_port}"
        self.proc: asyncio.subprocess.Process | None = None

    def store_args(self) -> list[str]:
        args = ["--data-dir", str(self.data_dir)]
        return args + (["--database-url", self.database_url] if self.database_url else [])

    async def start(self, http: aiohttp.ClientSession) -> None:
        env = os.environ | {
            "PREPAID_LEDGER_ADMIN_TOKEN": ADMIN,
            "PREPAID_LEDGER_STANDARD_WEBHOOK_SECRET": STANDARD_SECRET,
        }
        args = ["serve", *self.store_args(), "--port", str(self.port)]
        args += ["--public-port", str(self.public_port)]
        with (self.data_dir / "service.log").open("ab") as log:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-c", SERVE, *args, stdout=log, stderr=log, env=env
            )
        for _ in range(1000):
            try:
                async with http.get(self.base + "/api/v1/health") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            assert self.proc.returncode is None, (self.data_dir / "service.log").read_text()
            await asyncio.sleep(0.02)
        raise AssertionError("the ledger did not start")

    async def kill(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGKILL)
            await self.proc.wait()

    async def call(
        self,
        http: aiohttp.ClientSession,
        method: str,
        path: str,
        body: object = None,
        key: str | None = None,
    ) -> tuple[int, Any]:
        headers = HEADERS | ({"Idempotency-Key": key} if key else {})
        async with http.request(method, self.base + path, json=body, headers=headers) as resp:
            return resp.status, await resp.json()

    async def ok(self, http: aiohttp.ClientSession, method: str, path: str, **kw: Any) -> Any:
        status, answer = await self.call(http, method, path, **kw)
        assert status < 300, (status, answer)
        return answer


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


class Operations:
    """The changes the test makes, each idempotent (a retry after a kill changes nothing)."""

    def __init__(self, ledger: Ledger, http: aiohttp.ClientSession, rng: random.Random) -> None:
        self.ledger = ledger
        self.http = http
        self.rng = rng
        self.accounts: list[int] = []
        self.credited: dict[int, int] = {}  # order id -> amount not yet refunded
        self.adjustments = 0
        self.refunds = 0
        self.unknown_payments = 0
        self.count = 0

    async def request(self) -> tuple[str, str, dict[str, Any], str | None]:
        """Pick the next change: (kind, path, body, idempotency key)."""
        self.count += 1
        key = f"op-{self.count}"
        account = self.rng.choice(self.accounts)
        roll = self.rng.random()
        if roll < 0.15 and self.credited:
            order = self.rng.choice(sorted(self.credited))
            amount = max(1, self.credited[order] // 3)
            body = {"action": "refund", "amount_minor": amount, "reason": "tenant asked"}
            return "refund", f"/api/v1/topups/{order}/actions", body, key
        if roll < 0.35:
            body = {"account": account, "amount_minor": -self.rng.randint(1, 50), "reason": "fee"}
            return "adjustment", "/api/v1/adjustments", body, key
        if roll < 0.42:
            return "unknown", "/webhooks/standard", {}, key
        body = {"account": account, "amount_minor": self.rng.randint(100, 900)}
        return "topup", "/api/v1/topups", body, key

    async def send(self, kind: str, path: str, body: dict[str, Any], key: str | None) -> None:
        """Make the change (again, after a kill: the same request and key)."""
        if kind == "unknown":
            data = {"account": "999999999", "amount_minor": 100, "currency": "EUR"}
            raw, headers = standard_delivery(data | {"reference": key}, msg_id=f"msg_{key}")
            async with self.http.post(self.ledger.public + path, data=raw, headers=headers) as r:
                assert r.status == 200, await r.text()
            self.unknown_payments += 1
            return
        answer = await self.ledger.ok(self.http, "POST", path, body=body, key=key)
        if kind == "topup":
            self.credited[answer["id"]] = answer["amount_minor"]
        elif kind == "refund":
            order = int(path.split("/")[4])
            self.credited[order] -= body["amount_minor"]
            if self.credited[order] <= 0:
                del self.credited[order]
            self.refunds += 1
        else:
            self.adjustments += 1


async def test_killed_mid_delivery_every_event_arrives_in_order_once(
    tmp_path: Path, database_url: str | None, http: aiohttp.ClientSession
) -> None:
    rng = random.Random(23)
    async with serve_receiver() as receiver:
        ledger = Ledger(tmp_path, database_url)
        await ledger.start(http)
        try:
            await run_rounds(ledger, http, receiver, rng)
        finally:
            await ledger.kill()
    verify = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "prepaid_ledger",
        "verify",
        *ledger.store_args(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await verify.communicate()
    assert verify.returncode == 0, out.decode()


async def run_rounds(
    ledger: Ledger, http: aiohttp.ClientSession, receiver: Receiver, rng: random.Random
) -> None:
    created = await ledger.ok(
        http, "POST", "/api/v1/accounting/endpoints", body={"url": receiver.url}
    )
    receiver.secret = created["secret"]
    ops = Operations(ledger, http, rng)
    for name in ("A", "B", "C"):
        body = {"name": name, "currency": "EUR", "timezone": "UTC"}
        ops.accounts.append((await ledger.ok(http, "POST", "/api/v1/accounts", body=body))["id"])
    receiver.answer_with(lambda e: e["type"] == "adjustment.created", "500")
    receiver.answer_with(lambda e: e["type"] == "topup.refunded", "timeout")
    processed_held = 0
    for number in range(ROUNDS):
        if number % 2 == 0:  # mid-delivery
            receiver.answer_with(lambda _e: True, "hold")
            for _ in range(3):
                await ops.send(*await ops.request())
            async with asyncio.timeout(15):
                await receiver.holding.wait()
            await ledger.kill()
            process = number % 4 == 0  # rounds 0, 4: processed; rounds 2, 6: not
            processed_held += process
            receiver.release(process=process)  # processed, its acknowledgement lost; or not
            await ledger.start(http)
        else:  # mid-request
            await ops.send(*await ops.request())
            change = await ops.request()
            sent = asyncio.create_task(ops.send(*change))
            await asyncio.sleep(rng.uniform(0.0, 0.03))
            await ledger.kill()
            await asyncio.gather(sent, return_exceptions=True)  # answered, or cut off
            await ledger.start(http)
            if not sent.done() or sent.exception() is not None:
                await ops.send(*change)  # the same request and key again

    await check_every_event_arrived(ledger, http, receiver, ops, processed_held)


async def check_every_event_arrived(
    ledger: Ledger,
    http: aiohttp.ClientSession,
    receiver: Receiver,
    ops: Operations,
    processed_held: int,
) -> None:
    """Every recorded event processed once, in order per account, matching the ledger's facts."""
    # Everything the ledger recorded is delivered in the end.
    async with asyncio.timeout(60):
        while True:
            _, log = await ledger.call(http, "GET", "/api/v1/accounting/deliveries?limit=1000")
            statuses = {d["status"] for d in log["deliveries"]}
            if statuses <= {"delivered"}:
                break
            assert "failed" not in statuses, log
            await asyncio.sleep(0.2)
    recorded = list(reversed(log["deliveries"]))  # oldest first
    assert receiver.bad_signatures == 0
    assert sorted(receiver.order) == sorted(d["message_id"] for d in recorded)
    assert len(set(receiver.order)) == len(receiver.order)  # each processed once
    if processed_held:
        assert receiver.duplicates >= processed_held  # sent again after the kill, dropped
    by_account = receiver.per_account()
    for account in ops.accounts:
        in_ledger = [d["message_id"] for d in recorded if d["account_id"] == account]
        assert by_account.get(account, []) == in_ledger
    # The events are the ledger's facts: one per credit, refund, adjustment and flag.
    _, orders = await ledger.call(http, "GET", "/api/v1/topups?limit=1000")
    credited = {o["id"] for o in orders["topups"] if o["status"] != "needs_attention"}
    events = [receiver.processed[m] for m in receiver.order]
    assert {e["data"]["order_id"] for e in events if e["type"] == "topup.succeeded"} == credited
    assert len([e for e in events if e["type"] == "topup.succeeded"]) == len(credited)
    kinds = [e["type"] for e in events]
    assert kinds.count("adjustment.created") == ops.adjustments
    assert kinds.count("topup.refunded") == ops.refunds
    assert kinds.count("order.needs_attention") == ops.unknown_payments
    assert ops.adjustments > 0
    assert ops.refunds > 0
    assert ops.unknown_payments > 0
    assert len(events) == len(credited) + ops.adjustments + ops.refunds + ops.unknown_payments
