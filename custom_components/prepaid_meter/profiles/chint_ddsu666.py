"""Chint DDSU666: single phase, float32 big-endian; power is reported in kW.

Most meters answer FC04; firmware that follows Chint's manual ("read command is 03H") answers
FC03 only. The meter flow's test read finds which, and the meter is read that way after.
"""

from __future__ import annotations

from decimal import Decimal

from .model import (
    CURRENT,
    ENERGY_EXPORT,
    ENERGY_TOTAL,
    FREQUENCY,
    POWER,
    POWER_FACTOR,
    VOLTAGE,
    MeterProfile,
    Register,
    SerialDefaults,
)
from .plausible import (
    ENERGY_RANGE,
    MAINS_CURRENT,
    MAINS_FREQUENCY,
    MAINS_VOLTAGE,
    POWER_FACTOR_RANGE,
    SINGLE_PHASE_POWER,
)


def _float(
    key: str,
    address: int,
    unit: str | None,
    plausible: tuple[Decimal, Decimal],
    scale: Decimal = Decimal(1),
) -> Register:
    return Register(
        key=key,
        address=address,
        function=4,
        data_type="float32",
        scale=scale,
        unit=unit,
        plausible=plausible,
    )


PROFILE = MeterProfile(
    id="chint_ddsu666",
    name="Chint DDSU666",
    manufacturer="Chint",
    registers=(
        _float(VOLTAGE, 0x2000, "V", MAINS_VOLTAGE),
        _float(CURRENT, 0x2002, "A", MAINS_CURRENT),
        _float(POWER, 0x2004, "W", SINGLE_PHASE_POWER, scale=Decimal(1000)),
        _float(POWER_FACTOR, 0x200A, None, POWER_FACTOR_RANGE),
        _float(FREQUENCY, 0x200E, "Hz", MAINS_FREQUENCY),
        _float(ENERGY_TOTAL, 0x4000, "kWh", ENERGY_RANGE),
        _float(ENERGY_EXPORT, 0x400A, "kWh", ENERGY_RANGE),
    ),
    serial_defaults=SerialDefaults(baudrate=9600),
    fallback_read_function=3,
)
