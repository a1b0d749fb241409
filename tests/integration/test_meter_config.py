"""Subentry data to Modbus values: the pure translation the flow and setup share."""

from __future__ import annotations

import pytest

from custom_components.prepaid_meter.meter_config import (
    endpoint_from_config,
    hub_settings_from_config,
    profile_from_config,
)
from custom_components.prepaid_meter.modbus.endpoint import SerialEndpoint, TcpEndpoint
from custom_components.prepaid_meter.profiles import CoilRelay, ProfileError

SERIAL = {
    "connection": "serial",
    "serial_port": "/dev/ttyUSB0",
    "baudrate": 2400,
    "parity": "E",
    "stopbits": 1,
    "bytesize": 8,
}


def test_serial_endpoint_and_frame_gap() -> None:
    assert endpoint_from_config(SERIAL) == SerialEndpoint(
        port="/dev/ttyUSB0", baudrate=2400, parity="E", stopbits=1, bytesize=8
    )
    # The selector's keys (hassfest: lowercase) and the codes older versions stored.
    for stored, code in (("none", "N"), ("even", "E"), ("odd", "O"), ("O", "O")):
        assert endpoint_from_config({**SERIAL, "parity": stored}).parity == code
    assert hub_settings_from_config(SERIAL) is None
    settings = hub_settings_from_config({**SERIAL, "frame_gap_ms": 20})
    assert settings is not None
    assert settings.frame_gap == pytest.approx(0.020)


def test_rtu_over_tcp_endpoint() -> None:
    endpoint = endpoint_from_config({"connection": "rtu_over_tcp", "host": "gw", "port": 4196})
    assert endpoint == TcpEndpoint(host="gw", port=4196, framing="rtu")


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
