"""A simulator with one unit per profile (plus a relay module), reachable over TCP and a pty.

Links are built on ``modbus_connection``'s tmodbus connection, the very class Home Assistant's
core ``modbus`` shares between integrations, without a Home Assistant around it.
"""

from __future__ import annotations

from dataclasses import dataclass

import modbus_connection as mc
import pytest
from modbus_connection.tmodbus import ModbusConnection

from custom_components.prepaid_meter.meter_link import MeterLink
from custom_components.prepaid_meter.profiles import PROFILES, CoilRelay, MeterProfile, get_profile
from meter_simulator import ConstantLoad, MeterSimulator, RelayModule, SimulatedMeter

#: Unit id of each built-in profile on the simulated bus.
UNITS = {profile_id: unit for unit, profile_id in enumerate(PROFILES, start=1)}
RELAY_MODULE_UNIT = 20
START_TOTAL = 1234.5
LOAD_W = 1500.0
#: Seconds a simulated unit gets to answer (the integration asks for 1 s; tests wait less).
FAST_TIMEOUT = 0.3


def make_link(
    connection: mc.ModbusConnection,
    profile: MeterProfile | str,
    unit_id: int | None = None,
    *,
    timeout: float = FAST_TIMEOUT,
) -> MeterLink:
    """A meter link on ``connection``, as the integration builds it from a held unit."""
    if isinstance(profile, str):
        profile = get_profile(profile)
        if isinstance(profile.relay, CoilRelay):
            profile = profile.with_relay_module(RELAY_MODULE_UNIT)
    unit_id = UNITS[profile.id] if unit_id is None else unit_id
    unit = connection.for_unit(unit_id)
    unit.require_timeout(timeout)
    relay_unit = None
    if isinstance(profile.relay, CoilRelay) and profile.relay.unit_id is not None:
        relay_unit = connection.for_unit(profile.relay.unit_id)
    return MeterLink(unit, profile, unit_id=unit_id, endpoint="test", relay_unit=relay_unit)


@dataclass
class FakeClock:
    """Monotonic time the test moves by hand, so totals are exact."""

    now: float = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
async def sim(clock, socket_enabled):
    # socket_enabled: the HA test plugin re-blocks sockets after the enable_socket mark is read.
    simulator = MeterSimulator()
    for profile_id, unit in UNITS.items():
        simulator.add(
            unit,
            SimulatedMeter(profile_id, load=ConstantLoad(LOAD_W), total=START_TOTAL, clock=clock),
        )
    module = RelayModule()
    simulator.add(RELAY_MODULE_UNIT, module)
    module.link(0, simulator.meter(UNITS["eastron_sdm120"]))
    yield simulator
    await simulator.close()


@pytest.fixture
async def tcp_port(sim):
    return await sim.start_tcp()


@pytest.fixture
async def connection(tcp_port):
    """One TCP connection to the simulator, shared by every link a test makes."""
    shared = ModbusConnection(mc.ModbusTcpParams(host="127.0.0.1", port=tcp_port))
    yield shared
    await shared.close()
