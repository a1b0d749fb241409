"""Turn a meter subentry's stored data into its Modbus link parameters and its profile.

Pure functions, so the config flow (test read) and setup (polling) build exactly the same thing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Literal

import modbus_connection as mc

from .const import (
    CONF_BAUDRATE,
    CONF_BYTESIZE,
    CONF_CONNECTION,
    CONF_CUSTOM_PROFILE,
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
from .profiles import CoilRelay, MeterProfile, get_profile, load_custom_profile_yaml

type ModbusParams = mc.ModbusTcpParams | mc.ModbusSerialParams

#: The line speed core ``modbus`` gives RTU framing carried over a socket (its canonical
#: form of an RTU-over-TCP link), so both spellings of one gateway share a connection.
_SOCKET_BAUDRATE = 115200


def modbus_params(data: Mapping[str, Any]) -> ModbusParams:
    """Build the link a meter subentry describes; ValueError for settings no link could use."""
    if data[CONF_CONNECTION] == CONNECTION_SERIAL:
        device = str(data[CONF_SERIAL_PORT]).strip()
        baudrate, bytesize = int(data[CONF_BAUDRATE]), int(data[CONF_BYTESIZE])
        stopbits = int(data[CONF_STOPBITS])
        if not device:
            raise ValueError("serial port must not be empty")
        if not 300 <= baudrate <= 921_600:
            raise ValueError(f"baud rate {baudrate} outside 300..921600")
        if bytesize not in {7, 8}:
            raise ValueError(f"byte size must be 7 or 8, not {bytesize}")
        if stopbits not in {1, 2}:
            raise ValueError(f"stop bits must be 1 or 2, not {stopbits}")
        return mc.ModbusSerialParams(
            device=device,
            baudrate=baudrate,
            bytesize=7 if bytesize == 7 else 8,
            parity=parity_code(str(data[CONF_PARITY])),
            stopbits=1 if stopbits == 1 else 2,
        )
    host, port = str(data[CONF_HOST]).strip(), int(data.get(CONF_PORT, DEFAULT_MODBUS_PORT))
    if not host:
        raise ValueError("host must not be empty")
    if not 1 <= port <= 65535:
        raise ValueError(f"port {port} outside 1..65535")
    if data[CONF_CONNECTION] == CONNECTION_RTU_OVER_TCP:
        address = f"[{host}]" if ":" in host else host
        return mc.ModbusSerialParams(
            device=f"socket://{address.lower()}:{port}", baudrate=_SOCKET_BAUDRATE
        )
    return mc.ModbusTcpParams(host=host, port=port)


def parity_code(stored: str) -> Literal["N", "E", "O"]:
    """Line parity from "none"/"even"/"odd" (the selector) or "N"/"E"/"O" (older versions)."""
    code = PARITY_OPTIONS.get(stored, stored)
    for known in _PARITY_CODES:
        if code == known:
            return known
    raise ValueError(f"parity must be one of {', '.join(PARITY_OPTIONS)}, not {stored!r}")


_PARITY_CODES: tuple[Literal["N", "E", "O"], ...] = ("N", "E", "O")


def describe(params: ModbusParams) -> str:
    """Name the link as a person reads it: ``host:port``, ``host:port (RTU over TCP)``, a port."""
    if isinstance(params, mc.ModbusTcpParams):
        return f"{params.host}:{params.port}"
    if params.device.startswith("socket://"):
        return f"{params.device.removeprefix('socket://')} (RTU over TCP)"
    return f"{params.device} {params.baudrate} {params.bytesize}{params.parity}{params.stopbits}"


def line_key(data: Mapping[str, Any]) -> str:
    """Identity of the physical line, whatever its framing: ``tcp://host:port``, ``serial://port``.

    Part of every meter subentry's unique id, so the format stays what earlier versions stored.
    """
    if data[CONF_CONNECTION] == CONNECTION_SERIAL:
        return f"serial://{str(data[CONF_SERIAL_PORT]).strip()}"
    port = int(data.get(CONF_PORT, DEFAULT_MODBUS_PORT))
    return f"tcp://{str(data[CONF_HOST]).strip().lower()}:{port}"


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
