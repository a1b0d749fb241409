"""Meter links against the simulator over real TCP sockets: values, relays, faults, recovery.

Every link runs on ``modbus_connection``'s tmodbus connection, the one Home Assistant's core
``modbus`` shares between integrations. Expected values come from the simulator's documented
state (its register maps, the load and the clock), never from the profile under test.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from decimal import Decimal

import modbus_connection as mc
import pytest
from modbus_connection.tmodbus import ModbusConnection

from custom_components.prepaid_meter.meter_errors import (
    DecodeError,
    EndpointUnreachable,
    ExceptionResponse,
    NoResponse,
    RelayMismatch,
    RelayNotConfigured,
    WrongProfile,
)
from custom_components.prepaid_meter.profiles import PROFILES, get_profile, load_custom_profile
from custom_components.prepaid_meter.profiles._eastron import value
from custom_components.prepaid_meter.profiles.eastron_sdm630 import EastronSdm630
from custom_components.prepaid_meter.profiles.plausible import ENERGY_RANGE
from meter_simulator import ConstantLoad, MeterSimulator, SimulatedMeter
from meter_simulator.maps import get_map

from .conftest import LOAD_W, RELAY_MODULE_UNIT, START_TOTAL, UNITS, make_link

pytestmark = pytest.mark.enable_socket

#: What a ``SimulatedMeter`` shows by default (``devices.py``): 230 V, 50 Hz, PF 0.95.
SIM_VOLTAGE, SIM_FREQUENCY, SIM_POWER_FACTOR = Decimal(230), Decimal(50), Decimal("0.95")
#: Requests one read of each model takes: every value in one request, except the Chint's
#: two blocks 0x2000 and 0x4000 apart (the manuals' register tables).
EXPECTED_REQUESTS = {
    "acrel_ddsy1352": 1,
    "eastron_sdm120": 1,
    "eastron_sdm230": 1,
    "eastron_sdm630": 1,
    "chint_ddsu666": 2,
    "hiking_dds238_2": 1,
}


def simulated_values(seconds: int) -> dict[str, Decimal]:
    """What the simulator's physics gives after ``seconds`` at LOAD_W (``SimulatedMeter``)."""
    total = Decimal(str(START_TOTAL)) + Decimal(str(LOAD_W)) * seconds / Decimal(3_600_000)
    power = Decimal(str(LOAD_W))
    current = power / (SIM_VOLTAGE * SIM_POWER_FACTOR)
    values = {
        "energy_total": total,
        "energy_flat": total,
        "power": power,
        "voltage": SIM_VOLTAGE,
        "current": current,
        "frequency": SIM_FREQUENCY,
        "power_factor": SIM_POWER_FACTOR,
    }
    for phase in ("l1", "l2", "l3"):
        values |= {
            f"voltage_{phase}": SIM_VOLTAGE,
            f"current_{phase}": current / 3,
            f"power_{phase}": power / 3,
        }
    return values


def resolution(model: str, key: str, expected: Decimal) -> Decimal:
    """How far the simulator's encoding of ``key`` may sit from the exact value."""
    by_key = {v.key: v for v in get_map(model).values}
    if by_key[key].kind == "f32":  # float32 carries about 7 significant digits
        return abs(expected) * Decimal("1e-6")
    return by_key[key].per_count / 2 + Decimal("1e-6")  # integer counts round half-even


@pytest.mark.parametrize("profile_id", sorted(PROFILES))
async def test_every_profile_reads_correct_values(sim, connection, clock, profile_id):
    profile = get_profile(profile_id)
    unit = UNITS[profile_id]
    clock.advance(3600)  # one hour at 1500 W: +1.5 kWh
    values = await make_link(connection, profile).probe()
    assert set(values) == {r.key for r in profile.registers}
    simulated = simulated_values(3600)
    for key, read in values.items():
        expected = simulated.get(key, Decimal(0))  # the simulator shows 0 for export, bands
        assert abs(read - expected) <= resolution(profile_id, key, expected), key
    # Each meter is read in the fewest requests its register map allows.
    assert sim.stats.per_unit[unit] == EXPECTED_REQUESTS[profile_id]


async def test_energy_integrates_and_stops_when_relay_opens(connection, clock):
    link = make_link(connection, "acrel_ddsy1352")
    first = (await link.read_values())["energy_total"]
    assert first == Decimal("1234.50")
    clock.advance(1200)  # 20 min at 1.5 kW = 0.5 kWh
    second = (await link.read_values())["energy_total"]
    assert second - first == Decimal("0.50")
    assert await link.set_relay(False) is False
    assert await link.read_relay() is False
    clock.advance(3600)
    values = await link.read_values()
    assert values["power"] == 0
    assert values["energy_total"] == second
    assert await link.set_relay(True) is True
    clock.advance(2400)
    assert (await link.read_values())["energy_total"] == second + Decimal("1.00")
    assert link.stats.relay_commands == 2


async def test_hiking_relay_uses_fc16_and_refuses_fc06(sim, connection):
    profile = get_profile("hiking_dds238_2")
    link = make_link(connection, profile)
    assert await link.set_relay(False) is False
    assert sim.stats.per_function.get(6, 0) == 0
    assert sim.stats.per_function[16] == 1
    # A client that insists on FC06 gets "illegal function", like the real meter.
    fc06_allowed = dataclasses.replace(profile, write_functions=frozenset({6, 16}))
    with pytest.raises(ExceptionResponse) as err:
        await make_link(connection, fc06_allowed).set_relay(True)
    assert err.value.code == 1
    assert sim.stats.per_function[6] == 1
    assert await link.read_relay() is False
    assert sim.meter(UNITS["hiking_dds238_2"]).relay_closed is False


async def test_eastron_relay_module_switches_the_meter(sim, connection):
    unit = UNITS["eastron_sdm120"]
    base = get_profile("eastron_sdm120")  # no relay module located yet
    with pytest.raises(RelayNotConfigured, match="unit id is not configured"):
        await make_link(connection, base).set_relay(False)
    link = make_link(connection, "eastron_sdm120")  # module at RELAY_MODULE_UNIT, coil 0
    assert await link.read_relay() is True
    assert await link.set_relay(False) is False
    assert sim.meter(unit).relay_closed is False
    assert sim.stats.per_unit[RELAY_MODULE_UNIT] == 3  # read, write, read back
    assert (await link.read_values())["power"] == 0
    assert await link.set_relay(True) is True
    assert sim.meter(unit).relay_closed is True
    assert (await link.read_values())["power"] == LOAD_W


async def test_meter_without_relay(sim, connection):
    link = make_link(connection, "chint_ddsu666")
    with pytest.raises(RelayNotConfigured, match="has no relay"):
        await link.set_relay(False)
    with pytest.raises(RelayNotConfigured, match="has no relay"):
        await link.read_relay()
    assert sim.stats.requests == 0


async def test_stuck_relay_is_a_mismatch_not_a_lie(sim, connection):
    unit = UNITS["acrel_ddsy1352"]
    sim.set_fault(unit, relay_stuck=True)
    with pytest.raises(RelayMismatch) as err:
        await make_link(connection, "acrel_ddsy1352").set_relay(False)
    assert (err.value.wanted_closed, err.value.confirmed_closed) == (False, True)
    assert sim.meter(unit).relay_closed is True


async def test_stuck_relay_module_is_a_mismatch_not_a_lie(sim, connection):
    # The stuck module acknowledges the coil write with the coil's real (unchanged) value.
    sim.set_fault(RELAY_MODULE_UNIT, relay_stuck=True)
    with pytest.raises(RelayMismatch) as err:
        await make_link(connection, "eastron_sdm120").set_relay(False)
    assert (err.value.unit_id, err.value.confirmed_closed) == (RELAY_MODULE_UNIT, True)
    assert sim.meter(UNITS["eastron_sdm120"]).relay_closed is True


async def test_sdm630_is_read_within_eastrons_80_register_limit(sim, connection):
    unit = UNITS["eastron_sdm630"]
    # The simulated SDM630 refuses a wider read, like the real one ("illegal data value").
    with pytest.raises(mc.IllegalDataValueError):
        await connection.for_unit(unit).read_input_registers(0, 81)
    sim.stats.read_sizes.clear()
    values = await make_link(connection, "eastron_sdm630").read_values()
    assert values["power"] == LOAD_W
    assert max(sim.stats.read_sizes) <= 80

    # 0x0156 (total active energy) lies 0x156 registers past 0x0000: the read must split.
    class Wide(EastronSdm630):
        energy_import_export = value(0x0156, "kWh", ENERGY_RANGE)

    wide = dataclasses.replace(get_profile("eastron_sdm630"), components=(Wide,))
    sim.stats.read_sizes.clear()
    values = await make_link(connection, wide).read_values()
    assert values["energy_import_export"] == Decimal(str(START_TOTAL))
    assert values["power"] == LOAD_W
    assert max(sim.stats.read_sizes) <= 80


async def test_wrong_profile_is_detected(connection):
    # An Acrel has no input registers: an Eastron profile is refused with "illegal function".
    eastron_on_acrel = make_link(connection, "eastron_sdm120", UNITS["acrel_ddsy1352"])
    with pytest.raises(WrongProfile, match="illegal function"):
        await eastron_on_acrel.probe()
    # Hiking read as Acrel: the registers answer, but the values make no sense.
    acrel_on_hiking = make_link(connection, "acrel_ddsy1352", UNITS["hiking_dds238_2"])
    with pytest.raises(WrongProfile, match="implausible"):
        await acrel_on_hiking.probe()
    # The right profile on the same unit passes.
    assert (await make_link(connection, "hiking_dds238_2").probe())["power"] == LOAD_W


async def test_exception_responses_are_typed(sim, connection):
    unit = UNITS["chint_ddsu666"]
    link = make_link(connection, "chint_ddsu666")
    sim.set_fault(unit, exception=4)
    with pytest.raises(ExceptionResponse) as err:
        await link.read_values()
    assert (err.value.unit_id, err.value.code) == (unit, 4)
    assert "server device failure" in str(err.value)
    assert (link.stats.reads, link.stats.failed_reads) == (1, 1)
    assert link.stats.last_error == str(err.value)
    sim.clear_faults(unit)
    assert (await link.read_values())["voltage"] == 230


async def test_one_dead_unit_among_several(sim, connection):
    dead = UNITS["eastron_sdm230"]
    links = {profile_id: make_link(connection, profile_id) for profile_id in UNITS}
    sim.set_fault(dead, silent=True)
    for _ in range(3):  # several poll cycles
        for profile_id, link in links.items():
            if link.unit_id == dead:
                with pytest.raises(NoResponse):
                    await link.read_values()
            else:
                assert (await link.read_values())["power"] == LOAD_W, profile_id
    assert links["eastron_sdm230"].stats.failed_reads == 3
    assert sim.stats.connections == 1  # the shared connection was never dropped
    sim.clear_faults(dead)
    assert (await links["eastron_sdm230"].read_values())["power"] == LOAD_W


async def test_timeout_then_late_answer_does_not_confuse_the_next_read(sim, connection):
    slow = UNITS["eastron_sdm120"]
    sim.set_fault(slow, delay=0.5)  # longer than the 0.3 s timeout
    with pytest.raises(NoResponse, match="no response"):
        await make_link(connection, "eastron_sdm120").read_values()
    sim.clear_faults(slow)
    await asyncio.sleep(0.3)  # the late answer arrives meanwhile
    values = await make_link(connection, "chint_ddsu666").read_values()
    assert set(values) == {r.key for r in get_profile("chint_ddsu666").registers}
    assert (values["power"], values["voltage"]) == (LOAD_W, 230)


@pytest.mark.parametrize("profile_id", ["acrel_ddsy1352", "eastron_sdm120"])
async def test_corrupt_frames_count_as_no_response(sim, connection, profile_id):
    unit = UNITS[profile_id]
    link = make_link(connection, profile_id)
    assert (await link.read_values())["power"] == LOAD_W
    sim.set_fault(unit, corrupt=True)  # one answer with a broken MBAP header
    with pytest.raises(NoResponse):
        await link.read_values()
    sim.clear_faults()
    # The next poll reads this meter and its neighbours on the connection again.
    assert (await link.read_values())["power"] == LOAD_W
    assert (await make_link(connection, "hiking_dds238_2").read_values())["power"] == LOAD_W


async def test_unknown_unit_times_out(sim, connection):
    with pytest.raises(NoResponse, match="unit 99"):
        await make_link(connection, "acrel_ddsy1352", 99).read_values()
    assert sim.stats.per_unit[99] == 1


async def test_gateway_restart_is_recovered_by_the_same_link(sim, connection):
    link = make_link(connection, "acrel_ddsy1352")
    assert (await link.read_values())["power"] == LOAD_W
    await sim.stop_tcp()  # gateway loses power
    with pytest.raises((EndpointUnreachable, NoResponse)):
        await link.read_values()
    with pytest.raises(EndpointUnreachable):
        await link.read_values()
    await sim.start_tcp(port=sim.tcp_port)  # back on the same address
    deadline = time.monotonic() + 3
    while True:
        try:
            values = await link.read_values()
            break
        except EndpointUnreachable:
            assert time.monotonic() < deadline, "link never reconnected"
            await asyncio.sleep(0.05)
    assert values["power"] == LOAD_W
    assert sim.stats.connections == 2


async def test_dropped_connection_is_reopened(sim, connection):
    link = make_link(connection, "hiking_dds238_2")
    await link.read_values()
    await sim.drop_connections()  # a gateway's watchdog reset
    await asyncio.sleep(0.05)
    # The next poll opens the connection again by itself.
    assert (await link.read_values())["power"] == LOAD_W
    assert sim.stats.connections == 2


async def test_unreachable_endpoint_is_endpoint_unreachable(socket_enabled, unused_tcp_port):
    connection = ModbusConnection(mc.ModbusTcpParams(host="127.0.0.1", port=unused_tcp_port))
    link = make_link(connection, "acrel_ddsy1352", 1)
    try:
        for _ in range(2):  # no answer is invented on a retry either
            with pytest.raises(EndpointUnreachable, match=f"127.0.0.1:{unused_tcp_port}"):
                await link.read_values()
        assert not connection.connected
    finally:
        await connection.close()
    with pytest.raises(EndpointUnreachable, match="closed"):
        await link.read_values()


async def test_requests_on_one_connection_are_serialised_and_connections_run_in_parallel(
    sim, connection, clock
):
    profile = get_profile("chint_ddsu666")  # two requests per read
    sim.set_fault(UNITS["chint_ddsu666"], delay=0.1)
    other = MeterSimulator()
    other.add(1, SimulatedMeter(profile.id, load=ConstantLoad(LOAD_W), clock=clock))
    other.set_fault(1, delay=0.1)
    other_connection = ModbusConnection(
        mc.ModbusTcpParams(host="127.0.0.1", port=await other.start_tcp())
    )
    try:
        link = make_link(connection, profile)
        other_link = make_link(other_connection, profile, 1)
        await asyncio.gather(link.read_values(), other_link.read_values())  # both connected
        started = time.monotonic()
        await asyncio.gather(link.read_values(), link.read_values())
        same_connection = time.monotonic() - started
        started = time.monotonic()
        await asyncio.gather(link.read_values(), other_link.read_values())
        two_connections = time.monotonic() - started
    finally:
        await other_connection.close()
        await other.close()
    assert same_connection >= 0.4  # 4 requests x 0.1 s, one after another
    assert two_connections < 0.35  # 2 x 2 requests in parallel


async def test_cancelling_a_read_cancels(sim, connection):
    unit = UNITS["acrel_ddsy1352"]
    link = make_link(connection, "acrel_ddsy1352")
    await link.read_values()  # connected: cancel mid-request
    sim.set_fault(unit, delay=0.2)
    task = asyncio.create_task(link.read_values())
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # The cancelled request does not hold the line: the next read gets its own answer.
    sim.clear_faults(unit)
    assert (await link.read_values())["power"] == LOAD_W


async def test_probe_keeps_device_failures_apart_from_wrong_profiles(sim, connection):
    unit = UNITS["acrel_ddsy1352"]
    sim.set_fault(unit, exception=4)
    with pytest.raises(ExceptionResponse) as err:
        await make_link(connection, "acrel_ddsy1352").probe()
    assert not isinstance(err.value, WrongProfile)
    assert err.value.code == 4


async def test_relay_registers_that_hold_something_else(connection):
    # A custom profile that points its relay at the Hiking's voltage register.
    profile = load_custom_profile(
        {
            "id": "odd",
            "name": "Odd",
            "registers": [{"key": "energy_total", "address": 0x000A, "data_type": "uint32"}],
            "relay": {"type": "register", "address": 0x000C, "cut": [0], "restore": [1]},
            "write_functions": [16],
        }
    )
    link = make_link(connection, profile, UNITS["hiking_dds238_2"])
    with pytest.raises(DecodeError, match="neither cut nor restore"):
        await link.read_relay()
    with pytest.raises(ExceptionResponse) as err:
        await link.set_relay(False)
    assert err.value.code == 2


async def test_probe_reports_undecodable_words_as_wrong_profile(sim, connection):
    # Acrel power of -1 W is 0xFFFF; read as the high word of a float32 that is NaN.
    unit = UNITS["acrel_ddsy1352"]
    sim.meter(unit).load = ConstantLoad(-1.0)
    profile = load_custom_profile(
        {
            "id": "floaty",
            "name": "Floaty",
            "registers": [
                {"key": "energy_total", "address": 0, "data_type": "uint32"},
                {"key": "power", "address": 0x000D, "data_type": "float32"},
            ],
        }
    )
    link = make_link(connection, profile, unit)
    with pytest.raises(DecodeError, match="not a finite number"):
        await link.read_values()
    with pytest.raises(WrongProfile, match="Floaty"):
        await link.probe()


async def test_gateway_style_exception_for_units_nobody_has(socket_enabled):
    gateway = MeterSimulator(unknown_unit="gateway_exception")
    gateway.add(1, SimulatedMeter("hiking_dds238_2"))
    connection = ModbusConnection(
        mc.ModbusTcpParams(host="127.0.0.1", port=await gateway.start_tcp())
    )
    try:
        with pytest.raises(ExceptionResponse) as err:
            await make_link(connection, "hiking_dds238_2", 42).read_values()
        assert err.value.code == 11
        assert "gateway target device failed to respond" in str(err.value)
        assert (await make_link(connection, "hiking_dds238_2", 1).read_values())["voltage"] == 230
    finally:
        await connection.close()
        await gateway.close()
