"""Register maps of the simulated meters, written from each manufacturer's manual.

This is the simulator's own data, deliberately not derived from the integration's profiles:
when a profile gets an address, a scale, a type or a word order wrong, the simulator still
answers like the real meter and the integration's tests fail. Each map says where its facts
come from. Custom YAML maps (a user's own meter) have no manual: ``custom_maps`` reads them
with the simulator's own reader, written from the format's documentation.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Literal

type Kind = Literal["u16", "s16", "u32", "s32", "f32"]
type Order = Literal["big", "little"]

_RANGES: dict[str, tuple[int, int]] = {
    "u16": (0, 0xFFFF),
    "s16": (-0x8000, 0x7FFF),
    "u32": (0, 0xFFFF_FFFF),
    "s32": (-0x8000_0000, 0x7FFF_FFFF),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Value:
    """One quantity the meter shows: where, in which raw type, how much one count is worth."""

    key: str
    address: int
    kind: Kind
    #: Physical units (W, V, A, kWh, ...) per raw count, as the manual gives the resolution.
    per_count: Decimal = Decimal(1)
    word_order: Order = "big"
    byte_order: Order = "big"

    @property
    def words(self) -> int:
        """16-bit registers the value occupies."""
        return 1 if self.kind in {"u16", "s16"} else 2

    def encode(self, physical: Decimal) -> list[int]:
        """Raw words as the meter sends them; integers saturate like a meter's display."""
        raw_value = physical / self.per_count
        if self.kind == "f32":
            raw = struct.pack(">f", float(raw_value))
        else:
            low, high = _RANGES[self.kind]
            count = int(raw_value.to_integral_value(rounding=ROUND_HALF_EVEN))
            count = min(max(count, low), high)
            raw = count.to_bytes(2 * self.words, "big", signed=self.kind.startswith("s"))
        if self.byte_order == "little":
            raw = b"".join(raw[i : i + 2][::-1] for i in range(0, len(raw), 2))
        words = [int.from_bytes(raw[i : i + 2], "big") for i in range(0, len(raw), 2)]
        return words if self.word_order == "big" else words[::-1]


@dataclass(frozen=True, slots=True, kw_only=True)
class RelayRegisters:
    """A relay inside the meter, switched and read back through holding registers."""

    address: int
    cut: tuple[int, ...]
    restore: tuple[int, ...]
    #: What the registers read before the meter has received any remote command (None: the
    #: meter always shows its state).
    before_first_command: tuple[int, ...] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class MeterMap:
    """How one meter model answers on the wire."""

    model: str
    quantity: Literal["energy", "water"] = "energy"
    #: The functions that read ``values``; any other read function is refused.
    read_functions: frozenset[int]
    values: tuple[Value, ...]
    #: Most registers one read may ask for; more is refused with "illegal data value".
    max_span: int = 125
    #: (start, end, function or None for all) ranges answered with "illegal data address".
    forbidden: tuple[tuple[int, int, int | None], ...] = ()
    write_functions: frozenset[int] = frozenset({6, 16})
    relay: RelayRegisters | None = None
    relay_read_function: int = 3


def _f32(key: str, address: int, per_count: Decimal = Decimal(1)) -> Value:
    return Value(key=key, address=address, kind="f32", per_count=per_count)


# Eastron SDM120/SDM230/SDM630 Modbus protocol, "Input Registers" table (FC04): every value
# an IEEE-754 float, two registers, high word first; at most 80 registers in one request.
_EASTRON_COMMON = (
    _f32("frequency", 0x0046),
    _f32("energy_total", 0x0048),  # "Import active energy", kWh
    _f32("energy_export", 0x004A),  # "Export active energy", kWh
    _f32("energy_import_export", 0x0156),  # "Total active energy", kWh
)
_EASTRON_SINGLE_PHASE = (
    _f32("voltage", 0x0000),
    _f32("current", 0x0006),
    _f32("power", 0x000C),
    _f32("power_factor", 0x001E),
    *_EASTRON_COMMON,
)


def _eastron(model: str, values: tuple[Value, ...]) -> MeterMap:
    return MeterMap(
        model=model,
        read_functions=frozenset({4}),
        values=values,
        max_span=80,
        write_functions=frozenset({16}),  # "Holding registers ... function code 16"
    )


EASTRON_SDM120 = _eastron("eastron_sdm120", _EASTRON_SINGLE_PHASE)
EASTRON_SDM230 = _eastron("eastron_sdm230", _EASTRON_SINGLE_PHASE)
EASTRON_SDM630 = _eastron(
    "eastron_sdm630",
    (
        _f32("voltage_l1", 0x0000),
        _f32("voltage_l2", 0x0002),
        _f32("voltage_l3", 0x0004),
        _f32("current_l1", 0x0006),
        _f32("current_l2", 0x0008),
        _f32("current_l3", 0x000A),
        _f32("power_l1", 0x000C),
        _f32("power_l2", 0x000E),
        _f32("power_l3", 0x0010),
        _f32("voltage", 0x002A),  # "Average line to neutral volts"
        _f32("current", 0x0030),  # "Sum of line currents"
        _f32("power", 0x0034),  # "Total system power"
        _f32("power_factor", 0x003E),  # "Total system power factor"
        *_EASTRON_COMMON,
    ),
)

# Acrel DDSY1352 manual, "Communication address table" (FC03 holding registers): energies
# UINT32 high word first in 0.01 kWh, voltage 0.1 V, current 0.01 A, active power signed
# 0.001 kW; relay: write 0x0057-0x0058 = 0001 0001 trips, 0001 0000 closes.
_CENTI_KWH = Decimal("0.01")
ACREL_DDSY1352 = MeterMap(
    model="acrel_ddsy1352",
    read_functions=frozenset({3}),
    values=(
        Value(key="energy_total", address=0x0000, kind="u32", per_count=_CENTI_KWH),
        Value(key="energy_sharp", address=0x0002, kind="u32", per_count=_CENTI_KWH),
        Value(key="energy_peak", address=0x0004, kind="u32", per_count=_CENTI_KWH),
        Value(key="energy_flat", address=0x0006, kind="u32", per_count=_CENTI_KWH),
        Value(key="energy_valley", address=0x0008, kind="u32", per_count=_CENTI_KWH),
        Value(key="voltage", address=0x000B, kind="u16", per_count=Decimal("0.1")),
        Value(key="current", address=0x000C, kind="u16", per_count=Decimal("0.01")),
        Value(key="power", address=0x000D, kind="s16", per_count=Decimal(1)),  # 0.001 kW
    ),
    relay=RelayRegisters(
        address=0x0057,
        cut=(0x0001, 0x0001),
        restore=(0x0001, 0x0000),
        # Field reports: a meter that never had a remote command reads zeros here.
        before_first_command=(0x0000, 0x0000),
    ),
)

# Chint DDSU666 manual: float32 high word first; 0x2000 U (V), 0x2002 I (A), 0x2004 P (kW),
# 0x200A PF, 0x200E Freq (Hz), 0x4000 ImpEp (kWh), 0x400A ExpEp (kWh).
_CHINT_VALUES = (
    _f32("voltage", 0x2000),
    _f32("current", 0x2002),
    _f32("power", 0x2004, per_count=Decimal(1000)),  # kW on the wire
    _f32("power_factor", 0x200A),
    _f32("frequency", 0x200E),
    _f32("energy_total", 0x4000),
    _f32("energy_export", 0x400A),
)
#: The common firmware: input registers (FC04).
CHINT_DDSU666 = MeterMap(model="chint_ddsu666", read_functions=frozenset({4}), values=_CHINT_VALUES)
#: Firmware that follows Chint's own manual ("read command is 03H") and refuses FC04.
CHINT_DDSU666_FC03 = MeterMap(
    model="chint_ddsu666_fc03", read_functions=frozenset({3}), values=_CHINT_VALUES
)

# Hiking DDS238-2 ZN/S (manual and Tasmota's xnrg_09 driver): FC03; 0x0000 total energy
# (import + export), 0x0008 export, 0x000A import, all UINT32 0.01 kWh; 0x000C V 0.1;
# 0x000D A 0.01; 0x000E W signed; 0x0010 PF 0.001; 0x0011 Hz 0.01; FC06 is ignored, only
# FC16 writes; relay register 0x001A: 0 off, 1 on.
HIKING_DDS238_2 = MeterMap(
    model="hiking_dds238_2",
    read_functions=frozenset({3}),
    values=(
        Value(key="energy_import_export", address=0x0000, kind="u32", per_count=_CENTI_KWH),
        Value(key="energy_export", address=0x0008, kind="u32", per_count=_CENTI_KWH),
        Value(key="energy_total", address=0x000A, kind="u32", per_count=_CENTI_KWH),
        Value(key="voltage", address=0x000C, kind="u16", per_count=Decimal("0.1")),
        Value(key="current", address=0x000D, kind="u16", per_count=Decimal("0.01")),
        Value(key="power", address=0x000E, kind="s16"),
        Value(key="power_factor", address=0x0010, kind="u16", per_count=Decimal("0.001")),
        Value(key="frequency", address=0x0011, kind="u16", per_count=Decimal("0.01")),
    ),
    write_functions=frozenset({16}),
    relay=RelayRegisters(address=0x001A, cut=(0,), restore=(1,)),
)

MAPS: dict[str, MeterMap] = {
    m.model: m
    for m in (
        ACREL_DDSY1352,
        EASTRON_SDM120,
        EASTRON_SDM230,
        EASTRON_SDM630,
        CHINT_DDSU666,
        CHINT_DDSU666_FC03,
        HIKING_DDS238_2,
    )
}


def get_map(model: str) -> MeterMap:
    """Return the simulator's map of a model; ValueError names the known ones."""
    try:
        return MAPS[model]
    except KeyError:
        raise ValueError(f"unknown meter model {model!r}; known: {', '.join(MAPS)}") from None
