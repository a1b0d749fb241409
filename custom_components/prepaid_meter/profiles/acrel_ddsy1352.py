"""Acrel DDSY1352: single-phase prepaid meter with a built-in relay (FC03, integers)."""

from __future__ import annotations

from decimal import Decimal

from .model import MeterComponent, MeterProfile, Register, RegisterRelay, SerialDefaults
from .plausible import ENERGY_RANGE, MAINS_CURRENT, MAINS_VOLTAGE, SINGLE_PHASE_POWER

_KWH = Decimal("0.01")


def _energy(address: int) -> Register:
    return Register(address, data_type="uint32", scale=_KWH, unit="kWh", plausible=ENERGY_RANGE)


class AcrelDdsy1352(MeterComponent):
    """Holding registers 0000H-000DH: energy by band (0.01 kWh), voltage, current, power."""

    register_space = "holding"

    energy_total = _energy(0x0000)
    energy_sharp = _energy(0x0002)
    energy_peak = _energy(0x0004)
    energy_flat = _energy(0x0006)
    energy_valley = _energy(0x0008)
    voltage = Register(0x000B, scale=Decimal("0.1"), unit="V", plausible=MAINS_VOLTAGE)
    current = Register(0x000C, scale=Decimal("0.01"), unit="A", plausible=MAINS_CURRENT)
    # The manual gives 0.001 kW per count, which is exactly 1 W.
    power = Register(0x000D, data_type="int16", unit="W", plausible=SINGLE_PHASE_POWER)


PROFILE = MeterProfile(
    id="acrel_ddsy1352",
    name="Acrel DDSY1352",
    manufacturer="Acrel",
    components=(AcrelDdsy1352,),
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
