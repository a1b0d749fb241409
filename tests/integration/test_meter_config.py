"""Subentry data to Modbus values: the pure translation the flow and setup share."""

from __future__ import annotations

import modbus_connection as mc
import pytest

from custom_components.prepaid_meter.meter_config import (
    line_key,
    modbus_params,
    profile_from_config,
)
from custom_components.prepaid_meter.profiles import CoilRelay, ProfileError

SERIAL = {
    "connection": "serial",
    "serial_port": "/dev/ttyUSB0",
    "baudrate": 2400,
    "parity": "E",
    "stopbits": 1,
    "bytesize": 8,
}


def test_serial_params() -> None:
    assert modbus_params(SERIAL) == mc.ModbusSerialParams(
        device="/dev/ttyUSB0", baudrate=2400, parity="E", stopbits=1, bytesize=8
    )
    # The selector's keys (hassfest: lowercase) and the codes older versions stored.
    for stored, code in (("none", "N"), ("even", "E"), ("odd", "O"), ("O", "O")):
        params = modbus_params({**SERIAL, "parity": stored})
        assert isinstance(params, mc.ModbusSerialParams)
        assert params.parity == code
    for bad in ({"baudrate": 100}, {"stopbits": 3}, {"bytesize": 6}, {"parity": "x"}):
        with pytest.raises(ValueError, match=r"baud|stop|byte|parity"):
            modbus_params({**SERIAL, **bad})


def test_rtu_over_tcp_is_a_serial_link_on_a_socket() -> None:
    """Core modbus's canonical form, so both spellings of the gateway share a connection."""
    params = modbus_params({"connection": "rtu_over_tcp", "host": "GW", "port": 4196})
    assert params == mc.ModbusSerialParams(device="socket://gw:4196", baudrate=115200)
    # What core modbus turns ModbusTcpParams(host="gw", port=4196, framer="rtu") into.
    assert params.endpoint == ("serial", "socket://gw:4196")


def test_tcp_params_and_line_key() -> None:
    data = {"connection": "tcp", "host": " Gateway.lan ", "port": 502}
    assert modbus_params(data) == mc.ModbusTcpParams(host="gateway.lan", port=502)
    # The unique-id format stored by earlier versions, framing-independent.
    assert line_key(data) == "tcp://gateway.lan:502"
    assert line_key({**data, "connection": "rtu_over_tcp"}) == "tcp://gateway.lan:502"
    assert line_key(SERIAL) == "serial:///dev/ttyUSB0"
    with pytest.raises(ValueError, match="port"):
        modbus_params({**data, "port": 70000})


def test_relay_module_is_optional_for_coil_relays() -> None:
    assert profile_from_config({"profile": "eastron_sdm120"}).relay is None
    profile = profile_from_config(
        {"profile": "eastron_sdm230", "relay_unit_id": 20, "relay_coil": 3}
    )
    assert profile.relay == CoilRelay(coil=3, unit_id=20)
    assert profile_from_config({"profile": "acrel_ddsy1352"}).relay is not None


def test_custom_profile_keeps_its_own_relay_module() -> None:
    definition = """
id: mine
name: Mine
registers:
  - {key: energy_total, address: 0, data_type: uint32, scale: "0.01", unit: kWh}
relay: {type: coil, coil: 2, unit_id: 30, closed_when: true}
"""
    profile = profile_from_config({"profile": "custom", "custom_profile": definition})
    assert profile.relay == CoilRelay(coil=2, unit_id=30)


def test_unknown_profile_is_a_profile_error() -> None:
    with pytest.raises(ProfileError, match="unknown meter profile"):
        profile_from_config({"profile": "nope"})
