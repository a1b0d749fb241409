"""Register layout shared by the Eastron SDM family (FC04 input registers, float32 big-endian)."""

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
    CoilRelay,
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

#: Eastron documents 80 registers as the most one request may ask for.
EASTRON_MAX_REGISTERS = 80


def value(key: str, address: int, unit: str | None, plausible: tuple[Decimal, Decimal]) -> Register:
    """One Eastron float32 input register."""
    return Register(
        key=key,
        address=address,
        function=4,
        data_type="float32",
        unit=unit,
        plausible=plausible,
    )


def energy_registers() -> tuple[Register, ...]:
    """Frequency and the import/export counters, identical on every SDM model.

    ``energy_total`` is the imported energy (0x0048): that is what a prepaid account pays
    for. 0x0156 (import + export) would over-bill a room that also exports.
    """
    return (
        value(FREQUENCY, 0x0046, "Hz", MAINS_FREQUENCY),
        value(ENERGY_TOTAL, 0x0048, "kWh", ENERGY_RANGE),
        value(ENERGY_EXPORT, 0x004A, "kWh", ENERGY_RANGE),
    )


def single_phase(profile_id: str, name: str, baudrate: int) -> MeterProfile:
    """SDM120 / SDM230: one phase; relay on an optional separate Modbus relay module."""
    return MeterProfile(
        id=profile_id,
        name=name,
        manufacturer="Eastron",
        registers=(
            value(VOLTAGE, 0x0000, "V", MAINS_VOLTAGE),
            value(CURRENT, 0x0006, "A", MAINS_CURRENT),
            value(POWER, 0x000C, "W", SINGLE_PHASE_POWER),
            value(POWER_FACTOR, 0x001E, None, POWER_FACTOR_RANGE),
            *energy_registers(),
        ),
        max_registers_per_request=EASTRON_MAX_REGISTERS,
        write_functions=frozenset({16}),
        relay=CoilRelay(coil=0, unit_id=None),
        serial_defaults=SerialDefaults(baudrate=baudrate),
    )
