"""What ``modbus_connection`` now produces for us: typed exception responses, ManualComponents.

Expected values come from the Modbus application protocol (V1.1b3): section 7 for the
exception codes and their names, sections 6.3/6.4 (FC03/FC04), 6.5 (FC05), 6.6 (FC06) and
6.12 (FC16) for the requests a map or a relay must produce.
"""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import modbus_connection as mc
import pytest
from modbus_connection.mock import MockModbusConnection, ReadEvent, WriteEvent
from modbus_connection.model import ManualComponent

from custom_components.prepaid_meter.meter_errors import ExceptionResponse, WrongProfile
from custom_components.prepaid_meter.meter_link import MeterLink
from custom_components.prepaid_meter.profiles import (
    CoilRelay,
    RegisterRelay,
    get_profile,
    load_custom_profile_yaml,
)
from custom_components.prepaid_meter.profiles.model import ManualMap

#: Modbus application protocol, section 7: every exception code and its name.
SPEC_EXCEPTION_NAMES = {
    1: "illegal function",
    2: "illegal data address",
    3: "illegal data value",
    4: "server device failure",
    5: "acknowledge",
    6: "server device busy",
    8: "memory parity error",
    10: "gateway path unavailable",
    11: "gateway target device failed to respond",
}


@pytest.mark.parametrize(("code", "name"), sorted(SPEC_EXCEPTION_NAMES.items()))
def test_exception_response_names_the_code_as_the_spec_does(code, name):
    err = ExceptionResponse(7, mc.ModbusExceptionError.from_code(code, "detail"))
    assert str(err) == f"unit 7: refused with code {code} ({name}): detail"
    assert (err.unit_id, err.code) == (7, code)
    assert err.error.exception_code == code


@pytest.mark.parametrize("code", [None, 7, 9, 12])
def test_exception_response_to_a_code_the_spec_does_not_define(code):
    err = ExceptionResponse(3, mc.ModbusExceptionError(code, "odd"))
    assert str(err) == f"unit 3: refused with code {code or 0} (unknown exception): odd"
    assert err.code == (code or 0)
    assert type(err.error) is mc.ModbusExceptionError


def test_a_bare_library_error_becomes_its_typed_subclass():
    err = ExceptionResponse(1, mc.ModbusExceptionError(2, "refused"))
    assert isinstance(err.error, mc.IllegalDataAddressError)
    busy = ExceptionResponse(1, mc.ServerDeviceBusyError())
    assert isinstance(busy.error, mc.ServerDeviceBusyError)
    assert busy.code == 6


def _unit(unit_id: int = 1):
    return MockModbusConnection().for_unit(unit_id)


def _link(unit, profile, relay_unit=None) -> MeterLink:
    return MeterLink(unit, profile, unit_id=1, endpoint="mock", relay_unit=relay_unit)


@pytest.mark.parametrize(
    "error", [mc.IllegalFunctionError(), mc.IllegalDataAddressError(), mc.IllegalDataValueError()]
)
async def test_codes_1_to_3_in_a_test_read_mean_wrong_profile(error):
    unit = _unit()
    unit.fail_requests(error)
    with pytest.raises(WrongProfile) as err:
        await _link(unit, get_profile("acrel_ddsy1352")).probe()
    assert isinstance(err.value.__cause__, ExceptionResponse)


@pytest.mark.parametrize(
    "error", [mc.ServerDeviceFailureError(), mc.ServerDeviceBusyError(), mc.GatewayTargetError()]
)
async def test_other_codes_in_a_test_read_stay_exception_responses(error):
    unit = _unit()
    unit.fail_requests(error)
    with pytest.raises(ExceptionResponse) as err:
        await _link(unit, get_profile("acrel_ddsy1352")).probe()
    assert err.value.code == error.code


CUSTOM_YAML = """
id: my_water
name: My water meter
quantity: water
max_registers_per_request: 10
forbidden:
  - {start: 4, end: 7, function: 3}
registers:
  - {key: water_total, address: 0, data_type: uint32, word_order: little, scale: "0.001"}
  - {key: flow, address: 8, data_type: int16, scale: 0.1}
  - {key: voltage, address: 0, function: 4, data_type: float32}
"""


async def test_custom_map_is_read_by_manual_components():
    profile = load_custom_profile_yaml(CUSTOM_YAML)
    assert all(isinstance(c, ManualMap) for c in profile.components)
    unit = _unit()
    # uint32 with the low word first: 0x0001_0002 = 65538 -> 65.538 m3
    unit.holding.update({0: 0x0002, 1: 0x0001, 8: 0xFFF6})  # -10 -> -1.0
    unit.input.update({0: 0x4366, 1: 0x8000})  # IEEE 754 single 230.5
    values = await _link(unit, profile).read_values()
    assert values == {
        "water_total": Decimal("65.538"),
        "flow": Decimal("-1.0"),
        "voltage": Decimal("230.5"),
    }
    # The forbidden 4..7 is never touched: FC03 reads 0..1 and 8 apart, FC04 one block.
    assert sorted(unit.read_events, key=lambda e: (e.register_type, e.address)) == [
        ReadEvent("holding", 0, 2),
        ReadEvent("holding", 8, 1),
        ReadEvent("input", 0, 2),
    ]


async def test_firmware_variant_reads_the_same_registers_from_the_other_space():
    chint = get_profile("chint_ddsu666")
    variant = chint.with_read_function(3)
    assert [c.register_space for c in variant.components] == ["holding"]
    assert variant.registers == chint.registers
    assert variant == chint.with_read_function(3)
    unit = _unit()
    await _link(unit, variant).read_values()
    assert unit.read_events
    assert {event.register_type for event in unit.read_events} == {"holding"}


@pytest.mark.parametrize(("fc16_only", "function_code"), [(False, 0x06), (True, 0x10)])
async def test_one_word_register_relay_writes_with_fc06_unless_fc16_only(fc16_only, function_code):
    relay = RegisterRelay(address=0x20, cut_words=(0,), restore_words=(1,))
    unit = _unit()
    component = relay.component(unit, fc16_only=fc16_only)
    assert isinstance(component, ManualComponent)
    writes: list[WriteEvent] = []
    unit.on_write(writes.append)
    await component.write("words", 1)
    assert writes == [WriteEvent("holding", 0x20, [1], function_code)]


async def test_two_word_register_relay_reads_back_through_the_link():
    profile = get_profile("acrel_ddsy1352")
    unit = _unit()
    writes: list[WriteEvent] = []
    unit.on_write(writes.append)
    assert await _link(unit, profile).set_relay(False) is False
    # Acrel cuts with 0x0001 0x0001 at 0x0057: two registers always go out as FC16.
    assert writes == [WriteEvent("holding", 0x57, [1, 1], 0x10)]
    assert ReadEvent("holding", 0x57, 2) in unit.read_events


@pytest.mark.parametrize(
    ("closed_when", "closed", "coil"), [(True, False, False), (False, False, True)]
)
async def test_coil_relay_writes_fc05_on_the_relay_module(closed_when, closed, coil):
    relay = CoilRelay(coil=3, unit_id=9, closed_when=closed_when)
    profile = dataclasses.replace(get_profile("eastron_sdm120"), relay=relay)
    connection = MockModbusConnection()
    meter, module = connection.for_unit(1), connection.for_unit(9)
    writes: list[WriteEvent] = []
    module.on_write(writes.append)
    assert await _link(meter, profile, relay_unit=module).set_relay(closed) is closed
    assert writes == [WriteEvent("coil", 3, [coil], 0x05)]
    assert module.read_events == [ReadEvent("coil", 3, 1)]
    assert not meter.read_events
