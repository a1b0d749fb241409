"""Register layout shared by the Eastron SDM family (FC04 input registers, float32 big-endian)."""

from __future__ import annotations

from decimal import Decimal

from .model import CoilRelay, MeterComponent, MeterProfile, Register, SerialDefaults
from .plausible import (
    ENERGY_RANGE,
    MAINS_CURRENT,
    MAINS_FREQUENCY,
    MAINS_VOLTAGE,
    POWER_FACTOR_RANGE,
    SINGLE_PHASE_POWER,
)

#: Eastron documents 80 registers as the most one request may ask for.
EASTRON_MAX_REGISTERS = 80


def value(address: int, unit: str | None, plausible: tuple[Decimal, Decimal]) -> Register:
    """One Eastron float32 input register."""
    return Register(address, data_type="float32", unit=unit, plausible=plausible)


class EastronEnergy(MeterComponent):
    """Frequency and the import/export counters, identical on every SDM model.

    ``energy_total`` is the imported energy (0x0048): that is what a prepaid account pays
    for. 0x0156 (import + export) would over-bill a room that also exports.
    """

    register_space = "input"
    max_span = EASTRON_MAX_REGISTERS

    frequency = value(0x0046, "Hz", MAINS_FREQUENCY)
    energy_total = value(0x0048, "kWh", ENERGY_RANGE)
    energy_export = value(0x004A, "kWh", ENERGY_RANGE)


class EastronSinglePhase(EastronEnergy):
    """SDM120 / SDM230: voltage, current, active power and power factor of the one phase."""

    voltage = value(0x0000, "V", MAINS_VOLTAGE)
    current = value(0x0006, "A", MAINS_CURRENT)
    power = value(0x000C, "W", SINGLE_PHASE_POWER)
    power_factor = value(0x001E, None, POWER_FACTOR_RANGE)


def eastron_profile(
    profile_id: str, name: str, component: type[MeterComponent], baudrate: int
) -> MeterProfile:
    """Describe an SDM model: FC16-only writes; relay on an optional separate module."""
    return MeterProfile(
        id=profile_id,
        name=name,
        manufacturer="Eastron",
        components=(component,),
        write_functions=frozenset({16}),
        relay=CoilRelay(coil=0, unit_id=None),
        serial_defaults=SerialDefaults(baudrate=baudrate),
    )
