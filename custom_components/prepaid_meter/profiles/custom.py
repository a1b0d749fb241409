"""Custom meter profiles from a YAML (or already parsed) definition, validated with voluptuous.

Users with a meter we do not ship can describe it themselves::

    id: my_meter
    name: My DIN rail meter
    quantity: energy            # or water (then a water_total register is required)
    max_registers_per_request: 64
    forbidden:                  # optional: addresses a read must not span
      - {start: 0x0010, end: 0x001F, function: 3}
    write_functions: [16]       # optional, default [6, 16]
    registers:
      - {key: energy_total, address: 0x0000, function: 3, data_type: uint32,
         word_order: big, byte_order: big, scale: "0.01", unit: kWh}
    relay:                      # optional
      {type: register, address: 0x0057, cut: [1, 1], restore: [1, 0]}
      # or {type: coil, coil: 0, unit_id: 2}

Every error names the offending field (``registers[1].scale: ...``) so the config flow can
show it as is.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, cast

import voluptuous as vol
import yaml  # type: ignore[import-untyped]  # PyYAML ships no annotations

from .model import (
    DATA_TYPES,
    MAX_ADDRESS,
    PROTOCOL_MAX_READ,
    SPACE_OF_FUNCTION,
    AddressRange,
    CoilRelay,
    MeterProfile,
    ProfileError,
    Register,
    RegisterRelay,
    RelaySpec,
    meter_component,
    readable_ranges,
)


def _decimal(value: object) -> Decimal:
    """Accept "0.01", 0.01 or 1 and keep the exact decimal the user wrote."""
    if isinstance(value, bool):
        raise vol.Invalid("expected a number")
    try:
        result = Decimal(str(value))
    except InvalidOperation as err:
        raise vol.Invalid(f"{value!r} is not a number") from err
    if not result.is_finite() or result == 0:
        raise vol.Invalid("must be a finite, non-zero number")
    return result


_ADDRESS = vol.All(int, vol.Range(min=0, max=MAX_ADDRESS))
_WORD = vol.All(int, vol.Range(min=0, max=0xFFFF))
_KEY = vol.All(str, vol.Match(r"^[a-z][a-z0-9_]*$", msg="must be lower_snake_case"))

_REGISTER = vol.Schema(
    {
        vol.Required("key"): _KEY,
        vol.Required("address"): _ADDRESS,
        vol.Optional("function", default=3): vol.In([3, 4]),
        vol.Optional("data_type", default="uint16"): vol.In(DATA_TYPES),
        vol.Optional("word_order", default="big"): vol.In(["big", "little"]),
        vol.Optional("byte_order", default="big"): vol.In(["big", "little"]),
        vol.Optional("scale", default="1"): _decimal,
        vol.Optional("unit"): vol.Any(None, str),
    }
)

_FORBIDDEN = vol.Schema(
    {
        vol.Required("start"): _ADDRESS,
        vol.Required("end"): _ADDRESS,
        vol.Optional("function"): vol.In([3, 4]),
    }
)

_RELAY = vol.Any(
    vol.Schema(
        {
            vol.Required("type"): "register",
            vol.Required("address"): _ADDRESS,
            vol.Required("cut"): vol.All([_WORD], vol.Length(min=1, max=4)),
            vol.Required("restore"): vol.All([_WORD], vol.Length(min=1, max=4)),
        }
    ),
    vol.Schema(
        {
            vol.Required("type"): "coil",
            vol.Optional("coil", default=0): _ADDRESS,
            vol.Optional("unit_id"): vol.All(int, vol.Range(min=1, max=247)),
            vol.Optional("closed_when", default=True): bool,
        }
    ),
)

SCHEMA = vol.Schema(
    {
        vol.Required("id"): _KEY,
        vol.Required("name"): vol.All(str, vol.Length(min=1, max=100)),
        vol.Optional("quantity", default="energy"): vol.In(["energy", "water"]),
        vol.Optional("max_registers_per_request", default=PROTOCOL_MAX_READ): vol.All(
            int, vol.Range(min=1, max=PROTOCOL_MAX_READ)
        ),
        vol.Optional("forbidden", default=list): [_FORBIDDEN],
        vol.Optional("write_functions", default=lambda: [6, 16]): vol.All(
            [vol.In([6, 16])], vol.Length(min=1)
        ),
        vol.Required("registers"): vol.All([_REGISTER], vol.Length(min=1, max=200)),
        vol.Optional("relay"): _RELAY,
    }
)


def _relay(data: Mapping[str, Any]) -> RelaySpec:
    if data["type"] == "register":
        return RegisterRelay(
            address=data["address"],
            cut_words=tuple(data["cut"]),
            restore_words=tuple(data["restore"]),
        )
    return CoilRelay(
        coil=data["coil"], unit_id=data.get("unit_id"), closed_when=data["closed_when"]
    )


def load_custom_profile(definition: Mapping[str, Any]) -> MeterProfile:
    """Build a profile from a parsed definition; raise ``ProfileError`` with a clear message."""
    try:
        data = cast("dict[str, Any]", SCHEMA(dict(definition)))
    except vol.MultipleInvalid as err:
        raise ProfileError(_describe(err)) from err
    registers = [
        Register(
            item["address"],
            key=item["key"],
            function=item["function"],
            data_type=item["data_type"],
            word_order=item["word_order"],
            byte_order=item["byte_order"],
            scale=item["scale"],
            unit=item.get("unit"),
        )
        for item in data["registers"]
    ]
    forbidden = tuple(
        AddressRange(start=item["start"], end=item["end"], function=item.get("function"))
        for item in data["forbidden"]
    )
    # One component per read function the map uses (a map may mix FC03 and FC04 values).
    components = tuple(
        meter_component(
            f"{data['id']}_fc{function:02d}",
            [r for r in registers if r.function == function],
            space=SPACE_OF_FUNCTION[function],
            max_span=data["max_registers_per_request"],
            register_ranges=readable_ranges(forbidden, function),
        )
        for function in sorted({r.function for r in registers if r.function is not None})
    )
    return MeterProfile(
        id=data["id"],
        name=data["name"],
        quantity=data["quantity"],
        components=components,
        forbidden=forbidden,
        write_functions=frozenset(data["write_functions"]),
        relay=_relay(data["relay"]) if "relay" in data else None,
    )


def load_custom_profile_yaml(text: str) -> MeterProfile:
    """Parse YAML text (safe loader only) and build the profile it describes."""
    try:
        parsed = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ProfileError(f"not valid YAML: {err}") from err
    if not isinstance(parsed, Mapping):
        raise ProfileError("the profile must be a YAML mapping (id, name, registers, ...)")
    return load_custom_profile(parsed)


def _describe(err: vol.MultipleInvalid) -> str:
    """Turn voluptuous errors into ``path: message`` lines a user can act on."""
    lines = []
    for error in err.errors:
        path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.path)
        lines.append(f"{path.lstrip('.') or 'profile'}: {error.msg}")
    return "; ".join(sorted(lines))
