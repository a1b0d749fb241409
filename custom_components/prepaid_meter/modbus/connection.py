"""One shared, self-healing Modbus connection per line, and the manager that hands it out.

Known pain with Modbus integrations is the reason for this shape: two sessions to one RS485
gateway swap replies, one dead meter makes a whole hub unavailable, and nothing reconnects
after a gateway reboot. So:

* ``HubManager`` keeps exactly one ``ModbusHub`` per physical line (gateway or serial port),
  reference-counted, and refuses a second, different configuration for the same line.
* ``ModbusHub`` owns one pymodbus async client and serialises every request behind an
  ``asyncio.Lock``, pausing between frames on serial lines. Hubs of different lines run in
  parallel because nothing is shared between them.
* A failed connect is retried lazily on the next request, with exponential backoff; callers
  never recreate anything. A unit that times out raises ``NoResponse`` for that request only;
  the connection stays up for the other units, and is only reset when the whole line has
  been silent for several requests in a row (a half-open TCP connection after a reboot).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from decimal import Decimal

from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException
from pymodbus.framer import FramerType
from pymodbus.pdu import ModbusPDU

from ..profiles.model import CoilRelay, MeterProfile, RegisterRelay  # noqa: TID252  # mypy maps this package as prepaid_meter
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
from .planner import ReadBlock, plan_reads

_LOGGER = logging.getLogger(__name__)
#: Set while this hub talks to pymodbus, so pymodbus's own log lines can be told apart.
_IN_HUB_CALL: ContextVar[bool] = ContextVar("prepaid_meter_modbus_call", default=False)


class _HubOwnsTheErrors(logging.Filter):
    """Demote pymodbus's log lines to DEBUG while one of our hubs is calling it.

    pymodbus logs every unanswered request at ERROR (with a dump of recent frames) and every
    failed connect at WARNING. The hub turns those into typed exceptions and the integration
    logs once when a meter goes away and once when it returns; repeating it on every poll
    would bury the log. Other pymodbus users (core's modbus) are not affected.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno <= logging.DEBUG or not _IN_HUB_CALL.get():
            return True
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)


_PYMODBUS_LOGGER = logging.getLogger("pymodbus.logging")
if not any(isinstance(f, _HubOwnsTheErrors) for f in _PYMODBUS_LOGGER.filters):
    _PYMODBUS_LOGGER.addFilter(_HubOwnsTheErrors())

#: Exception codes that mean "this unit does not have what the profile asks for".
_PROFILE_MISMATCH_CODES = frozenset({1, 2, 3})
#: RTU needs at least 3.5 silent characters between frames.
_RTU_SILENT_CHARS = 3.5


@dataclass(frozen=True, slots=True, kw_only=True)
class HubSettings:
    """Timing of one hub; the defaults suit a healthy RS485 line at 9600 baud."""

    #: Seconds to wait for one response before the unit counts as not answering.
    timeout: float = 1.0
    #: Seconds allowed to open the TCP connection or serial port.
    connect_timeout: float = 3.0
    #: Pause between the end of one exchange and the next frame. None: 3.5 characters on a
    #: serial line, nothing on TCP (the gateway paces its own RS485 side).
    frame_gap: float | None = None
    #: First and largest wait between reconnect attempts (doubling in between).
    reconnect_min: float = 0.5
    reconnect_max: float = 60.0
    #: Requests in a row without any answer on the whole line before the connection is reset.
    silent_requests_before_reset: int = 5
    #: A unit that stopped answering is skipped by ``read_meter`` for this long (doubling up
    #: to ``unit_backoff_max``), so a dead meter costs the line one timeout now and then
    #: instead of one per poll. 0 (the default) disables it: a poll then always asks, and
    #: recovery shows on the very next poll. Probes and relay commands always go out.
    unit_backoff_min: float = 0.0
    unit_backoff_max: float = 60.0
    #: None: read each meter in the fewest requests. A number: price of one more request in
    #: registers, to read less on slow lines (``planner.RTU_REQUEST_COST`` for RTU at any baud).
    request_cost: float | None = None

    def __post_init__(self) -> None:
        """Refuse timings that would hang or spin."""
        if self.timeout <= 0 or self.connect_timeout <= 0:
            raise ValueError("timeouts must be positive")
        if self.frame_gap is not None and self.frame_gap < 0:
            raise ValueError("frame gap must not be negative")
        if not 0 < self.reconnect_min <= self.reconnect_max:
            raise ValueError("reconnect delays must satisfy 0 < min <= max")
        if self.silent_requests_before_reset < 1:
            raise ValueError("silent_requests_before_reset must be at least 1")
        if not 0 <= self.unit_backoff_min <= self.unit_backoff_max:
            raise ValueError("unit backoff must satisfy 0 <= min <= max")
        if self.request_cost is not None and self.request_cost < 0:
            raise ValueError("request cost must not be negative")


@dataclass(slots=True)
class HubStats:
    """Counters for diagnostics and benchmarks."""

    requests: int = 0
    responses: int = 0
    timeouts: int = 0
    exception_responses: int = 0
    connects: int = 0
    connect_failures: int = 0
    resets: int = 0
    per_unit_requests: dict[int, int] = field(default_factory=dict)


type _Call = Callable[[AsyncModbusTcpClient | AsyncModbusSerialClient], Awaitable[ModbusPDU]]


class ModbusHub:
    """The single connection to one Modbus line, shared by every meter on it."""

    def __init__(self, endpoint: Endpoint, settings: HubSettings | None = None) -> None:
        self.endpoint = endpoint
        self.settings = settings or HubSettings()
        self.stats = HubStats()
        self._lock = asyncio.Lock()
        self._client: AsyncModbusTcpClient | AsyncModbusSerialClient | None = None
        self._closed = False
        self._next_connect_at = 0.0
        self._reconnect_delay = self.settings.reconnect_min
        self._last_frame_end = 0.0
        self._silent_in_a_row = 0
        self._was_connected = False
        self._unit_retry_at: dict[int, float] = {}
        self._unit_backoff: dict[int, float] = {}

    # ------------------------------------------------------------------ public API

    @property
    def connected(self) -> bool:
        """Whether the line is open right now."""
        return self._client is not None and self._client.connected

    @property
    def frame_gap(self) -> float:
        """Seconds of silence enforced between frames."""
        if self.settings.frame_gap is not None:
            return self.settings.frame_gap
        if isinstance(self.endpoint, SerialEndpoint):
            return _RTU_SILENT_CHARS * self.endpoint.char_time
        return 0.0

    async def read_registers(
        self, unit_id: int, function: int, address: int, count: int
    ) -> list[int]:
        """Read ``count`` registers with FC03 or FC04."""
        if function not in {3, 4}:
            raise ValueError(f"read function must be 3 or 4, not {function}")

        def call(client: AsyncModbusTcpClient | AsyncModbusSerialClient) -> Awaitable[ModbusPDU]:
            read = client.read_holding_registers if function == 3 else client.read_input_registers
            return read(address, count=count, device_id=unit_id)

        response = await self._execute(unit_id, function, call)
        if len(response.registers) != count:
            # A stray or late frame from another exchange; never decode it as this one.
            self._note_bad_frame()
            raise NoResponse(unit_id, f"answer has {len(response.registers)} words, not {count}")
        return list(response.registers)

    async def read_blocks(self, unit_id: int, blocks: Iterable[ReadBlock]) -> dict[str, Decimal]:
        """Read planned blocks one after another; stop at the first failure."""
        values: dict[str, Decimal] = {}
        for block in blocks:
            words = await self.read_registers(unit_id, block.function, block.address, block.count)
            values.update(block.decode(words))
        return values

    async def read_meter(
        self, unit_id: int, profile: MeterProfile, keys: Iterable[str] | None = None
    ) -> dict[str, Decimal]:
        """Read every register of ``profile`` (or only ``keys``) in the fewest requests.

        A unit that has just stopped answering is not asked again until its backoff ends:
        ``NoResponse`` is raised at once, without occupying the line.
        """
        retry_at = self._unit_retry_at.get(unit_id)
        if retry_at is not None and (wait := retry_at - time.monotonic()) > 0:
            raise NoResponse(unit_id, f"not answering; next try in {wait:.1f} s")
        return await self.read_blocks(
            unit_id, plan_reads(profile, keys, self.settings.request_cost)
        )

    async def probe(self, unit_id: int, profile: MeterProfile) -> dict[str, Decimal]:
        """Read the meter and prove it is the model ``profile`` describes.

        Raises ``WrongProfile`` when the unit refuses the profile's functions or addresses,
        or answers with values no such meter could show. Connection problems and silence
        keep their own exception types, so the caller can tell them apart.
        """
        try:
            values = await self.read_blocks(
                unit_id, plan_reads(profile, request_cost=self.settings.request_cost)
            )
        except ExceptionResponse as err:
            if err.code in _PROFILE_MISMATCH_CODES:
                raise WrongProfile(f"{profile.name}: {err}") from err
            raise
        except DecodeError as err:
            raise WrongProfile(f"{profile.name}: {err}") from err
        if implausible := profile.implausible(values):
            raise WrongProfile(
                f"unit {unit_id} does not look like a {profile.name}: "
                f"implausible {', '.join(implausible)}"
            )
        return values

    async def write_registers(
        self, unit_id: int, profile: MeterProfile, address: int, words: list[int]
    ) -> None:
        """Write holding registers the way this model accepts (FC06 only if allowed)."""
        if not words:
            raise ValueError("nothing to write")
        use_single = len(words) == 1 and 6 in profile.write_functions
        if use_single:

            def single(
                client: AsyncModbusTcpClient | AsyncModbusSerialClient,
            ) -> Awaitable[ModbusPDU]:
                return client.write_register(address, words[0], device_id=unit_id)

            await self._execute(unit_id, 6, single)
        else:

            def multiple(
                client: AsyncModbusTcpClient | AsyncModbusSerialClient,
            ) -> Awaitable[ModbusPDU]:
                return client.write_registers(address, words, device_id=unit_id)

            await self._execute(unit_id, 16, multiple)

    async def read_relay(self, unit_id: int, profile: MeterProfile) -> bool | None:
        """Return True when the relay is closed (supply on), None when the meter does not say."""
        relay = profile.relay
        if isinstance(relay, RegisterRelay):
            words = await self.read_registers(
                unit_id, relay.read_function, relay.address, relay.count
            )
            return _register_relay_state(unit_id, relay, words)
        if isinstance(relay, CoilRelay):
            module = _module_unit(relay, profile)

            def read(
                client: AsyncModbusTcpClient | AsyncModbusSerialClient,
            ) -> Awaitable[ModbusPDU]:
                return client.read_coils(relay.coil, count=1, device_id=module)

            response = await self._execute(module, 1, read)
            if not response.bits:
                self._note_bad_frame()
                raise NoResponse(module, "empty coil response")
            return bool(response.bits[0]) == relay.closed_when
        raise RelayNotConfigured(f"profile {profile.id!r} has no relay")

    async def set_relay(self, unit_id: int, profile: MeterProfile, closed: bool) -> bool:
        """Switch the relay, read it back and return the confirmed state.

        ``closed=True`` restores supply, ``False`` cuts it. Raises ``RelayMismatch`` when the
        device accepted the write but reads back something else: the caller must show that
        as an error, never as the state it asked for.
        """
        relay = profile.relay
        if isinstance(relay, RegisterRelay):
            words = list(relay.restore_words if closed else relay.cut_words)
            await self.write_registers(unit_id, profile, relay.address, words)
            read_back = await self.read_registers(
                unit_id, relay.read_function, relay.address, relay.count
            )
            confirmed = _register_relay_state(unit_id, relay, read_back)
            if confirmed != closed:
                raise RelayMismatch(unit_id, closed, confirmed)
            return confirmed
        if isinstance(relay, CoilRelay):
            module = _module_unit(relay, profile)
            value = closed if relay.closed_when else not closed

            def write(
                client: AsyncModbusTcpClient | AsyncModbusSerialClient,
            ) -> Awaitable[ModbusPDU]:
                return client.write_coil(relay.coil, value, device_id=module)

            await self._execute(module, 5, write)
            confirmed = await self.read_relay(unit_id, profile)
            if confirmed != closed:
                raise RelayMismatch(module, closed, confirmed)
            return confirmed
        raise RelayNotConfigured(f"profile {profile.id!r} has no relay")

    async def close(self) -> None:
        """Close the connection for good; later requests raise ``EndpointUnreachable``."""
        async with self._lock:
            self._closed = True
            self._disconnect()

    # ------------------------------------------------------------------ internals

    def _make_client(self) -> AsyncModbusTcpClient | AsyncModbusSerialClient:
        # reconnect_delay=0: pymodbus must not run its own background reconnect task; this
        # hub reconnects on demand so no task outlives a request. retries=0: a retry is the
        # next poll, not three silent waits that stall every other meter on the line.
        endpoint = self.endpoint
        if isinstance(endpoint, TcpEndpoint):
            client: AsyncModbusTcpClient | AsyncModbusSerialClient = AsyncModbusTcpClient(
                endpoint.host,
                port=endpoint.port,
                framer=FramerType.RTU if endpoint.framing == "rtu" else FramerType.SOCKET,
                timeout=self.settings.timeout,
                retries=0,
                reconnect_delay=0,
                name=str(endpoint),
            )
        else:
            client = AsyncModbusSerialClient(
                endpoint.port,
                baudrate=endpoint.baudrate,
                parity=endpoint.parity,
                stopbits=endpoint.stopbits,
                bytesize=endpoint.bytesize,
                timeout=self.settings.timeout,
                retries=0,
                reconnect_delay=0,
                name=str(endpoint),
            )
        # The hub decides when the line is dead (see _lost), not pymodbus's own counter.
        client.set_max_no_responses(1_000_000_000)
        return client

    async def _ensure_connected(self) -> AsyncModbusTcpClient | AsyncModbusSerialClient:
        if self._closed:
            raise EndpointUnreachable(f"{self.endpoint}: hub is closed")
        if self._client is None:
            self._client = self._make_client()
        client = self._client
        if client.connected:
            return client
        now = time.monotonic()
        if now < self._next_connect_at:
            wait = self._next_connect_at - now
            raise EndpointUnreachable(
                f"{self.endpoint}: not connected, next attempt in {wait:.1f} s"
            )
        token = _IN_HUB_CALL.set(True)
        try:
            async with asyncio.timeout(self.settings.connect_timeout):
                ok = await client.connect()
        except TimeoutError:
            ok = False
        finally:
            _IN_HUB_CALL.reset(token)
        if not ok or not self.connected:
            client.close()
            self.stats.connect_failures += 1
            self._next_connect_at = time.monotonic() + self._reconnect_delay
            _LOGGER.debug(
                "%s: connect failed, next try in %.1f s", self.endpoint, self._reconnect_delay
            )
            self._reconnect_delay = min(self._reconnect_delay * 2, self.settings.reconnect_max)
            raise EndpointUnreachable(f"{self.endpoint}: cannot connect")
        self.stats.connects += 1
        if self._was_connected:
            _LOGGER.info("%s: reconnected", self.endpoint)
        self._was_connected = True
        self._reconnect_delay = self.settings.reconnect_min
        self._next_connect_at = 0.0
        self._silent_in_a_row = 0
        self._last_frame_end = time.monotonic()
        return client

    def _disconnect(self) -> None:
        if self._client is not None:
            self._client.close()

    async def _pace(self) -> None:
        gap = self.frame_gap
        if gap > 0:
            wait = self._last_frame_end + gap - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)

    async def _execute(self, unit_id: int, function: int, call: _Call) -> ModbusPDU:
        """Run one request under the line lock and map every failure to a typed error."""
        if not 0 <= unit_id <= 247:
            raise ValueError(f"unit id {unit_id} outside 0..247")
        async with self._lock:
            client = await self._ensure_connected()
            await self._pace()
            self.stats.requests += 1
            self.stats.per_unit_requests[unit_id] = self.stats.per_unit_requests.get(unit_id, 0) + 1
            token = _IN_HUB_CALL.set(True)
            try:
                response = await call(client)
            except ConnectionException as err:
                self._disconnect()
                raise EndpointUnreachable(f"{self.endpoint}: {err}") from err
            except ModbusIOException as err:
                _reraise_if_cancelled()
                return self._lost(unit_id, err)
            except ModbusException as err:
                self._note_bad_frame()
                raise NoResponse(unit_id, str(err)) from err
            finally:
                _IN_HUB_CALL.reset(token)
                self._last_frame_end = time.monotonic()
            self._silent_in_a_row = 0
            self.stats.responses += 1
            self._unit_retry_at.pop(unit_id, None)
            self._unit_backoff.pop(unit_id, None)
            if response.isError():
                self.stats.exception_responses += 1
                raise ExceptionResponse(unit_id, function, response.exception_code)
            return response

    def _lost(self, unit_id: int, err: Exception) -> ModbusPDU:
        """Blame the unit for an unanswered request, unless the line itself is gone."""
        self.stats.timeouts += 1
        client = self._client
        if client is None or not client.connected:
            raise EndpointUnreachable(f"{self.endpoint}: connection lost") from err
        self._silent_in_a_row += 1
        if self.settings.unit_backoff_min > 0:
            backoff = min(
                max(self._unit_backoff.get(unit_id, 0.0) * 2, self.settings.unit_backoff_min),
                self.settings.unit_backoff_max,
            )
            self._unit_backoff[unit_id] = backoff
            self._unit_retry_at[unit_id] = time.monotonic() + backoff
        if self._silent_in_a_row >= self.settings.silent_requests_before_reset:
            _LOGGER.debug(
                "%s: line silent for %d requests, resetting", self.endpoint, self._silent_in_a_row
            )
            self.stats.resets += 1
            self._silent_in_a_row = 0
            self._disconnect()
        raise NoResponse(unit_id, "no response within timeout") from err

    def _note_bad_frame(self) -> None:
        self.stats.timeouts += 1


def _register_relay_state(unit_id: int, relay: RegisterRelay, words: list[int]) -> bool | None:
    try:
        return relay.state(words)
    except ValueError as err:
        raise DecodeError(f"unit {unit_id}: {err}") from err


def _module_unit(relay: CoilRelay, profile: MeterProfile) -> int:
    if relay.unit_id is None:
        raise RelayNotConfigured(
            f"profile {profile.id!r}: the relay module's unit id is not configured"
        )
    return relay.unit_id


def _reraise_if_cancelled() -> None:
    """Pymodbus turns a cancellation into ModbusIOException; give it back to the caller."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


class HubManager:
    """Hands out one ``ModbusHub`` per physical line, shared by reference count.

    Several config entries (or meters) acquiring the same gateway get the same hub, so their
    requests are serialised on one connection instead of swapping replies on two.
    """

    def __init__(self, settings: HubSettings | None = None) -> None:
        self._settings = settings or HubSettings()
        self._hubs: dict[str, ModbusHub] = {}
        self._refs: dict[str, int] = {}

    def acquire(self, endpoint: Endpoint, settings: HubSettings | None = None) -> ModbusHub:
        """Return the line's hub (creating it), counting one more user.

        ``settings`` apply when this call creates the hub; later users of the same line share
        the settings of the first (timing is a property of the line, not of one meter).

        Raises ``SerialSettingsConflict`` when the serial port is already open with other
        line settings, ``EndpointConflict`` when a gateway is already used with the other
        framing. No I/O happens here; the hub connects on its first request.
        """
        key = endpoint.line_key
        hub = self._hubs.get(key)
        if hub is None:
            hub = ModbusHub(endpoint, settings or self._settings)
            self._hubs[key] = hub
            self._refs[key] = 0
        elif hub.endpoint != endpoint:
            if isinstance(endpoint, SerialEndpoint):
                raise SerialSettingsConflict(
                    f"{endpoint.port} is already open as {hub.endpoint}; cannot also use {endpoint}"
                )
            raise EndpointConflict(
                f"{key} is already used as {hub.endpoint}; cannot also use {endpoint}"
            )
        self._refs[key] += 1
        return hub

    async def release(self, hub: ModbusHub) -> None:
        """Drop one user of ``hub``; the last one closes the connection."""
        key = hub.endpoint.line_key
        if self._hubs.get(key) is not hub:
            raise ModbusError(f"{hub.endpoint} is not managed here")
        self._refs[key] -= 1
        if self._refs[key] == 0:
            del self._hubs[key], self._refs[key]
            await hub.close()

    @asynccontextmanager
    async def lease(self, endpoint: Endpoint) -> AsyncIterator[ModbusHub]:
        """Borrow the line's hub for a block (e.g. the config flow's test read)."""
        hub = self.acquire(endpoint)
        try:
            yield hub
        finally:
            await self.release(hub)

    def users(self, endpoint: Endpoint) -> int:
        """How many users currently hold the line's hub."""
        return self._refs.get(endpoint.line_key, 0)

    async def close(self) -> None:
        """Close every hub (on unload of the last entry)."""
        hubs = list(self._hubs.values())
        self._hubs.clear()
        self._refs.clear()
        for hub in hubs:
            await hub.close()
