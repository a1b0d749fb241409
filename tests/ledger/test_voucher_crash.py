"""Vouchers redeemed while the ledger is killed (SIGKILL) mid-request: each credits once.

The ledger runs as a real process. For each voucher a redemption is sent and the process is
killed a few milliseconds later (before, during or after the commit); it is restarted and the
client sends the same redemption again, as Home Assistant or a tenant retries. Expected: each
voucher credited exactly once (201 then, or 409 ``voucher_used`` when the first attempt had
committed), the balance exactly the vouchers' sum, and ``prepaid-ledger verify`` clean.
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

from tests.ledger.conftest import free_port

pytestmark = pytest.mark.usefixtures("socket_enabled")

ADMIN = "voucher-crash-admin"
HEADERS = {"Authorization": f"Bearer {ADMIN}"}
VALUE = 700
VOUCHERS = 8


class Ledger:
    """The ledger as a process that can be killed and started again on the same data."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self, http: aiohttp.ClientSession) -> None:
        env = os.environ | {"PREPAID_LEDGER_ADMIN_TOKEN": ADMIN}
        with (self.data_dir / "service.log").open("ab") as log:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "prepaid_ledger",
                "serve",
                "--data-dir",
                str(self.data_dir),
                "--port",
                str(self.port),
                "--public-port",
                str(free_port()),
                stdout=log,
                stderr=log,
                env=env,
            )
        for _ in range(600):
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
        self, http: aiohttp.ClientSession, method: str, path: str, body: object = None
    ) -> tuple[int, Any]:
        async with http.request(method, self.base + path, json=body, headers=HEADERS) as resp:
            return resp.status, await resp.json()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def test_killed_mid_redemption_credits_each_voucher_once(
    tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    ledger = Ledger(tmp_path)
    await ledger.start(http)
    try:
        _, account = await ledger.call(
            http, "POST", "/api/v1/accounts", {"name": "R", "currency": "EUR", "timezone": "UTC"}
        )
        _, minted = await ledger.call(
            http,
            "POST",
            "/api/v1/vouchers/batches",
            {"value_minor": VALUE, "currency": "EUR", "count": VOUCHERS},
        )
        rng = random.Random(7)
        for card in minted["codes"]:
            body = {"account": account["id"], "code": card["code"]}
            sent = asyncio.create_task(ledger.call(http, "POST", "/api/v1/vouchers/redeem", body))
            await asyncio.sleep(rng.uniform(0.0, 0.03))  # before, during or after the commit
            await ledger.kill()
            await asyncio.gather(sent, return_exceptions=True)  # answered, or cut off
            await ledger.start(http)
            status, again = await ledger.call(http, "POST", "/api/v1/vouchers/redeem", body)
            assert status in (201, 409), again
            if status == 409:
                assert again["error"]["code"] == "voucher_used"
        _, after = await ledger.call(http, "GET", f"/api/v1/accounts/{account['id']}")
        assert after["balance_minor"] == VALUE * VOUCHERS
        _, orders = await ledger.call(http, "GET", f"/api/v1/topups?account={account['id']}")
        assert len(orders["topups"]) == VOUCHERS
        assert {o["status"] for o in orders["topups"]} == {"succeeded"}
        _, batches = await ledger.call(http, "GET", "/api/v1/vouchers/batches")
        assert batches["batches"][0]["redeemed"] == VOUCHERS
    finally:
        await ledger.kill()
    verify = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "prepaid_ledger",
        "verify",
        "--data-dir",
        str(tmp_path),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await verify.communicate()
    assert verify.returncode == 0, out.decode()
