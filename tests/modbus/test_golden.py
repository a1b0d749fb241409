"""Golden frames: register words as each manual lays them out, decoded by the profile.

The words are worked out by hand from the manuals' register tables (REFERENCE.md: address,
function, type, word order, resolution) and IEEE-754 by hand for the float meters, never
produced by our code or the simulator. They are loaded into ``modbus_connection``'s in-memory
unit and read through the profile's components, so the library plans the reads (register
space, spans) and our fields decode them: a profile with a wrong address, function, scale,
signedness or word order reads a different number here and fails.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from modbus_connection.mock import MockModbusConnection, MockModbusUnit

from custom_components.prepaid_meter.meter_link import MeterLink
from custom_components.prepaid_meter.profiles import (
    CoilRelay,
    MeterProfile,
    RegisterRelay,
    get_profile,
)
from meter_simulator.maps import get_map

# IEEE-754 single precision, high word first, worked by hand:
#   230.0 = 1.796875 * 2^7   -> 0x4366_0000      5.0 = 1.25 * 2^2     -> 0x40A0_0000
#   1150.0 = 1.123046875*2^10 -> 0x448F_C000     1.0                  -> 0x3F80_0000
#   50.0 = 1.5625 * 2^5      -> 0x4248_0000      1000.5 = 1000 + 2^-1 -> 0x447A_2000
#   12.25 = 1.53125 * 2^3    -> 0x4144_0000      2.5 = 1.25 * 2^1     -> 0x4020_0000
#   0.5                      -> 0x3F00_0000      231.0                -> 0x4367_0000
#   229.0                    -> 0x4365_0000      15.0                 -> 0x4170_0000
#   3450.0 = 1.6845703125*2^11 -> 0x4557_A000
F230, F5, F1150, F1, F50 = (0x4366, 0), (0x40A0, 0), (0x448F, 0xC000), (0x3F80, 0), (0x4248, 0)
F1000_5, F12_25, F2_5, F0_5 = (0x447A, 0x2000), (0x4144, 0), (0x4020, 0), (0x3F00, 0)
F231, F229, F15, F3450 = (0x4367, 0), (0x4365, 0), (0x4170, 0), (0x4557, 0xA000)

EASTRON_SINGLE = {  # FC04 input registers
    0x0000: F230, 0x0006: F5, 0x000C: F1150, 0x001E: F1, 0x0046: F50,
    0x0048: F1000_5, 0x004A: F12_25,
}  # fmt: skip
EASTRON_SINGLE_VALUES = {
    "voltage": "230", "current": "5", "power": "1150", "power_factor": "1",
    "frequency": "50", "energy_total": "1000.5", "energy_export": "12.25",
}  # fmt: skip

#: model -> (read function, {address: words}, {key: documented value})
GOLDEN: dict[str, tuple[int, dict[int, tuple[int, ...]], dict[str, str]]] = {
    # Acrel: 123456 x 0.01 kWh = 0x0001_E240; 2301 x 0.1 V = 0x08FD; 502 x 0.01 A = 0x01F6;
    # -500 x 0.001 kW = 0xFE0C (two's complement) = -500 W. Bands: 100.00 kWh = 0x2710.
    "acrel_ddsy1352": (
        3,
        {
            0x0000: (0x0001, 0xE240), 0x0002: (0x0000, 0x2710), 0x0004: (0x0000, 0x4E20),
            0x0006: (0x0000, 0x7530), 0x0008: (0x0000, 0x9C40), 0x000B: (0x08FD,),
            0x000C: (0x01F6,), 0x000D: (0xFE0C,),
        },
        {
            "energy_total": "1234.56", "energy_sharp": "100", "energy_peak": "200",
            "energy_flat": "300", "energy_valley": "400", "voltage": "230.1",
            "current": "5.02", "power": "-500",
        },
    ),
    "eastron_sdm120": (4, EASTRON_SINGLE, EASTRON_SINGLE_VALUES),
    "eastron_sdm230": (4, EASTRON_SINGLE, EASTRON_SINGLE_VALUES),
    "eastron_sdm630": (
        4,
        {
            0x0000: F230, 0x0002: F231, 0x0004: F229, 0x0006: F5, 0x0008: F5, 0x000A: F5,
            0x000C: F1150, 0x000E: F1150, 0x0010: F1150, 0x002A: F230, 0x0030: F15,
            0x0034: F3450, 0x003E: F1, 0x0046: F50, 0x0048: F1000_5, 0x004A: F12_25,
        },
        {
            "voltage_l1": "230", "voltage_l2": "231", "voltage_l3": "229",
            "current_l1": "5", "current_l2": "5", "current_l3": "5",
            "power_l1": "1150", "power_l2": "1150", "power_l3": "1150",
            "voltage": "230", "current": "15", "power": "3450", "power_factor": "1",
            "frequency": "50", "energy_total": "1000.5", "energy_export": "12.25",
        },
    ),
    # Chint: power is in kW on the wire (2.5 kW = 2500 W).
    "chint_ddsu666": (
        4,
        {
            0x2000: F230, 0x2002: F5, 0x2004: F2_5, 0x200A: F1, 0x200E: F50,
            0x4000: F1000_5, 0x400A: F0_5,
        },
        {
            "voltage": "230", "current": "5", "power": "2500", "power_factor": "1",
            "frequency": "50", "energy_total": "1000.5", "energy_export": "0.5",
        },
    ),
    # Hiking: 0x0000 is import + export (30000 = 300.00 kWh) and must not be billed;
    # export 0x04D2 = 12.34, import 0x705E = 287.66; 0x08FA = 229.8 V; 0x01C2 = 4.50 A;
    # 0x03E8 = 1000 W; 0x03D9 = 0.985; 0x1389 = 50.01 Hz.
    "hiking_dds238_2": (
        3,
        {
            0x0000: (0x0000, 0x7530), 0x0008: (0x0000, 0x04D2), 0x000A: (0x0000, 0x705E),
            0x000C: (0x08FA,), 0x000D: (0x01C2,), 0x000E: (0x03E8,), 0x0010: (0x03D9,),
            0x0011: (0x1389,),
        },
        {
            "energy_export": "12.34", "energy_total": "287.66", "voltage": "229.8",
            "current": "4.5", "power": "1000", "power_factor": "0.985", "frequency": "50.01",
        },
    ),
}  # fmt: skip


def _words_at(frame: dict[int, tuple[int, ...]]) -> dict[int, int]:
    return {start + i: word for start, words in frame.items() for i, word in enumerate(words)}


SPACE = {3: "holding", 4: "input"}


def _unit(function: int, frame: dict[int, tuple[int, ...]]) -> MockModbusUnit:
    unit = MockModbusConnection().for_unit(1)
    unit.load_raw({SPACE[function]: _words_at(frame)})
    return unit


async def _read(profile: MeterProfile, unit: MockModbusUnit) -> dict[str, Decimal]:
    return await MeterLink(unit, profile, unit_id=1, endpoint="mock").read_values()


@pytest.mark.parametrize("model", list(GOLDEN))
async def test_profile_decodes_the_manual_frame(model: str) -> None:
    function, frame, documented = GOLDEN[model]
    profile = get_profile(model)
    assert {r.key for r in profile.registers} == set(documented)
    assert {profile.function_of(r.key) for r in profile.registers} == {function}
    unit = _unit(function, frame)
    values = await _read(profile, unit)
    assert values == {key: Decimal(text) for key, text in documented.items()}
    # Every read stayed in the manual's register space and within the device's span.
    assert {event.register_type for event in unit.read_events} == {SPACE[function]}
    assert all(event.count <= profile.max_registers_per_request for event in unit.read_events)


async def test_chint_firmware_that_answers_fc03_reads_the_same_frame() -> None:
    """Chint's manual says "read command is 03H": the same words in holding registers."""
    function, frame, documented = GOLDEN["chint_ddsu666"]
    profile = get_profile("chint_ddsu666")
    assert (function, profile.fallback_read_function) == (4, 3)
    unit = _unit(3, frame)
    values = await _read(profile.with_read_function(3), unit)
    assert values == {key: Decimal(text) for key, text in documented.items()}
    assert {event.register_type for event in unit.read_events} == {"holding"}


@pytest.mark.parametrize(
    ("model", "closed", "function_code", "address", "words"),
    [
        ("acrel_ddsy1352", False, 0x10, 0x0057, [0x0001, 0x0001]),  # manual: trip
        ("acrel_ddsy1352", True, 0x10, 0x0057, [0x0001, 0x0000]),  # manual: close
        ("hiking_dds238_2", False, 0x10, 0x001A, [0x0000]),  # FC16 only, even for one word
        ("hiking_dds238_2", True, 0x10, 0x001A, [0x0001]),
    ],
)
async def test_relay_commands_are_the_manual_frames(
    model: str, closed: bool, function_code: int, address: int, words: list[int]
) -> None:
    unit = MockModbusConnection().for_unit(1)
    written = []
    unit.on_write(written.append)
    link = MeterLink(unit, get_profile(model), unit_id=1, endpoint="mock")
    assert await link.set_relay(closed) is closed
    (event,) = written
    assert (event.function_code, event.address, event.values) == (function_code, address, words)


async def test_relay_module_coil_on_its_own_unit() -> None:
    connection = MockModbusConnection()
    meter, module = connection.for_unit(2), connection.for_unit(10)
    profile = get_profile("eastron_sdm120").with_relay_module(10, coil=3)
    assert profile.relay == CoilRelay(coil=3, unit_id=10)
    link = MeterLink(meter, profile, unit_id=2, endpoint="mock", relay_unit=module)
    assert await link.set_relay(False) is False
    assert module.coil[3] is False
    assert await link.set_relay(True) is True
    assert module.coil[3] is True
    assert meter.coil == {}


@pytest.mark.parametrize("model", list(GOLDEN))
def test_simulator_answers_the_manual_frame(model: str) -> None:
    """The simulator's own maps put the same words where the manual does."""
    function, frame, documented = GOLDEN[model]
    meter_map = get_map(model)
    assert function in meter_map.read_functions
    by_key = {value.key: value for value in meter_map.values}
    for key, text in documented.items():
        value = by_key[key]
        assert tuple(value.encode(Decimal(text))) == frame[value.address], key


@pytest.mark.parametrize(
    ("model", "words", "closed"),
    [
        ("acrel_ddsy1352", (0x0001, 0x0001), False),  # manual: 0001 0001 trips
        ("acrel_ddsy1352", (0x0001, 0x0000), True),  # manual: 0001 0000 closes
        ("acrel_ddsy1352", (0x0000, 0x0000), None),  # never commanded: unknown, accepted
        ("hiking_dds238_2", (0x0000,), False),
        ("hiking_dds238_2", (0x0001,), True),
    ],
)
def test_relay_words_read_back(model: str, words: tuple[int, ...], closed: bool | None) -> None:
    relay = get_profile(model).relay
    assert isinstance(relay, RegisterRelay)
    assert relay.state(words) is closed
    assert get_map(model).relay is not None


def test_relay_words_that_mean_nothing_are_refused() -> None:
    relay = get_profile("acrel_ddsy1352").relay
    assert isinstance(relay, RegisterRelay)
    with pytest.raises(ValueError, match="neither"):
        relay.state((0x1234, 0x0000))
