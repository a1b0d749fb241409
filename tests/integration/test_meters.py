"""Meters polled from the simulator over real sockets: entities, relay, faults, recovery."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from decimal import Decimal

import pytest
from homeassistant.components.modbus.connection import async_get_connection_info
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import (
    STATE_OFF,
    STATE_ON,
    STATE_UNAVAILABLE,
    STATE_UNKNOWN,
    EntityCategory,
)
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers import issue_registry as ir
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.prepaid_meter.const import DOMAIN
from meter_simulator import MeterSimulator, SimulatedMeter

from .conftest import (
    ACREL_UNIT,
    HIKING_UNIT,
    LOAD_W,
    SDM120_UNIT,
    START_KWH,
    LedgerSite,
    meter_subentry,
    tcp_meter,
)


def _meter(entry: MockConfigEntry, title: str):
    for subentry_id, coordinator in entry.runtime_data.meters.items():
        if coordinator.subentry.title == title:
            return subentry_id, coordinator
    raise AssertionError(title)


async def test_entities_show_simulated_values(
    hass: HomeAssistant, site_with_meters: MockConfigEntry
) -> None:
    energy = hass.states.get("sensor.room_1_energy")
    assert energy is not None
    assert Decimal(energy.state) >= Decimal(str(START_KWH))
    assert Decimal(energy.state) < Decimal(str(START_KWH)) + 1
    assert energy.attributes["state_class"] == "total_increasing"
    assert energy.attributes["device_class"] == "energy"
    assert energy.attributes["unit_of_measurement"] == "kWh"
    power = hass.states.get("sensor.room_1_power")
    assert power is not None
    assert float(power.state) == pytest.approx(LOAD_W, abs=1)
    voltage = hass.states.get("sensor.room_2_voltage")
    assert voltage is not None
    assert float(voltage.state) == pytest.approx(230, abs=0.5)
    assert hass.states.get("switch.room_1_supply_relay").state == STATE_ON
    assert hass.states.get("switch.room_2_supply_relay").state == STATE_ON
    assert hass.states.get("binary_sensor.room_1_meter_connection").state == STATE_ON


async def test_devices_and_disabled_by_default(
    hass: HomeAssistant, site_with_meters: MockConfigEntry
) -> None:
    device_registry = dr.async_get(hass)
    entity_registry = er.async_get(hass)
    subentry_id, _ = _meter(site_with_meters, "Room 1")
    device = device_registry.async_get_device_by_identifier(
        (DOMAIN, subentry_id), site_with_meters.entry_id
    )
    assert device is not None
    assert device.name == "Room 1"
    assert (device.manufacturer, device.model) == ("Acrel", "DDSY1352")
    assert device.config_entry_id == site_with_meters.entry_id
    assert device.config_subentry_id == subentry_id
    frequency = entity_registry.async_get("sensor.room_2_frequency")
    assert frequency is not None
    assert frequency.disabled_by is er.RegistryEntryDisabler.INTEGRATION
    connectivity = entity_registry.async_get("binary_sensor.room_1_meter_connection")
    assert connectivity is not None
    assert connectivity.entity_category is EntityCategory.DIAGNOSTIC


@pytest.mark.parametrize(("title", "unit"), [("Room 1", ACREL_UNIT), ("Room 2", SDM120_UNIT)])
async def test_relay_cut_and_restore_confirmed(
    hass: HomeAssistant,
    site_with_meters: MockConfigEntry,
    sim: MeterSimulator,
    title: str,
    unit: int,
) -> None:
    entity_id = f"switch.{title.lower().replace(' ', '_')}_supply_relay"
    await hass.services.async_call("switch", "turn_off", {"entity_id": entity_id}, blocking=True)
    assert hass.states.get(entity_id).state == STATE_OFF
    assert sim.meter(unit).relay_closed is False
    assert sim.meter(unit).rate == 0.0, "an open relay stops consumption"
    await hass.services.async_call("switch", "turn_on", {"entity_id": entity_id}, blocking=True)
    assert hass.states.get(entity_id).state == STATE_ON
    assert sim.meter(unit).relay_closed is True


async def test_relay_mismatch_is_an_error_and_shows_the_real_state(
    hass: HomeAssistant, site_with_meters: MockConfigEntry, sim: MeterSimulator
) -> None:
    sim.set_fault(ACREL_UNIT, relay_stuck=True)
    with pytest.raises(HomeAssistantError, match="should be open but the meter reports it closed"):
        await hass.services.async_call(
            "switch", "turn_off", {"entity_id": "switch.room_1_supply_relay"}, blocking=True
        )
    assert hass.states.get("switch.room_1_supply_relay").state == STATE_ON
    assert sim.meter(ACREL_UNIT).relay_closed is True


async def test_dead_meter_does_not_affect_others(
    hass: HomeAssistant, site_with_meters: MockConfigEntry, sim: MeterSimulator
) -> None:
    _, room1 = _meter(site_with_meters, "Room 1")
    _, room2 = _meter(site_with_meters, "Room 2")
    sim.set_fault(ACREL_UNIT, silent=True)
    await room1.async_refresh()
    await room2.async_refresh()
    await hass.async_block_till_done()
    assert hass.states.get("sensor.room_1_energy").state == STATE_UNAVAILABLE
    assert hass.states.get("switch.room_1_supply_relay").state == STATE_UNAVAILABLE
    assert hass.states.get("binary_sensor.room_1_meter_connection").state == STATE_OFF
    assert hass.states.get("sensor.room_1_last_reading").state != STATE_UNAVAILABLE
    assert hass.states.get("sensor.room_2_energy").state != STATE_UNAVAILABLE
    assert hass.states.get("binary_sensor.room_2_meter_connection").state == STATE_ON

    sim.clear_faults()
    await room1.async_refresh()
    await hass.async_block_till_done()
    assert hass.states.get("sensor.room_1_energy").state != STATE_UNAVAILABLE


async def test_relay_module_silent_keeps_measurements(
    hass: HomeAssistant, site_with_meters: MockConfigEntry, sim: MeterSimulator
) -> None:
    _, room2 = _meter(site_with_meters, "Room 2")
    sim.set_fault(20, silent=True)
    await room2.async_refresh()
    await hass.async_block_till_done()
    assert hass.states.get("switch.room_2_supply_relay").state == STATE_UNAVAILABLE
    assert hass.states.get("sensor.room_2_energy").state != STATE_UNAVAILABLE


async def test_gateway_restart_recovers_without_reload(
    hass: HomeAssistant, site_with_meters: MockConfigEntry, sim: MeterSimulator
) -> None:
    _, room1 = _meter(site_with_meters, "Room 1")
    link = room1.link
    await sim.stop_tcp()
    await room1.async_refresh()
    await hass.async_block_till_done()
    assert hass.states.get("sensor.room_1_energy").state == STATE_UNAVAILABLE
    await sim.start_tcp(port=sim.tcp_port)
    for _ in range(20):  # polls keep coming; the shared connection opens again on one
        await room1.async_refresh()
        if room1.last_update_success:
            break
        await asyncio.sleep(0.1)
    await hass.async_block_till_done()
    assert hass.states.get("sensor.room_1_energy").state != STATE_UNAVAILABLE
    assert room1.link is link, "the same link reconnected; nothing was reloaded"
    (connection,) = async_get_connection_info(hass)
    assert connection.connected
    assert sim.stats.connections == 2, "one connection before the restart, one after"


async def test_repair_issue_when_unreachable_too_long(
    hass: HomeAssistant, site_with_meters: MockConfigEntry, sim: MeterSimulator
) -> None:
    _, room1 = _meter(site_with_meters, "Room 1")
    issues = ir.async_get(hass)
    sim.set_fault(ACREL_UNIT, silent=True)
    await room1.async_refresh()
    assert issues.async_get_issue(DOMAIN, room1.issue_id) is None, "not yet: 15 minutes default"
    room1.failing_since = room1.failing_since - timedelta(minutes=16)
    await room1.async_refresh()
    issue = issues.async_get_issue(DOMAIN, room1.issue_id)
    assert issue is not None
    assert issue.translation_placeholders["meter"] == "Room 1"
    sim.clear_faults()
    await room1.async_refresh()
    assert issues.async_get_issue(DOMAIN, room1.issue_id) is None


async def test_logs_once_when_unavailable_and_once_when_back(
    hass: HomeAssistant,
    site_with_meters: MockConfigEntry,
    sim: MeterSimulator,
    caplog: pytest.LogCaptureFixture,
) -> None:
    _, room1 = _meter(site_with_meters, "Room 1")
    sim.set_fault(ACREL_UNIT, silent=True)
    for _ in range(3):
        await room1.async_refresh()
    sim.clear_faults()
    await room1.async_refresh()
    await room1.async_refresh()
    coordinator_logs = [
        record
        for record in caplog.records
        if record.name == "custom_components.prepaid_meter.coordinator"
        and record.levelno >= logging.INFO
    ]
    down = [r for r in coordinator_logs if "Room 1 did not answer" in r.getMessage()]
    back = [r for r in coordinator_logs if "recovered" in r.getMessage()]
    assert len(down) == 1
    assert down[0].levelno == logging.ERROR
    assert len(back) == 1


async def test_meters_share_one_connection_per_gateway(
    hass: HomeAssistant, site_with_meters: MockConfigEntry, sim: MeterSimulator
) -> None:
    _, room1 = _meter(site_with_meters, "Room 1")
    _, room2 = _meter(site_with_meters, "Room 2")
    (connection,) = async_get_connection_info(hass)
    assert connection.endpoint == ("tcp", "127.0.0.1", sim.tcp_port)
    assert connection.units == {
        site_with_meters.entry_id: sorted({room1.unit_id, room2.unit_id, 20})
    }, "both meters and Room 2's relay module hold units on the one connection"
    assert sim.stats.connections == 1


async def test_meter_dead_at_startup_leaves_site_loaded(
    hass: HomeAssistant, ledger: LedgerSite, sim: MeterSimulator
) -> None:
    sim.set_fault(ACREL_UNIT, silent=True)
    entry = MockConfigEntry(
        domain=DOMAIN,
        unique_id=ledger.ledger_id,
        data={"url": ledger.url, "token": ledger.integration_token},
        subentries_data=[
            meter_subentry(tcp_meter(sim, "Room 1", ACREL_UNIT, "acrel_ddsy1352")),
            meter_subentry(tcp_meter(sim, "Room 3", HIKING_UNIT, "hiking_dds238_2")),
        ],
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    assert hass.states.get("sensor.room_1_energy").state == STATE_UNAVAILABLE
    assert hass.states.get("sensor.room_1_last_reading").state == STATE_UNAVAILABLE
    assert hass.states.get("binary_sensor.room_1_meter_connection").state == STATE_OFF
    assert hass.states.get("sensor.room_3_energy").state != STATE_UNAVAILABLE

    sim.clear_faults()
    _, room1 = _meter(entry, "Room 1")
    await room1.async_refresh()
    await hass.async_block_till_done()
    assert hass.states.get("sensor.room_1_energy").state != STATE_UNAVAILABLE
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_relay_write_failure_is_an_error(
    hass: HomeAssistant, site_with_meters: MockConfigEntry, sim: MeterSimulator
) -> None:
    sim.set_fault(ACREL_UNIT, exception=4)
    with pytest.raises(HomeAssistantError, match="Could not switch the relay of Room 1"):
        await hass.services.async_call(
            "switch", "turn_off", {"entity_id": "switch.room_1_supply_relay"}, blocking=True
        )
    assert sim.meter(ACREL_UNIT).relay_closed is True


async def test_relay_write_without_answer_shows_what_the_meter_says(
    hass: HomeAssistant, site_with_meters: MockConfigEntry, sim: MeterSimulator
) -> None:
    """The meter switched but its acknowledgement was lost: show the read-back, not the past."""
    assert hass.states.get("switch.room_1_supply_relay").state == STATE_ON
    sim.set_fault(ACREL_UNIT, mute_writes=True)
    with pytest.raises(HomeAssistantError, match="Room 1"):
        await hass.services.async_call(
            "switch", "turn_off", {"entity_id": "switch.room_1_supply_relay"}, blocking=True
        )
    assert sim.meter(ACREL_UNIT).relay_closed is False
    assert hass.states.get("switch.room_1_supply_relay").state == STATE_OFF


async def test_relay_write_and_read_back_failing_make_the_relay_unavailable(
    hass: HomeAssistant, site_with_meters: MockConfigEntry, sim: MeterSimulator
) -> None:
    assert hass.states.get("switch.room_1_supply_relay").state == STATE_ON
    sim.set_fault(ACREL_UNIT, silent=True)
    with pytest.raises(HomeAssistantError, match="Room 1"):
        await hass.services.async_call(
            "switch", "turn_off", {"entity_id": "switch.room_1_supply_relay"}, blocking=True
        )
    assert hass.states.get("switch.room_1_supply_relay").state == STATE_UNAVAILABLE
    sim.clear_faults()
    _, room1 = _meter(site_with_meters, "Room 1")
    await room1.async_refresh()
    await hass.async_block_till_done()
    assert hass.states.get("switch.room_1_supply_relay").state == STATE_ON


async def test_acrel_never_commanded_shows_relay_unknown_until_a_command(
    hass: HomeAssistant, ledger: LedgerSite, sim: MeterSimulator
) -> None:
    """An Acrel that never had a remote command reads 0000 0000 at 0x0057: unknown, usable."""
    unit = 30
    sim.add(unit, SimulatedMeter("acrel_ddsy1352", relay_commanded=False, total=START_KWH))
    entry = MockConfigEntry(
        domain=DOMAIN,
        unique_id=ledger.ledger_id,
        data={"url": ledger.url, "token": ledger.integration_token},
        subentries_data=[meter_subentry(tcp_meter(sim, "Fresh", unit, "acrel_ddsy1352"))],
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert hass.states.get("switch.fresh_supply_relay").state == STATE_UNKNOWN
    assert float(hass.states.get("sensor.fresh_energy").state) == pytest.approx(START_KWH, abs=0.1)
    await hass.services.async_call(
        "switch", "turn_off", {"entity_id": "switch.fresh_supply_relay"}, blocking=True
    )
    assert sim.meter(unit).relay_closed is False
    assert hass.states.get("switch.fresh_supply_relay").state == STATE_OFF
    assert await hass.config_entries.async_unload(entry.entry_id)
