"""Simulated Modbus devices: a meter that answers like its manual, and a relay module.

The meter's registers come from the simulator's own maps (``maps.py``, written from each
manual), never from the integration's profiles, so a profile mistake fails a test. Its total
integrates the load over time and stops when the relay opens.
"""

from __future__ import annotations

import math
import struct
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Final, Literal, Protocol, get_args

from .load import ConstantLoad, Load
from .maps import MeterMap, Value, get_map

ILLEGAL_FUNCTION = 1
ILLEGAL_ADDRESS = 2
ILLEGAL_VALUE = 3

#: A rate in W (or l/h) times seconds, divided by this, is kWh (or m3).
_RATE_SECONDS_PER_TOTAL = 3_600_000.0

type Glitch = Literal["zero", "jump", "swap_words", "nan", "garbage", "step_back"]
GLITCHES: Final = get_args(Glitch.__value__)
#: The cumulative registers a glitch hits (the ones a prepaid meter is charged on).
TOTAL_KEYS: Final = frozenset({"energy_total", "water_total"})
_NAN_F32: Final = struct.pack(">f", math.nan)

type ReadResult = list[int] | list[bool] | int
type Clock = Callable[[], float]


class Device(Protocol):
    """What the server needs from anything that answers on a unit id."""

    def read(self, function: int, address: int, count: int) -> ReadResult:
        """Return register words / coil bits, or a Modbus exception code."""
        ...

    def write(self, function: int, address: int, values: list[int] | list[bool]) -> int | None:
        """Apply a write; return a Modbus exception code or None."""
        ...


class SimulatedMeter:
    """A meter on the bus: registers from its map, a load, a relay that cuts the load."""

    def __init__(
        self,
        model: str | MeterMap,
        *,
        load: Load | None = None,
        total: float = 0.0,
        voltage: float = 230.0,
        frequency: float = 50.0,
        power_factor: float = 0.95,
        relay_closed: bool = True,
        relay_commanded: bool = True,
        clock: Clock = time.monotonic,
        speed: float = 1.0,
    ) -> None:
        self.map = get_map(model) if isinstance(model, str) else model
        self.load: Load = load or ConstantLoad(1000.0)
        self.voltage = voltage
        self.frequency = frequency
        self.power_factor = power_factor
        self.relay_closed = relay_closed
        #: False: no remote relay command yet (some meters then read their relay as zeros).
        self.relay_commanded = relay_commanded
        #: Set by the server's fault injection: relay writes are acknowledged but ignored.
        self.relay_stuck = False
        #: A value glitch on the total register for the next ``glitch_reads`` reads of it.
        self.glitch: Glitch | None = None
        self.glitch_reads = 0
        self.glitch_amount = Decimal(0)
        self._clock = clock
        self._speed = speed
        self._started = clock()
        self._last = self._started
        self._total = total
        self._read_functions = set(self.map.read_functions)
        if self.map.relay is not None:
            self._read_functions.add(self.map.relay_read_function)

    # ------------------------------------------------------------------ physics

    def _elapsed(self, at: float) -> float:
        return (at - self._started) * self._speed

    @property
    def rate(self) -> float:
        """What flows right now: the load while the relay is closed, nothing while open."""
        return self.load(self._elapsed(self._clock())) if self.relay_closed else 0.0

    def advance(self) -> float:
        """Integrate the load up to now (trapezoid per read) and return the total."""
        now = self._clock()
        if self.relay_closed and now > self._last:
            start, end = self._elapsed(self._last), self._elapsed(now)
            mean_rate = (self.load(start) + self.load(end)) / 2
            self._total += mean_rate * (end - start) / _RATE_SECONDS_PER_TOTAL
        self._last = now
        return self._total

    def set_relay(self, closed: bool) -> None:
        """Switch the supply, integrating what was used up to this moment first."""
        self.advance()
        self.relay_closed = closed

    @property
    def total(self) -> float:
        """The cumulative total (kWh or m3) as of the last read."""
        return self._total

    def values(self) -> dict[str, Decimal]:
        """Physical values by register key, consistent with each other."""
        total = self.advance()
        power = self.rate
        voltage = self.voltage if self.voltage > 0 else 0.0
        current = power / (voltage * self.power_factor) if voltage and self.power_factor else 0.0
        numbers: dict[str, float] = {
            "energy_total": total,
            "energy_import_export": total,
            "water_total": total,
            "energy_flat": total,
            "power": power,
            "voltage": voltage,
            "current": current,
            "frequency": self.frequency,
            "power_factor": self.power_factor,
        }
        for phase in ("l1", "l2", "l3"):
            numbers[f"voltage_{phase}"] = voltage
            numbers[f"current_{phase}"] = current / 3
            numbers[f"power_{phase}"] = power / 3
        return {value.key: _to_decimal(numbers.get(value.key, 0.0)) for value in self.map.values}

    def inject_glitch(self, kind: Glitch, reads: int = 1, amount: float | None = None) -> None:
        """Serve a glitched total register for the next ``reads`` reads of it.

        The kinds are what real meters send on a bad read: ``zero``; ``jump`` (the true total
        plus ``amount``, default 1,000,000); ``swap_words`` (the 32-bit value's two words in
        the wrong order, a torn read); ``nan`` (float32 registers only: an integer register
        cannot hold one); ``garbage`` (0xDEAD 0xBEEF); ``step_back`` (the true total minus
        ``amount``, default 0.01). The true total keeps counting underneath.
        """
        if kind not in GLITCHES:
            raise ValueError(f"glitch must be one of {', '.join(GLITCHES)}; got {kind!r}")
        total = self._total_value()
        if kind == "nan" and total.kind != "f32":
            raise ValueError(f"{self.map.model}: its total is {total.kind}, which has no NaN")
        if reads < 1:
            raise ValueError("reads must be at least 1")
        default = {"jump": 1_000_000.0, "step_back": 0.01}.get(kind, 0.0)
        self.glitch, self.glitch_reads = kind, reads
        self.glitch_amount = _to_decimal(default if amount is None else amount)

    def _total_value(self) -> Value:
        return next(v for v in self.map.values if v.key in TOTAL_KEYS)

    def _glitched(self, value: Value, true: Decimal) -> list[int]:
        kind = self.glitch
        if kind == "zero":
            return value.encode(Decimal(0))
        if kind == "jump":
            return value.encode(true + self.glitch_amount)
        if kind == "step_back":
            return value.encode(max(true - self.glitch_amount, Decimal(0)))
        if kind == "swap_words":
            return value.encode(true)[::-1]
        if kind == "nan":
            return [int.from_bytes(b, "big") for b in (_NAN_F32[:2], _NAN_F32[2:])]
        return [0xDEAD, 0xBEEF]

    # ------------------------------------------------------------------ Modbus

    def _image(self, function: int, *, glitch: bool = False) -> dict[int, int]:
        """Encode the current register words, by address, for one function code."""
        words: dict[int, int] = {}
        if function in self.map.read_functions:
            values = self.values()
            for value in self.map.values:
                raw = value.encode(values[value.key])
                if glitch and self.glitch is not None and value.key in TOTAL_KEYS:
                    raw = self._glitched(value, values[value.key])
                for offset, word in enumerate(raw):
                    words[value.address + offset] = word
        relay = self.map.relay
        if relay is not None and self.map.relay_read_function == function:
            state = relay.restore if self.relay_closed else relay.cut
            if not self.relay_commanded and relay.before_first_command is not None:
                state = relay.before_first_command
            for offset, word in enumerate(state):
                words[relay.address + offset] = word
        return words

    def read(self, function: int, address: int, count: int) -> ReadResult:
        """Answer FC03/FC04 like the model: refuse other functions, spans and gaps."""
        if function in {6, 16}:  # pymodbus reads back after a write to build the echo
            return [self._image(3).get(address + i, 0) for i in range(count)]
        if function not in self._read_functions:
            return ILLEGAL_FUNCTION
        if count > self.map.max_span or address + count > 0x10000:
            return ILLEGAL_VALUE if count > self.map.max_span else ILLEGAL_ADDRESS
        end = address + count - 1
        if any(
            (only is None or only == function) and address <= last and start <= end
            for start, last, only in self.map.forbidden
        ):
            return ILLEGAL_ADDRESS
        total = self._total_value()
        covers_total = (
            self.glitch is not None
            and function in self.map.read_functions
            and address <= total.address + total.words - 1
            and total.address <= end
        )
        image = self._image(function, glitch=covers_total)
        if covers_total:
            self.glitch_reads -= 1
            if self.glitch_reads <= 0:
                self.glitch = None
        return [image.get(address + i, 0) for i in range(count)]

    def write(self, function: int, address: int, values: list[int] | list[bool]) -> int | None:
        """Accept relay writes only, with the function codes the model accepts."""
        if function not in self.map.write_functions:
            return ILLEGAL_FUNCTION
        relay = self.map.relay
        if relay is None or address != relay.address:
            return ILLEGAL_ADDRESS
        words = tuple(int(v) for v in values)
        if words not in {relay.cut, relay.restore}:
            return ILLEGAL_VALUE
        if not self.relay_stuck:
            self.relay_commanded = True
            self.set_relay(words == relay.restore)
        return None


def _to_decimal(number: float) -> Decimal:
    if not math.isfinite(number):
        return Decimal(0)
    return Decimal(repr(round(number, 6)))


class RelayModule:
    """A Modbus relay module (coils, FC01/FC05/FC15) whose coils switch linked meters."""

    def __init__(self, coils: int = 8) -> None:
        self.coils = [False] * coils
        self.links: dict[int, tuple[SimulatedMeter, bool]] = {}
        self.stuck = False

    def link(self, coil: int, meter: SimulatedMeter, *, closed_when: bool = True) -> None:
        """Let ``coil`` switch ``meter``'s supply; ``closed_when``: the coil value for supply on."""
        self.links[coil] = (meter, closed_when)
        self.coils[coil] = meter.relay_closed == closed_when

    def read(self, function: int, address: int, count: int) -> ReadResult:
        """Read coils; registers are not implemented on this module."""
        if function not in {1, 5, 15}:
            return ILLEGAL_FUNCTION
        if address + count > len(self.coils):
            return ILLEGAL_ADDRESS
        return self.coils[address : address + count]

    def write(self, function: int, address: int, values: list[int] | list[bool]) -> int | None:
        """Write coils and switch the linked meters."""
        if function not in {5, 15}:
            return ILLEGAL_FUNCTION
        if address + len(values) > len(self.coils):
            return ILLEGAL_ADDRESS
        if self.stuck:
            return None
        for offset, value in enumerate(values):
            coil = address + offset
            self.coils[coil] = bool(value)
            if coil in self.links:
                meter, closed_when = self.links[coil]
                meter.set_relay(bool(value) == closed_when)
        return None
