"""A simulator with one unit per profile (plus a relay module), reachable over TCP and a pty."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from custom_components.prepaid_meter.modbus import HubSettings, ModbusHub, TcpEndpoint
from custom_components.prepaid_meter.profiles import PROFILES
from meter_simulator import ConstantLoad, MeterSimulator, RelayModule, SimulatedMeter

#: Unit id of each built-in profile on the simulated bus.
UNITS = {profile_id: unit for unit, profile_id in enumerate(PROFILES, start=1)}
RELAY_MODULE_UNIT = 20
START_TOTAL = 1234.5
LOAD_W = 1500.0
FAST = HubSettings(timeout=0.3, connect_timeout=1.0, reconnect_min=0.05, reconnect_max=0.2)


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
async def hub(tcp_port):
    modbus_hub = ModbusHub(TcpEndpoint(host="127.0.0.1", port=tcp_port), FAST)
    yield modbus_hub
    await modbus_hub.close()
