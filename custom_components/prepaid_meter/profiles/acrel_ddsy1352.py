"""Acrel DDSY1352: single-phase prepaid meter with a built-in relay (FC03, integers)."""

from __future__ import annotations

from decimal import Decimal

from .model import (
    CURRENT,
    ENERGY_TOTAL,
    POWER,
    VOLTAGE,
    MeterProfile,
    Register,
    RegisterRelay,
    SerialDefaults,
)
from .plausible import ENERGY_RANGE, MAINS_CURRENT, MAINS_VOLTAGE, SINGLE_PHASE_POWER

_KWH = Decimal("0.01")


def _energy(key: str, address: int) -> Register:
    return Register(
        key=key, address=address, data_type="uint32", scale=_KWH, unit="kWh", plausible=ENERGY_RANGE
    )


PROFILE = MeterProfile(
    id="acrel_ddsy1352",
    name="Acrel DDSY1352",
    manufacturer="Acrel",
    registers=(
        _energy(ENERGY_TOTAL, 0x0000),
        _energy("energy_sharp", 0x0002),
        _energy("energy_peak", 0x0004),
        _energy("energy_flat", 0x0006),
        _energy("energy_valley", 0x0008),
        Register(
            key=VOLTAGE, address=0x000B, scale=Decimal("0.1"), unit="V", plausible=MAINS_VOLTAGE
        ),
        Register(
            key=CURRENT, address=0x000C, scale=Decimal("0.01"), unit="A", plausible=MAINS_CURRENT
        ),
        # The manual gives 0.001 kW per count, which is exactly 1 W.
        Register(
            key=POWER, address=0x000D, data_type="int16", unit="W", plausible=SINGLE_PHASE_POWER
        ),
    ),
    # A meter that has never had a remote relay command may read 0000 0000 (field reports;
    # the manual documents only the commands): the state is unknown until a command.
    relay=RegisterRelay(
        address=0x0057,
        cut_words=(0x0001, 0x0001),
        restore_words=(0x0001, 0x0000),
        unknown_words=((0x0000, 0x0000),),
    ),
    write_functions=frozenset({6, 16}),
    serial_defaults=SerialDefaults(baudrate=9600),
)
