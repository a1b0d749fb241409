"""RTU: over a pseudo-terminal opened as a serial port, and RTU framing through a TCP gateway."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest

from custom_components.prepaid_meter.modbus import (
    RTU_REQUEST_COST,
    EndpointUnreachable,
    HubSettings,
    ModbusHub,
    NoResponse,
    SerialEndpoint,
    TcpEndpoint,
)
from custom_components.prepaid_meter.profiles import PROFILES, get_profile
from meter_simulator import rtu_exchange_time

from .conftest import FAST, LOAD_W, START_TOTAL, UNITS

pytestmark = pytest.mark.enable_socket


@pytest.fixture
async def serial_hub(sim):
    path = sim.open_pty()
    modbus_hub = ModbusHub(SerialEndpoint(port=path, baudrate=9600), FAST)
    yield modbus_hub
    await modbus_hub.close()


@pytest.mark.parametrize("profile_id", sorted(PROFILES))
async def test_every_profile_over_a_serial_line(serial_hub, profile_id):
    profile = get_profile(profile_id)
    values = await serial_hub.probe(UNITS[profile_id], profile)
    assert abs(values["energy_total"] - Decimal(str(START_TOTAL))) <= Decimal("0.01")
    assert values["power"] == LOAD_W


async def test_relay_over_a_serial_line(sim, serial_hub):
    profile = get_profile("acrel_ddsy1352")
    unit = UNITS["acrel_ddsy1352"]
    assert await serial_hub.set_relay(unit, profile, closed=False) is False
    assert sim.meter(unit).relay_closed is False
    assert await serial_hub.set_relay(unit, profile, closed=True) is True


async def test_dead_unit_on_a_serial_line(sim, serial_hub):
    sim.set_fault(UNITS["eastron_sdm120"], silent=True)
    with pytest.raises(NoResponse):
        await serial_hub.read_meter(UNITS["eastron_sdm120"], get_profile("eastron_sdm120"))
    values = await serial_hub.read_meter(UNITS["hiking_dds238_2"], get_profile("hiking_dds238_2"))
    assert values["power"] == LOAD_W


async def test_corrupt_crc_is_no_response_on_serial(sim, serial_hub):
    unit = UNITS["hiking_dds238_2"]
    sim.set_fault(unit, corrupt=True)
    with pytest.raises(NoResponse):
        await serial_hub.read_meter(unit, get_profile("hiking_dds238_2"))
    sim.clear_faults()
    assert (await serial_hub.read_meter(unit, get_profile("hiking_dds238_2")))["power"] == LOAD_W


async def test_serial_frame_gap_paces_requests(sim):
    path = sim.open_pty()
    gap = 0.05
    hub = ModbusHub(SerialEndpoint(port=path), HubSettings(timeout=0.3, frame_gap=gap))
    assert hub.frame_gap == gap
    assert ModbusHub(SerialEndpoint(port=path, baudrate=9600)).frame_gap == pytest.approx(
        3.5 * 11 / 9600
    )
    try:
        profile = get_profile("chint_ddsu666")  # two requests per read
        await hub.read_meter(UNITS["chint_ddsu666"], profile)
        started = time.monotonic()
        await hub.read_meter(UNITS["chint_ddsu666"], profile)
        assert time.monotonic() - started >= 2 * gap * 0.9
    finally:
        await hub.close()


async def test_rtu_framing_through_a_tcp_gateway(sim):
    port = await sim.start_tcp(framing="rtu")
    hub = ModbusHub(TcpEndpoint(host="127.0.0.1", port=port, framing="rtu"), FAST)
    try:
        for profile_id in ("acrel_ddsy1352", "eastron_sdm630"):
            values = await hub.probe(UNITS[profile_id], get_profile(profile_id))
            assert values["power"] == LOAD_W
        assert hub.frame_gap == 0
    finally:
        await hub.close()


async def test_wire_timing_delays_answers_by_frame_time(sim):
    sim.wire_baudrate = 9600
    path = sim.open_pty()
    hub = ModbusHub(SerialEndpoint(port=path, baudrate=9600), HubSettings(timeout=1, frame_gap=0))
    try:
        profile = get_profile("eastron_sdm630")  # one read of 76 registers
        await hub.read_meter(UNITS["eastron_sdm630"], profile)
        started = time.monotonic()
        await hub.read_meter(UNITS["eastron_sdm630"], profile)
        elapsed = time.monotonic() - started
    finally:
        await hub.close()
    bound = rtu_exchange_time(5, 2 + 2 * 76, 9600)
    assert bound == pytest.approx((5 + 154 + 6 + 7) * 11 / 9600)
    assert bound <= elapsed < bound * 2


async def test_missing_serial_port_is_unreachable(tmp_path):
    hub = ModbusHub(SerialEndpoint(port=str(tmp_path / "ttyUSB9")), FAST)
    try:
        with pytest.raises(EndpointUnreachable, match="cannot connect"):
            await hub.read_meter(1, get_profile("acrel_ddsy1352"))
        assert not hub.connected
    finally:
        await hub.close()


async def test_wire_cost_planning_on_a_serial_line(sim):
    path = sim.open_pty()
    settings = HubSettings(timeout=0.3, request_cost=RTU_REQUEST_COST)
    hub = ModbusHub(SerialEndpoint(port=path), settings)
    unit = UNITS["eastron_sdm120"]
    try:
        values = await hub.probe(unit, get_profile("eastron_sdm120"))
        assert values["power"] == LOAD_W
        assert sim.stats.per_unit[unit] == 3
        await hub.read_meter(unit, get_profile("eastron_sdm120"))
        assert sim.stats.per_unit[unit] == 6
    finally:
        await hub.close()
