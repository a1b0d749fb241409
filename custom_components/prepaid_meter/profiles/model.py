"""Declarative meter profiles: which registers a meter model has and how its relay works.

Profiles are plain frozen data. The Modbus layer (planner, codec, hub) and the meter simulator
both read them, so a profile is the single description of a model's behaviour on the wire.
Every profile validates itself on construction, so a broken map fails at import (built-ins)
or with a clear message (custom YAML), never in the middle of a poll.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

type DataType = Literal["uint16", "int16", "uint32", "int32", "float32"]
type Order = Literal["big", "little"]
type ReadFunction = Literal[3, 4]
type WriteFunction = Literal[6, 16]
type Quantity = Literal["energy", "water"]

DATA_TYPES: tuple[DataType, ...] = ("uint16", "int16", "uint32", "int32", "float32")
MAX_ADDRESS = 0xFFFF
#: The protocol limit for one FC03/FC04 read (Modbus application protocol, 6.3/6.4).
PROTOCOL_MAX_READ = 125
#: Largest and smallest scale magnitude: 1e-9 .. 1e9 covers every unit conversion a meter
#: needs (Wh->MWh, mV->kV) and keeps decoding far from Decimal's overflow limits.
MAX_SCALE = Decimal("1e9")
MIN_SCALE = Decimal("1e-9")

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


def _word_count(data_type: DataType) -> int:
    return 1 if data_type in {"uint16", "int16"} else 2


@dataclass(frozen=True, slots=True, kw_only=True)
class Register:
    """One value on the meter: where it lives, how it is encoded and what it means."""

    key: str
    address: int
    function: ReadFunction = 3
    data_type: DataType = "uint16"
    word_order: Order = "big"
    byte_order: Order = "big"
    scale: Decimal = Decimal(1)
    unit: str | None = None
    #: Values outside this closed range mean "this is not the meter the profile describes".
    plausible: tuple[Decimal, Decimal] | None = None

    def __post_init__(self) -> None:
        """Reject impossible definitions early with the register's key in the message."""
        where = f"register {self.key!r}"
        if not self.key or not self.key.replace("_", "").isalnum() or not self.key.islower():
            raise ProfileError(f"{where}: key must be lower_snake_case")
        if self.function not in {3, 4}:
            raise ProfileError(f"{where}: function must be 3 or 4, not {self.function}")
        if self.data_type not in DATA_TYPES:
            raise ProfileError(f"{where}: unknown data type {self.data_type!r}")
        if self.word_order not in {"big", "little"} or self.byte_order not in {"big", "little"}:
            raise ProfileError(f"{where}: word/byte order must be 'big' or 'little'")
        if not self.address >= 0 or self.end > MAX_ADDRESS:
            raise ProfileError(f"{where}: address {self.address} outside 0..{MAX_ADDRESS}")
        if not isinstance(self.scale, Decimal) or not self.scale.is_finite() or self.scale == 0:
            raise ProfileError(f"{where}: scale must be a finite, non-zero Decimal")
        if not MIN_SCALE <= abs(self.scale) <= MAX_SCALE:
            raise ProfileError(f"{where}: scale {self.scale} outside ±{MIN_SCALE}..{MAX_SCALE}")
        if self.plausible is not None and self.plausible[0] > self.plausible[1]:
            raise ProfileError(f"{where}: plausible range is reversed")

    @property
    def count(self) -> int:
        """Number of 16-bit registers the value occupies."""
        return _word_count(self.data_type)

    @property
    def end(self) -> int:
        """Last register address (inclusive) the value occupies."""
        return self.address + self.count - 1


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

    def overlaps(self, start: int, end: int) -> bool:
        """Whether [start, end] (inclusive) touches this range."""
        return start <= self.end and self.start <= end


@dataclass(frozen=True, slots=True, kw_only=True)
class RegisterRelay:
    """A relay switched by writing holding registers on the meter itself (Acrel, Hiking).

    The same registers are read back to confirm the state: ``restore_words`` means closed
    (supply on), ``cut_words`` means open (supply cut), ``unknown_words`` mean the meter does
    not say (e.g. an Acrel that has never had a remote command reads ``0000 0000``).
    """

    address: int
    cut_words: tuple[int, ...]
    restore_words: tuple[int, ...]
    read_function: ReadFunction = 3
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
    registers: tuple[Register, ...]
    max_registers_per_request: int = PROTOCOL_MAX_READ
    forbidden: tuple[AddressRange, ...] = ()
    write_functions: frozenset[WriteFunction] = frozenset({6, 16})
    relay: RelaySpec | None = None
    serial_defaults: SerialDefaults = field(default_factory=SerialDefaults)
    #: Another read function the same registers may answer on instead (firmware variants);
    #: the meter flow's test read tries it when the meter refuses the profile's own.
    fallback_read_function: ReadFunction | None = None

    @property
    def model(self) -> str:
        """The model without the manufacturer ("DDSY1352"), as a device shows it."""
        return self.name.removeprefix(self.manufacturer).strip() or self.name

    def __post_init__(self) -> None:
        """Check the whole map: unique keys, no overlaps, nothing inside a forbidden range."""
        where = f"profile {self.id!r}"
        if not self.id or not self.name:
            raise ProfileError("profile: id and name are required")
        if self.quantity not in TOTAL_KEY:
            raise ProfileError(f"{where}: quantity must be 'energy' or 'water'")
        if not self.registers:
            raise ProfileError(f"{where}: at least one register is required")
        keys = [r.key for r in self.registers]
        if duplicates := sorted({k for k in keys if keys.count(k) > 1}):
            raise ProfileError(f"{where}: duplicate register keys {duplicates}")
        if TOTAL_KEY[self.quantity] not in keys:
            raise ProfileError(
                f"{where}: a {self.quantity} meter needs {TOTAL_KEY[self.quantity]!r}"
            )
        if not 1 <= self.max_registers_per_request <= PROTOCOL_MAX_READ:
            raise ProfileError(f"{where}: max registers per request must be 1..{PROTOCOL_MAX_READ}")
        if self.fallback_read_function not in {None, 3, 4}:
            raise ProfileError(f"{where}: fallback read function must be 3 or 4")
        if not self.write_functions or not self.write_functions <= {6, 16}:
            raise ProfileError(f"{where}: write functions must be a non-empty subset of {{6, 16}}")
        ordered = sorted(self.registers, key=lambda r: (r.function, r.address))
        for before, after in itertools.pairwise(ordered):
            if before.function == after.function and after.address <= before.end:
                raise ProfileError(f"{where}: registers {before.key!r} and {after.key!r} overlap")
        for register in self.registers:
            if register.count > self.max_registers_per_request:
                raise ProfileError(f"{where}: {register.key!r} is wider than one request")
            for gap in self.forbidden:
                if gap.applies_to(register.function) and gap.overlaps(
                    register.address, register.end
                ):
                    raise ProfileError(f"{where}: {register.key!r} lies in a forbidden range")
        if (
            isinstance(self.relay, RegisterRelay)
            and self.relay.count > 1
            and 16 not in self.write_functions
        ):
            raise ProfileError(f"{where}: a multi-register relay needs FC16 writes")

    @property
    def total_key(self) -> str:
        """Key of the cumulative total this meter bills on (energy or water)."""
        return TOTAL_KEY[self.quantity]

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
        registers = tuple(dataclasses.replace(r, function=function) for r in self.registers)
        return dataclasses.replace(self, registers=registers, fallback_read_function=None)

    def with_relay_module(self, unit_id: int, coil: int = 0) -> MeterProfile:
        """Return this profile with its relay module located at ``unit_id``/``coil``.

        Only meaningful for profiles whose relay is a separate module (``CoilRelay``).
        """
        if not isinstance(self.relay, CoilRelay):
            raise ProfileError(f"profile {self.id!r} has no separate relay module")
        relay = dataclasses.replace(self.relay, unit_id=unit_id, coil=coil)
        return dataclasses.replace(self, relay=relay)
