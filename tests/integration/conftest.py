"""Fixtures for the Home Assistant side: a real ledger over HTTP on 127.0.0.1."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from homeassistant.config_entries import ConfigEntryState, ConfigSubentryData
from homeassistant.core import HomeAssistant
from prepaid_ledger.app import create_app
from prepaid_ledger.config import Settings
from prepaid_ledger.store.database import sqlite_url
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.prepaid_meter.const import (
    CONF_CONNECTION,
    CONF_HOST,
    CONF_NAME,
    CONF_PORT,
    CONF_PROFILE,
    CONF_SCAN_INTERVAL,
    CONF_TOKEN,
    CONF_UNIT_ID,
    CONF_URL,
    CONNECTION_TCP,
    DOMAIN,
    SUBENTRY_METER,
)
from custom_components.prepaid_meter.meter_flow import meter_unique_id
from meter_simulator import ConstantLoad, MeterSimulator, RelayModule, SimulatedMeter


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(enable_custom_integrations: None) -> None:
    """Let Home Assistant load custom_components/prepaid_meter in every test here."""


@dataclass
class LedgerSite:
    """A running ledger: where it is and the tokens it accepts."""

    url: str
    ledger_id: str
    admin_token: str
    integration_token: str
    tenant_token: str

    async def call(
        self, method: str, path: str, body: dict[str, Any] | None = None, token: str | None = None
    ) -> Any:
        """Call the ledger's API (admin token by default); fail the test on an error status."""
        headers = {"Authorization": f"Bearer {token or self.admin_token}"}
        async with (
            aiohttp.ClientSession(headers=headers) as http,
            http.request(method, self.url + path, json=body) as response,
        ):
            assert response.status < 300, await response.text()
            return await response.json()


@pytest.fixture
def ledger_settings() -> dict[str, Any]:
    """Extra ledger settings (a test module overrides this, e.g. to give it a Stripe API)."""
    return {}


@pytest.fixture
async def ledger(
    socket_enabled: None, tmp_path: Path, ledger_settings: dict[str, Any]
) -> AsyncIterator[LedgerSite]:
    """The real ledger service (prepaid_ledger) on SQLite, served on a free loopback port."""
    admin_token = secrets.token_urlsafe(16)
    settings = Settings(
        data_dir=tmp_path,
        database_url=sqlite_url(tmp_path),
        admin_token=admin_token,
        **ledger_settings,
    )
    runner = web.AppRunner(create_app(settings))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    health_site = LedgerSite(url, "", admin_token, "", "")
    try:
        health = await health_site.call("GET", "/api/v1/health")
        account = await health_site.call(
            "POST",
            "/api/v1/accounts",
            {"name": "Tenant", "currency": "EUR", "timezone": "Europe/Berlin"},
        )
        integration = await health_site.call("POST", "/api/v1/tokens", {"scope": "integration"})
        tenant = await health_site.call(
            "POST", "/api/v1/tokens", {"scope": "tenant", "account_id": account["id"]}
        )
        yield LedgerSite(
            url=url,
            ledger_id=health["ledger_id"],
            admin_token=admin_token,
            integration_token=integration["token"],
            tenant_token=tenant["token"],
        )
    finally:
        await runner.cleanup()


@pytest.fixture
def site_entry(ledger: LedgerSite) -> MockConfigEntry:
    """A config entry for the running ledger (not yet added to hass)."""
    return MockConfigEntry(
        domain=DOMAIN,
        title="Prepaid Meter Ledger",
        unique_id=ledger.ledger_id,
        data={CONF_URL: ledger.url, CONF_TOKEN: ledger.admin_token},
    )


# --------------------------------------------------------------------------- meters

ACREL_UNIT = 1
SDM120_UNIT = 2
HIKING_UNIT = 3
RELAY_MODULE_UNIT = 20
START_KWH = 1234.5
LOAD_W = 1500.0


@pytest.fixture
async def sim(socket_enabled: None) -> AsyncIterator[MeterSimulator]:
    """A Modbus TCP gateway on loopback with an Acrel, an SDM120 (+ relay module) and a Hiking."""
    simulator = MeterSimulator()
    for unit, profile_id in (
        (ACREL_UNIT, "acrel_ddsy1352"),
        (SDM120_UNIT, "eastron_sdm120"),
        (HIKING_UNIT, "hiking_dds238_2"),
    ):
        simulator.add(
            unit,
            SimulatedMeter(profile_id, load=ConstantLoad(LOAD_W), total=START_KWH),
        )
    module = RelayModule()
    simulator.add(RELAY_MODULE_UNIT, module)
    module.link(0, simulator.meter(SDM120_UNIT))
    await simulator.start_tcp()
    yield simulator
    await simulator.close()


def tcp_meter(
    sim: MeterSimulator, name: str, unit: int, profile: str, **extra: Any
) -> dict[str, Any]:
    """Subentry data of a meter behind the simulator's TCP gateway."""
    return {
        CONF_NAME: name,
        CONF_PROFILE: profile,
        CONF_CONNECTION: CONNECTION_TCP,
        CONF_HOST: "127.0.0.1",
        CONF_PORT: sim.tcp_port,
        CONF_UNIT_ID: unit,
        CONF_SCAN_INTERVAL: 10,
        **extra,
    }


def meter_subentry(data: dict[str, Any]) -> ConfigSubentryData:
    """A meter subentry as the flow would store it."""
    return ConfigSubentryData(
        data=data,
        subentry_type=SUBENTRY_METER,
        title=str(data[CONF_NAME]),
        unique_id=meter_unique_id(data),
    )


@pytest.fixture
async def site_with_meters(
    hass: HomeAssistant, ledger: LedgerSite, sim: MeterSimulator
) -> AsyncIterator[MockConfigEntry]:
    """A loaded site with Room 1 (Acrel) and Room 2 (SDM120 + relay module) on the gateway."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="Prepaid Meter Ledger",
        unique_id=ledger.ledger_id,
        data={CONF_URL: ledger.url, CONF_TOKEN: ledger.admin_token},
        subentries_data=[
            meter_subentry(tcp_meter(sim, "Room 1", ACREL_UNIT, "acrel_ddsy1352")),
            meter_subentry(
                tcp_meter(sim, "Room 2", SDM120_UNIT, "eastron_sdm120", relay_unit_id=20)
            ),
        ],
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    yield entry
    if entry.state is ConfigEntryState.LOADED:
        assert await hass.config_entries.async_unload(entry.entry_id)


# The live-room fixtures (a ledger, a simulated meter with a relay, a configured entry), shared
# by the end-to-end test modules. Imported last: live_room uses the helpers above.
from tests.integration.live_room import (  # noqa: E402
    ledger_backend,  # noqa: F401
    ledger_database_url,  # noqa: F401
    make_room,  # noqa: F401
)
from tests.ledger.conftest import postgres_server  # noqa: E402, F401
