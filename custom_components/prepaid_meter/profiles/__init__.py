"""Meter profiles: one module per supported model, plus user-defined profiles from YAML.

Each model is a ``modbus_connection.model`` component (see ``model``). No Home Assistant
imports here: the simulator, benchmarks and tests use these profiles too.
"""

from __future__ import annotations

from types import MappingProxyType

from . import (
    acrel_ddsy1352,
    chint_ddsu666,
    eastron_sdm120,
    eastron_sdm230,
    eastron_sdm630,
    hiking_dds238_2,
)
from .custom import load_custom_profile, load_custom_profile_yaml
from .model import (
    CURRENT,
    ENERGY_EXPORT,
    ENERGY_TOTAL,
    FREQUENCY,
    POWER,
    POWER_FACTOR,
    VOLTAGE,
    WATER_TOTAL,
    AddressRange,
    CoilRelay,
    MeterComponent,
    MeterProfile,
    ProfileError,
    Register,
    RegisterRelay,
    RelaySpec,
    SerialDefaults,
    UndecodableWords,
    meter_component,
)

#: Built-in profiles by id, in the order the config flow offers them.
PROFILES: MappingProxyType[str, MeterProfile] = MappingProxyType(
    {
        module.PROFILE.id: module.PROFILE
        for module in (
            acrel_ddsy1352,
            eastron_sdm120,
            eastron_sdm230,
            eastron_sdm630,
            chint_ddsu666,
            hiking_dds238_2,
        )
    }
)


def get_profile(profile_id: str) -> MeterProfile:
    """Return the built-in profile with this id; ``ProfileError`` names the known ids."""
    try:
        return PROFILES[profile_id]
    except KeyError:
        known = ", ".join(PROFILES)
        raise ProfileError(f"unknown meter profile {profile_id!r}; known: {known}") from None


__all__ = [
    "CURRENT",
    "ENERGY_EXPORT",
    "ENERGY_TOTAL",
    "FREQUENCY",
    "POWER",
    "POWER_FACTOR",
    "PROFILES",
    "VOLTAGE",
    "WATER_TOTAL",
    "AddressRange",
    "CoilRelay",
    "MeterComponent",
    "MeterProfile",
    "ProfileError",
    "Register",
    "RegisterRelay",
    "RelaySpec",
    "SerialDefaults",
    "UndecodableWords",
    "get_profile",
    "load_custom_profile",
    "load_custom_profile_yaml",
    "meter_component",
]
