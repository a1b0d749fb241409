"""Eastron SDM630-Modbus: three phase; standard keys carry the system totals."""

from __future__ import annotations

from ._eastron import EastronEnergy, eastron_profile, value
from .plausible import MAINS_CURRENT, MAINS_VOLTAGE, POWER_FACTOR_RANGE, SINGLE_PHASE_POWER
from .plausible import THREE_PHASE_POWER as _SYSTEM_POWER

_SUM_CURRENT = (MAINS_CURRENT[0], MAINS_CURRENT[1] * 3)


class EastronSdm630(EastronEnergy):
    """Per-phase values, then the system's average voltage, summed current, power and PF."""

    voltage_l1 = value(0x0000, "V", MAINS_VOLTAGE)
    voltage_l2 = value(0x0002, "V", MAINS_VOLTAGE)
    voltage_l3 = value(0x0004, "V", MAINS_VOLTAGE)
    current_l1 = value(0x0006, "A", MAINS_CURRENT)
    current_l2 = value(0x0008, "A", MAINS_CURRENT)
    current_l3 = value(0x000A, "A", MAINS_CURRENT)
    power_l1 = value(0x000C, "W", SINGLE_PHASE_POWER)
    power_l2 = value(0x000E, "W", SINGLE_PHASE_POWER)
    power_l3 = value(0x0010, "W", SINGLE_PHASE_POWER)
    # Average line-to-neutral voltage, sum of line currents, total system power and PF.
    voltage = value(0x002A, "V", MAINS_VOLTAGE)
    current = value(0x0030, "A", _SUM_CURRENT)
    power = value(0x0034, "W", _SYSTEM_POWER)
    power_factor = value(0x003E, None, POWER_FACTOR_RANGE)


PROFILE = eastron_profile("eastron_sdm630", "Eastron SDM630", EastronSdm630, baudrate=9600)
