"""Crash-safety soak: SIGKILL the ledger at random moments while webhooks are delivered.

A sender delivers signed Stripe checkout.session.completed events (and re-delivers some, as
Stripe does) and retries every delivery until it is acknowledged; a killer SIGKILLs the
service at random moments and restarts it. At the end every account's balance must equal the
sum of its payments (no lost and no duplicate credit) and `prepaid-ledger verify` must pass.

    scripts/run python bench/ledger_soak.py [--kills 100] [--events 400] [--seed 1]

Last line: ``ledger_soak: kills=N events=N deliveries=N lost=N duplicated=N verify=ok|failed``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import socket
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import stripe

ADMIN = "soak-admin-token"
SECRET = "whsec_soak_secret"  # noqa: S105 - a throwaway test secret


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Service:
    """The ledger as a subprocess that can be killed and restarted."""

    def __init__(self, data_dir: Path, port: int, database_url: str | None) -> None:
        self.data_dir = data_dir
        self.port = port
        # Its own public port too: the default (8100) may be taken by another ledger running
        # on the machine (a developer's, another test's), and the restart would fail on it.
        self.public_port = free_port()
        self.database_url = database_url
        self.proc: asyncio.subprocess.Process | None = None
        self.base = f"http://127.0.0.1:{port}"
        self.log = (data_dir / "service.log").open("ab")

    async def start(self, http: aiohttp.ClientSession) -> None:
        env = os.environ | {
            "PREPAID_LEDGER_ADMIN_TOKEN": ADMIN,
            "PREPAID_LEDGER_STRIPE_WEBHOOK_SECRET": SECRET,
        }
        args = ["serve", "--data-dir", str(self.data_dir), "--port", str(self.port)]
        args += ["--public-port", str(self.public_port)]
        if self.database_url:
            args += ["--database-url", self.database_url]
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "prepaid_ledger",
            *args,
            stdout=self.log,
            stderr=self.log,
            env=env,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                async with http.get(self.base + "/api/v1/health") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            if self.proc.returncode is not None:
                raise RuntimeError(f"service exited with {self.proc.returncode}")
            await asyncio.sleep(0.02)
        raise RuntimeError("service did not start")

    async def kill(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGKILL)
            await self.proc.wait()

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            await self.proc.wait()
        self.log.close()


def checkout_event(index: int, account_number: str, amount: int) -> dict[str, object]:
    session_id = f"cs_soak_{index:06d}"
    return {
        "id": f"evt_soak_{index:06d}",
        "object": "event",
        "type": "checkout.session.completed",
        "created": int(time.time()),
        "data": {
            "object": {
                "id": session_id,
                "object": "checkout.session",
                "amount_total": amount,
                "currency": "eur",
                "client_reference_id": account_number,
                "payment_intent": f"pi_soak_{index:06d}",
                "payment_status": "paid",
                "status": "complete",
                "mode": "payment",
                "metadata": {},
            }
        },
    }


async def deliver(http: aiohttp.ClientSession, base: str, event: dict[str, object]) -> int:
    """Deliver one event until the ledger acknowledges it; return the number of attempts."""
    body = json.dumps(event)
    attempts = 0
    while True:
        attempts += 1
        header = stripe.WebhookSignature.generate_signature_header(body, SECRET)
        try:
            async with http.post(
                base + "/webhooks/stripe",
                data=body,
                headers={"Stripe-Signature": header, "Content-Type": "application/json"},
                timeout=aiohttp.ClientTimeout(total=10),
            ) as resp:
                if resp.status == 200:
                    return attempts
                if resp.status < 500:
                    raise RuntimeError(f"delivery rejected: {resp.status} {await resp.text()}")
        except TimeoutError, aiohttp.ClientError:
            pass
        await asyncio.sleep(0.02)


async def check_results(
    http: aiohttp.ClientSession, base: str, expected: dict[int, int], event_count: int
) -> tuple[int, int]:
    """Compare balances and orders with what was paid: (lost, duplicated) minor units."""
    headers = {"Authorization": f"Bearer {ADMIN}"}
    lost = duplicated = 0
    for account_id, paid in expected.items():
        async with http.get(f"{base}/api/v1/accounts/{account_id}", headers=headers) as resp:
            balance = (await resp.json())["balance_minor"]
        diff = balance - paid
        lost += max(0, -diff)
        duplicated += max(0, diff)
    async with http.get(f"{base}/api/v1/topups?limit=1000", headers=headers) as resp:
        orders = (await resp.json())["topups"]
    if len(orders) != event_count or any(o["status"] != "succeeded" for o in orders):
        print(f"orders: {len(orders)} for {event_count} events", file=sys.stderr)
        duplicated += max(0, len(orders) - event_count)
    return lost, duplicated


async def run_verify(args: argparse.Namespace, data_dir: Path) -> bool:
    """Run `prepaid-ledger verify` on the soaked database."""
    verify_args = ["verify", "--data-dir", str(data_dir)]
    if args.database_url:
        verify_args += ["--database-url", args.database_url]
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "prepaid_ledger",
        *verify_args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await proc.communicate()
    verified = proc.returncode == 0
    if not verified:
        print(out.decode(), file=sys.stderr)
    return verified


async def soak(args: argparse.Namespace, data_dir: Path) -> int:
    rng = random.Random(args.seed)
    port = free_port()
    service = Service(data_dir, port, args.database_url)
    headers = {"Authorization": f"Bearer {ADMIN}"}
    async with aiohttp.ClientSession() as http:
        await service.start(http)
        accounts = []
        for i in range(args.accounts):
            async with http.post(
                service.base + "/api/v1/accounts",
                headers=headers,
                json={"name": f"soak {i}", "currency": "EUR", "timezone": "UTC"},
            ) as resp:
                accounts.append(await resp.json())
        events = []
        expected = {a["id"]: 0 for a in accounts}
        for i in range(args.events):
            account = accounts[i % len(accounts)]
            amount = 100 + i
            expected[account["id"]] += amount
            events.append(checkout_event(i, account["number"], amount))

        queue: asyncio.Queue[dict[str, object]] = asyncio.Queue()
        for event in events:
            queue.put_nowait(event)
        killing_done = asyncio.Event()
        deliveries = 0
        kills = 0

        async def sender() -> None:
            nonlocal deliveries
            while True:
                try:
                    event = queue.get_nowait()
                except asyncio.QueueEmpty:
                    if killing_done.is_set():
                        return
                    event = rng.choice(events)  # keep traffic up: a duplicate delivery
                deliveries += await deliver(http, service.base, event)
                if rng.random() < 0.2:
                    queue.put_nowait(event)  # Stripe sometimes delivers twice

        async def killer() -> None:
            nonlocal kills
            try:
                while kills < args.kills:
                    await asyncio.sleep(rng.uniform(0.01, args.max_gap))
                    await service.kill()
                    kills += 1
                    await service.start(http)
            finally:
                killing_done.set()

        await asyncio.gather(killer(), *(sender() for _ in range(args.senders)))

        lost, duplicated = await check_results(http, service.base, expected, len(events))
        await service.stop()

    verified = await run_verify(args, data_dir)
    print(
        f"ledger_soak: kills={kills} events={len(events)} deliveries={deliveries} "
        f"lost={lost} duplicated={duplicated} verify={'ok' if verified else 'failed'}"
    )
    return 0 if verified and lost == 0 and duplicated == 0 and kills == args.kills else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--kills", type=int, default=100)
    parser.add_argument("--events", type=int, default=400)
    parser.add_argument("--accounts", type=int, default=5)
    parser.add_argument("--senders", type=int, default=8)
    parser.add_argument(
        "--max-gap",
        type=float,
        default=0.5,
        help="longest time (s) between a restart and the next kill",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--database-url", help="PostgreSQL URL (default: SQLite in a temp dir)")
    parser.add_argument(
        "--postgres", action="store_true", help="start a throwaway PostgreSQL server and use it"
    )
    args = parser.parse_args()
    if args.postgres:
        from ledger_throughput import postgres  # noqa: PLC0415 - bench/ is on sys.path

        with postgres() as url:
            if url is None:
                print("PostgreSQL binaries not installed", file=sys.stderr)
                return 2
            args.database_url = url
            return run_in_temp_dir(args)
    return run_in_temp_dir(args)


def run_in_temp_dir(args: argparse.Namespace) -> int:
    """Run the soak with a fresh data directory."""
    with (
        tempfile.TemporaryDirectory(prefix="ledger-soak-") as tmp,
        contextlib.suppress(KeyboardInterrupt),
    ):
        return asyncio.run(soak(args, Path(tmp)))
    return 1


if __name__ == "__main__":
    sys.exit(main())
