"""Chint DDSU666: single phase, float32 big-endian; power is reported in kW.

Most meters answer FC04; firmware that follows Chint's manual ("read command is 03H") answers
FC03 only. The meter flow's test read finds which, and the meter is read that way after.
"""

from __future__ import annotations

from decimal import Decimal

from .model import MeterComponent, MeterProfile, Register, SerialDefaults
from .plausible import (
    ENERGY_RANGE,
    MAINS_CURRENT,
    MAINS_FREQUENCY,
    MAINS_VOLTAGE,
    POWER_FACTOR_RANGE,
    SINGLE_PHASE_POWER,
)


def _float(
    address: int, unit: str | None, plausible: tuple[Decimal, Decimal], scale: int = 1
) -> Register:
    return Register(
        address, data_type="float32", scale=Decimal(scale), unit=unit, plausible=plausible
    )


class ChintDdsu666(MeterComponent):
    """Measurements at 2000H-200FH, energy counters at 4000H-400BH (two reads)."""

    register_space = "input"

    voltage = _float(0x2000, "V", MAINS_VOLTAGE)
    current = _float(0x2002, "A", MAINS_CURRENT)
    power = _float(0x2004, "W", SINGLE_PHASE_POWER, scale=1000)
    power_factor = _float(0x200A, None, POWER_FACTOR_RANGE)
    frequency = _float(0x200E, "Hz", MAINS_FREQUENCY)
    energy_total = _float(0x4000, "kWh", ENERGY_RANGE)
    energy_export = _float(0x400A, "kWh", ENERGY_RANGE)


PROFILE = MeterProfile(
    id="chint_ddsu666",
    name="Chint DDSU666",
    manufacturer="Chint",
    components=(ChintDdsu666,),
    serial_defaults=SerialDefaults(baudrate=9600),
    fallback_read_function=3,
)
