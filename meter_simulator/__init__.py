"""A Modbus meter simulator that behaves like the meters the integration supports.

Tests, benchmarks and the demo run against it instead of hardware. Start it from Python::

    sim = MeterSimulator()
    sim.add(1, SimulatedMeter("acrel_ddsy1352", load=ConstantLoad(1500)))
    port = await sim.start_tcp()
    path = sim.open_pty()          # RTU on a pseudo-terminal
    sim.set_fault(1, silent=True)  # inject a fault
    await sim.close()

or from the command line: ``scripts/simulator --help``.
"""

from __future__ import annotations

from .devices import Device, RelayModule, SimulatedMeter
from .faults import Fault
from .load import ConstantLoad, Load, SineLoad, StepLoad
from .server import MeterSimulator, SimulatorStats, rtu_exchange_time

__all__ = [
    "ConstantLoad",
    "Device",
    "Fault",
    "Load",
    "MeterSimulator",
    "RelayModule",
    "SimulatedMeter",
    "SimulatorStats",
    "SineLoad",
    "StepLoad",
    "rtu_exchange_time",
]
