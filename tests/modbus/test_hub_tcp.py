"""The hub against the simulator over real TCP sockets: values, relays, faults, recovery."""

from __future__ import annotations

import asyncio
import logging
import time
from decimal import Decimal

import pytest

from custom_components.prepaid_meter.modbus import (
    DecodeError,
    EndpointUnreachable,
    ExceptionResponse,
    HubSettings,
    ModbusHub,
    NoResponse,
    RelayMismatch,
    RelayNotConfigured,
    TcpEndpoint,
    WrongProfile,
    plan_reads,
)
from custom_components.prepaid_meter.profiles import PROFILES, get_profile, load_custom_profile
from meter_simulator import ConstantLoad, MeterSimulator, SimulatedMeter

from .conftest import FAST, LOAD_W, RELAY_MODULE_UNIT, START_TOTAL, UNITS

pytestmark = pytest.mark.enable_socket


def expected_values(profile, seconds):
    """What each standard key must read after ``seconds`` at LOAD_W, 230 V, PF 0.95."""
    total = Decimal(str(START_TOTAL)) + Decimal(str(LOAD_W)) * Decimal(seconds) / Decimal(3_600_000)
    return {"energy_total": total, "power": Decimal(LOAD_W), "voltage": Decimal(230)}


def step(profile, key):
    """Resolution of a register: its scale for integers, float32 rounding otherwise."""
    register = profile.register(key)
    return register.scale if register.data_type != "float32" else Decimal("0.001")


@pytest.mark.parametrize("profile_id", sorted(PROFILES))
async def test_every_profile_reads_correct_values(sim, hub, clock, profile_id):
    profile = get_profile(profile_id)
    unit = UNITS[profile_id]
    clock.advance(3600)  # one hour at 1500 W: +1.5 kWh
    values = await hub.probe(unit, profile)
    assert set(values) == {r.key for r in profile.registers}
    for key, expected in expected_values(profile, 3600).items():
        assert abs(values[key] - expected) <= step(profile, key), key
    current = Decimal(str(LOAD_W / (230 * 0.95)))
    assert abs(values["current"] - current) <= Decimal("0.01")
    if "frequency" in values:
        assert values["frequency"] == 50
    # Each meter is read in exactly the planned number of requests.
    assert sim.stats.per_unit[unit] == len(plan_reads(profile))


async def test_energy_integrates_and_stops_when_relay_opens(hub, clock):
    profile = get_profile("acrel_ddsy1352")
    unit = UNITS["acrel_ddsy1352"]
    first = (await hub.read_meter(unit, profile))["energy_total"]
    clock.advance(1200)  # 20 min at 1.5 kW = 0.5 kWh
    second = (await hub.read_meter(unit, profile))["energy_total"]
    assert second - first == Decimal("0.50")
    assert await hub.set_relay(unit, profile, closed=False) is False
    assert await hub.read_relay(unit, profile) is False
    clock.advance(3600)
    values = await hub.read_meter(unit, profile)
    assert values["power"] == 0
    assert values["energy_total"] == second
    assert await hub.set_relay(unit, profile, closed=True) is True
    clock.advance(2400)
    assert (await hub.read_meter(unit, profile))["energy_total"] == second + Decimal("1.00")


async def test_hiking_relay_uses_fc16_and_refuses_fc06(sim, hub):
    profile = get_profile("hiking_dds238_2")
    unit = UNITS["hiking_dds238_2"]
    assert await hub.set_relay(unit, profile, closed=False) is False
    assert sim.stats.per_function.get(6, 0) == 0
    assert sim.stats.per_function[16] == 1
    # A client that insists on FC06 gets "illegal function", like the real meter.
    fc06_allowed = get_profile("acrel_ddsy1352")
    with pytest.raises(ExceptionResponse) as err:
        await hub.write_registers(unit, fc06_allowed, 0x001A, [1])
    assert err.value.code == 1
    assert await hub.read_relay(unit, profile) is False


async def test_eastron_relay_module_switches_the_meter(sim, hub, clock):
    base = get_profile("eastron_sdm120")
    unit = UNITS["eastron_sdm120"]
    with pytest.raises(RelayNotConfigured, match="unit id is not configured"):
        await hub.set_relay(unit, base, closed=False)
    profile = base.with_relay_module(unit_id=RELAY_MODULE_UNIT, coil=0)
    assert await hub.read_relay(unit, profile) is True
    assert await hub.set_relay(unit, profile, closed=False) is False
    assert sim.meter(unit).relay_closed is False
    assert (await hub.read_meter(unit, profile, ["power"]))["power"] == 0
    assert await hub.set_relay(unit, profile, closed=True) is True


async def test_meter_without_relay(hub):
    with pytest.raises(RelayNotConfigured, match="has no relay"):
        await hub.set_relay(UNITS["chint_ddsu666"], get_profile("chint_ddsu666"), closed=False)
    with pytest.raises(RelayNotConfigured):
        await hub.read_relay(UNITS["chint_ddsu666"], get_profile("chint_ddsu666"))


async def test_stuck_relay_is_a_mismatch_not_a_lie(sim, hub):
    profile = get_profile("acrel_ddsy1352")
    unit = UNITS["acrel_ddsy1352"]
    sim.set_fault(unit, relay_stuck=True)
    with pytest.raises(RelayMismatch) as err:
        await hub.set_relay(unit, profile, closed=False)
    assert err.value.confirmed_closed is True
    assert sim.meter(unit).relay_closed is True
    module_profile = get_profile("eastron_sdm120").with_relay_module(RELAY_MODULE_UNIT)
    sim.set_fault(RELAY_MODULE_UNIT, relay_stuck=True)
    with pytest.raises(RelayMismatch):
        await hub.set_relay(UNITS["eastron_sdm120"], module_profile, closed=False)


async def test_eastron_refuses_more_than_80_registers(hub):
    with pytest.raises(ExceptionResponse) as err:
        await hub.read_registers(UNITS["eastron_sdm630"], 4, 0, 100)
    assert err.value.code == 3
    assert len(await hub.read_registers(UNITS["eastron_sdm630"], 4, 0, 80)) == 80


async def test_wrong_profile_is_detected(hub):
    # An Acrel has no input registers: an Eastron profile is refused with "illegal function".
    with pytest.raises(WrongProfile, match="illegal function"):
        await hub.probe(UNITS["acrel_ddsy1352"], get_profile("eastron_sdm120"))
    # Hiking read as Acrel: the registers answer, but the values make no sense.
    with pytest.raises(WrongProfile, match="implausible"):
        await hub.probe(UNITS["hiking_dds238_2"], get_profile("acrel_ddsy1352"))


async def test_exception_responses_are_typed(sim, hub):
    unit = UNITS["chint_ddsu666"]
    sim.set_fault(unit, exception=4)
    with pytest.raises(ExceptionResponse) as err:
        await hub.read_meter(unit, get_profile("chint_ddsu666"))
    assert (err.value.unit_id, err.value.function, err.value.code) == (unit, 4, 4)
    assert "server device failure" in str(err.value)
    sim.clear_faults(unit)
    assert (await hub.read_meter(unit, get_profile("chint_ddsu666")))["voltage"] == 230


async def test_one_dead_unit_among_several(sim, hub):
    dead = UNITS["eastron_sdm230"]
    sim.set_fault(dead, silent=True)
    for _ in range(3):  # several poll cycles
        for profile_id, unit in UNITS.items():
            if unit == dead:
                with pytest.raises(NoResponse):
                    await hub.read_meter(unit, get_profile(profile_id))
            else:
                assert (await hub.read_meter(unit, get_profile(profile_id)))["power"] == LOAD_W
    assert hub.stats.connects == 1
    assert hub.stats.resets == 0
    sim.clear_faults(dead)
    assert (await hub.read_meter(dead, get_profile("eastron_sdm230")))["power"] == LOAD_W


async def test_timeout_then_late_answer_does_not_confuse_the_next_read(sim, hub):
    slow = UNITS["eastron_sdm120"]
    sim.set_fault(slow, delay=0.5)  # longer than the 0.3 s timeout
    with pytest.raises(NoResponse, match="no response"):
        await hub.read_meter(slow, get_profile("eastron_sdm120"))
    sim.clear_faults(slow)
    await asyncio.sleep(0.3)
    values = await hub.read_meter(UNITS["chint_ddsu666"], get_profile("chint_ddsu666"))
    assert set(values) == {r.key for r in get_profile("chint_ddsu666").registers}


async def test_corrupt_frames_count_as_no_response(sim, hub):
    unit = UNITS["acrel_ddsy1352"]
    sim.set_fault(unit, corrupt=True)
    with pytest.raises(NoResponse):
        await hub.read_meter(unit, get_profile("acrel_ddsy1352"))
    sim.clear_faults()
    assert (await hub.read_meter(unit, get_profile("acrel_ddsy1352")))["power"] == LOAD_W


async def test_unknown_unit_times_out(hub):
    with pytest.raises(NoResponse):
        await hub.read_meter(99, get_profile("acrel_ddsy1352"))


async def test_gateway_restart_is_recovered_by_the_same_hub(sim, hub):
    profile = get_profile("acrel_ddsy1352")
    unit = UNITS["acrel_ddsy1352"]
    assert (await hub.read_meter(unit, profile))["power"] == LOAD_W
    await sim.stop_tcp()  # gateway loses power
    with pytest.raises((EndpointUnreachable, NoResponse)):
        await hub.read_meter(unit, profile)
    with pytest.raises(EndpointUnreachable):
        await hub.read_meter(unit, profile)
    await sim.start_tcp(port=sim.tcp_port)  # back on the same address
    deadline = time.monotonic() + 3
    while True:
        try:
            values = await hub.read_meter(unit, profile)
            break
        except EndpointUnreachable:
            assert time.monotonic() < deadline, "hub never reconnected"
            await asyncio.sleep(0.05)
    assert values["power"] == LOAD_W
    assert hub.stats.connects == 2
    assert hub.stats.connect_failures >= 1


async def test_dropped_connection_is_reopened(sim, hub):
    profile = get_profile("hiking_dds238_2")
    unit = UNITS["hiking_dds238_2"]
    await hub.read_meter(unit, profile)
    await sim.drop_connections()
    await asyncio.sleep(0.05)
    values = None
    for _ in range(5):
        try:
            values = await hub.read_meter(unit, profile)
            break
        except EndpointUnreachable, NoResponse:
            await asyncio.sleep(0.1)
    assert values is not None
    assert hub.stats.connects == 2


async def test_unreachable_endpoint_backs_off(socket_enabled, unused_tcp_port):
    hub = ModbusHub(TcpEndpoint(host="127.0.0.1", port=unused_tcp_port), FAST)
    try:
        with pytest.raises(EndpointUnreachable, match="cannot connect"):
            await hub.read_meter(1, get_profile("acrel_ddsy1352"))
        with pytest.raises(EndpointUnreachable, match="next attempt"):
            await hub.read_meter(1, get_profile("acrel_ddsy1352"))
        assert hub.stats.connect_failures == 1
    finally:
        await hub.close()
    with pytest.raises(EndpointUnreachable, match="closed"):
        await hub.read_meter(1, get_profile("acrel_ddsy1352"))


async def test_requests_on_one_line_are_serialised_and_lines_run_in_parallel(sim, hub, clock):
    profile = get_profile("chint_ddsu666")  # two requests per read
    unit = UNITS["chint_ddsu666"]
    sim.set_fault(unit, delay=0.1)
    other = MeterSimulator()
    other.add(1, SimulatedMeter(profile.id, load=ConstantLoad(LOAD_W), clock=clock))
    other.set_fault(1, delay=0.1)
    other_hub = ModbusHub(TcpEndpoint(host="127.0.0.1", port=await other.start_tcp()), FAST)
    try:
        await asyncio.gather(hub.read_meter(unit, profile), other_hub.read_meter(1, profile))
        started = time.monotonic()
        await asyncio.gather(hub.read_meter(unit, profile), hub.read_meter(unit, profile))
        same_line = time.monotonic() - started
        started = time.monotonic()
        await asyncio.gather(hub.read_meter(unit, profile), other_hub.read_meter(1, profile))
        two_lines = time.monotonic() - started
    finally:
        await other_hub.close()
        await other.close()
    assert same_line >= 0.4  # 4 requests x 0.1 s, one after another
    assert two_lines < 0.35  # 2 x 2 requests in parallel


async def test_cancelling_a_read_cancels(sim, hub):
    unit = UNITS["acrel_ddsy1352"]
    await hub.read_meter(unit, get_profile("acrel_ddsy1352"))  # connected: cancel mid-request
    sim.set_fault(unit, delay=0.2)
    task = asyncio.create_task(hub.read_meter(unit, get_profile("acrel_ddsy1352")))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_line_silent_for_several_requests_is_reset(sim, tcp_port):
    settings = HubSettings(timeout=0.1, reconnect_min=0.01, silent_requests_before_reset=2)
    hub = ModbusHub(TcpEndpoint(host="127.0.0.1", port=tcp_port), settings)
    unit = UNITS["hiking_dds238_2"]
    profile = get_profile("hiking_dds238_2")
    try:
        await hub.read_meter(unit, profile)
        sim.set_fault(unit, silent=True)
        for _ in range(2):
            with pytest.raises(NoResponse):
                await hub.read_meter(unit, profile)
        assert hub.stats.resets == 1
        assert not hub.connected
        sim.clear_faults()
        assert (await hub.read_meter(unit, profile))["power"] == LOAD_W
        assert hub.stats.connects == 2
    finally:
        await hub.close()


async def test_probe_keeps_device_failures_apart_from_wrong_profiles(sim, hub):
    unit = UNITS["acrel_ddsy1352"]
    sim.set_fault(unit, exception=6)
    with pytest.raises(ExceptionResponse) as err:
        await hub.probe(unit, get_profile("acrel_ddsy1352"))
    assert err.value.code == 6


async def test_relay_registers_that_hold_something_else(hub):
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
    with pytest.raises(DecodeError, match="neither cut nor restore"):
        await hub.read_relay(UNITS["hiking_dds238_2"], profile)
    with pytest.raises(ExceptionResponse) as err:
        await hub.set_relay(UNITS["hiking_dds238_2"], profile, closed=False)
    assert err.value.code == 2


async def test_connect_timeout_counts_as_unreachable(sim, tcp_port):
    hub = ModbusHub(
        TcpEndpoint(host="127.0.0.1", port=tcp_port),
        HubSettings(timeout=0.3, connect_timeout=0.01),
    )
    try:
        with pytest.raises(EndpointUnreachable, match="cannot connect"):
            await hub.read_meter(UNITS["acrel_ddsy1352"], get_profile("acrel_ddsy1352"))
        assert hub.stats.connect_failures == 1
    finally:
        await hub.close()


async def test_a_dead_unit_is_skipped_while_it_backs_off(sim, tcp_port):
    settings = HubSettings(timeout=0.2, unit_backoff_min=0.3, unit_backoff_max=0.5)
    hub = ModbusHub(TcpEndpoint(host="127.0.0.1", port=tcp_port), settings)
    dead, alive = UNITS["eastron_sdm120"], UNITS["acrel_ddsy1352"]
    try:
        sim.set_fault(dead, silent=True)
        with pytest.raises(NoResponse, match="no response within timeout"):
            await hub.read_meter(dead, get_profile("eastron_sdm120"))
        asked = sim.stats.per_unit[dead]
        started = time.monotonic()
        with pytest.raises(NoResponse, match="next try in"):
            await hub.read_meter(dead, get_profile("eastron_sdm120"))
        assert time.monotonic() - started < 0.05  # no timeout spent on the line
        assert sim.stats.per_unit[dead] == asked
        assert (await hub.read_meter(alive, get_profile("acrel_ddsy1352")))["power"] == LOAD_W
        # A probe (the config flow's test read) always asks the unit.
        with pytest.raises(NoResponse, match="no response within timeout"):
            await hub.probe(dead, get_profile("eastron_sdm120"))
        sim.clear_faults()
        await asyncio.sleep(0.55)  # backoff doubled to its 0.5 s ceiling
        assert (await hub.read_meter(dead, get_profile("eastron_sdm120")))["power"] == LOAD_W
        # Answering again clears the backoff at once.
        assert (await hub.read_meter(dead, get_profile("eastron_sdm120")))["power"] == LOAD_W
    finally:
        await hub.close()


async def test_probe_reports_undecodable_words_as_wrong_profile(sim, hub):
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
    with pytest.raises(DecodeError, match="not a finite number"):
        await hub.read_meter(unit, profile)
    with pytest.raises(WrongProfile, match="Floaty"):
        await hub.probe(unit, profile)


async def test_gateway_style_exception_for_units_nobody_has(socket_enabled):
    gateway = MeterSimulator(unknown_unit="gateway_exception")
    gateway.add(1, SimulatedMeter("hiking_dds238_2"))
    hub = ModbusHub(TcpEndpoint(host="127.0.0.1", port=await gateway.start_tcp()), FAST)
    try:
        with pytest.raises(ExceptionResponse) as err:
            await hub.read_meter(42, get_profile("hiking_dds238_2"))
        assert err.value.code == 11
        assert "gateway target device failed to respond" in str(err.value)
    finally:
        await hub.close()
        await gateway.close()


async def test_pymodbus_does_not_log_errors_the_hub_reports(sim, hub, caplog):
    unit = UNITS["eastron_sdm120"]
    sim.set_fault(unit, silent=True)
    with caplog.at_level(logging.INFO):
        for _ in range(2):
            with pytest.raises(NoResponse):
                await hub.read_meter(unit, get_profile("eastron_sdm120"))
    noisy = [
        r for r in caplog.records if r.name.startswith("pymodbus") and r.levelno > logging.DEBUG
    ]
    assert noisy == []
    # The same pymodbus logger still reports errors outside a hub call.
    with caplog.at_level(logging.INFO):
        logging.getLogger("pymodbus.logging").error("outside")
    assert any(r.message == "outside" and r.levelno == logging.ERROR for r in caplog.records)
