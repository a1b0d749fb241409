"""Hiking DDS238-2 ZN/S(R): single phase, FC03 integers, relay at 0x001A, FC16-only writes.

The meter ignores FC06 (write single register); every write, the relay included, must use
FC16. ``energy_total`` is the imported energy (0x000A); 0x0000 is import + export.
"""

from __future__ import annotations

from decimal import Decimal

from .model import MeterComponent, MeterProfile, Register, RegisterRelay, SerialDefaults
from .plausible import (
    ENERGY_RANGE,
    MAINS_CURRENT,
    MAINS_FREQUENCY,
    MAINS_VOLTAGE,
    POWER_FACTOR_RANGE,
    SINGLE_PHASE_POWER,
)

_KWH = Decimal("0.01")


class HikingDds2382(MeterComponent):
    """Holding registers 0008H-0011H (0.01 kWh, 0.1 V, 0.01 A, 1 W, 0.001, 0.01 Hz)."""

    register_space = "holding"

    energy_export = Register(
        0x0008, data_type="uint32", scale=_KWH, unit="kWh", plausible=ENERGY_RANGE
    )
    energy_total = Register(
        0x000A, data_type="uint32", scale=_KWH, unit="kWh", plausible=ENERGY_RANGE
    )
    voltage = Register(0x000C, scale=Decimal("0.1"), unit="V", plausible=MAINS_VOLTAGE)
    current = Register(0x000D, scale=Decimal("0.01"), unit="A", plausible=MAINS_CURRENT)
    power = Register(0x000E, data_type="int16", unit="W", plausible=SINGLE_PHASE_POWER)
    power_factor = Register(0x0010, scale=Decimal("0.001"), plausible=POWER_FACTOR_RANGE)
    frequency = Register(0x0011, scale=Decimal("0.01"), unit="Hz", plausible=MAINS_FREQUENCY)


PROFILE = MeterProfile(
    id="hiking_dds238_2",
    name="Hiking DDS238-2 ZN/S",
    manufacturer="Hiking",
    components=(HikingDds2382,),
    write_functions=frozenset({16}),
    relay=RegisterRelay(address=0x001A, cut_words=(0,), restore_words=(1,)),
    serial_defaults=SerialDefaults(baudrate=9600),
)
