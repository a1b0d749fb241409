"""Turn a meter subentry's stored data into the Modbus layer's values (endpoint, profile).

Pure functions, so the config flow (test read) and setup (polling) build exactly the same thing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Literal

from .const import (
    CONF_BAUDRATE,
    CONF_BYTESIZE,
    CONF_CONNECTION,
    CONF_CUSTOM_PROFILE,
    CONF_FRAME_GAP_MS,
    CONF_HOST,
    CONF_PARITY,
    CONF_PORT,
    CONF_PROFILE,
    CONF_READ_FUNCTION,
    CONF_RELAY_COIL,
    CONF_RELAY_UNIT_ID,
    CONF_SERIAL_PORT,
    CONF_STOPBITS,
    CONNECTION_RTU_OVER_TCP,
    CONNECTION_SERIAL,
    DEFAULT_MODBUS_PORT,
    PARITY_OPTIONS,
    PROFILE_CUSTOM,
)
from .modbus.connection import HubSettings
from .modbus.endpoint import Endpoint, SerialEndpoint, TcpEndpoint
from .profiles import CoilRelay, MeterProfile, get_profile, load_custom_profile_yaml


def endpoint_from_config(data: Mapping[str, Any]) -> Endpoint:
    """Build the Modbus line a meter is on; ValueError for impossible settings."""
    if data[CONF_CONNECTION] == CONNECTION_SERIAL:
        return SerialEndpoint(
            port=str(data[CONF_SERIAL_PORT]),
            baudrate=int(data[CONF_BAUDRATE]),
            parity=_parity_code(str(data[CONF_PARITY])),
            stopbits=int(data[CONF_STOPBITS]),
            bytesize=int(data[CONF_BYTESIZE]),
        )
    return TcpEndpoint(
        host=str(data[CONF_HOST]),
        port=int(data.get(CONF_PORT, DEFAULT_MODBUS_PORT)),
        framing="rtu" if data[CONF_CONNECTION] == CONNECTION_RTU_OVER_TCP else "socket",
    )


_PARITY_CODES: tuple[Literal["N", "E", "O"], ...] = ("N", "E", "O")


def _parity_code(stored: str) -> Literal["N", "E", "O"]:
    """Line parity from "none"/"even"/"odd" (the selector) or "N"/"E"/"O" (older versions)."""
    code = PARITY_OPTIONS.get(stored, stored)
    for known in _PARITY_CODES:
        if code == known:
            return known
    raise ValueError(f"parity must be one of {', '.join(PARITY_OPTIONS)}, not {stored!r}")


def hub_settings_from_config(data: Mapping[str, Any]) -> HubSettings | None:
    """Build timing overrides for the line (pause between frames); None means defaults."""
    gap_ms = data.get(CONF_FRAME_GAP_MS)
    if gap_ms is None:
        return None
    return HubSettings(frame_gap=float(gap_ms) / 1000)


def profile_from_config(data: Mapping[str, Any]) -> MeterProfile:
    """Build the meter's register map, with the relay module the user configured (if any).

    Raises ProfileError for an unknown id or a broken custom definition.
    """
    if data[CONF_PROFILE] == PROFILE_CUSTOM:
        profile = load_custom_profile_yaml(str(data[CONF_CUSTOM_PROFILE]))
    else:
        profile = get_profile(str(data[CONF_PROFILE]))
    if data.get(CONF_READ_FUNCTION) is not None and profile.fallback_read_function is not None:
        function = int(data[CONF_READ_FUNCTION])
        if function == profile.fallback_read_function:
            profile = profile.with_read_function(profile.fallback_read_function)
    if isinstance(profile.relay, CoilRelay):
        # A coil relay sits on a separate relay module; without one configured there is none.
        if data.get(CONF_RELAY_UNIT_ID) is None:
            if profile.relay.unit_id is None:
                return dataclasses.replace(profile, relay=None)
            return profile
        return profile.with_relay_module(
            int(data[CONF_RELAY_UNIT_ID]), int(data.get(CONF_RELAY_COIL, profile.relay.coil))
        )
    return profile


def profile_has_relay_module(profile: MeterProfile) -> bool:
    """Whether the model's relay is an add-on module the user must describe."""
    return isinstance(profile.relay, CoilRelay)
