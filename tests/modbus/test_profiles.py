"""Built-in profiles are consistent; custom profiles validate with clear errors."""

from __future__ import annotations

from decimal import Decimal

import pytest

from custom_components.prepaid_meter.profiles import (
    PROFILES,
    AddressRange,
    CoilRelay,
    MeterProfile,
    ProfileError,
    Register,
    RegisterRelay,
    get_profile,
    load_custom_profile,
    load_custom_profile_yaml,
    meter_component,
)
from custom_components.prepaid_meter.profiles.model import readable_ranges

STANDARD_KEYS = {"energy_total", "power", "voltage", "current"}


def test_every_model_is_registered():
    assert set(PROFILES) == {
        "acrel_ddsy1352",
        "eastron_sdm120",
        "eastron_sdm230",
        "eastron_sdm630",
        "chint_ddsu666",
        "hiking_dds238_2",
    }


@pytest.mark.parametrize("profile_id", sorted(PROFILES))
def test_profiles_carry_the_standard_keys(profile_id):
    keys = {r.key for r in get_profile(profile_id).registers}
    assert keys >= STANDARD_KEYS


def test_reference_map_facts():
    acrel = get_profile("acrel_ddsy1352")
    assert acrel.register("energy_total").address == 0x0000
    assert acrel.register("energy_total").scale == Decimal("0.01")
    assert acrel.register("power").data_type == "int16"
    assert acrel.relay == RegisterRelay(
        address=0x0057, cut_words=(1, 1), restore_words=(1, 0), unknown_words=((0, 0),)
    )
    sdm = get_profile("eastron_sdm120")
    assert sdm.max_registers_per_request == 80
    assert {sdm.function_of(r.key) for r in sdm.registers} == {4}
    assert [c.register_space for c in sdm.components] == ["input"]
    assert isinstance(sdm.relay, CoilRelay)
    assert sdm.relay.unit_id is None
    hiking = get_profile("hiking_dds238_2")
    assert hiking.write_functions == frozenset({16})
    chint = get_profile("chint_ddsu666")
    assert chint.register("power").scale == Decimal(1000)


def test_relay_module_location_is_configurable():
    sdm = get_profile("eastron_sdm630").with_relay_module(unit_id=9, coil=3)
    assert sdm.relay == CoilRelay(coil=3, unit_id=9)
    with pytest.raises(ProfileError, match="no separate relay module"):
        get_profile("acrel_ddsy1352").with_relay_module(unit_id=9)


def test_unknown_profile_names_the_known_ones():
    with pytest.raises(ProfileError, match="acrel_ddsy1352"):
        get_profile("nope")


def _reg(key="energy_total", address=0, **kw):
    return Register(key=key, address=address, **kw)


def MeterProfileOf(*, registers, max_registers_per_request=125, **kwargs):  # noqa: N802
    """A profile whose one FC03 component holds ``registers`` (as a custom map builds it)."""
    component = meter_component(
        "test_map", registers, space="holding", max_span=max_registers_per_request
    )
    return MeterProfile(components=(component,), **{"id": "x", "name": "X", **kwargs})


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"registers": (_reg(), _reg(address=1, data_type="uint32"))}, "duplicate"),
        ({"registers": (_reg(data_type="uint32"), _reg("power", address=1))}, "overlap"),
        ({"registers": (_reg("power"),)}, "needs 'energy_total'"),
        ({"registers": (_reg(),), "quantity": "water"}, "needs 'water_total'"),
        ({"registers": (_reg(),), "max_registers_per_request": 126}, "1..125"),
        ({"registers": (_reg(function=4),)}, "not in the holding space"),
        ({"registers": (_reg("values"), _reg(address=1))}, "reserved"),
        ({"registers": (_reg(),), "write_functions": frozenset({5})}, "subset"),
        (
            {
                "registers": (_reg(),),
                "write_functions": frozenset({6}),
                "relay": RegisterRelay(address=1, cut_words=(1, 1), restore_words=(1, 0)),
            },
            "FC16",
        ),
    ],
)
def test_inconsistent_profiles_are_refused(kwargs, message):
    with pytest.raises(ProfileError, match=message):
        MeterProfileOf(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"key": "Bad Key"}, "lower_snake_case"),
        ({"function": 5}, "function must be 3 or 4"),
        ({"data_type": "float64"}, "unknown data type"),
        ({"address": 0xFFFF, "data_type": "uint32"}, "outside"),
        ({"scale": Decimal(0)}, "non-zero"),
        ({"scale": Decimal("1e999999")}, "outside"),
        ({"scale": Decimal("-1e10")}, "outside"),
        ({"scale": Decimal("1e-10")}, "outside"),
        ({"word_order": "middle"}, "word/byte order"),
    ],
)
def test_bad_registers_are_refused(kwargs, message):
    with pytest.raises(ProfileError, match=message):
        Register(**{"key": "energy_total", "address": 0, **kwargs})


CUSTOM_YAML = """
id: my_water
name: My water meter
quantity: water
max_registers_per_request: 10
forbidden:
  - {start: 4, end: 7, function: 3}
write_functions: [16]
registers:
  - {key: water_total, address: 0, data_type: uint32, word_order: little, scale: "0.001", unit: m3}
  - {key: flow, address: 8, data_type: int16, scale: 0.1, unit: "l/min"}
relay: {type: register, address: 0x20, cut: [0], restore: [1]}
"""


def test_custom_profile_from_yaml():
    profile = load_custom_profile_yaml(CUSTOM_YAML)
    assert profile.quantity == "water"
    assert profile.total_key == "water_total"
    total = profile.register("water_total")
    assert (total.word_order, total.scale, total.unit) == ("little", Decimal("0.001"), "m3")
    assert profile.register("flow").scale == Decimal("0.1")
    assert profile.forbidden[0].start == 4
    assert profile.relay == RegisterRelay(address=0x20, cut_words=(0,), restore_words=(1,))
    # The map is one FC03 component; the forbidden range becomes its readable ranges.
    (component,) = profile.components
    assert component.register_space == "holding"
    assert component.max_span == 10
    assert component.register_ranges == ((0, 3), (8, 0xFFFF))


def test_custom_map_mixing_functions_gets_a_component_per_space():
    profile = load_custom_profile(
        {
            "id": "mixed",
            "name": "Mixed",
            "registers": [
                {"key": "energy_total", "address": 0, "function": 3, "data_type": "uint32"},
                {"key": "voltage", "address": 0, "function": 4},
            ],
        }
    )
    assert [c.register_space for c in profile.components] == ["holding", "input"]
    assert (profile.function_of("energy_total"), profile.function_of("voltage")) == (3, 4)


def test_readable_ranges_are_the_complement_of_the_forbidden_ones():
    forbidden = [AddressRange(start=10, end=19), AddressRange(start=15, end=30, function=4)]
    assert readable_ranges(forbidden, 3) == ((0, 9), (20, 0xFFFF))
    assert readable_ranges(forbidden, 4) == ((0, 9), (31, 0xFFFF))
    assert readable_ranges([AddressRange(start=0, end=0xFFFF)], 3) == ()
    assert readable_ranges([], 3) is None


def test_custom_coil_relay_defaults():
    profile = load_custom_profile(
        {
            "id": "m",
            "name": "M",
            "registers": [{"key": "energy_total", "address": 0}],
            "relay": {"type": "coil", "unit_id": 4},
        }
    )
    assert profile.relay == CoilRelay(coil=0, unit_id=4)
    assert profile.write_functions == frozenset({6, 16})


@pytest.mark.parametrize(
    ("definition", "message"),
    [
        ({"id": "m", "name": "M"}, "registers: required key not provided"),
        (
            {"id": "m", "name": "M", "registers": [{"key": "energy_total", "address": 70000}]},
            r"registers\[0\]\.address",
        ),
        (
            {
                "id": "m",
                "name": "M",
                "registers": [{"key": "energy_total", "address": 0, "scale": "x"}],
            },
            r"registers\[0\]\.scale: 'x' is not a number",
        ),
        (
            {
                "id": "m",
                "name": "M",
                "registers": [{"key": "energy_total", "address": 0, "data_type": "f"}],
            },
            r"registers\[0\]\.data_type",
        ),
        (
            {"id": "m", "name": "M", "registers": [{"key": "power", "address": 0}]},
            "needs 'energy_total'",
        ),
        (
            {
                "id": "m",
                "name": "M",
                "registers": [{"key": "energy_total", "address": 4}],
                "forbidden": [{"start": 0, "end": 9}],
            },
            "forbidden range",
        ),
    ],
)
def test_custom_profile_errors_name_the_field(definition, message):
    with pytest.raises(ProfileError, match=message):
        load_custom_profile(definition)


@pytest.mark.parametrize(
    ("text", "message"), [("id: [", "not valid YAML"), ("- a\n- b\n", "must be a YAML mapping")]
)
def test_custom_profile_yaml_errors(text, message):
    with pytest.raises(ProfileError, match=message):
        load_custom_profile_yaml(text)


@pytest.mark.parametrize(
    ("factory", "message"),
    [
        (lambda: AddressRange(start=5, end=4), "not valid"),
        (lambda: RegisterRelay(address=1, cut_words=(), restore_words=()), "same length"),
        (lambda: RegisterRelay(address=1, cut_words=(1,), restore_words=(1,)), "must differ"),
        (
            lambda: RegisterRelay(
                address=1, cut_words=(0,), restore_words=(1,), unknown_words=((1,),)
            ),
            "unknown-state",
        ),
        (lambda: RegisterRelay(address=1, cut_words=(70000,), restore_words=(1,)), "0..65535"),
        (lambda: RegisterRelay(address=0xFFFF, cut_words=(0, 1), restore_words=(1, 1)), "address"),
        (lambda: CoilRelay(coil=-1), "coil"),
        (lambda: CoilRelay(unit_id=248), "unit id"),
        (lambda: MeterProfileOf(id="", registers=(_reg(),)), "id and name"),
        (lambda: MeterProfileOf(quantity="gas", registers=(_reg(),)), "quantity"),
        (lambda: MeterProfileOf(registers=()), "at least one register"),
        (lambda: MeterProfile(id="x", name="X", components=()), "MeterComponent"),
        (
            lambda: MeterProfileOf(
                registers=(_reg(data_type="uint32"),), max_registers_per_request=1
            ),
            "wider than one request",
        ),
        (lambda: Register(key="v", address=0, plausible=(Decimal(2), Decimal(1))), "reversed"),
    ],
)
def test_relay_range_and_profile_validation(factory, message):
    with pytest.raises(ProfileError, match=message):
        factory()


def test_register_lookup_and_custom_number_errors():
    with pytest.raises(KeyError):
        get_profile("acrel_ddsy1352").register("nope")
    for scale, message in ((True, "expected a number"), ("inf", "finite")):
        with pytest.raises(ProfileError, match=message):
            load_custom_profile(
                {
                    "id": "m",
                    "name": "M",
                    "registers": [{"key": "energy_total", "address": 0, "scale": scale}],
                }
            )
