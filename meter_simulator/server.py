"""The simulator's Modbus server: Modbus TCP, RTU over TCP and RTU over a pseudo-terminal.

Requests are decoded and answered with pymodbus's own framers and PDUs (so the bytes on the
wire are what pymodbus clients and servers produce), but the transport is ours: fault
injection needs to drop connections, stay silent, delay and corrupt individual frames, and
RTU must run over the master side of a pty that no serial library can open by name.

All units share one "bus": requests are answered one at a time, as on a real RS485 line
behind a gateway, and a slow unit delays everyone, as it would there.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
import tty
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, cast

from pymodbus.constants import ExcCodes
from pymodbus.datastore import ModbusServerContext
from pymodbus.exceptions import ModbusIOException
from pymodbus.framer import FramerBase, FramerRTU, FramerSocket
from pymodbus.pdu import DecodePDU, ExceptionResponse, ModbusPDU

from .devices import ILLEGAL_FUNCTION, Device, ReadResult, SimulatedMeter
from .faults import Fault

_LOGGER = logging.getLogger(__name__)

#: Bits per character on an RTU line (start, 8 data, parity/stop, stop).
BITS_PER_CHAR = 11
#: RTU silence between frames, in characters.
SILENT_CHARS = 3.5
#: Bytes an RTU frame adds around the PDU: unit id before, CRC after.
RTU_OVERHEAD = 3
#: A partial RTU frame older than this is line noise; a new frame starts after silence.
_RTU_STALE_BUFFER = 0.05

type Framing = Literal["socket", "rtu"]


def rtu_exchange_time(request_pdu: int, response_pdu: int, baudrate: int) -> float:
    """Seconds one request/response pair occupies an RTU line, silences included."""
    chars = request_pdu + response_pdu + 2 * RTU_OVERHEAD + 2 * SILENT_CHARS
    return chars * BITS_PER_CHAR / baudrate


@dataclass(slots=True)
class SimulatorStats:
    """What the simulator saw, for tests and benchmarks."""

    requests: int = 0
    per_unit: dict[int, int] = field(default_factory=dict)
    per_function: dict[int, int] = field(default_factory=dict)
    #: FC03/FC04 requests by the number of registers they asked for (wire-time bounds).
    read_sizes: dict[int, int] = field(default_factory=dict)
    connections: int = 0


class _Context:
    """Adapter that lets pymodbus PDUs run against our devices (duck-typed server context)."""

    def __init__(self, device: Device) -> None:
        self._device = device

    async def async_getValues(  # noqa: N802  # the name pymodbus calls
        self, _device_id: int, func_code: int, address: int, count: int = 1
    ) -> ReadResult:
        result = self._device.read(func_code, address, count)
        return _as_exc(result)

    async def async_setValues(  # noqa: N802  # the name pymodbus calls
        self, _device_id: int, func_code: int, address: int, values: list[int] | list[bool]
    ) -> int | None:
        code = self._device.write(func_code, address, values)
        return None if code is None else _exc_code(code)


def _exc_code(code: int) -> int:
    return ExcCodes(code)


def _as_exc(result: ReadResult) -> ReadResult:
    return _exc_code(result) if isinstance(result, int) else result


class MeterSimulator:
    """Several simulated units on one bus, reachable over TCP and/or a pty."""

    def __init__(
        self,
        *,
        wire_baudrate: int | None = None,
        unknown_unit: Literal["silent", "gateway_exception"] = "silent",
    ) -> None:
        self.devices: dict[int, Device] = {}
        self.faults: dict[int, Fault] = {}
        self.stats = SimulatorStats()
        #: When set, every answer is delayed by the time the exchange takes at this baud rate.
        self.wire_baudrate = wire_baudrate
        self.unknown_unit = unknown_unit
        self._bus = asyncio.Lock()
        self._server: asyncio.Server | None = None
        self._tcp_host = "127.0.0.1"
        self._tcp_port = 0
        self._tcp_framing: Framing = "socket"
        self._writers: set[asyncio.StreamWriter] = set()
        self._handlers: set[asyncio.Task[None]] = set()
        self._pty: _PtyLine | None = None

    # ------------------------------------------------------------------ devices & faults

    def add(self, unit_id: int, device: Device) -> Device:
        """Put a device on the bus at ``unit_id``."""
        if not 1 <= unit_id <= 247:
            raise ValueError(f"unit id {unit_id} outside 1..247")
        if unit_id in self.devices:
            raise ValueError(f"unit id {unit_id} is already taken")
        self.devices[unit_id] = device
        return device

    def meter(self, unit_id: int) -> SimulatedMeter:
        """Return the simulated meter at ``unit_id``."""
        device = self.devices[unit_id]
        if not isinstance(device, SimulatedMeter):
            raise TypeError(f"unit {unit_id} is not a meter")
        return device

    def fault(self, unit_id: int) -> Fault:
        """Return the unit's live fault settings (mutate them to inject faults)."""
        if unit_id not in self.devices:
            raise KeyError(f"no unit {unit_id}")
        return self.faults.setdefault(unit_id, Fault())

    def set_fault(self, unit_id: int, **changes: object) -> Fault:
        """Replace the unit's fault settings, e.g. ``set_fault(2, silent=True)``."""
        if unit_id not in self.devices:
            raise KeyError(f"no unit {unit_id}")
        fault = Fault(**changes)  # type: ignore[arg-type]
        self.faults[unit_id] = fault
        self._apply_stuck(unit_id, fault)
        return fault

    def clear_faults(self, unit_id: int | None = None) -> None:
        """Heal one unit, or all of them."""
        for unit in [unit_id] if unit_id is not None else list(self.faults):
            self.faults.pop(unit, None)
            self._apply_stuck(unit, Fault())

    def _apply_stuck(self, unit_id: int, fault: Fault) -> None:
        device = self.devices[unit_id]
        if isinstance(device, SimulatedMeter):
            device.relay_stuck = fault.relay_stuck
        elif hasattr(device, "stuck"):
            device.stuck = fault.relay_stuck

    # ------------------------------------------------------------------ TCP

    async def start_tcp(
        self, host: str = "127.0.0.1", port: int = 0, framing: Framing = "socket"
    ) -> int:
        """Listen for Modbus TCP (or RTU-over-TCP) clients; return the bound port."""
        self._tcp_host, self._tcp_framing = host, framing
        self._server = await asyncio.start_server(self._serve_tcp, host, port, reuse_address=True)
        self._tcp_port = self._server.sockets[0].getsockname()[1]
        return self._tcp_port

    @property
    def tcp_port(self) -> int:
        """Port of the TCP listener (kept across restarts)."""
        return self._tcp_port

    async def stop_tcp(self) -> None:
        """Stop listening and close every client connection (a gateway power cut)."""
        if self._server is not None:
            self._server.close()
            self._server = None
        await self.drop_connections()

    async def drop_connections(self) -> None:
        """Close every TCP client connection but keep listening (a gateway's watchdog reset)."""
        for writer in list(self._writers):
            writer.close()
        for task in list(self._handlers):
            task.cancel()
        if self._handlers:
            await asyncio.gather(*self._handlers, return_exceptions=True)

    async def restart_tcp(self, downtime: float = 0.0) -> None:
        """Power-cycle the gateway: down for ``downtime`` seconds, then back on the same port."""
        await self.stop_tcp()
        await asyncio.sleep(downtime)
        await self.start_tcp(self._tcp_host, self._tcp_port, self._tcp_framing)

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
        self._writers.add(writer)
        self.stats.connections += 1
        framer = self._framer(self._tcp_framing)
        buffer = b""
        last_data = time.monotonic()
        try:
            while data := await reader.read(4096):
                now = time.monotonic()
                if self._tcp_framing == "rtu" and buffer and now - last_data > _RTU_STALE_BUFFER:
                    buffer = b""
                last_data = now
                buffer += data
                buffer = await self._consume(framer, buffer, writer.write)
        except ConnectionError, asyncio.CancelledError:
            pass
        finally:
            self._writers.discard(writer)
            if task is not None:
                self._handlers.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    # ------------------------------------------------------------------ RTU over a pty

    def open_pty(self) -> str:
        """Serve RTU on a new pseudo-terminal; return the path a client opens as a serial port."""
        if self._pty is not None:
            return self._pty.path
        self._pty = _PtyLine(self)
        return self._pty.path

    @property
    def pty_path(self) -> str | None:
        """The serial device path of the pty line, if open."""
        return self._pty.path if self._pty else None

    # ------------------------------------------------------------------ shared handling

    def _framer(self, framing: Framing) -> FramerBase:
        decoder = DecodePDU(is_server=True)
        return FramerRTU(decoder) if framing == "rtu" else FramerSocket(decoder)

    async def _consume(
        self, framer: FramerBase, buffer: bytes, send: Callable[[bytes], object]
    ) -> bytes:
        """Answer every complete request in ``buffer``; return what is left over."""
        while buffer:
            try:
                used, request = framer.handleFrame(buffer, 0, 0)
            except ModbusIOException:
                # A function code pymodbus has no PDU for: answer "illegal function" on TCP.
                if isinstance(framer, FramerSocket) and len(buffer) >= 8:
                    await self._reply_illegal(buffer, send)
                return b""
            if used == 0 or request is None:
                return buffer[used:] if used else buffer
            buffer = buffer[used:]
            await self._answer(framer, request, send)
        return buffer

    async def _reply_illegal(self, buffer: bytes, send: Callable[[bytes], object]) -> None:
        tid = int.from_bytes(buffer[0:2], "big")
        unit, function = buffer[6], buffer[7] & 0x7F
        response = ExceptionResponse(function, ILLEGAL_FUNCTION)
        response.dev_id, response.transaction_id = unit, tid
        send(FramerSocket(DecodePDU(is_server=True)).buildFrame(response))

    async def _answer(
        self, framer: FramerBase, request: ModbusPDU, send: Callable[[bytes], object]
    ) -> None:
        unit = request.dev_id
        async with self._bus:
            self.stats.requests += 1
            self.stats.per_unit[unit] = self.stats.per_unit.get(unit, 0) + 1
            self.stats.per_function[request.function_code] = (
                self.stats.per_function.get(request.function_code, 0) + 1
            )
            if request.function_code in {3, 4}:
                size = int(request.count)
                self.stats.read_sizes[size] = self.stats.read_sizes.get(size, 0) + 1
            device = self.devices.get(unit)
            if unit == 0:
                return  # broadcast: nobody answers
            if device is None:
                if self.unknown_unit == "silent":
                    return
                response: ModbusPDU = ExceptionResponse(request.function_code, 0x0B)
            else:
                fault = self.faults.get(unit, Fault())
                if fault.silent:
                    return
                if fault.delay:
                    await asyncio.sleep(fault.delay)
                if fault.exception is not None:
                    response = ExceptionResponse(request.function_code, fault.exception)
                else:
                    response = await request.datastore_update(
                        cast("ModbusServerContext", _Context(device)), unit
                    )
                    if fault.mute_writes and request.function_code in _WRITE_FUNCTIONS:
                        return
            response.dev_id = unit
            response.transaction_id = request.transaction_id
            frame = framer.buildFrame(response)
            if self.wire_baudrate:
                request_pdu = len(request.encode()) + 1
                response_pdu = len(response.encode()) + 1
                await asyncio.sleep(
                    rtu_exchange_time(request_pdu, response_pdu, self.wire_baudrate)
                )
            if device is not None and self.faults.get(unit, Fault()).corrupt:
                frame = _corrupt(frame, framer)
            send(frame)

    async def close(self) -> None:
        """Stop every transport."""
        await self.stop_tcp()
        if self._pty is not None:
            await self._pty.close()
            self._pty = None

    async def __aenter__(self) -> MeterSimulator:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


_WRITE_FUNCTIONS = frozenset({5, 6, 15, 16})


def _corrupt(frame: bytes, framer: FramerBase) -> bytes:
    """Damage a frame the way noise would: flip CRC bits on RTU, break the header on TCP."""
    if isinstance(framer, FramerRTU):
        return frame[:-1] + bytes([frame[-1] ^ 0xFF])
    return frame[:2] + b"\x12\x34" + frame[4:]


class _PtyLine:
    """The master side of a pty, read by the event loop; the slave side is the 'serial port'."""

    def __init__(self, simulator: MeterSimulator) -> None:
        self._simulator = simulator
        self._master, self._slave = os.openpty()
        # Raw mode before any client opens it: no echo, no line editing of binary frames.
        tty.setraw(self._slave)
        os.set_blocking(self._master, False)
        self.path = os.ttyname(self._slave)
        self._framer = simulator._framer("rtu")  # same class, shared helper
        self._buffer = b""
        self._last = time.monotonic()
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[bytes] = asyncio.Queue()
        self._worker = self._loop.create_task(self._work())
        self._loop.add_reader(self._master, self._readable)

    def _readable(self) -> None:
        try:
            data = os.read(self._master, 4096)
        except BlockingIOError, InterruptedError:
            return
        except OSError:
            return  # EIO while no client holds the slave side: nothing to read
        if data:
            self._queue.put_nowait(data)

    def _send(self, frame: bytes) -> None:
        with contextlib.suppress(OSError):
            os.write(self._master, frame)

    async def _work(self) -> None:
        while True:
            data = await self._queue.get()
            now = time.monotonic()
            if self._buffer and now - self._last > _RTU_STALE_BUFFER:
                self._buffer = b""
            self._last = now
            self._buffer = await self._simulator._consume(
                self._framer, self._buffer + data, self._send
            )

    async def close(self) -> None:
        """Stop reading and release both sides of the pty."""
        self._loop.remove_reader(self._master)
        self._worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._worker
        os.close(self._master)
        os.close(self._slave)
