"""A meter on Home Assistant's shared Modbus stack: its reads, its test read and its relay.

Core ``modbus`` hands out units on connections it shares between integrations
(``async_get_unit`` for a set-up entry, ``async_get_temporary_unit`` for a config flow). Every
consumer of one gateway or serial port, ours, core's or another integration's, then shares one
connection and one lock, so two masters never talk on one RS-485 bus, and a dropped link is
opened again by the next request. The profile's components (``modbus_connection.model``) plan
and decode the reads; this module adds what a prepaid meter needs on top: typed errors that
tell a dead gateway from a dead meter, the plausibility check of a test read, and relay
commands that are always read back.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import modbus_connection as mc
from homeassistant.components.modbus.connection import (
    async_get_temporary_unit,
    async_get_unit,
)
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from modbus_connection.model import ComponentGroup, ManualComponent

from .const import CONF_FRAME_GAP_MS, CONF_UNIT_ID
from .meter_config import ModbusParams, describe, modbus_params
from .meter_errors import (
    DecodeError,
    EndpointConflict,
    EndpointUnreachable,
    ExceptionResponse,
    NoResponse,
    RelayMismatch,
    RelayNotConfigured,
    SerialSettingsConflict,
    WrongProfile,
)
from .profiles import CoilRelay, MeterProfile, RegisterRelay, UndecodableWords
from .profiles.model import MeterComponent, decoded_values, value_of, words_of

if TYPE_CHECKING:
    from . import PrepaidConfigEntry

#: Seconds a meter gets to answer one request. A healthy RS-485 meter answers within 0.1 s
#: even behind a gateway; waiting the library's default 10 s for a dead one would hold the
#: shared line (and every other meter on it) for the whole wait.
ANSWER_TIMEOUT = 1.0
#: Unused registers a read may bridge on an RTU line. One more RTU request costs its 8-byte
#: frame, the 5 bytes around the answer's data and two 3.5-character silences: about 20
#: characters, the bytes of 10 registers. Reading a wider gap costs the line more than a
#: second request does (measured in bench/modbus_polling.py). Modbus TCP bridges any gap.
RTU_MAX_GAP = 10
#: Exception responses that mean "this unit does not have what the profile asks for".
_PROFILE_MISMATCH = (mc.IllegalFunctionError, mc.IllegalDataAddressError, mc.IllegalDataValueError)


@dataclass(slots=True)
class LinkStats:
    """What this meter's link has done, for diagnostics."""

    reads: int = 0
    failed_reads: int = 0
    relay_commands: int = 0
    last_error: str | None = None


@contextlib.contextmanager
def _translated(unit_id: int, unit: mc.ModbusUnit) -> Iterator[None]:
    """Turn ``modbus_connection``'s errors into ours (a dead line vs. a dead meter)."""
    try:
        yield
    except mc.ModbusExceptionError as err:
        raise ExceptionResponse(unit_id, err) from err
    except mc.ModbusConnectionError as err:
        raise EndpointUnreachable(str(err)) from err
    except mc.ModbusTimeoutError as err:
        if not unit.connected:  # the link itself could not be opened in time
            raise EndpointUnreachable(f"cannot connect: {err}") from err
        raise NoResponse(unit_id, "no response within timeout") from err
    except mc.ModbusError as err:
        raise NoResponse(unit_id, str(err)) from err
    except UndecodableWords as err:
        raise DecodeError(f"unit {unit_id}: {err}") from err


class MeterLink:
    """One meter (and its relay module, if any) on units of a shared connection."""

    def __init__(
        self,
        unit: mc.ModbusUnit,
        profile: MeterProfile,
        *,
        unit_id: int,
        endpoint: str,
        relay_unit: mc.ModbusUnit | None = None,
        max_gap: int | None = None,
    ) -> None:
        """Bind the profile's components to the meter's unit (and the relay's).

        ``max_gap``: unused registers one read may bridge (``RTU_MAX_GAP`` on a serial bus);
        None keeps each component's own (fewest requests).
        """
        self.unit_id = unit_id
        self.endpoint = endpoint
        self.profile = profile
        self._unit, self._relay_unit = unit, relay_unit
        self.stats = LinkStats()
        self._answering = False
        self._max_gap = max_gap
        self._components: list[MeterComponent | ManualComponent] = [
            component(unit) for component in profile.components
        ]
        if max_gap is not None:
            for component in self._components:
                component.max_gap = max_gap  # before the group plans its reads
        self._reading = ComponentGroup(unit, self._components)
        relay = profile.relay
        #: The relay's component and the unit it is on (the meter's, or the relay module's).
        self._relay: tuple[ManualComponent, mc.ModbusUnit] | None = None
        self._relay_unit_id = unit_id
        if isinstance(relay, RegisterRelay):
            self._relay = relay.component(unit, fc16_only=profile.relay_fc16_only), unit
        elif isinstance(relay, CoilRelay) and relay.unit_id is not None and relay_unit:
            self._relay = relay.component(relay_unit), relay_unit
            self._relay_unit_id = relay.unit_id

    def with_profile(self, profile: MeterProfile) -> MeterLink:
        """Read the same units with another profile (the firmware variant a test read found)."""
        return MeterLink(
            self._unit,
            profile,
            unit_id=self.unit_id,
            endpoint=self.endpoint,
            relay_unit=self._relay_unit,
            max_gap=self._max_gap,
        )

    def __str__(self) -> str:
        return f"{self.endpoint}, unit {self.unit_id}"

    async def read_values(self) -> dict[str, Decimal]:
        """Read every value of the profile in the fewest requests the device allows."""
        self.stats.reads += 1
        try:
            with _translated(self.unit_id, self._unit):
                await self._reading.async_update()
        except Exception as err:
            self.stats.failed_reads += 1
            self.stats.last_error = str(err)
            if self._answering and isinstance(err.__cause__, mc.ModbusTimeoutError):
                # A meter that answered until now went silent: the shared link may have lost
                # frame sync (a garbled answer on Modbus TCP leaves stray bytes that swallow
                # every later answer). Open it afresh once; a meter that stays dead does not
                # recycle the link again.
                with contextlib.suppress(mc.ModbusError):
                    await self._unit.disconnect()
            self._answering = False
            raise
        self._answering = True
        values: dict[str, Decimal] = {}
        for component in self._components:
            values |= decoded_values(component)
        return values

    async def probe(self) -> dict[str, Decimal]:
        """Read the meter and prove it is the model the profile describes.

        Raises ``WrongProfile`` when the unit refuses the profile's functions or addresses,
        or answers with values no such meter could show. Connection problems and silence
        keep their own exception types, so the caller can tell them apart.
        """
        name = self.profile.name
        try:
            values = await self.read_values()
        except ExceptionResponse as err:
            if isinstance(err.error, _PROFILE_MISMATCH):
                raise WrongProfile(f"{name}: {err}") from err
            raise
        except DecodeError as err:
            raise WrongProfile(f"{name}: {err}") from err
        if implausible := self.profile.implausible(values):
            raise WrongProfile(
                f"unit {self.unit_id} does not look like a {name}: "
                f"implausible {', '.join(implausible)}"
            )
        return values

    async def read_relay(self) -> bool | None:
        """Return True when the relay is closed (supply on), None when the meter does not say."""
        component, unit, relay = self._relay_component()
        with _translated(self._relay_unit_id, unit):
            await component.async_update()
        if isinstance(relay, RegisterRelay):
            words = words_of(int(component.get("words")), relay.count)
            try:
                return relay.state(words)
            except ValueError as err:
                raise DecodeError(f"unit {self.unit_id}: {err}") from err
        return bool(component.get("state")) == relay.closed_when

    async def set_relay(self, closed: bool) -> bool:
        """Switch the relay, read it back and return the confirmed state.

        ``closed=True`` restores supply, ``False`` cuts it. Raises ``RelayMismatch`` when the
        device accepted the write but reads back something else: the caller must show that
        as an error, never as the state it asked for.
        """
        component, unit, relay = self._relay_component()
        self.stats.relay_commands += 1
        not_echoed: NoResponse | None = None
        try:
            with _translated(self._relay_unit_id, unit):
                if isinstance(relay, RegisterRelay):
                    words = relay.restore_words if closed else relay.cut_words
                    await component.write("words", value_of(words))
                else:
                    await component.write("state", closed if relay.closed_when else not closed)
        except NoResponse as err:
            if not isinstance(err.__cause__, mc.ModbusProtocolError):
                raise
            # The device answered, but not with the echo of the command (a stuck coil echoes
            # the value it kept): what the relay reads back says what happened.
            not_echoed = err
        confirmed = await self.read_relay()
        if confirmed != closed:
            raise RelayMismatch(self._relay_unit_id, closed, confirmed) from not_echoed
        if not_echoed is not None:
            raise not_echoed
        return closed

    def _relay_component(
        self,
    ) -> tuple[ManualComponent, mc.ModbusUnit, RegisterRelay | CoilRelay]:
        relay = self.profile.relay
        if relay is None:
            raise RelayNotConfigured(f"profile {self.profile.id!r} has no relay")
        if self._relay is None:
            raise RelayNotConfigured(
                f"profile {self.profile.id!r}: the relay module's unit id is not configured"
            )
        return *self._relay, relay


def gap_for(params: ModbusParams) -> int | None:
    """Bridge at most ``RTU_MAX_GAP`` registers on RTU framing; any gap on Modbus TCP."""
    return RTU_MAX_GAP if isinstance(params, mc.ModbusSerialParams) else None


def _relay_module_id(profile: MeterProfile) -> int | None:
    relay = profile.relay
    return relay.unit_id if isinstance(relay, CoilRelay) else None


def _tune(unit: mc.ModbusUnit, data: Mapping[str, Any]) -> None:
    """Ask the shared link for our answer timeout and the pause between frames, if set."""
    unit.require_timeout(ANSWER_TIMEOUT)
    if (gap_ms := data.get(CONF_FRAME_GAP_MS)) is not None:
        unit.set_message_spacing(float(gap_ms) / 1000)


def _conflict(params: ModbusParams, err: HomeAssistantError) -> EndpointConflict:
    if isinstance(params, mc.ModbusSerialParams) and not params.device.startswith("socket://"):
        return SerialSettingsConflict(str(err))
    return EndpointConflict(str(err))


def _link_on(
    data: Mapping[str, Any],
    params: ModbusParams,
    profile: MeterProfile,
    units: tuple[mc.ModbusUnit, mc.ModbusUnit | None],
    on_release: Callable[[Callable[[], None]], object],
) -> MeterLink:
    """Tune the held units (withdrawn by ``on_release``) and bind the meter's link to them."""
    unit, relay_unit = units
    for held in units:
        if held is not None:
            _tune(held, data)
            on_release(functools.partial(held.require_timeout, None))
    return MeterLink(
        unit,
        profile,
        unit_id=int(data[CONF_UNIT_ID]),
        endpoint=describe(params),
        relay_unit=relay_unit,
        max_gap=gap_for(params),
    )


def async_attach_meter(
    hass: HomeAssistant, entry: PrepaidConfigEntry, data: Mapping[str, Any], profile: MeterProfile
) -> MeterLink:
    """Hold the meter's unit (and relay module's) for as long as ``entry`` is loaded.

    Raises ``EndpointConflict`` (``SerialSettingsConflict`` for a serial port) when the line
    is already in use, by anyone, with other settings. Nothing is sent yet.
    """
    params = modbus_params(data)
    module_id = _relay_module_id(profile)
    try:
        unit = async_get_unit(hass, entry, params, int(data[CONF_UNIT_ID]))
        relay_unit = None if module_id is None else async_get_unit(hass, entry, params, module_id)
    except HomeAssistantError as err:
        raise _conflict(params, err) from err
    return _link_on(data, params, profile, (unit, relay_unit), entry.async_on_unload)


@contextlib.asynccontextmanager
async def async_borrow_meter(
    hass: HomeAssistant, data: Mapping[str, Any], profile: MeterProfile
) -> AsyncIterator[MeterLink]:
    """Hold the meter's unit for a config flow's test read, sharing a running connection."""
    params = modbus_params(data)
    module_id = _relay_module_id(profile)
    async with contextlib.AsyncExitStack() as stack:
        try:
            unit = await stack.enter_async_context(
                async_get_temporary_unit(hass, params, int(data[CONF_UNIT_ID]))
            )
            relay_unit = (
                None
                if module_id is None
                else await stack.enter_async_context(
                    async_get_temporary_unit(hass, params, module_id)
                )
            )
        except HomeAssistantError as err:
            raise _conflict(params, err) from err
        yield _link_on(data, params, profile, (unit, relay_unit), stack.callback)
