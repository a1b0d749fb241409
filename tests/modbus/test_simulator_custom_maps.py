"""The simulator's own reader of custom YAML maps, checked against the format's documentation.

Expected values are read off docs/supported-meters.md ("Custom profiles (YAML)"), never off
the integration's loader. One test reads the docs' example with both readers and compares
them: the simulator no longer shares the integration's code, so that test is what catches a
mistake in either one.
"""

from __future__ import annotations

import ast
import re
import struct
from decimal import Decimal
from pathlib import Path

import pytest

from custom_components.prepaid_meter.profiles import (
    CoilRelay,
    MeterProfile,
    RegisterRelay,
    load_custom_profile_yaml,
)
from meter_simulator.__main__ import main
from meter_simulator.custom_maps import CustomMapError, load_custom_map, load_custom_map_yaml
from meter_simulator.maps import MeterMap, RelayRegisters, Value

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "supported-meters.md"
SIMULATOR = ROOT / "meter_simulator"


def docs_example() -> str:
    """The first YAML block of the docs' "Custom profiles (YAML)" section, as published."""
    section = DOCS.read_text(encoding="utf-8").split("## Custom profiles (YAML)", 1)[1]
    match = re.search(r"```yaml\n(.*?)```", section, re.DOTALL)
    assert match, "docs/supported-meters.md lost its custom profile example"
    return match.group(1)


def with_relay(text: str, relay: str) -> str:
    """The docs' example with its relay section replaced (the docs' ``or:`` alternative)."""
    head, _, _ = text.partition("\nrelay:")
    return f"{head}\n{relay}\n"


# What the docs' example says, line by line (its comments give the defaults).
DOCS_EXAMPLE_MAP = MeterMap(
    model="my_water_meter",
    quantity="water",
    read_functions=frozenset({3}),  # water_total "function: 3"; flow: "3 = holding (default)"
    values=(
        Value(
            key="water_total",
            address=0x0000,
            kind="u32",
            per_count=Decimal("0.001"),
            word_order="little",
            byte_order="big",
        ),
        # "int16", scale "0.1"; orders: "big (default)".
        Value(key="flow", address=0x0008, kind="s16", per_count=Decimal("0.1")),
    ),
    max_span=64,
    forbidden=((0x0010, 0x001F, 3),),
    write_functions=frozenset({16}),
    relay=RelayRegisters(address=0x0020, cut=(0,), restore=(1,)),
    relay_read_function=3,  # written "with FC16": holding registers
)


def test_docs_example_parses_to_the_registers_the_docs_describe():
    assert load_custom_map_yaml(docs_example()) == DOCS_EXAMPLE_MAP


def test_docs_example_total_is_laid_out_low_word_first():
    """``word_order: little`` on a uint32: the docs' "big: high word first", reversed."""
    total = load_custom_map_yaml(docs_example()).values[0]
    # 70000.123 m³ at 0.001 m³ per count = 70000123 = 0x042C_1DFB.
    assert total.encode(Decimal("70000.123")) == [0x1DFB, 0x042C]


@pytest.mark.parametrize(
    ("word_order", "byte_order", "words"),
    [
        # IEEE-754 float32 of 1.1 is 0x3F8CCCCD.
        ("big", "big", [0x3F8C, 0xCCCD]),  # "high word first", "high byte first"
        ("little", "big", [0xCCCD, 0x3F8C]),  # low word first
        ("big", "little", [0x8C3F, 0xCDCC]),  # low byte first within each word
        ("little", "little", [0xCDCC, 0x8C3F]),
    ],
)
def test_float32_word_and_byte_order_as_documented(word_order, byte_order, words):
    assert struct.pack(">f", 1.1).hex() == "3f8ccccd"
    meter_map = load_custom_map_yaml(f"""
id: f32_meter
name: Float meter
registers:
  - key: energy_total
    address: 0x0100
    function: 4
    data_type: float32
    word_order: {word_order}
    byte_order: {byte_order}
    scale: "0.5"
""")
    (value,) = meter_map.values
    assert (value.address, value.kind, value.words) == (0x0100, "f32", 2)
    assert meter_map.read_functions == frozenset({4})
    assert value.encode(Decimal("0.55")) == words  # 0.55 / 0.5 = 1.1 counts


def test_defaults_from_the_docs_comments():
    meter_map = load_custom_map_yaml("""
id: minimal
name: Minimal meter
registers:
  - {key: energy_total, address: 3}
""")
    assert meter_map == MeterMap(
        model="minimal",
        quantity="energy",  # "energy (default)"
        read_functions=frozenset({3}),  # "3 = holding (default)"
        values=(Value(key="energy_total", address=3, kind="u16"),),  # "uint16 (default)"
        max_span=125,  # "default 125"
        write_functions=frozenset({6, 16}),  # "default [6, 16]"
    )


def test_unquoted_scale_is_the_number_as_written():
    meter_map = load_custom_map_yaml("""
id: unquoted
name: Unquoted scale
registers:
  - {key: energy_total, address: 0, scale: 0.1}
  - {key: power, address: 1, scale: 1000}
""")
    assert [v.per_count for v in meter_map.values] == [Decimal("0.1"), Decimal(1000)]


def test_coil_relay_is_left_to_the_relay_module():
    """The docs' ``or: {type: coil, ...}`` alternative: valid, but no relay registers."""
    text = with_relay(docs_example(), "relay: {type: coil, coil: 0, unit_id: 5, closed_when: true}")
    assert load_custom_map_yaml(text).relay is None


def _docs_variant(old: str, new: str) -> str:
    text = docs_example()
    assert old in text
    return text.replace(old, new, 1)


INVALID = [
    (
        _docs_variant("data_type: uint32 ", "data_type: uint64 "),
        "registers[0].data_type: 'uint64' is not one of uint16, int16, uint32, int32, float32",
    ),
    (
        _docs_variant("    address: 0x0000\n", ""),
        "registers[0].address: required field is missing",
    ),
    (
        _docs_variant("  cut: [0]\n", "  cut: []\n"),
        "relay.cut: at least one register word is required",
    ),
    (
        _docs_variant("  cut: [0]\n  restore: [1]\n", ""),
        "relay.cut: required field is missing",
    ),
    (
        # The docs' own example of an error message.
        _docs_variant('scale: "0.1"', "scale: x"),
        "registers[1].scale: 'x' is not a number",
    ),
    (
        _docs_variant('scale: "0.001"', 'scale: "1e-10"'),
        "registers[0].scale: '1e-10' must have a magnitude between 1e-9 and 1e9",
    ),
    (
        _docs_variant("key: water_total", "key: energy_total"),
        "registers: a water meter needs a register 'water_total'",
    ),
    (
        _docs_variant("address: 0x0008", "address: 0x0001"),
        "registers[1]: 'flow' overlaps 'water_total'",
    ),
    (
        _docs_variant("key: flow", "key: water_total"),
        "registers: duplicate keys ['water_total']",
    ),
    (
        _docs_variant("address: 0x0008", "address: 0x0010"),
        "registers[1]: 'flow' lies in the forbidden range 0x0010-0x001f",
    ),
    (
        _docs_variant("max_registers_per_request: 64", "max_registers_per_request: 1"),
        "registers[0]: 'water_total' is wider than one request (1 registers)",
    ),
    (
        _docs_variant("  cut: [0]\n  restore: [1]\n", "  cut: [1, 1]\n  restore: [1, 0]\n").replace(
            "write_functions: [16]", "write_functions: [6]"
        ),
        "relay: a multi-register relay needs 16 in write_functions",
    ),
    (
        _docs_variant("  restore: [1]\n", "  restore: [1, 0]\n"),
        "relay: cut has 1 words and restore 2",
    ),
    (
        _docs_variant("word_order: little", "word_ordr: little"),
        "registers[0]: unknown field 'word_ordr'",
    ),
    (
        _docs_variant("id: my_water_meter", "id: My Meter"),
        "id: 'My Meter' is not lower_snake_case",
    ),
    (_docs_variant("function: 3 ", "function: 6 "), "registers[0].function: 6 outside 3..4"),
    (_docs_variant("type: register", "type: bell"), "relay.type: 'bell' is not one of"),
    (
        # A real meter may reuse addresses across FC03 and FC04; the simulated one cannot.
        _docs_variant("{key: flow, address: 0x0008,", "{key: flow, address: 0x0001, function: 4,"),
        "registers[1]: 'flow' (FC04) and 'water_total' (FC03) share addresses",
    ),
    ("registers: [", "not valid YAML"),
    ("- just a list", "profile: expected a mapping"),
    ("name: x\nregisters: []", "id: required field is missing"),
]


@pytest.mark.parametrize(("text", "message"), INVALID, ids=[message for _, message in INVALID])
def test_invalid_maps_name_the_field(text, message):
    with pytest.raises(CustomMapError, match=re.escape(message)):
        load_custom_map_yaml(text)


def test_custom_map_error_is_a_value_error():
    """The CLI and callers that only know ``ValueError`` still catch it."""
    with pytest.raises(ValueError, match="registers: expected a list"):
        load_custom_map({"id": "x", "name": "X", "registers": None})


def test_cli_reports_an_invalid_custom_map(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text(_docs_variant("data_type: int16", "data_type: int8"), encoding="utf-8")
    args = ["--tcp", "127.0.0.1:0", "--meter", "1:my_water_meter", "--custom-profile", str(bad)]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert str(bad) in err
    assert "registers[1].data_type: 'int8' is not one of" in err


# ------------------------------------------------------------------- cross-check


def _integration_view(profile: MeterProfile) -> dict[str, object]:
    """What the integration's loader made of a map, in the simulator's terms."""
    kinds = {"uint16": "u16", "int16": "s16", "uint32": "u32", "int32": "s32", "float32": "f32"}
    relay = profile.relay
    return {
        "model": profile.id,
        "quantity": profile.quantity,
        "registers": [
            (
                r.key,
                r.address,
                profile.function_of(r.key),
                kinds[r.data_type],
                r.scale,
                r.word_order,
                r.byte_order,
            )
            for r in sorted(profile.registers, key=lambda r: r.key)
        ],
        "max_span": profile.max_registers_per_request,
        "forbidden": [(g.start, g.end, g.function) for g in profile.forbidden],
        "write_functions": set(profile.write_functions),
        "relay": (relay.address, relay.cut_words, relay.restore_words)
        if isinstance(relay, RegisterRelay)
        else None,
    }


def _simulator_view(meter_map: MeterMap) -> dict[str, object]:
    (function,) = meter_map.read_functions  # every example here reads one register space
    relay = meter_map.relay
    return {
        "model": meter_map.model,
        "quantity": meter_map.quantity,
        "registers": [
            (v.key, v.address, function, v.kind, v.per_count, v.word_order, v.byte_order)
            for v in sorted(meter_map.values, key=lambda v: v.key)
        ],
        "max_span": meter_map.max_span,
        "forbidden": list(meter_map.forbidden),
        "write_functions": set(meter_map.write_functions),
        "relay": None if relay is None else (relay.address, relay.cut, relay.restore),
    }


FLOAT_VARIANT = (
    _docs_variant("data_type: uint32 ", "data_type: float32")
    .replace("function: 3 ", "function: 4 ")
    .replace("{key: flow, address: 0x0008,", "{key: flow, address: 0x0008, function: 4,")
    .replace("start: 0x0010, end: 0x001F, function: 3", "start: 0x0010, end: 0x001F")
)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(docs_example(), id="docs-example"),
        pytest.param(FLOAT_VARIANT, id="docs-example-float32-input"),
    ],
)
def test_integration_and_simulator_read_the_docs_example_alike(text):
    profile = load_custom_profile_yaml(text)
    meter_map = load_custom_map_yaml(text)
    assert _simulator_view(meter_map) == _integration_view(profile)
    # And the words the simulator sends decode, with the integration's register, to the value
    # it simulated: address, type, scale and both orders agree on the wire too.
    for value in meter_map.values:
        physical = Decimal("12.3") if value.kind in {"s16", "f32"} else Decimal("70000.123")
        assert profile.register(value.key).decode(value.encode(physical)) == physical


def test_integration_and_simulator_agree_on_the_coil_alternative():
    text = with_relay(docs_example(), "relay: {type: coil, coil: 0, unit_id: 5, closed_when: true}")
    profile = load_custom_profile_yaml(text)
    assert profile.relay == CoilRelay(coil=0, unit_id=5, closed_when=True)
    assert load_custom_map_yaml(text).relay is None  # served by a --relay-module unit instead


# ------------------------------------------------------------------- independence


def _imported_modules(source: str) -> set[str]:
    modules: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules.add(node.module)
    return modules


def test_simulator_imports_nothing_from_the_integration():
    """The simulator is the integration's test oracle: sharing its code would hide its bugs."""
    sources = sorted(SIMULATOR.rglob("*.py"))
    assert len(sources) >= 5
    offenders = {
        f"{path.relative_to(ROOT)}: {module}"
        for path in sources
        for module in _imported_modules(path.read_text(encoding="utf-8"))
        if module.split(".")[0] == "custom_components"
    }
    assert not offenders
