"""The simulator's own reader of custom YAML meter maps (``--custom-profile FILE``).

Written from the format's documentation (docs/supported-meters.md, "Custom profiles (YAML)"),
deliberately not from the integration's loader: the simulator must not share the code it
tests, or a mistake in the integration's reading of a custom map would be mirrored here and
no test could catch it. ``tests/modbus/test_simulator_custom_maps.py`` reads the docs' example
with both and checks they agree.

Where the documentation is silent, the docs' example decides: ``id``, ``name``, ``registers``,
each register's ``key`` and ``address``, and a register relay's ``address``, ``cut`` and
``restore`` are required; ``scale`` defaults to 1 and ``unit`` is optional (the docs give no
default for either). Keys the docs do not describe are refused (the docs say the format is
checked with voluptuous, which refuses unknown keys), so a typo such as ``word_ordr`` is an
error instead of a silent default.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import cast

import yaml  # type: ignore[import-untyped]  # PyYAML ships no annotations

from .maps import Kind, MeterMap, Order, RelayRegisters, Value

#: The docs' ``data_type`` names and the simulator's raw kinds.
DATA_TYPES: dict[str, Kind] = {
    "uint16": "u16",
    "int16": "s16",
    "uint32": "u32",
    "int32": "s32",
    "float32": "f32",
}
#: Most registers one Modbus read may ask for ("default 125 (the protocol limit)").
PROTOCOL_MAX_READ = 125
MAX_ADDRESS = 0xFFFF
#: "A scale's magnitude must lie between 1e-9 and 1e9."
MIN_SCALE = Decimal("1e-9")
MAX_SCALE = Decimal("1e9")
READ_FUNCTIONS = frozenset({3, 4})
WRITE_FUNCTIONS = frozenset({6, 16})
TOTAL_KEY = {"energy": "energy_total", "water": "water_total"}

_SNAKE = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)*")
_TOP = frozenset(
    {
        "id",
        "name",
        "quantity",
        "max_registers_per_request",
        "forbidden",
        "write_functions",
        "registers",
        "relay",
    }
)
_REGISTER = frozenset(
    {"key", "address", "function", "data_type", "word_order", "byte_order", "scale", "unit"}
)
_FORBIDDEN = frozenset({"start", "end", "function"})
_REGISTER_RELAY = frozenset({"type", "address", "cut", "restore"})
_COIL_RELAY = frozenset({"type", "coil", "unit_id", "closed_when"})


class CustomMapError(ValueError):
    """A custom YAML map is invalid; the message starts with the field, like the docs' errors."""


def load_custom_map_yaml(text: str) -> MeterMap:
    """Read a custom YAML map into the simulator's ``MeterMap``; ``CustomMapError`` if invalid."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise CustomMapError(f"not valid YAML: {err}") from None
    return load_custom_map(document)


def load_custom_map(document: object) -> MeterMap:
    """Check an already parsed YAML document and build the ``MeterMap`` it describes."""
    top = _mapping(document, "profile", required={"id", "name", "registers"}, allowed=_TOP)
    model = _string(top["id"], "id")
    if not _SNAKE.fullmatch(model):
        raise CustomMapError(f"id: {model!r} is not lower_snake_case")
    _string(top["name"], "name")
    quantity = _choice(top.get("quantity", "energy"), "quantity", ("energy", "water"))
    max_span = _integer(
        top.get("max_registers_per_request", PROTOCOL_MAX_READ),
        "max_registers_per_request",
        1,
        PROTOCOL_MAX_READ,
    )
    forbidden = tuple(
        _forbidden(item, f"forbidden[{i}]")
        for i, item in enumerate(_list(top.get("forbidden", []), "forbidden"))
    )
    write_functions = _write_functions(top.get("write_functions", [6, 16]))
    raw_registers = _list(top["registers"], "registers")
    if not raw_registers:
        raise CustomMapError("registers: at least one register is required")
    placed = [_register(item, f"registers[{i}]") for i, item in enumerate(raw_registers)]
    _check_registers(placed, quantity, max_span, forbidden)
    relay = _relay(top["relay"], write_functions) if "relay" in top else None
    return MeterMap(
        model=model,
        quantity="water" if quantity == "water" else "energy",
        read_functions=frozenset(function for function, _ in placed),
        values=tuple(value for _, value in placed),
        max_span=max_span,
        forbidden=forbidden,
        write_functions=write_functions,
        relay=relay,
        # The docs write a register relay "with FC16 (FC06 ...)": holding registers, so the
        # meter shows its state on FC03.
        relay_read_function=3,
    )


# ----------------------------------------------------------------------------- sections


def _register(item: object, where: str) -> tuple[int, Value]:
    """Read one entry of ``registers``: its read function and the value it holds."""
    fields = _mapping(item, where, required={"key", "address"}, allowed=_REGISTER)
    key = _string(fields["key"], f"{where}.key")
    if not _SNAKE.fullmatch(key):
        raise CustomMapError(f"{where}.key: {key!r} is not lower_snake_case")
    data_type = _choice(fields.get("data_type", "uint16"), f"{where}.data_type", tuple(DATA_TYPES))
    kind = DATA_TYPES[data_type]
    words = 1 if kind in {"u16", "s16"} else 2
    address = _integer(fields["address"], f"{where}.address", 0, MAX_ADDRESS)
    if address + words - 1 > MAX_ADDRESS:
        raise CustomMapError(
            f"{where}.address: a {data_type} at {address:#06x} runs past {MAX_ADDRESS:#06x}"
        )
    function = _integer(fields.get("function", 3), f"{where}.function", 3, 4)
    word_order = _choice(fields.get("word_order", "big"), f"{where}.word_order", ("big", "little"))
    byte_order = _choice(fields.get("byte_order", "big"), f"{where}.byte_order", ("big", "little"))
    scale = _scale(fields.get("scale", "1"), f"{where}.scale")
    if "unit" in fields:
        _string(fields["unit"], f"{where}.unit")
    value = Value(
        key=key,
        address=address,
        kind=kind,
        per_count=scale,
        word_order=cast("Order", word_order),
        byte_order=cast("Order", byte_order),
    )
    return function, value


def _forbidden(item: object, where: str) -> tuple[int, int, int | None]:
    """Read a ``{start, end, function}`` range; ``end`` is the last refused address."""
    fields = _mapping(item, where, required={"start", "end"}, allowed=_FORBIDDEN)
    start = _integer(fields["start"], f"{where}.start", 0, MAX_ADDRESS)
    end = _integer(fields["end"], f"{where}.end", 0, MAX_ADDRESS)
    if end < start:
        raise CustomMapError(f"{where}.end: {end:#06x} is before start {start:#06x}")
    function = fields.get("function")
    if function is not None:
        function = _integer(function, f"{where}.function", 3, 4)
    return start, end, function


def _write_functions(raw: object) -> frozenset[int]:
    """Read ``write_functions``: a non-empty subset of FC06 and FC16."""
    items = _list(raw, "write_functions")
    functions = frozenset(
        _integer(item, f"write_functions[{i}]", 0, 255) for i, item in enumerate(items)
    )
    if not functions or not functions <= WRITE_FUNCTIONS:
        raise CustomMapError(f"write_functions: {items!r} is not a non-empty subset of [6, 16]")
    return functions


def _relay(raw: object, write_functions: frozenset[int]) -> RelayRegisters | None:
    """Read the register relay the meter simulates; a coil relay is checked, then left out.

    A coil relay lives in a separate relay module, which the simulator runs as its own unit
    (``--relay-module``), so the meter itself has no relay registers.
    """
    head = _mapping(raw, "relay", required={"type"}, allowed=_REGISTER_RELAY | _COIL_RELAY)
    relay_type = _choice(head["type"], "relay.type", ("register", "coil"))
    if relay_type == "coil":
        fields = _mapping(raw, "relay", required={"type", "coil"}, allowed=_COIL_RELAY)
        _integer(fields["coil"], "relay.coil", 0, MAX_ADDRESS)
        if "unit_id" in fields:
            _integer(fields["unit_id"], "relay.unit_id", 1, 247)
        if "closed_when" in fields and not isinstance(fields["closed_when"], bool):
            raise CustomMapError(f"relay.closed_when: {fields['closed_when']!r} is not true/false")
        return None
    fields = _mapping(
        raw, "relay", required={"type", "address", "cut", "restore"}, allowed=_REGISTER_RELAY
    )
    address = _integer(fields["address"], "relay.address", 0, MAX_ADDRESS)
    cut = _words(fields["cut"], "relay.cut")
    restore = _words(fields["restore"], "relay.restore")
    if len(cut) != len(restore):
        raise CustomMapError(
            f"relay: cut has {len(cut)} words and restore {len(restore)}; the meter's relay "
            "registers are read back as one block, so both need the same number"
        )
    if cut == restore:
        raise CustomMapError("relay: cut and restore are the same words")
    if address + len(cut) - 1 > MAX_ADDRESS:
        raise CustomMapError(f"relay.address: {len(cut)} words at {address:#06x} run past 0xffff")
    if len(cut) > 1 and 16 not in write_functions:
        raise CustomMapError("relay: a multi-register relay needs 16 in write_functions")
    return RelayRegisters(address=address, cut=cut, restore=restore)


def _check_registers(
    placed: list[tuple[int, Value]],
    quantity: str,
    max_span: int,
    forbidden: tuple[tuple[int, int, int | None], ...],
) -> None:
    """Apply the whole-map rules the docs list under the example."""
    keys = [value.key for _, value in placed]
    if duplicates := sorted({key for key in keys if keys.count(key) > 1}):
        raise CustomMapError(f"registers: duplicate keys {duplicates}")
    total = TOTAL_KEY[quantity]
    if total not in keys:
        raise CustomMapError(f"registers: a {quantity} meter needs a register {total!r}")
    for i, (function, value) in enumerate(placed):
        last = value.address + value.words - 1
        if value.words > max_span:
            raise CustomMapError(
                f"registers[{i}]: {value.key!r} is wider than one request ({max_span} registers)"
            )
        for start, end, only in forbidden:
            if (only is None or only == function) and value.address <= end and start <= last:
                raise CustomMapError(
                    f"registers[{i}]: {value.key!r} lies in the forbidden range "
                    f"{start:#06x}-{end:#06x}"
                )
        for other_function, other in placed[:i]:
            if value.address <= other.address + other.words - 1 and other.address <= last:
                if other_function == function:
                    raise CustomMapError(f"registers[{i}]: {value.key!r} overlaps {other.key!r}")
                # Different register spaces may reuse addresses on a real meter, but the
                # simulated meter answers FC03 and FC04 from one register image.
                raise CustomMapError(
                    f"registers[{i}]: {value.key!r} (FC{function:02d}) and {other.key!r} "
                    f"(FC{other_function:02d}) share addresses; the simulator serves both "
                    "functions from one register image and cannot simulate this map"
                )


# ----------------------------------------------------------------------------- scalars


def _mapping(
    raw: object, where: str, *, required: set[str], allowed: frozenset[str]
) -> Mapping[str, object]:
    """Check a YAML mapping: string keys, the required ones present, no unknown ones."""
    if not isinstance(raw, Mapping):
        raise CustomMapError(f"{where}: expected a mapping, got {_show(raw)}")
    fields = cast("Mapping[object, object]", raw)
    for key in fields:
        if not isinstance(key, str) or key not in allowed:
            raise CustomMapError(
                f"{where}: unknown field {key!r} (known: {', '.join(sorted(allowed))})"
            )
    if missing := sorted(required - set(cast("Mapping[str, object]", fields))):
        prefix = "" if where == "profile" else f"{where}."
        raise CustomMapError(f"{prefix}{missing[0]}: required field is missing")
    return cast("Mapping[str, object]", fields)


def _list(raw: object, where: str) -> list[object]:
    if not isinstance(raw, list):
        raise CustomMapError(f"{where}: expected a list, got {_show(raw)}")
    return cast("list[object]", raw)


def _string(raw: object, where: str) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise CustomMapError(f"{where}: expected a non-empty text, got {_show(raw)}")
    return raw


def _integer(raw: object, where: str, low: int, high: int) -> int:
    """Check an integer (YAML reads ``0x0010`` as 16) in ``low..high``; bools are refused."""
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise CustomMapError(f"{where}: {raw!r} is not an integer")
    if not low <= raw <= high:
        raise CustomMapError(f"{where}: {raw} outside {low}..{high}")
    return raw


def _choice(raw: object, where: str, choices: tuple[str, ...]) -> str:
    if not isinstance(raw, str) or raw not in choices:
        raise CustomMapError(f"{where}: {raw!r} is not one of {', '.join(choices)}")
    return raw


def _scale(raw: object, where: str) -> Decimal:
    """Read a decimal scale: exact when quoted; an unquoted YAML number is taken as written."""
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        raise CustomMapError(f"{where}: {raw!r} is not a number")
    try:
        # str() of a float is the shortest text that reads back as it: "0.1", not the binary
        # expansion, which is what the user typed.
        scale = Decimal(raw if isinstance(raw, str) else str(raw))
    except InvalidOperation:
        raise CustomMapError(f"{where}: {raw!r} is not a number") from None
    if not scale.is_finite() or not MIN_SCALE <= abs(scale) <= MAX_SCALE:
        raise CustomMapError(f"{where}: {raw!r} must have a magnitude between 1e-9 and 1e9")
    return scale


def _words(raw: object, where: str) -> tuple[int, ...]:
    """Read relay words: a non-empty list of 16-bit register values."""
    items = _list(raw, where)
    if not items:
        raise CustomMapError(f"{where}: at least one register word is required")
    return tuple(_integer(item, f"{where}[{i}]", 0, 0xFFFF) for i, item in enumerate(items))


def _show(raw: object) -> str:
    return "nothing" if raw is None else f"{type(raw).__name__} {raw!r}"
