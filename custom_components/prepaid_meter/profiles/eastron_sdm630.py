"""Eastron SDM630-Modbus: three phase; standard keys carry the system totals."""

from __future__ import annotations

from ._eastron import EASTRON_MAX_REGISTERS, energy_registers, value
from .model import (
    CURRENT,
    POWER,
    POWER_FACTOR,
    VOLTAGE,
    CoilRelay,
    MeterProfile,
    SerialDefaults,
)
from .plausible import MAINS_CURRENT, MAINS_VOLTAGE, POWER_FACTOR_RANGE, SINGLE_PHASE_POWER
from .plausible import THREE_PHASE_POWER as _SYSTEM_POWER

_SUM_CURRENT = (MAINS_CURRENT[0], MAINS_CURRENT[1] * 3)

PROFILE = MeterProfile(
    id="eastron_sdm630",
    name="Eastron SDM630",
    manufacturer="Eastron",
    registers=(
        value("voltage_l1", 0x0000, "V", MAINS_VOLTAGE),
        value("voltage_l2", 0x0002, "V", MAINS_VOLTAGE),
        value("voltage_l3", 0x0004, "V", MAINS_VOLTAGE),
        value("current_l1", 0x0006, "A", MAINS_CURRENT),
        value("current_l2", 0x0008, "A", MAINS_CURRENT),
        value("current_l3", 0x000A, "A", MAINS_CURRENT),
        value("power_l1", 0x000C, "W", SINGLE_PHASE_POWER),
        value("power_l2", 0x000E, "W", SINGLE_PHASE_POWER),
        value("power_l3", 0x0010, "W", SINGLE_PHASE_POWER),
        # Average line-to-neutral voltage, sum of line currents, total system power and PF.
        value(VOLTAGE, 0x002A, "V", MAINS_VOLTAGE),
        value(CURRENT, 0x0030, "A", _SUM_CURRENT),
        value(POWER, 0x0034, "W", _SYSTEM_POWER),
        value(POWER_FACTOR, 0x003E, None, POWER_FACTOR_RANGE),
        *energy_registers(),
    ),
    max_registers_per_request=EASTRON_MAX_REGISTERS,
    write_functions=frozenset({16}),
    relay=CoilRelay(coil=0, unit_id=None),
    serial_defaults=SerialDefaults(baudrate=9600),
)
