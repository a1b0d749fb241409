"""The flows as the frontend drives them: over Home Assistant's HTTP API, schemas serialised."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.prepaid_meter.const import DOMAIN, SUBENTRY_METER
from meter_simulator import MeterSimulator

from .conftest import ACREL_UNIT, START_KWH, LedgerSite

FLAT_TARIFF = {
    "name": "Flat",
    "currency": "EUR",
    "unit": "kWh",
    "kind": "flat",
    "price": "0.30",
    "standing_charge_minor_per_day": 0,
}


def _field_names(form: dict[str, Any]) -> list[str]:
    return [field["name"] for field in form["data_schema"]]


async def test_site_flow_over_http(
    hass: HomeAssistant, hass_client: ClientSessionGenerator, ledger: LedgerSite
) -> None:
    assert await async_setup_component(hass, "config", {})
    client = await hass_client()
    response = await client.post("/api/config/config_entries/flow", json={"handler": DOMAIN})
    assert response.status == 200
    form = await response.json()
    assert _field_names(form) == ["url", "token"]
    assert form["data_schema"][0]["selector"]["text"]["type"] == "url"
    response = await client.post(
        f"/api/config/config_entries/flow/{form['flow_id']}",
        json={"url": ledger.url, "token": "wrong"},
    )
    form = await response.json()
    assert form["errors"] == {"base": "invalid_auth"}
    response = await client.post(
        f"/api/config/config_entries/flow/{form['flow_id']}",
        json={"url": ledger.url, "token": ledger.admin_token},
    )
    created = await response.json()
    assert created["type"] == "create_entry"


async def test_meter_flow_over_http(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    site_entry: MockConfigEntry,
    ledger: LedgerSite,
    sim: MeterSimulator,
) -> None:
    tariff = await ledger.call("POST", "/api/v1/tariffs", FLAT_TARIFF)
    site_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(site_entry.entry_id)
    assert await async_setup_component(hass, "config", {})
    client = await hass_client()
    base = "/api/config/config_entries/subentries/flow"

    async def step(flow_id: str, data: dict[str, Any]) -> dict[str, Any]:
        response = await client.post(f"{base}/{flow_id}", json=data)
        assert response.status == 200, await response.text()
        result: dict[str, Any] = await response.json()
        return result

    response = await client.post(base, json={"handler": [site_entry.entry_id, SUBENTRY_METER]})
    assert response.status == 200, await response.text()
    form = await response.json()
    assert _field_names(form) == ["name", "profile", "connection"]
    form = await step(
        form["flow_id"], {"name": "Room 1", "profile": "acrel_ddsy1352", "connection": "tcp"}
    )
    assert form["step_id"] == "connection"
    # No polling interval: the integration picks it (quality scale: appropriate-polling).
    assert _field_names(form) == ["host", "port", "unit_id"]
    form = await step(
        form["flow_id"], {"host": "127.0.0.1", "port": sim.tcp_port, "unit_id": ACREL_UNIT}
    )
    assert form["step_id"] == "ledger"
    form = await step(form["flow_id"], {"ledger_meter_id": "new"})
    assert form["step_id"] == "ledger_new"
    assert _field_names(form) == ["account_name", "tariff"]
    done = await step(form["flow_id"], {"account_name": "Room 1", "tariff": str(tariff["id"])})
    assert done["type"] == "create_entry"
    await hass.async_block_till_done()
    (subentry,) = site_entry.subentries.values()
    # The flow created one account "Room 1" with one meter on the chosen tariff in the ledger;
    # the subentry points at exactly that meter.
    accounts = (await ledger.call("GET", "/api/v1/accounts"))["accounts"]
    (account,) = [a for a in accounts if a["name"] == "Room 1"]
    (meter,) = (await ledger.call("GET", f"/api/v1/meters?account={account['id']}"))["meters"]
    assert (meter["account_id"], meter["tariff_id"]) == (account["id"], tariff["id"])
    assert subentry.data["ledger_meter_id"] == meter["id"]
    # The energy sensor shows the simulated register (started at START_KWH, 1.5 kW load).
    energy = hass.states.get("sensor.room_1_energy")
    assert energy is not None
    assert Decimal(str(START_KWH)) <= Decimal(energy.state) < Decimal(str(START_KWH)) + 1
