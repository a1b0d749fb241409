"""Meter profiles as ``modbus_connection.model`` components, plus what a component cannot say.

A model's registers are a ``MeterComponent`` subclass: typed fields at their addresses, the
register space (FC03 holding / FC04 input), the widest read the device takes (``max_span``)
and, where a device refuses some addresses, its readable ranges. A map known only at run time
(a custom YAML map, a built-in map read from the other register space) is a ``ManualMap``,
read as the library's ``ManualComponent``; relays are ``ManualComponent``s too. Home
Assistant's shared Modbus stack plans and runs the reads from those declarations.
``MeterProfile`` adds what a prepaid meter needs on top: the model's name, which total it
bills on, the plausible range of every value, the relay, factory line settings and the
FC03/FC04 firmware variants.

Values decode to exact ``Decimal`` (``Register``): energy totals become money, so a binary
float never stands between the meter and the ledger. Every profile validates itself on
construction, so a broken map fails at import (built-ins) or with a clear message (custom
YAML), never in the middle of a poll.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Literal

from modbus_connection.model import Component, ManualComponent, RawField, coil
from modbus_connection.model.fields import RegisterField

if TYPE_CHECKING:
    from modbus_connection import ModbusUnit

type DataType = Literal["uint16", "int16", "uint32", "int32", "float32"]
type Order = Literal["big", "little"]
type ReadFunction = Literal[3, 4]
type WriteFunction = Literal[6, 16]
type Quantity = Literal["energy", "water"]
type RegisterSpace = Literal["holding", "input"]

DATA_TYPES: tuple[DataType, ...] = ("uint16", "int16", "uint32", "int32", "float32")
MAX_ADDRESS = 0xFFFF
#: The protocol limit for one FC03/FC04 read (Modbus application protocol, 6.3/6.4).
PROTOCOL_MAX_READ = 125
#: Largest and smallest scale magnitude: 1e-9 .. 1e9 covers every unit conversion a meter
#: needs (Wh->MWh, mV->kV) and keeps decoding far from Decimal's overflow limits.
MAX_SCALE = Decimal("1e9")
MIN_SCALE = Decimal("1e-9")
#: float32 carries about 7.2 significant decimal digits; more would only be binary noise.
FLOAT32_DIGITS = 7

SPACE_OF_FUNCTION: dict[int, RegisterSpace] = {3: "holding", 4: "input"}
FUNCTION_OF_SPACE: dict[RegisterSpace, ReadFunction] = {"holding": 3, "input": 4}

# Standard measurement keys the integration maps to entities.
ENERGY_TOTAL = "energy_total"
WATER_TOTAL = "water_total"
POWER = "power"
VOLTAGE = "voltage"
CURRENT = "current"
FREQUENCY = "frequency"
POWER_FACTOR = "power_factor"
ENERGY_EXPORT = "energy_export"
TOTAL_KEY: dict[Quantity, str] = {"energy": ENERGY_TOTAL, "water": WATER_TOTAL}


class ProfileError(ValueError):
    """A profile definition is inconsistent; the message says what and where."""


class UndecodableWords(ValueError):  # noqa: N818
    """Register words do not hold a valid value of the declared type (NaN, infinity)."""


def _word_count(data_type: str) -> int:
    return 1 if data_type in {"uint16", "int16"} else 2


def _check_key(key: str) -> None:
    if not key or not key.replace("_", "").isalnum() or not key.islower():
        raise ProfileError(f"register {key!r}: key must be lower_snake_case")


class Register(RegisterField[Decimal]):
    """One meter value as a component field, decoded to an exact, scaled ``Decimal``.

    ``modbus_connection``'s own numeric fields scale in binary floating point; this field
    keeps the decimal the manual states (0.01 kWh per count is exactly 0.01), and rounds a
    float32 to the digits it really carries. ``key`` is the attribute name in a component.
    """

    def __init__(
        self,
        address: int,
        *,
        key: str = "",
        function: ReadFunction | None = None,
        data_type: DataType = "uint16",
        word_order: Order = "big",
        byte_order: Order = "big",
        scale: Decimal = Decimal(1),
        unit: str | None = None,
        plausible: tuple[Decimal, Decimal] | None = None,
    ) -> None:
        """Reject impossible definitions early with the register's key in the message."""
        where = f"register {key or address!r}"
        if data_type not in DATA_TYPES:
            raise ProfileError(f"{where}: unknown data type {data_type!r}")
        super().__init__(address, count=_word_count(data_type), unit=unit)
        if key:
            _check_key(key)
            self.name = key
        #: The read function a custom map states; None: the component's register space.
        self.function = function
        self.data_type = data_type
        self.word_order = word_order
        self.byte_order = byte_order
        self.scale = scale
        #: Values outside this closed range mean "this is not the meter the profile describes".
        self.plausible = plausible
        if function not in {None, 3, 4}:
            raise ProfileError(f"{where}: function must be 3 or 4, not {function}")
        if word_order not in {"big", "little"} or byte_order not in {"big", "little"}:
            raise ProfileError(f"{where}: word/byte order must be 'big' or 'little'")
        if not address >= 0 or self.end > MAX_ADDRESS:
            raise ProfileError(f"{where}: address {address} outside 0..{MAX_ADDRESS}")
        if not isinstance(scale, Decimal) or not scale.is_finite() or scale == 0:
            raise ProfileError(f"{where}: scale must be a finite, non-zero Decimal")
        if not MIN_SCALE <= abs(scale) <= MAX_SCALE:
            raise ProfileError(f"{where}: scale {scale} outside ±{MIN_SCALE}..{MAX_SCALE}")
        if plausible is not None and plausible[0] > plausible[1]:
            raise ProfileError(f"{where}: plausible range is reversed")

    def __set_name__(self, owner: type, name: str) -> None:
        """Take the attribute's name as the key (a key given as well must agree)."""
        if self.name and self.name != name:
            raise ProfileError(f"register {self.name!r} declared as attribute {name!r}")
        _check_key(name)
        self.name = name

    @property
    def key(self) -> str:
        """The measurement key (``energy_total``, ``voltage``, ...)."""
        return self.name

    @property
    def end(self) -> int:
        """Last register address (inclusive) the value occupies."""
        return self.address + self.count - 1

    def decode(self, words: list[int], scale_exponent: int | None = None) -> Decimal:
        """Decode exactly ``count`` 16-bit words; ``UndecodableWords`` for NaN or infinity."""
        if len(words) != self.count or not all(0 <= word <= 0xFFFF for word in words):
            raise UndecodableWords(f"{self.key}: expected {self.count} 16-bit words, got {words}")
        ordered = list(words) if self.word_order == "big" else list(reversed(words))
        raw = b"".join(word.to_bytes(2, "big") for word in ordered)
        if self.byte_order == "little":
            raw = b"".join(raw[i : i + 2][::-1] for i in range(0, len(raw), 2))
        if self.data_type == "float32":
            number = struct.unpack(">f", raw)[0]
            if not math.isfinite(number):
                raise UndecodableWords(f"{self.key}: not a finite number ({number})")
            value = Decimal(f"{number:.{FLOAT32_DIGITS}g}")
        else:
            value = Decimal(int.from_bytes(raw, "big", signed=self.data_type.startswith("int")))
        # Scales are bounded (MAX_SCALE), so this product cannot overflow Decimal.
        return value * self.scale


class MeterComponent(Component):
    """Base of every meter model's register map.

    Reads bridge unused addresses up to ``max_span``: one request answered in full costs a
    meter less than two, and none of the built-in meters refuses an address between its
    values. A device that does declares ``register_ranges`` (the addresses it answers).
    """

    max_gap = PROTOCOL_MAX_READ

    @classmethod
    def readings(cls) -> tuple[Register, ...]:
        """Return the meter values this component declares, in declaration order."""
        return tuple(f for f in cls.declared_fields.values() if isinstance(f, Register))

    def values(self) -> dict[str, Decimal]:
        """Return the values of the last update, by key (absent keys were not read)."""
        found = {r.key: getattr(self, r.key) for r in self.readings()}
        return {key: value for key, value in found.items() if value is not None}


def _duplicate_keys(registers: Sequence[Register]) -> list[str]:
    keys = [r.key for r in registers]
    return sorted({k for k in keys if keys.count(k) > 1})


@dataclass(frozen=True, slots=True, kw_only=True)
class ManualMap:
    """Registers known only at run time, read as a ``modbus_connection`` ``ManualComponent``.

    The run-time counterpart of a ``MeterComponent`` subclass (a custom YAML map, or a
    built-in map read from the other register space): it answers the same questions
    (``register_space``, ``max_span``, ``register_ranges``, ``readings()``) and, called with
    a unit, builds the component that reads it.
    """

    name: str
    registers: tuple[Register, ...]
    register_space: RegisterSpace
    max_span: int = PROTOCOL_MAX_READ
    register_ranges: tuple[tuple[int, int], ...] | None = None
    max_gap: int = MeterComponent.max_gap

    def readings(self) -> tuple[Register, ...]:
        """Return the meter values this map declares, in declaration order."""
        return self.registers

    def __call__(self, unit: ModbusUnit) -> ManualComponent:
        """Build the component that reads these registers from ``unit``."""
        holding = self.register_space == "holding"
        component = ManualComponent(
            unit,
            max_gap=self.max_gap,
            max_span=self.max_span,
            holding_ranges=self.register_ranges if holding else None,
            input_ranges=None if holding else self.register_ranges,
        )
        for register in self.registers:
            component.add(register.key, register, space=self.register_space)
        return component


#: A model's register map: declared as a class, or built at run time.
type ComponentSpec = type[MeterComponent] | ManualMap


def decoded_values(component: MeterComponent | ManualComponent) -> dict[str, Decimal]:
    """Return the values a component's last update read, by key (absent keys were not read)."""
    if isinstance(component, MeterComponent):
        return component.values()
    return {key: value for key, value in component.values.items() if value is not None}


def meter_component(
    name: str,
    registers: Sequence[Register],
    *,
    space: RegisterSpace,
    max_span: int = PROTOCOL_MAX_READ,
    register_ranges: tuple[tuple[int, int], ...] | None = None,
) -> ManualMap:
    """Declare a component from registers known only at run time (a custom YAML map)."""
    if duplicates := _duplicate_keys(registers):
        raise ProfileError(f"duplicate register keys {duplicates}")
    # A ManualComponent keeps values by key, so no key can shadow a component attribute any
    # more; the rule stays so the set of accepted custom maps does not change.
    if reserved := sorted(r.key for r in registers if hasattr(MeterComponent, r.key)):
        raise ProfileError(f"register keys {reserved} are reserved names; choose others")
    return ManualMap(
        name=name,
        registers=tuple(registers),
        register_space=space,
        max_span=max_span,
        register_ranges=register_ranges,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class AddressRange:
    """Addresses a request must never touch (the device answers with an exception)."""

    start: int
    end: int
    #: None: applies to every read function.
    function: ReadFunction | None = None

    def __post_init__(self) -> None:
        """Keep ranges ordered and within the address space."""
        if not 0 <= self.start <= self.end <= MAX_ADDRESS:
            raise ProfileError(f"forbidden range {self.start}..{self.end} is not valid")

    def applies_to(self, function: int) -> bool:
        """Whether the range restricts reads with this function code."""
        return self.function is None or self.function == function


def readable_ranges(
    forbidden: Sequence[AddressRange], function: int
) -> tuple[tuple[int, int], ...] | None:
    """Return what a component's ``register_ranges`` says: the complement of ``forbidden``."""
    gaps = sorted((g.start, g.end) for g in forbidden if g.applies_to(function))
    if not gaps:
        return None
    ranges: list[tuple[int, int]] = []
    start = 0
    for gap_start, gap_end in gaps:
        if gap_start > start:
            ranges.append((start, gap_start - 1))
        start = max(start, gap_end + 1)
    if start <= MAX_ADDRESS:
        ranges.append((start, MAX_ADDRESS))
    return tuple(ranges)


@dataclass(frozen=True, slots=True, kw_only=True)
class RegisterRelay:
    """A relay switched by writing holding registers on the meter itself (Acrel, Hiking).

    The same registers are read back (FC03) to confirm the state: ``restore_words`` means
    closed (supply on), ``cut_words`` means open (supply cut), ``unknown_words`` mean the
    meter does not say (e.g. an Acrel that has never had a remote command reads ``0000 0000``).
    """

    address: int
    cut_words: tuple[int, ...]
    restore_words: tuple[int, ...]
    unknown_words: tuple[tuple[int, ...], ...] = ()

    def __post_init__(self) -> None:
        """Both commands must have the same, non-zero length and be 16-bit words."""
        if not self.cut_words or len(self.cut_words) != len(self.restore_words):
            raise ProfileError("relay: cut and restore words must have the same length")
        if self.cut_words == self.restore_words:
            raise ProfileError("relay: cut and restore words must differ")
        if not all(0 <= w <= 0xFFFF for w in (*self.cut_words, *self.restore_words)):
            raise ProfileError("relay: words must be 0..65535")
        if not 0 <= self.address <= MAX_ADDRESS - len(self.cut_words) + 1:
            raise ProfileError(f"relay: address {self.address} outside the address space")
        if any(
            len(words) != self.count or words in {self.cut_words, self.restore_words}
            for words in self.unknown_words
        ):
            raise ProfileError(
                "relay: unknown-state words must differ from cut/restore, same length"
            )

    def state(self, words: Sequence[int]) -> bool | None:
        """Return closed (True), open (False) or unknown (None); ValueError for other words."""
        read = tuple(words)
        if read == self.restore_words:
            return True
        if read == self.cut_words:
            return False
        if read in self.unknown_words:
            return None
        raise ValueError(f"relay registers read {list(read)}, neither cut nor restore")

    @property
    def count(self) -> int:
        """Registers written and read back."""
        return len(self.cut_words)

    def component(self, unit: ModbusUnit, *, fc16_only: bool) -> ManualComponent:
        """Return the relay registers on ``unit`` as a component with one field, ``words``."""
        component = ManualComponent(unit)
        words = RawField(self.address, count=self.count, writable=True, force_fc16=fc16_only)
        component.add("words", words, space="holding")
        return component


def words_of(value: int, count: int) -> tuple[int, ...]:
    """Split a ``RawField`` value (high word first) back into its ``count`` words."""
    return tuple((value >> (16 * (count - 1 - i))) & 0xFFFF for i in range(count))


def value_of(words: Sequence[int]) -> int:
    """Join words (high word first) into the value a ``RawField`` writes."""
    return functools.reduce(lambda acc, word: (acc << 16) | word, words, 0)


@dataclass(frozen=True, slots=True, kw_only=True)
class CoilRelay:
    """A relay on a separate Modbus relay module (e.g. next to an Eastron meter).

    The module has its own unit id on the same bus; ``unit_id`` None means "not configured
    yet" and switching is refused until the user has said where the module is.
    """

    coil: int = 0
    unit_id: int | None = None
    #: Coil value that means the supply is on; most installations wire the load through NO.
    closed_when: bool = True

    def __post_init__(self) -> None:
        """Coil and unit id must be addressable."""
        if not 0 <= self.coil <= MAX_ADDRESS:
            raise ProfileError(f"relay: coil {self.coil} outside 0..{MAX_ADDRESS}")
        if self.unit_id is not None and not 1 <= self.unit_id <= 247:
            raise ProfileError(f"relay: module unit id {self.unit_id} outside 1..247")

    def component(self, unit: ModbusUnit) -> ManualComponent:
        """Return the module's coil on ``unit`` as a component with one bit, ``state``."""
        component = ManualComponent(unit)
        component.add("state", coil(self.coil, writable=True))
        return component


type RelaySpec = RegisterRelay | CoilRelay


@dataclass(frozen=True, slots=True, kw_only=True)
class SerialDefaults:
    """Factory line settings, offered as defaults when a user adds the meter."""

    baudrate: int = 9600
    parity: Literal["N", "E", "O"] = "N"
    stopbits: int = 1
    bytesize: int = 8


@dataclass(frozen=True, slots=True, kw_only=True)
class MeterProfile:
    """Everything the integration and simulator need to know about one meter model."""

    id: str
    name: str
    #: Who makes it; ``name`` then starts with it ("Acrel DDSY1352"). Empty for custom maps.
    manufacturer: str = ""
    quantity: Quantity = "energy"
    #: The register map: one component per register space the model is read from.
    components: tuple[ComponentSpec, ...]
    #: Write functions the device accepts; {16} makes even one-register writes FC16.
    write_functions: frozenset[WriteFunction] = frozenset({6, 16})
    relay: RelaySpec | None = None
    serial_defaults: SerialDefaults = field(default_factory=SerialDefaults)
    #: Another read function the same registers may answer on instead (firmware variants);
    #: the meter flow's test read tries it when the meter refuses the profile's own.
    fallback_read_function: ReadFunction | None = None
    #: Addresses a custom map says the device refuses (already in the components' ranges).
    forbidden: tuple[AddressRange, ...] = ()

    def __post_init__(self) -> None:
        """Check the whole map: unique keys, no overlaps, every value readable in one request."""
        where = f"profile {self.id!r}"
        if not self.id or not self.name:
            raise ProfileError("profile: id and name are required")
        if self.quantity not in TOTAL_KEY:
            raise ProfileError(f"{where}: quantity must be 'energy' or 'water'")
        if not self.components or not all(
            isinstance(c, ManualMap) or (isinstance(c, type) and issubclass(c, MeterComponent))
            for c in self.components
        ):
            raise ProfileError(f"{where}: at least one MeterComponent (or ManualMap) is required")
        if not self.registers:
            raise ProfileError(f"{where}: at least one register is required")
        if duplicates := _duplicate_keys(self.registers):
            raise ProfileError(f"{where}: duplicate register keys {duplicates}")
        if TOTAL_KEY[self.quantity] not in {r.key for r in self.registers}:
            raise ProfileError(
                f"{where}: a {self.quantity} meter needs {TOTAL_KEY[self.quantity]!r}"
            )
        if self.fallback_read_function not in {None, 3, 4}:
            raise ProfileError(f"{where}: fallback read function must be 3 or 4")
        if not self.write_functions or not self.write_functions <= {6, 16}:
            raise ProfileError(f"{where}: write functions must be a non-empty subset of {{6, 16}}")
        for component in self.components:
            self._check_component(component)
        placed = sorted(
            ((self.function_of(r.key), r) for r in self.registers),
            key=lambda item: (item[0], item[1].address),
        )
        for (f_before, before), (f_after, after) in itertools.pairwise(placed):
            if f_before == f_after and after.address <= before.end:
                raise ProfileError(f"{where}: registers {before.key!r} and {after.key!r} overlap")
        if (
            isinstance(self.relay, RegisterRelay)
            and self.relay.count > 1
            and 16 not in self.write_functions
        ):
            raise ProfileError(f"{where}: a multi-register relay needs FC16 writes")

    def _check_component(self, component: ComponentSpec) -> None:
        where = f"profile {self.id!r}"
        space = component.register_space
        if space not in FUNCTION_OF_SPACE:
            raise ProfileError(f"{where}: register space must be 'holding' or 'input'")
        if not 1 <= component.max_span <= PROTOCOL_MAX_READ:
            raise ProfileError(f"{where}: max registers per request must be 1..{PROTOCOL_MAX_READ}")
        ranges = component.register_ranges
        for register in component.readings():
            if register.function not in {None, FUNCTION_OF_SPACE[space]}:
                raise ProfileError(f"{where}: {register.key!r} is not in the {space} space")
            if register.count > component.max_span:
                raise ProfileError(f"{where}: {register.key!r} is wider than one request")
            if ranges is not None and not any(
                low <= register.address and register.end <= high for low, high in ranges
            ):
                raise ProfileError(f"{where}: {register.key!r} lies in a forbidden range")

    @property
    def model(self) -> str:
        """The model without the manufacturer ("DDSY1352"), as a device shows it."""
        return self.name.removeprefix(self.manufacturer).strip() or self.name

    @property
    def registers(self) -> tuple[Register, ...]:
        """Every value of every component."""
        return tuple(r for c in self.components for r in c.readings())

    @property
    def max_registers_per_request(self) -> int:
        """The widest read the device takes."""
        return min(c.max_span for c in self.components)

    @property
    def total_key(self) -> str:
        """Key of the cumulative total this meter bills on (energy or water)."""
        return TOTAL_KEY[self.quantity]

    @property
    def relay_fc16_only(self) -> bool:
        """Whether even a one-register relay command must go out as FC16."""
        return 6 not in self.write_functions

    def function_of(self, key: str) -> ReadFunction:
        """Return the read function (3 or 4) the value ``key`` is read with."""
        for component in self.components:
            if any(r.key == key for r in component.readings()):
                return FUNCTION_OF_SPACE[component.register_space]
        raise KeyError(key)

    def implausible(self, values: Mapping[str, Decimal]) -> list[str]:
        """Return ``key=value`` for every value outside its register's plausible range.

        A meter of this model cannot show such a value: in a test read it means a wrong
        profile, in a poll a glitched read (which must never be charged).
        """
        return [
            f"{register.key}={values[register.key]}"
            for register in self.registers
            if register.plausible is not None
            and register.key in values
            and not register.plausible[0] <= values[register.key] <= register.plausible[1]
        ]

    def register(self, key: str) -> Register:
        """Look up a register by key."""
        for register in self.registers:
            if register.key == key:
                return register
        raise KeyError(key)

    def with_read_function(self, function: ReadFunction) -> MeterProfile:
        """Return this profile reading every register with ``function`` (a firmware variant)."""
        if function not in {3, 4}:
            raise ProfileError(f"profile {self.id!r}: read function must be 3 or 4")
        space = SPACE_OF_FUNCTION[function]
        components = tuple(
            c if c.register_space == space else in_space(c, space) for c in self.components
        )
        return dataclasses.replace(self, components=components, fallback_read_function=None)

    def with_relay_module(self, unit_id: int, coil: int = 0) -> MeterProfile:
        """Return this profile with its relay module located at ``unit_id``/``coil``.

        Only meaningful for profiles whose relay is a separate module (``CoilRelay``).
        """
        if not isinstance(self.relay, CoilRelay):
            raise ProfileError(f"profile {self.id!r} has no separate relay module")
        relay = dataclasses.replace(self.relay, unit_id=unit_id, coil=coil)
        return dataclasses.replace(self, relay=relay)


def in_space(component: ComponentSpec, space: RegisterSpace) -> ManualMap:
    """Read the same registers from the other register space (FC03 instead of FC04)."""
    if isinstance(component, ManualMap):
        return dataclasses.replace(component, register_space=space)
    return ManualMap(
        name=f"{component.__name__}_{space}",
        registers=component.readings(),
        register_space=space,
        max_span=component.max_span,
        register_ranges=component.register_ranges,
        max_gap=component.max_gap,
    )
