"""One tenant room, live: the ledger service, a simulated meter with a relay, a configured entry.

Shared by the end-to-end tests of live prepaid control and of the reading guard; the
fixtures are registered in ``conftest.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import entity_registry as er
from prepaid_ledger.app import create_app
from prepaid_ledger.config import Settings
from prepaid_ledger.store.database import sqlite_url
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.prepaid_meter.const import (
    CONF_LEDGER_METER_ID,
    CONF_TOKEN,
    CONF_URL,
    DOMAIN,
)
from meter_simulator import ConstantLoad, MeterSimulator, RelayModule, SimulatedMeter
from tests.ledger.conftest import (
    STRIPE_SECRET,
    fresh_postgres_database,
)
from tests.ledger.webhook_helpers import checkout_completed, stripe_delivery

METER_UNIT = 2
RELAY_UNIT = 20
PRICE = Decimal("100.00")  # EUR per kWh: 3.6 kW is 1 Wh a second, ten cents a second
LOAD_W = 3600.0


class LedgerProcess:
    """The ledger service on a fixed port and data directory, stoppable and restartable.

    PUBLIC: its public_base_url is the address it listens on (pay links work); the socket is
    bound first, so the configured URL names its real port. SETTINGS: further ledger Settings
    fields (e.g. stripe_api_key, stripe_api_base).
    """

    def __init__(
        self, data_dir: Path, database_url: str | None, *, public: bool = False, **settings: Any
    ) -> None:
        self.data_dir = data_dir
        self.database_url = database_url
        self.admin_token = secrets.token_urlsafe(16)
        self.port = 0
        self.public = public
        self.settings = settings
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        sock: socket.socket | None = None
        if self.public and not self.port:
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        settings = Settings(
            data_dir=self.data_dir,
            database_url=self.database_url or sqlite_url(self.data_dir),
            admin_token=self.admin_token,
            stripe_webhook_secret=STRIPE_SECRET,
            **({"public_base_url": self.url} if self.public else {}),
            **self.settings,
        )
        self._runner = web.AppRunner(create_app(settings), shutdown_timeout=0.1)
        await self._runner.setup()
        site: web.BaseSite = (
            web.TCPSite(self._runner, "127.0.0.1", self.port)
            if sock is None
            else web.SockSite(self._runner, sock)
        )
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        assert self._runner is not None
        await self._runner.cleanup()
        self._runner = None

    async def call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        all_headers = {"Authorization": f"Bearer {self.admin_token}", **(headers or {})}
        async with (
            aiohttp.ClientSession(headers=all_headers) as http,
            http.request(method, self.url + path, json=body) as response,
        ):
            assert response.status < 300, await response.text()
            return await response.json()

    async def top_up(self, account_id: int, amount_minor: int) -> None:
        await self.call(
            "POST",
            "/api/v1/topups",
            {"account": account_id, "amount_minor": amount_minor},
            {"Idempotency-Key": secrets.token_hex(8)},
        )

    async def pay_by_stripe(self, number: str, amount_minor: int) -> None:
        body, headers = stripe_delivery(checkout_completed(number, amount_minor))
        async with (
            aiohttp.ClientSession() as http,
            http.post(self.url + "/webhooks/stripe", data=body, headers=headers) as response,
        ):
            assert response.status == 200, await response.text()


@dataclass
class Room:
    """One tenant room: its ledger account and meter, the simulated meter, the HA entry."""

    ledger: LedgerProcess
    sim: MeterSimulator
    meter: SimulatedMeter
    entry: MockConfigEntry
    account: dict[str, Any]
    ledger_meter_id: int

    @property
    def sync(self) -> Any:
        return self.entry.runtime_data.sync

    @property
    def coordinator(self) -> Any:
        return next(iter(self.entry.runtime_data.meters.values()))

    async def poll_and_post(self, hass: HomeAssistant) -> None:
        """Poll the meter now and deliver the reading (what a poll cycle does)."""
        await self.coordinator.async_refresh()
        await self.sync.async_flush()
        await hass.async_block_till_done()

    async def balance_minor(self) -> int:
        account = await self.ledger.call("GET", f"/api/v1/accounts/{self.account['id']}")
        return int(account["balance_minor"])


def entity_id(hass: HomeAssistant, room: Room, key: str, domain: str = "sensor") -> str:
    subentry_id = next(iter(room.entry.subentries))
    found = er.async_get(hass).async_get_entity_id(domain, DOMAIN, f"{subentry_id}_{key}")
    assert found is not None, key
    return found


async def wait_for(condition: Callable[[], bool], within: float = 5.0) -> None:
    """Wait for a condition driven by pushed events (never by a poll)."""
    deadline = asyncio.get_running_loop().time() + within
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


RoomFactory = Callable[..., Awaitable[Room]]


@pytest.fixture
def ledger_backend() -> str:
    """SQLite (the add-on's default) unless a test asks for PostgreSQL too."""
    return "sqlite"


@pytest.fixture
async def ledger_database_url(ledger_backend: str, request: pytest.FixtureRequest) -> str | None:
    """A fresh PostgreSQL database on the real server, or None for SQLite."""
    if ledger_backend == "sqlite":
        return None
    return await fresh_postgres_database(request.getfixturevalue("postgres_server"))


@pytest.fixture
async def make_room(
    hass: HomeAssistant, socket_enabled: None, tmp_path: Path, ledger_database_url: str | None
) -> AsyncIterator[RoomFactory]:
    """Build a ledger, a tariff, an account with credit and a linked meter with a relay."""
    ledger = LedgerProcess(tmp_path, ledger_database_url)
    await ledger.start()
    try:
        async with room_builder(hass, ledger) as build:
            yield build
    finally:
        if ledger._runner is not None:
            await ledger.stop()


@contextlib.asynccontextmanager
async def room_builder(hass: HomeAssistant, ledger: LedgerProcess) -> AsyncIterator[RoomFactory]:
    """Rooms on a running LEDGER (what make_room yields); unloads their entries and meters."""
    from tests.integration.conftest import meter_subentry, tcp_meter  # noqa: PLC0415 - a cycle

    sims: list[MeterSimulator] = []

    async def build(credit_minor: int = 100, **account_settings: Any) -> Room:
        tariff = await ledger.call(
            "POST",
            "/api/v1/tariffs",
            {
                "name": "Flat",
                "currency": "EUR",
                "unit": "kWh",
                "kind": "flat",
                "price": str(PRICE),
                "standing_charge_minor_per_day": 0,
            },
        )
        account = await ledger.call(
            "POST",
            "/api/v1/accounts",
            {
                "name": "Room 1",
                "currency": "EUR",
                "timezone": "Europe/Berlin",
                "low_balance_minor": [80, 20],
                **account_settings,
            },
        )
        ledger_meter = await ledger.call(
            "POST",
            "/api/v1/meters",
            {"account_id": account["id"], "tariff_id": tariff["id"], "name": "R1", "unit": "kWh"},
        )
        if credit_minor:
            await ledger.top_up(account["id"], credit_minor)
        token = await ledger.call("POST", "/api/v1/tokens", {"scope": "integration"})
        sim = MeterSimulator()
        meter = SimulatedMeter("eastron_sdm120", load=ConstantLoad(LOAD_W), total=10.0)
        sim.add(METER_UNIT, meter)
        module = RelayModule()
        sim.add(RELAY_UNIT, module)
        module.link(0, meter)
        await sim.start_tcp()
        sims.append(sim)
        data = tcp_meter(
            sim,
            "Room 1",
            METER_UNIT,
            "eastron_sdm120",
            relay_unit_id=RELAY_UNIT,
            **{CONF_LEDGER_METER_ID: ledger_meter["id"]},
        )
        entry = MockConfigEntry(
            domain=DOMAIN,
            title="Ledger",
            unique_id=(await ledger.call("GET", "/api/v1/health"))["ledger_id"],
            data={CONF_URL: ledger.url, CONF_TOKEN: token["token"]},
            subentries_data=[meter_subentry(data)],
        )
        entry.add_to_hass(hass)
        assert await hass.config_entries.async_setup(entry.entry_id)
        await hass.async_block_till_done()
        room = Room(ledger, sim, meter, entry, account, int(ledger_meter["id"]))
        # Tests poll when they choose: no timed poll may add a reading mid-test.
        room.coordinator.update_interval = None
        await wait_for(lambda: room.sync.stream_connected)
        await room.sync.async_flush()  # the setup poll's reading is delivered before the test
        assert len(room.sync.queue) == 0
        return room

    yield build
    for entry in hass.config_entries.async_entries(DOMAIN):
        if entry.state is ConfigEntryState.LOADED:
            await hass.config_entries.async_unload(entry.entry_id)
    for sim in sims:
        await sim.close()


def expected_charge_minor(kwh: Decimal) -> int:
    """Independent model: consumption times the tariff's price, rounded once to cents."""
    return int((kwh * PRICE * 100).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def room_device_id(hass: HomeAssistant, room: Room) -> str:
    device = dr.async_get(hass).async_get_device_by_identifier(
        (DOMAIN, next(iter(room.entry.subentries))), room.entry.entry_id
    )
    assert device is not None
    return device.id
