"""The Modbus layer: codec, block planner and one shared connection per line.

No Home Assistant imports: the meter simulator, the benchmarks and the tests use this package
directly, and the integration builds its coordinator and entities on top of it.
"""

from __future__ import annotations

from .codec import decode, encode
from .connection import HubManager, HubSettings, HubStats, ModbusHub
from .endpoint import Endpoint, SerialEndpoint, TcpEndpoint
from .errors import (
    DecodeError,
    EndpointConflict,
    EndpointUnreachable,
    ExceptionResponse,
    ModbusError,
    NoResponse,
    RelayMismatch,
    RelayNotConfigured,
    SerialSettingsConflict,
    WrongProfile,
)
from .planner import RTU_REQUEST_COST, ReadBlock, plan_reads, plan_registers

__all__ = [
    "RTU_REQUEST_COST",
    "DecodeError",
    "Endpoint",
    "EndpointConflict",
    "EndpointUnreachable",
    "ExceptionResponse",
    "HubManager",
    "HubSettings",
    "HubStats",
    "ModbusError",
    "ModbusHub",
    "NoResponse",
    "ReadBlock",
    "RelayMismatch",
    "RelayNotConfigured",
    "SerialEndpoint",
    "SerialSettingsConflict",
    "TcpEndpoint",
    "WrongProfile",
    "decode",
    "encode",
    "plan_reads",
    "plan_registers",
]
