"""Our meters and another integration's device on one gateway share core modbus's connection.

Two masters on one RS-485 gateway is the most reported Modbus problem in Home Assistant. Core
``modbus`` hands out units on one shared connection per device; here a second config entry,
standing for another integration that uses core's ``async_get_unit`` (as kaco_modbus, sofar or
solaredge_modbus do), holds a unit for a Hiking meter on the same simulated gateway. It reads
that meter with a component of its own, written from the Hiking manual with the library's
own fields, not with our profile.
"""

from __future__ import annotations

import asyncio

import modbus_connection as mc
from homeassistant.components.modbus.connection import (
    async_get_connection_info,
    async_get_unit,
)
from homeassistant.core import HomeAssistant
from modbus_connection.model import Component, gauge, integer
from pytest_homeassistant_custom_component.common import MockConfigEntry

from meter_simulator import MeterSimulator

from .conftest import ACREL_UNIT, HIKING_UNIT, LOAD_W, RELAY_MODULE_UNIT, SDM120_UNIT


class HikingAsAnotherIntegrationReadsIt(Component):
    """Hiking DDS238-2 manual: 000CH voltage 0.1 V, 000EH active power 1 W (signed)."""

    register_space = "holding"
    voltage = gauge(0x000C, 0.1, signed=False)
    power = integer(0x000E)


async def test_our_units_and_another_integrations_share_one_connection(
    hass: HomeAssistant, site_with_meters: MockConfigEntry, sim: MeterSimulator
) -> None:
    other = MockConfigEntry(domain="another_modbus_integration", title="Inverter")
    other.add_to_hass(hass)
    unit = async_get_unit(
        hass, other, mc.ModbusTcpParams(host="127.0.0.1", port=sim.tcp_port), HIKING_UNIT
    )
    hiking = HikingAsAnotherIntegrationReadsIt(unit)
    coordinators = list(site_with_meters.runtime_data.meters.values())

    # Both integrations poll at once; the shared lock keeps their frames apart.
    for _ in range(3):
        await asyncio.gather(hiking.async_update(), *(c.async_refresh() for c in coordinators))
        assert (hiking.voltage, hiking.power) == (230.0, LOAD_W)
        assert all(c.last_update_success for c in coordinators)
    assert hass.states.get("sensor.room_1_power").state == "1500"

    (connection,) = async_get_connection_info(hass)
    assert connection.endpoint == ("tcp", "127.0.0.1", sim.tcp_port)
    assert connection.units == {
        site_with_meters.entry_id: sorted({ACREL_UNIT, SDM120_UNIT, RELAY_MODULE_UNIT}),
        other.entry_id: [HIKING_UNIT],
    }
    assert sim.stats.connections == 1, "one TCP session to the gateway, not one per integration"

    # Unloading our site leaves the other integration's connection up and reading.
    assert await hass.config_entries.async_unload(site_with_meters.entry_id)
    (connection,) = async_get_connection_info(hass)
    assert connection.units == {other.entry_id: [HIKING_UNIT]}
    await hiking.async_update()
    assert hiking.power == LOAD_W
    assert sim.stats.connections == 1

    # The last holder gone, core closes the connection.
    await other._async_process_on_unload(hass)
    assert async_get_connection_info(hass) == []
