"""Where a Modbus line is reached: a TCP gateway (Modbus TCP or RTU framing) or a serial port.

An endpoint is a frozen value. ``line_key`` names the physical line (gateway host/port or
serial device), which the hub manager uses to share one connection per line and to refuse
two different settings for the same line.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

type Framing = Literal["socket", "rtu"]
type Parity = Literal["N", "E", "O"]

#: Bits on the wire per character in RTU: start + 8 data + parity or second stop + stop.
RTU_BITS_PER_CHAR = 11


@dataclass(frozen=True, slots=True, kw_only=True)
class TcpEndpoint:
    """A Modbus TCP device or gateway; ``framing="rtu"`` for RTU frames tunnelled over TCP."""

    host: str
    port: int = 502
    framing: Framing = "socket"

    def __post_init__(self) -> None:
        """Refuse values no socket could use."""
        if not self.host.strip():
            raise ValueError("host must not be empty")
        if not 1 <= self.port <= 65535:
            raise ValueError(f"port {self.port} outside 1..65535")
        if self.framing not in {"socket", "rtu"}:
            raise ValueError(f"framing must be 'socket' or 'rtu', not {self.framing!r}")

    @property
    def line_key(self) -> str:
        """Identity of the gateway, independent of framing."""
        return f"tcp://{self.host.strip().lower()}:{self.port}"

    def __str__(self) -> str:
        suffix = " (RTU over TCP)" if self.framing == "rtu" else ""
        return f"{self.host}:{self.port}{suffix}"


@dataclass(frozen=True, slots=True, kw_only=True)
class SerialEndpoint:
    """An RS485 line on a local serial port."""

    port: str
    baudrate: int = 9600
    parity: Parity = "N"
    stopbits: int = 1
    bytesize: int = 8

    def __post_init__(self) -> None:
        """Refuse line settings a UART cannot use."""
        if not self.port.strip():
            raise ValueError("serial port must not be empty")
        if not 300 <= self.baudrate <= 921_600:
            raise ValueError(f"baud rate {self.baudrate} outside 300..921600")
        if self.parity not in {"N", "E", "O"}:
            raise ValueError(f"parity must be N, E or O, not {self.parity!r}")
        if self.stopbits not in {1, 2}:
            raise ValueError(f"stop bits must be 1 or 2, not {self.stopbits}")
        if self.bytesize not in {7, 8}:
            raise ValueError(f"byte size must be 7 or 8, not {self.bytesize}")

    @property
    def line_key(self) -> str:
        """Identity of the serial device."""
        return f"serial://{self.port.strip()}"

    @property
    def char_time(self) -> float:
        """Seconds one character occupies on the wire."""
        return RTU_BITS_PER_CHAR / self.baudrate

    def __str__(self) -> str:
        return f"{self.port} {self.baudrate} {self.bytesize}{self.parity}{self.stopbits}"


type Endpoint = TcpEndpoint | SerialEndpoint
