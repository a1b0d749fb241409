"""RTU: over a pseudo-terminal opened as a serial port, and RTU framing through a TCP gateway."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

import modbus_connection as mc
import pytest
from modbus_connection.tmodbus import ModbusConnection

from custom_components.prepaid_meter.meter_errors import EndpointUnreachable, NoResponse
from custom_components.prepaid_meter.meter_link import RTU_MAX_GAP, MeterLink
from custom_components.prepaid_meter.profiles import PROFILES, CoilRelay, get_profile
from meter_simulator import rtu_exchange_time

from .conftest import LOAD_W, START_TOTAL, UNITS, make_link

pytestmark = pytest.mark.enable_socket


def rtu_link(
    connection: mc.ModbusConnection, profile_id: str, unit_id: int | None = None
) -> MeterLink:
    """A link as the integration builds one on a serial line: gaps bridged up to RTU_MAX_GAP."""
    plain = make_link(connection, profile_id, unit_id)  # asks the connection for FAST_TIMEOUT
    relay = plain.profile.relay
    module = relay.unit_id if isinstance(relay, CoilRelay) else None
    return MeterLink(
        connection.for_unit(plain.unit_id),
        plain.profile,
        unit_id=plain.unit_id,
        endpoint="pty",
        relay_unit=None if module is None else connection.for_unit(module),
        max_gap=RTU_MAX_GAP,
    )


@pytest.fixture
async def serial_connection(sim):
    """The simulator's pty opened as a 9600 baud serial port."""
    shared = ModbusConnection(mc.ModbusSerialParams(device=sim.open_pty(), baudrate=9600))
    yield shared
    await shared.close()


@pytest.mark.parametrize("profile_id", sorted(PROFILES))
async def test_every_profile_over_a_serial_line(serial_connection, profile_id):
    values = await rtu_link(serial_connection, profile_id).probe()
    assert set(values) == {r.key for r in get_profile(profile_id).registers}
    assert values["energy_total"] == Decimal(str(START_TOTAL))  # the clock stands still
    assert values["power"] == LOAD_W
    assert values["voltage"] == 230


async def test_relay_over_a_serial_line(sim, serial_connection):
    unit = UNITS["acrel_ddsy1352"]
    link = rtu_link(serial_connection, "acrel_ddsy1352")
    assert await link.set_relay(False) is False
    assert sim.meter(unit).relay_closed is False
    assert (await link.read_values())["power"] == 0
    assert await link.set_relay(True) is True
    assert sim.meter(unit).relay_closed is True


async def test_relay_module_over_a_serial_line(sim, serial_connection):
    link = rtu_link(serial_connection, "eastron_sdm120")
    assert await link.set_relay(False) is False
    assert sim.meter(UNITS["eastron_sdm120"]).relay_closed is False
    assert await link.set_relay(True) is True


async def test_dead_unit_on_a_serial_line(sim, serial_connection):
    sim.set_fault(UNITS["eastron_sdm120"], silent=True)
    with pytest.raises(NoResponse):
        await rtu_link(serial_connection, "eastron_sdm120").read_values()
    values = await rtu_link(serial_connection, "hiking_dds238_2").read_values()
    assert values["power"] == LOAD_W


async def test_timeout_then_late_answer_on_a_serial_line(sim, serial_connection):
    slow = UNITS["eastron_sdm120"]
    sim.set_fault(slow, delay=0.5)  # longer than the 0.3 s timeout
    with pytest.raises(NoResponse):
        await rtu_link(serial_connection, "eastron_sdm120").read_values()
    sim.clear_faults(slow)
    await asyncio.sleep(0.3)  # the late answer arrives meanwhile
    values = await rtu_link(serial_connection, "chint_ddsu666").read_values()
    assert (values["power"], values["voltage"]) == (LOAD_W, 230)


async def test_corrupt_crc_is_no_response_on_serial(sim, serial_connection):
    unit = UNITS["hiking_dds238_2"]
    link = rtu_link(serial_connection, "hiking_dds238_2")
    sim.set_fault(unit, corrupt=True)
    with pytest.raises(NoResponse):
        await link.read_values()
    sim.clear_faults()
    assert (await link.read_values())["power"] == LOAD_W


async def test_serial_frame_gap_paces_requests(sim, serial_connection):
    gap = 0.05
    unit = UNITS["chint_ddsu666"]
    serial_connection.for_unit(unit).set_message_spacing(gap)  # the meter's frame gap setting
    link = rtu_link(serial_connection, "chint_ddsu666")  # two requests per read
    await link.read_values()
    started = time.monotonic()
    assert (await link.read_values())["power"] == LOAD_W
    assert time.monotonic() - started >= 2 * gap * 0.9
    assert sim.stats.per_unit[unit] == 4


async def test_rtu_framing_through_a_tcp_gateway(sim):
    port = await sim.start_tcp(framing="rtu")
    gateway = ModbusConnection(
        mc.ModbusSerialParams(device=f"socket://127.0.0.1:{port}", baudrate=115200)
    )
    try:
        for profile_id in ("acrel_ddsy1352", "eastron_sdm630"):
            values = await rtu_link(gateway, profile_id).probe()
            assert values["power"] == LOAD_W
    finally:
        await gateway.close()
    assert sim.stats.connections == 1


async def test_wire_timing_delays_answers_by_frame_time(sim):
    sim.wire_baudrate = 9600
    connection = ModbusConnection(mc.ModbusSerialParams(device=sim.open_pty(), baudrate=9600))
    link = make_link(connection, "eastron_sdm630", timeout=1)  # one read of 76 registers
    try:
        await link.read_values()
        started = time.monotonic()
        await link.read_values()
        elapsed = time.monotonic() - started
    finally:
        await connection.close()
    assert sim.stats.read_sizes == {76: 2}
    bound = rtu_exchange_time(5, 2 + 2 * 76, 9600)
    assert bound == pytest.approx((5 + 154 + 6 + 7) * 11 / 9600)
    assert bound <= elapsed < bound * 2


async def test_missing_serial_port_is_unreachable(tmp_path):
    connection = ModbusConnection(mc.ModbusSerialParams(device=str(tmp_path / "ttyUSB9")))
    try:
        with pytest.raises(EndpointUnreachable, match="ttyUSB9"):
            await make_link(connection, "acrel_ddsy1352", 1).read_values()
        assert not connection.connected
    finally:
        await connection.close()
