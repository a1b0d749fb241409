"""The meter subentry flow against the simulator: test read, every error, reconfigure, remove."""

from __future__ import annotations

from typing import Any

import pytest
from homeassistant.config_entries import SOURCE_USER, ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import issue_registry as ir
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.prepaid_meter.const import DOMAIN, SUBENTRY_METER
from meter_simulator import ConstantLoad, MeterSimulator, SimulatedMeter

from .conftest import (
    ACREL_UNIT,
    HIKING_UNIT,
    SDM120_UNIT,
    LedgerSite,
    meter_subentry,
    tcp_meter,
)

CUSTOM_YAML = """
id: my_meter
name: My meter
registers:
  - key: energy_total
    address: 10
    function: 3
    data_type: uint32
    scale: "0.01"
    unit: kWh
"""


@pytest.fixture
async def loaded_site(hass: HomeAssistant, site_entry: MockConfigEntry) -> MockConfigEntry:
    site_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(site_entry.entry_id)
    await hass.async_block_till_done()
    return site_entry


async def _add_meter(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    meter: dict[str, Any],
    connection: dict[str, Any],
    link: str | None = "none",
) -> dict[str, Any]:
    """Run the flow to its end; ``link=None`` stops at the ledger step."""
    result = await _meter_flow_until_ledger(hass, entry, meter, connection)
    if link is None or result.get("step_id") != "ledger":
        return result
    return await hass.config_entries.subentries.async_configure(
        result["flow_id"], {"ledger_meter_id": link}
    )


async def _meter_flow_until_ledger(
    hass: HomeAssistant, entry: MockConfigEntry, meter: dict[str, Any], connection: dict[str, Any]
) -> dict[str, Any]:
    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, SUBENTRY_METER), context={"source": SOURCE_USER}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "user"
    result = await hass.config_entries.subentries.async_configure(result["flow_id"], meter)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "connection"
    return await hass.config_entries.subentries.async_configure(result["flow_id"], connection)


def _tcp(sim: MeterSimulator, unit: int, **extra: Any) -> dict[str, Any]:
    return {
        "host": "127.0.0.1",
        "port": sim.tcp_port,
        "unit_id": unit,
        **extra,
    }


async def test_add_meter_after_test_read(
    hass: HomeAssistant, loaded_site: MockConfigEntry, sim: MeterSimulator
) -> None:
    result = await _add_meter(
        hass,
        loaded_site,
        {"name": "Room 7", "profile": "hiking_dds238_2", "connection": "tcp"},
        _tcp(sim, HIKING_UNIT),
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    (subentry,) = loaded_site.subentries.values()
    assert subentry.title == "Room 7"
    assert subentry.data["unit_id"] == HIKING_UNIT
    assert subentry.unique_id == f"tcp://127.0.0.1:{sim.tcp_port}/{HIKING_UNIT}"
    assert loaded_site.state is ConfigEntryState.LOADED
    state = hass.states.get("sensor.room_7_energy")
    assert state is not None
    assert float(state.state) >= 1234.5

    again = await _add_meter(
        hass,
        loaded_site,
        {"name": "Same meter", "profile": "hiking_dds238_2", "connection": "tcp"},
        _tcp(sim, HIKING_UNIT),
    )
    assert again["type"] is FlowResultType.ABORT
    assert again["reason"] == "already_configured"


@pytest.mark.parametrize(
    ("meter", "connection", "error"),
    [
        ({"profile": "acrel_ddsy1352"}, {"port": 9}, "cannot_connect"),
        ({"profile": "acrel_ddsy1352"}, {"unit_id": 99}, "no_response"),
        ({"profile": "chint_ddsu666"}, {"unit_id": ACREL_UNIT}, "wrong_profile"),
        ({"profile": "eastron_sdm120"}, {"unit_id": ACREL_UNIT}, "wrong_profile"),
        ({"profile": "custom"}, {"custom_profile": "registers: nope"}, "invalid_profile"),
        ({"profile": "acrel_ddsy1352"}, {"host": " "}, "invalid_connection"),
    ],
)
async def test_add_meter_errors(
    hass: HomeAssistant,
    loaded_site: MockConfigEntry,
    sim: MeterSimulator,
    meter: dict[str, Any],
    connection: dict[str, Any],
    error: str,
) -> None:
    result = await _add_meter(
        hass,
        loaded_site,
        {"name": "Room 9", "connection": "tcp", **meter},
        {**_tcp(sim, ACREL_UNIT), **connection},
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": error}
    assert result["description_placeholders"]["detail"], "the Modbus detail is shown"
    assert not loaded_site.subentries


async def test_add_custom_profile_meter(
    hass: HomeAssistant, loaded_site: MockConfigEntry, sim: MeterSimulator
) -> None:
    result = await _add_meter(
        hass,
        loaded_site,
        {"name": "Custom", "profile": "custom", "connection": "tcp"},
        {**_tcp(sim, HIKING_UNIT), "custom_profile": CUSTOM_YAML},
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    state = hass.states.get("sensor.custom_energy")
    assert state is not None
    assert float(state.state) >= 1234.5


async def test_rtu_over_serial_pty(
    hass: HomeAssistant, loaded_site: MockConfigEntry, sim: MeterSimulator
) -> None:
    path = sim.open_pty()
    result = await _add_meter(
        hass,
        loaded_site,
        {"name": "Serial room", "profile": "acrel_ddsy1352", "connection": "serial"},
        {
            "serial_port": path,
            "baudrate": "9600",
            "parity": "none",
            "stopbits": 1,
            "bytesize": 8,
            "unit_id": ACREL_UNIT,
        },
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    state = hass.states.get("sensor.serial_room_energy")
    assert state is not None
    assert float(state.state) >= 1234.5
    await hass.services.async_call(
        "switch", "turn_off", {"entity_id": "switch.serial_room_supply_relay"}, blocking=True
    )
    assert sim.meter(ACREL_UNIT).relay_closed is False


async def test_serial_port_with_two_settings_raises_repair_issue(
    hass: HomeAssistant, ledger: Any, sim: MeterSimulator, site_entry: MockConfigEntry
) -> None:
    path = sim.open_pty()
    serial: dict[str, Any] = {
        "connection": "serial",
        "serial_port": path,
        # Stored as older versions did ("N", a scan interval): still loads.
        "parity": "N",
        "stopbits": 1,
        "bytesize": 8,
        "scan_interval": 10,
    }
    first = {**serial, "name": "A", "profile": "acrel_ddsy1352", "unit_id": 1, "baudrate": 9600}
    second = {**serial, "name": "B", "profile": "acrel_ddsy1352", "unit_id": 2, "baudrate": 2400}
    entry = MockConfigEntry(
        domain=DOMAIN,
        unique_id=site_entry.unique_id,
        data=dict(site_entry.data),
        subentries_data=[meter_subentry(first), meter_subentry(second)],
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert len(entry.runtime_data.meters) == 1
    (conflicted,) = [s for s in entry.subentries.values() if s.title == "B"]
    issue = ir.async_get(hass).async_get_issue(
        DOMAIN, f"endpoint_conflict_{conflicted.subentry_id}"
    )
    assert issue is not None
    assert "already in use" in issue.translation_placeholders["detail"]
    assert hass.states.get("sensor.a_energy") is not None

    # The config flow refuses the same conflict up front.
    result = await _add_meter(
        hass,
        entry,
        {"name": "C", "profile": "acrel_ddsy1352", "connection": "serial"},
        {
            k: v
            for k, v in {**serial, "unit_id": 3, "baudrate": "19200", "parity": "none"}.items()
            if k not in {"connection", "scan_interval"}
        },
    )
    assert result["errors"] == {"base": "endpoint_conflict"}
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_reconfigure_and_remove_meter(
    hass: HomeAssistant, site_with_meters: MockConfigEntry, sim: MeterSimulator
) -> None:
    entry = site_with_meters
    (room1,) = [s for s in entry.subentries.values() if s.title == "Room 1"]
    assert room1.data["scan_interval"] == 10
    result = await entry.start_subentry_reconfigure_flow(hass, room1.subentry_id)
    assert result["step_id"] == "reconfigure"
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"],
        {
            "name": "Room 1 (tenant B)",
            "profile": "acrel_ddsy1352",
            "connection": "tcp",
        },
    )
    assert result["step_id"] == "connection"
    # Moving it onto Room 2's address is refused.
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], _tcp(sim, SDM120_UNIT)
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "wrong_profile"}
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], _tcp(sim, ACREL_UNIT)
    )
    assert result["step_id"] == "ledger"
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {"ledger_meter_id": "none"}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    await hass.async_block_till_done()
    assert entry.subentries[room1.subentry_id].title == "Room 1 (tenant B)"
    # The integration picks the polling interval; one stored by an older version (the
    # fixture's subentries carry one) loaded, and is dropped on reconfigure.
    assert "scan_interval" not in entry.subentries[room1.subentry_id].data
    assert entry.state is ConfigEntryState.LOADED

    devices = dr.async_get(hass)
    assert devices.async_get_device_by_identifier((DOMAIN, room1.subentry_id), entry.entry_id)
    assert hass.config_entries.async_remove_subentry(entry, room1.subentry_id)
    await hass.async_block_till_done()
    assert (
        devices.async_get_device_by_identifier((DOMAIN, room1.subentry_id), entry.entry_id) is None
    )
    assert entry.state is ConfigEntryState.LOADED
    assert list(entry.runtime_data.meters) == [s.subentry_id for s in entry.subentries.values()]


async def test_reconfigure_onto_existing_meter_aborts(
    hass: HomeAssistant, site_with_meters: MockConfigEntry, sim: MeterSimulator
) -> None:
    entry = site_with_meters
    (room1,) = [s for s in entry.subentries.values() if s.title == "Room 1"]
    result = await entry.start_subentry_reconfigure_flow(hass, room1.subentry_id)
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {"name": "X", "profile": "eastron_sdm120", "connection": "tcp"}
    )
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], _tcp(sim, SDM120_UNIT, relay_unit_id=20)
    )
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {"ledger_meter_id": "none"}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


async def test_diagnostics_redact_token(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    site_with_meters: MockConfigEntry,
) -> None:
    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, site_with_meters)
    assert diagnostics["entry"]["token"] == "**REDACTED**"
    assert site_with_meters.data["token"] not in str(diagnostics)
    meters = diagnostics["meters"].values()
    assert {m["title"] for m in meters} == {"Room 1", "Room 2"}
    assert all(m["link_stats"]["reads"] > 0 for m in meters)
    # The shared connection this site holds its units on, as core modbus reports it.
    (connection,) = diagnostics["modbus_connections"]
    assert connection["connected"] is True
    assert sorted(connection["units"][site_with_meters.entry_id]) == sorted(
        {int(m["settings"]["unit_id"]) for m in meters} | {20}
    )


FLAT_TARIFF = {
    "name": "Flat",
    "currency": "EUR",
    "unit": "kWh",
    "kind": "flat",
    "price": "0.3000",
    "standing_charge_minor_per_day": 0,
}
HIKING = {"name": "Room 7", "profile": "hiking_dds238_2", "connection": "tcp"}


async def test_link_to_existing_ledger_meter(
    hass: HomeAssistant, loaded_site: MockConfigEntry, sim: MeterSimulator, ledger: LedgerSite
) -> None:
    tariff = await ledger.call("POST", "/api/v1/tariffs", FLAT_TARIFF)
    water = await ledger.call(
        "POST", "/api/v1/tariffs", {**FLAT_TARIFF, "name": "Water", "unit": "m3"}
    )
    account = await ledger.call(
        "POST", "/api/v1/accounts", {"name": "Anna", "currency": "EUR", "timezone": "UTC"}
    )
    body = {"account_id": account["id"], "tariff_id": tariff["id"], "name": "Room 7", "unit": "kWh"}
    meter = await ledger.call("POST", "/api/v1/meters", body)
    await ledger.call(
        "POST",
        "/api/v1/meters",
        {**body, "tariff_id": water["id"], "name": "Cold water", "unit": "m3"},
    )
    result = await _add_meter(hass, loaded_site, HIKING, _tcp(sim, HIKING_UNIT), link=None)
    assert result["step_id"] == "ledger"
    options = result["data_schema"].schema["ledger_meter_id"].config["options"]
    assert [o["value"] for o in options] == ["new", str(meter["id"]), "none"]
    assert "Anna" in options[1]["label"]
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {"ledger_meter_id": str(meter["id"])}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    (subentry,) = loaded_site.subentries.values()
    assert subentry.data["ledger_meter_id"] == meter["id"]

    # A linked ledger meter is not offered to the next meter.
    result = await _add_meter(
        hass, loaded_site, {**HIKING, "profile": "acrel_ddsy1352"}, _tcp(sim, ACREL_UNIT), None
    )
    options = result["data_schema"].schema["ledger_meter_id"].config["options"]
    assert [o["value"] for o in options] == ["new", "none"]


async def test_create_account_and_meter_from_the_flow(
    hass: HomeAssistant, loaded_site: MockConfigEntry, sim: MeterSimulator, ledger: LedgerSite
) -> None:
    tariff = await ledger.call("POST", "/api/v1/tariffs", FLAT_TARIFF)
    result = await _add_meter(hass, loaded_site, HIKING, _tcp(sim, HIKING_UNIT), link="new")
    assert result["step_id"] == "ledger_new"
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {"account_name": "Room 7 - Ben", "tariff": str(tariff["id"])}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    (subentry,) = loaded_site.subentries.values()
    meter = await ledger.call("GET", f"/api/v1/meters/{subentry.data['ledger_meter_id']}")
    assert meter["tariff_id"] == tariff["id"]
    account = await ledger.call("GET", f"/api/v1/accounts/{meter['account_id']}")
    assert account["name"] == "Room 7 - Ben"
    assert account["currency"] == "EUR"
    assert account["timezone"] == hass.config.time_zone


async def test_site_without_admin_scope_is_not_offered_new_accounts(
    hass: HomeAssistant, ledger: LedgerSite, sim: MeterSimulator
) -> None:
    """Only the admin scope opens accounts: an integration token's site links, or waits."""
    await ledger.call("POST", "/api/v1/tariffs", FLAT_TARIFF)
    entry = MockConfigEntry(
        domain=DOMAIN,
        unique_id=ledger.ledger_id,
        data={"url": ledger.url, "token": ledger.integration_token},
    )
    entry.add_to_hass(hass)
    result = await _add_meter(hass, entry, HIKING, _tcp(sim, HIKING_UNIT), link=None)
    assert result["step_id"] == "ledger"
    field = result["data_schema"].schema["ledger_meter_id"]
    assert [o["value"] for o in field.config["options"]] == ["none"]
    default = next(k for k in result["data_schema"].schema if k == "ledger_meter_id").default()
    assert default == "none", "the default path must be one the token can take"
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {"ledger_meter_id": default}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert ledger.integration_token  # the admin path is tested with the admin-token site


async def test_new_account_without_tariff_is_explained(
    hass: HomeAssistant, loaded_site: MockConfigEntry, sim: MeterSimulator
) -> None:
    result = await _add_meter(hass, loaded_site, HIKING, _tcp(sim, HIKING_UNIT), link="new")
    assert result["step_id"] == "ledger"
    assert result["errors"] == {"base": "no_tariff"}


async def test_ledger_down_during_link_still_allows_no_link(
    hass: HomeAssistant, sim: MeterSimulator, socket_enabled: None
) -> None:
    entry = MockConfigEntry(
        domain=DOMAIN, unique_id="x", data={"url": "http://127.0.0.1:9", "token": "t"}
    )
    entry.add_to_hass(hass)
    result = await _add_meter(hass, entry, HIKING, _tcp(sim, HIKING_UNIT), link=None)
    assert result["errors"] == {"base": "ledger_unavailable"}
    options = result["data_schema"].schema["ledger_meter_id"].config["options"]
    assert [o["value"] for o in options] == ["none"]
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {"ledger_meter_id": "none"}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY


RELAY_ON_ENERGY_WORDS = """
id: odd_relay
name: Odd relay
registers:
  - {key: energy_total, address: 10, data_type: uint32, scale: "0.01", unit: kWh}
relay: {type: register, address: 10, cut: [1, 1], restore: [1, 0]}
"""


async def test_relay_that_reads_back_nonsense_is_a_wrong_profile(
    hass: HomeAssistant, loaded_site: MockConfigEntry, sim: MeterSimulator
) -> None:
    result = await _add_meter(
        hass,
        loaded_site,
        {"name": "Odd", "profile": "custom", "connection": "tcp"},
        {**_tcp(sim, HIKING_UNIT), "custom_profile": RELAY_ON_ENERGY_WORDS},
    )
    assert result["errors"] == {"base": "wrong_profile"}
    assert "relay" in result["description_placeholders"]["detail"]


async def test_reconfigure_keeps_the_ledger_link_as_default(
    hass: HomeAssistant, ledger: LedgerSite, sim: MeterSimulator
) -> None:
    tariff = await ledger.call("POST", "/api/v1/tariffs", FLAT_TARIFF)
    account = await ledger.call(
        "POST", "/api/v1/accounts", {"name": "Anna", "currency": "EUR", "timezone": "UTC"}
    )
    meter = await ledger.call(
        "POST",
        "/api/v1/meters",
        {"account_id": account["id"], "tariff_id": tariff["id"], "name": "R1", "unit": "kWh"},
    )
    data = tcp_meter(sim, "Room 1", ACREL_UNIT, "acrel_ddsy1352", ledger_meter_id=meter["id"])
    site_entry = MockConfigEntry(
        domain=DOMAIN,
        unique_id=ledger.ledger_id,
        data={"url": ledger.url, "token": ledger.admin_token},
        subentries_data=[meter_subentry(data)],
    )
    site_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(site_entry.entry_id)
    (subentry,) = site_entry.subentries.values()
    result = await site_entry.start_subentry_reconfigure_flow(hass, subentry.subentry_id)
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {"name": "Room 1", "profile": "acrel_ddsy1352", "connection": "tcp"}
    )
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], _tcp(sim, ACREL_UNIT)
    )
    assert result["step_id"] == "ledger"
    field = next(k for k in result["data_schema"].schema if k == "ledger_meter_id")
    assert field.default() == str(meter["id"])
    options = result["data_schema"].schema["ledger_meter_id"].config["options"]
    assert str(meter["id"]) in [o["value"] for o in options], "its own link stays offered"
    assert await hass.config_entries.async_unload(site_entry.entry_id)


async def test_new_account_refused_by_the_ledger(
    hass: HomeAssistant, loaded_site: MockConfigEntry, sim: MeterSimulator, ledger: LedgerSite
) -> None:
    tariff = await ledger.call("POST", "/api/v1/tariffs", FLAT_TARIFF)
    result = await _add_meter(hass, loaded_site, HIKING, _tcp(sim, HIKING_UNIT), link="new")
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {"account_name": "x" * 500, "tariff": str(tariff["id"])}
    )
    assert result["errors"] == {"base": "ledger_rejected"}
    assert "name" in result["description_placeholders"]["detail"]


async def test_revoked_token_at_the_ledger_step(
    hass: HomeAssistant, ledger: LedgerSite, sim: MeterSimulator
) -> None:
    """A token revoked while the flow runs is named as such, not as an unreachable ledger."""
    await ledger.call("POST", "/api/v1/tariffs", FLAT_TARIFF)
    token = await ledger.call("POST", "/api/v1/tokens", {"scope": "integration"})
    entry = MockConfigEntry(
        domain=DOMAIN, unique_id=ledger.ledger_id, data={"url": ledger.url, "token": token["token"]}
    )
    entry.add_to_hass(hass)
    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, SUBENTRY_METER), context={"source": SOURCE_USER}
    )
    result = await hass.config_entries.subentries.async_configure(result["flow_id"], HIKING)
    await ledger.call("DELETE", f"/api/v1/tokens/{token['id']}")
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], _tcp(sim, HIKING_UNIT)
    )
    assert result["step_id"] == "ledger"
    assert result["errors"] == {"base": "invalid_auth"}


async def test_new_account_when_the_ledger_went_away(
    hass: HomeAssistant, loaded_site: MockConfigEntry, sim: MeterSimulator, ledger: LedgerSite
) -> None:
    tariff = await ledger.call("POST", "/api/v1/tariffs", FLAT_TARIFF)
    result = await _add_meter(hass, loaded_site, HIKING, _tcp(sim, HIKING_UNIT), link="new")
    hass.config_entries.async_update_entry(
        loaded_site, data={**loaded_site.data, "url": "http://127.0.0.1:9"}
    )
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {"account_name": "Ben", "tariff": str(tariff["id"])}
    )
    assert result["errors"] == {"base": "ledger_unavailable"}
    assert result["description_placeholders"]["detail"]


async def test_ddsu666_that_answers_fc03_only_is_added_and_read_with_fc03(
    hass: HomeAssistant, loaded_site: MockConfigEntry, sim: MeterSimulator
) -> None:
    """Firmware that follows Chint's manual ("read command is 03H") refuses FC04."""
    sim.add(31, SimulatedMeter("chint_ddsu666_fc03", load=ConstantLoad(2300), total=77.5))
    result = await _add_meter(
        hass,
        loaded_site,
        {"name": "Chint", "profile": "chint_ddsu666", "connection": "tcp"},
        _tcp(sim, 31),
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    (subentry,) = loaded_site.subentries.values()
    assert subentry.data["read_function"] == 3
    assert float(hass.states.get("sensor.chint_power").state) == pytest.approx(2300, abs=1)
    assert float(hass.states.get("sensor.chint_energy").state) == pytest.approx(77.5, abs=0.1)


async def test_ddsu666_that_answers_fc04_keeps_fc04(
    hass: HomeAssistant, loaded_site: MockConfigEntry, sim: MeterSimulator
) -> None:
    sim.add(32, SimulatedMeter("chint_ddsu666", load=ConstantLoad(2300), total=77.5))
    result = await _add_meter(
        hass,
        loaded_site,
        {"name": "Chint", "profile": "chint_ddsu666", "connection": "tcp"},
        _tcp(sim, 32),
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    (subentry,) = loaded_site.subentries.values()
    assert "read_function" not in subentry.data
    assert sim.stats.per_function.get(3, 0) == 0


async def test_acrel_that_never_had_a_relay_command_is_accepted(
    hass: HomeAssistant, loaded_site: MockConfigEntry, sim: MeterSimulator
) -> None:
    sim.add(33, SimulatedMeter("acrel_ddsy1352", relay_commanded=False))
    result = await _add_meter(
        hass,
        loaded_site,
        {"name": "Fresh", "profile": "acrel_ddsy1352", "connection": "tcp"},
        _tcp(sim, 33),
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY


HUGE_SCALE_YAML = """
id: huge
name: Huge
registers:
  - {key: energy_total, address: 10, data_type: uint32, scale: 1e999999, unit: kWh}
"""

#: float32 over the Acrel's energy words; 0x7FC0 0x0000 is a NaN.
FLOAT_OVER_ACREL_YAML = """
id: floaty
name: Floaty
registers:
  - {key: energy_total, address: 0, data_type: float32, unit: kWh}
"""


async def test_custom_scale_beyond_decoding_is_an_invalid_profile(
    hass: HomeAssistant, loaded_site: MockConfigEntry, sim: MeterSimulator
) -> None:
    result = await _add_meter(
        hass,
        loaded_site,
        {"name": "Huge", "profile": "custom", "connection": "tcp"},
        {**_tcp(sim, HIKING_UNIT), "custom_profile": HUGE_SCALE_YAML},
    )
    assert result["errors"] == {"base": "invalid_profile"}
    assert "scale" in result["description_placeholders"]["detail"]
    assert not loaded_site.subentries


async def test_custom_map_that_cannot_decode_the_words_is_an_invalid_profile(
    hass: HomeAssistant, loaded_site: MockConfigEntry, sim: MeterSimulator
) -> None:
    # 0x7FC00000 x 0.01 kWh: the Acrel's energy words are a float32 NaN.
    sim.add(34, SimulatedMeter("acrel_ddsy1352", total=0x7FC0_0000 / 100))
    result = await _add_meter(
        hass,
        loaded_site,
        {"name": "Floaty", "profile": "custom", "connection": "tcp"},
        {**_tcp(sim, 34), "custom_profile": FLOAT_OVER_ACREL_YAML},
    )
    assert result["errors"] == {"base": "invalid_profile"}
    assert "not a finite number" in result["description_placeholders"]["detail"]
    assert not loaded_site.subentries
