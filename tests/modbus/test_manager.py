"""One hub per line, shared by reference count; conflicting line settings are refused."""

from __future__ import annotations

from decimal import Decimal

import pytest

from custom_components.prepaid_meter.modbus import (
    EndpointConflict,
    HubManager,
    HubSettings,
    ModbusError,
    ModbusHub,
    SerialEndpoint,
    SerialSettingsConflict,
    TcpEndpoint,
)
from custom_components.prepaid_meter.profiles import get_profile

from .conftest import FAST, LOAD_W, UNITS

pytestmark = pytest.mark.enable_socket


async def test_same_serial_port_is_shared():
    manager = HubManager(FAST)
    first = manager.acquire(SerialEndpoint(port="/dev/ttyUSB0", baudrate=9600))
    second = manager.acquire(SerialEndpoint(port="/dev/ttyUSB0", baudrate=9600))
    assert first is second
    assert manager.users(first.endpoint) == 2
    await manager.release(first)
    assert manager.users(first.endpoint) == 1
    await manager.release(second)
    assert manager.users(first.endpoint) == 0
    with pytest.raises(ModbusError, match="not managed"):
        await manager.release(second)


async def test_serial_settings_conflict_is_refused():
    manager = HubManager()
    manager.acquire(SerialEndpoint(port="/dev/ttyUSB0", baudrate=9600))
    with pytest.raises(SerialSettingsConflict, match="/dev/ttyUSB0 is already open as"):
        manager.acquire(SerialEndpoint(port="/dev/ttyUSB0", baudrate=2400))
    with pytest.raises(SerialSettingsConflict):
        manager.acquire(SerialEndpoint(port="/dev/ttyUSB0", baudrate=9600, parity="E"))
    # Another port is another line.
    other = manager.acquire(SerialEndpoint(port="/dev/ttyUSB1", baudrate=2400))
    assert other.endpoint.baudrate == 2400
    await manager.close()


async def test_gateway_framing_conflict_is_refused():
    manager = HubManager()
    manager.acquire(TcpEndpoint(host="gw.local", port=502))
    with pytest.raises(EndpointConflict, match="already used"):
        manager.acquire(TcpEndpoint(host="GW.local", port=502, framing="rtu"))
    # Another port of the same host is another gateway: a hub of its own, nothing refused.
    other = manager.acquire(TcpEndpoint(host="gw.local", port=503))
    assert other.endpoint == TcpEndpoint(host="gw.local", port=503)
    assert manager.users(TcpEndpoint(host="gw.local", port=502)) == 1
    assert manager.users(TcpEndpoint(host="gw.local", port=503)) == 1
    await manager.close()


@pytest.mark.parametrize(
    ("factory", "message"),
    [
        (lambda: SerialEndpoint(port="/dev/x", baudrate=12), "baud rate"),
        (lambda: SerialEndpoint(port="/dev/x", parity="X"), "parity"),
        (lambda: SerialEndpoint(port="/dev/x", stopbits=3), "stop bits"),
        (lambda: SerialEndpoint(port="/dev/x", bytesize=5), "byte size"),
        (lambda: SerialEndpoint(port=" "), "must not be empty"),
        (lambda: TcpEndpoint(host="", port=502), "must not be empty"),
        (lambda: TcpEndpoint(host="h", port=0), "port"),
        (lambda: TcpEndpoint(host="h", framing="ascii"), "framing"),
    ],
)
def test_invalid_endpoints(factory, message):
    with pytest.raises(ValueError, match=message):
        factory()


async def test_two_entries_share_one_connection_to_the_simulator(sim, tcp_port):
    manager = HubManager(FAST)
    endpoint = TcpEndpoint(host="127.0.0.1", port=tcp_port)
    async with manager.lease(endpoint) as hub_a, manager.lease(endpoint) as hub_b:
        assert hub_a is hub_b
        acrel = await hub_a.read_meter(UNITS["acrel_ddsy1352"], get_profile("acrel_ddsy1352"))
        hiking = await hub_b.read_meter(UNITS["hiking_dds238_2"], get_profile("hiking_dds238_2"))
        # Both meters answer with what the simulator holds (the clock stands still).
        assert (acrel["energy_total"], acrel["power"]) == (Decimal("1234.50"), Decimal(1500))
        assert (hiking["energy_total"], hiking["power"]) == (Decimal("1234.50"), Decimal(1500))
        assert sim.stats.connections == 1
        assert hub_a.connected
    assert manager.users(endpoint) == 0
    assert not hub_a.connected


async def test_hub_validates_its_inputs(sim, hub):
    with pytest.raises(ValueError, match="unit id"):
        await hub.read_registers(300, 3, 0, 1)
    with pytest.raises(ValueError, match="read function"):
        await hub.read_registers(1, 1, 0, 1)
    with pytest.raises(ValueError, match="nothing to write"):
        await hub.write_registers(1, get_profile("acrel_ddsy1352"), 0x57, [])
    assert (await hub.read_meter(UNITS["acrel_ddsy1352"], get_profile("acrel_ddsy1352")))[
        "power"
    ] == LOAD_W


def test_settings_are_validated():
    with pytest.raises(ValueError, match="timeouts"):
        HubSettings(timeout=0)
    with pytest.raises(ValueError, match="frame gap"):
        HubSettings(frame_gap=-1)
    with pytest.raises(ValueError, match="reconnect"):
        HubSettings(reconnect_min=2, reconnect_max=1)
    with pytest.raises(ValueError, match="silent"):
        HubSettings(silent_requests_before_reset=0)
    with pytest.raises(ValueError, match="request cost"):
        HubSettings(request_cost=-1)
    with pytest.raises(ValueError, match="unit backoff"):
        HubSettings(unit_backoff_min=5, unit_backoff_max=1)
    assert ModbusHub(TcpEndpoint(host="h")).frame_gap == 0
