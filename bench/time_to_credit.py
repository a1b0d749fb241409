"""Time to credit: from a signed payment webhook to the balance shown and the relay closed.

Scenario: the ledger runs as its own process (SQLite, as the add-on ships it); a simulated
Modbus gateway holds 32 Acrel DDSY1352 meters with built-in relays; a real Home Assistant runs
the integration with all 32 linked to prepaid accounts and polled every 30 s (set for the bench;
the integration polls every 10 s in use), so a design that waits for a poll cannot pass.

Each round: the room's account is put in debt (an admin adjustment), the ledger decides "no
supply", and the integration cuts the relay. Then a Stripe-signed ``checkout.session.completed``
webhook is POSTed to the ledger and the clock runs until both Home Assistant's balance entity
shows the new balance and the simulated meter reports its relay closed.

Also measured in the same run: the event-loop time the integration spends per poll cycle to
queue, persist and post the readings of 32 meters (``time.thread_time`` of the loop's thread,
so waiting for the ledger's answer is not counted, the JSON, HTTP and Store work is).

Run as ``scripts/run python bench/time_to_credit.py [--rounds N]``. The last line reads
``time_to_credit: n=N p50_ms=N p99_ms=N post_cycle_loop_ms=N``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
from homeassistant import loader
from homeassistant.core import HomeAssistant
from homeassistant.helpers import aiohttp_client, frame
from homeassistant.helpers import entity_registry as er
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_test_home_assistant,
)

from custom_components.prepaid_meter import coordinator as meter_coordinator
from custom_components.prepaid_meter.const import (
    CONF_CONNECTION,
    CONF_HOST,
    CONF_LEDGER_METER_ID,
    CONF_NAME,
    CONF_PORT,
    CONF_PROFILE,
    CONF_TOKEN,
    CONF_UNIT_ID,
    CONF_URL,
    CONNECTION_TCP,
    DOMAIN,
    SUBENTRY_METER,
)
from meter_simulator import ConstantLoad, MeterSimulator, SimulatedMeter

sys.path.insert(0, str(Path(__file__).parent))
from ledger_throughput import checkout_completed, free_port, stripe_signed

METERS = 32
POLL_S = 30
STRIPE_SECRET = "whsec_bench_" + secrets.token_hex(8)
TOP_UP_MINOR = 1000
ROOT = Path(__file__).resolve().parent.parent


class Ledger:
    """The ledger service as a separate process, as the add-on runs it."""

    def __init__(self, data_dir: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.admin_token = secrets.token_urlsafe(16)
        env = {
            **os.environ,
            "PREPAID_LEDGER_ADMIN_TOKEN": self.admin_token,
            "PREPAID_LEDGER_STRIPE_WEBHOOK_SECRET": STRIPE_SECRET,
        }
        self.process = subprocess.Popen(
            [sys.executable, "-m", "prepaid_ledger", "serve", "--data-dir", data_dir,
             "--port", str(self.port), "--public-port", str(free_port())],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        self.http = aiohttp.ClientSession(headers={"Authorization": f"Bearer {self.admin_token}"})

    async def ready(self) -> None:
        for _ in range(200):
            try:
                async with self.http.get(self.url + "/api/v1/health") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
        raise RuntimeError("ledger did not start")

    async def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        headers = {"Idempotency-Key": secrets.token_hex(8)} if path.endswith("topups") else {}
        async with self.http.request(method, self.url + path, json=body, headers=headers) as r:
            if r.status >= 300:
                raise RuntimeError(f"{method} {path}: {r.status} {await r.text()}")
            return await r.json()

    async def pay(self, number: str, amount_minor: int) -> None:
        """POST a Stripe-signed checkout.session.completed, as Stripe delivers it."""
        body = checkout_completed(number, amount_minor)
        async with (
            aiohttp.ClientSession() as http,
            http.post(
                self.url + "/webhooks/stripe", data=body, headers=stripe_signed(body, STRIPE_SECRET)
            ) as response,
        ):
            if response.status != 200:
                raise RuntimeError(f"webhook: {response.status} {await response.text()}")

    async def close(self) -> None:
        await self.http.close()
        self.process.terminate()
        self.process.wait(10)


async def wait_until(check: Any, limit_s: float = 10.0) -> None:
    deadline = time.perf_counter() + limit_s
    while not check():
        if time.perf_counter() > deadline:
            raise TimeoutError("condition not reached")
        await asyncio.sleep(0.001)


async def setup_site(
    hass: HomeAssistant, ledger: Ledger, sim: MeterSimulator
) -> tuple[MockConfigEntry, list[dict[str, Any]]]:
    tariff = await ledger.call(
        "POST",
        "/api/v1/tariffs",
        {"name": "Flat", "currency": "EUR", "unit": "kWh", "kind": "flat", "price": "0.30",
         "standing_charge_minor_per_day": 0},
    )  # fmt: skip
    rooms = []
    subentries = []
    for unit in range(1, METERS + 1):
        account = await ledger.call(
            "POST",
            "/api/v1/accounts",
            {"name": f"Room {unit}", "currency": "EUR", "timezone": "Europe/Berlin"},
        )
        meter = await ledger.call(
            "POST",
            "/api/v1/meters",
            {"account_id": account["id"], "tariff_id": tariff["id"], "name": f"Room {unit}",
             "unit": "kWh"},
        )  # fmt: skip
        await ledger.call(
            "POST", "/api/v1/topups", {"account": account["id"], "amount_minor": 5000}
        )
        rooms.append({"unit": unit, "account": account, "meter": meter})
        data = {
            CONF_NAME: f"Room {unit}",
            CONF_PROFILE: "acrel_ddsy1352",
            CONF_CONNECTION: CONNECTION_TCP,
            CONF_HOST: "127.0.0.1",
            CONF_PORT: sim.tcp_port,
            CONF_UNIT_ID: unit,
            CONF_LEDGER_METER_ID: meter["id"],
        }
        subentries.append(
            {"data": data, "subentry_type": SUBENTRY_METER, "title": f"Room {unit}",
             "unique_id": f"bench-{unit}"}
        )  # fmt: skip
    token = await ledger.call("POST", "/api/v1/tokens", {"scope": "integration"})
    health = await ledger.call("GET", "/api/v1/health")
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="Ledger",
        unique_id=health["ledger_id"],
        data={CONF_URL: ledger.url, CONF_TOKEN: token["token"]},
        subentries_data=subentries,  # type: ignore[arg-type]
    )
    entry.add_to_hass(hass)
    if not await hass.config_entries.async_setup(entry.entry_id):
        raise RuntimeError("integration did not set up")
    await hass.async_block_till_done()
    await wait_until(lambda: entry.runtime_data.sync.stream_connected)
    return entry, rooms


async def time_rounds(  # noqa: PLR0917 - one bench step, all of its parts
    hass: HomeAssistant,
    ledger: Ledger,
    sim: MeterSimulator,
    entry: MockConfigEntry,
    room: dict[str, Any],
    rounds: int,
) -> list[float]:
    registry = er.async_get(hass)
    subentry_id = next(
        s.subentry_id for s in entry.subentries.values() if s.data[CONF_UNIT_ID] == room["unit"]
    )
    balance_id = registry.async_get_entity_id("sensor", DOMAIN, f"{subentry_id}_balance")
    assert balance_id is not None
    meter = sim.meter(room["unit"])
    account_id = room["account"]["id"]
    times = []
    for _ in range(rounds):
        account = await ledger.call("GET", f"/api/v1/accounts/{account_id}")
        # Into debt: the ledger decides "no supply" and the integration cuts the relay.
        await ledger.call(
            "POST",
            "/api/v1/adjustments",
            {"account": account_id, "amount_minor": -account["balance_minor"] - 100,
             "reason": "bench: exhaust credit"},
        )  # fmt: skip
        await wait_until(lambda: meter.relay_closed is False)
        expected = f"{(TOP_UP_MINOR - 100) / 100:.2f}"
        started = time.perf_counter()
        await ledger.pay(room["account"]["number"], TOP_UP_MINOR)

        def credited(expected: str = expected) -> bool:
            state = hass.states.get(balance_id)
            return state is not None and state.state == expected and meter.relay_closed is True

        await wait_until(credited)
        times.append(time.perf_counter() - started)
    return times


async def posting_cost(entry: MockConfigEntry, rooms: list[dict[str, Any]], cycles: int) -> float:
    """Median event-loop CPU time (ms) of one cycle of 32 readings, each one charged.

    Counted: queueing, persisting, posting, applying the response, and handling the ledger's
    resulting events (balances of all 32 accounts change) with the entity updates they cause.
    """
    sync = entry.runtime_data.sync
    costs = []
    value = 5000.0
    for _ in range(cycles):
        value += 1.0  # 1 kWh more on every meter: every account is charged and changes
        at = dt_util.utcnow()
        events_before = sync.events_received
        started = time.thread_time()
        for room in rooms:
            sync.add_reading(int(room["meter"]["id"]), Decimal(f"{value:.2f}"), at)
        await sync.async_flush()
        target = events_before + len(rooms)
        await wait_until(lambda target=target: sync.events_received >= target)
        await asyncio.sleep(0.05)  # let the last entity updates run (sleeping costs no CPU)
        costs.append((time.thread_time() - started) * 1000)
    return statistics.median(costs)


async def main(rounds: int, cycles: int) -> str:
    logging.basicConfig(level=logging.WARNING)
    # The integration polls every 10 s; the issue asks for 30 s so that a design waiting for a
    # poll cannot pass. Only the interval changes, nothing on the push path.
    meter_coordinator.DEFAULT_SCAN_INTERVAL = POLL_S
    sim = MeterSimulator()
    for unit in range(1, METERS + 1):
        sim.add(
            unit, SimulatedMeter("acrel_ddsy1352", load=ConstantLoad(800.0), total=1000.0 + unit)
        )
    await sim.start_tcp()
    with tempfile.TemporaryDirectory() as data_dir, tempfile.TemporaryDirectory() as config_dir:
        ledger = Ledger(data_dir)
        try:
            await ledger.ready()
            async with async_test_home_assistant(config_dir=config_dir) as hass:
                frame.async_setup(hass)
                # The test harness has no zeroconf; the ledger is an IP address, no DNS needed.
                aiohttp_client._async_make_resolver = lambda _hass: aiohttp.ThreadedResolver()
                hass.data.pop(loader.DATA_CUSTOM_COMPONENTS, None)
                entry, rooms = await setup_site(hass, ledger, sim)
                coordinator = next(iter(entry.runtime_data.meters.values()))
                assert coordinator.update_interval == timedelta(seconds=POLL_S)
                times = await time_rounds(hass, ledger, sim, entry, rooms[0], rounds)
                cost = await posting_cost(entry, rooms, cycles)
                await hass.config_entries.async_unload(entry.entry_id)
                await hass.async_stop(force=True)
        finally:
            await ledger.close()
            await sim.close()
    times_ms = sorted(t * 1000 for t in times)
    p50 = statistics.median(times_ms)
    p99 = times_ms[min(len(times_ms) - 1, int(len(times_ms) * 0.99))]
    print(
        f"top-ups: n={len(times_ms)} min={times_ms[0]:.1f} ms p50={p50:.1f} ms "
        f"p99={p99:.1f} ms max={times_ms[-1]:.1f} ms (meters polled every {POLL_S} s)"
    )
    print(f"posting {METERS} readings per cycle: {cost:.2f} ms of event-loop CPU (median)")
    return (
        f"time_to_credit: n={len(times_ms)} p50_ms={p50:.0f} p99_ms={p99:.0f} "
        f"post_cycle_loop_ms={cost:.1f}"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--cycles", type=int, default=50)
    args = parser.parse_args()
    print(asyncio.run(main(args.rounds, args.cycles)))
