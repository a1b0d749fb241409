"""scripts/simulator's process end to end: start it, read it over TCP, inject a fault on stdin."""

from __future__ import annotations

import asyncio
import re
import sys

import modbus_connection as mc
import pytest
from modbus_connection.tmodbus import ModbusConnection

from custom_components.prepaid_meter.meter_errors import NoResponse
from custom_components.prepaid_meter.profiles import load_custom_profile_yaml

from .conftest import make_link

pytestmark = pytest.mark.enable_socket

CUSTOM = """
id: bench_water
name: Bench water meter
quantity: water
registers:
  - {key: water_total, address: 0, data_type: uint32, word_order: little, scale: "0.001", unit: m3}
  - {key: power, address: 2, data_type: int16}
"""


async def test_simulator_process_serves_and_takes_fault_commands(socket_enabled, tmp_path):
    profile_file = tmp_path / "water.yaml"
    profile_file.write_text(CUSTOM, encoding="utf-8")
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "meter_simulator",
        "--tcp",
        "127.0.0.1:0",
        "--meter",
        "1:acrel_ddsy1352:2000",
        "--meter",
        "2:bench_water:600",
        "--custom-profile",
        str(profile_file),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdin is not None
    assert process.stdout is not None
    connection = None
    try:
        line = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()
        match = re.search(r"Modbus TCP on 127\.0\.0\.1:(\d+)", line)
        assert match, line
        connection = ModbusConnection(
            mc.ModbusTcpParams(host="127.0.0.1", port=int(match.group(1)))
        )
        acrel = make_link(connection, "acrel_ddsy1352", 1, timeout=0.5)
        assert (await acrel.read_values())["power"] == 2000
        water = make_link(connection, load_custom_profile_yaml(CUSTOM), 2, timeout=0.5)
        assert (await water.read_values())["power"] == 600
        process.stdin.write(b"silence 1\n")
        await process.stdin.drain()
        while b"ok" not in await asyncio.wait_for(process.stdout.readline(), 10):
            pass
        with pytest.raises(NoResponse):
            await acrel.read_values()
        process.stdin.write(b"quit\n")
        await process.stdin.drain()
        assert await asyncio.wait_for(process.wait(), 10) == 0
    finally:
        if connection is not None:
            await connection.close()
        if process.returncode is None:
            process.kill()
            await process.wait()
