"""Value glitches a real meter sends, injected by the simulator and read by a real client.

Expected words come from the manuals' encodings worked here (IEEE-754 big-endian float32 for
the Eastron SDM120, uint32 in 0.01 kWh for the Acrel DDSY1352), with Python's ``struct`` and
``int.to_bytes``, not from the simulator's encoder.
"""

from __future__ import annotations

import math
import struct
from collections.abc import AsyncIterator

import pytest
from pymodbus.client import AsyncModbusTcpClient

from meter_simulator import ConstantLoad, MeterSimulator, SimulatedMeter

pytestmark = pytest.mark.usefixtures("socket_enabled")

SDM_UNIT, ACREL_UNIT = 2, 3
SDM_TOTAL, ACREL_TOTAL = 0x0048, 0x0000  # simulator maps: SDM120 import kWh FC04; Acrel FC03


def f32(value: float) -> list[int]:
    raw = struct.pack(">f", value)
    return [int.from_bytes(raw[:2], "big"), int.from_bytes(raw[2:], "big")]


def u32(counts: int) -> list[int]:
    return [counts >> 16, counts & 0xFFFF]


@pytest.fixture
async def meters() -> AsyncIterator[tuple[MeterSimulator, AsyncModbusTcpClient]]:
    """An SDM120 at 1000.5 kWh and an Acrel at 1234.56 kWh, with a stopped clock."""
    sim = MeterSimulator()
    still = 0.0  # a clock that never moves: the true totals stay put
    sim.add(SDM_UNIT, SimulatedMeter("eastron_sdm120", load=ConstantLoad(0), total=1000.5,
                                     clock=lambda: still))  # fmt: skip
    sim.add(ACREL_UNIT, SimulatedMeter("acrel_ddsy1352", load=ConstantLoad(0), total=1234.56,
                                       clock=lambda: still))  # fmt: skip
    port = await sim.start_tcp()
    client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=2, retries=0)
    await client.connect()
    try:
        yield sim, client
    finally:
        client.close()
        await sim.close()


async def sdm_total(client: AsyncModbusTcpClient) -> list[int]:
    reply = await client.read_input_registers(SDM_TOTAL, count=2, device_id=SDM_UNIT)
    return list(reply.registers)


async def acrel_total(client: AsyncModbusTcpClient) -> list[int]:
    reply = await client.read_holding_registers(ACREL_TOTAL, count=2, device_id=ACREL_UNIT)
    return list(reply.registers)


@pytest.mark.parametrize(
    ("kind", "amount", "words"),
    [
        ("zero", None, [0, 0]),
        ("jump", None, f32(1_001_000.5)),
        ("jump", 5.0, f32(1005.5)),
        ("swap_words", None, [0x2000, 0x447A]),  # 1000.5 is 0x447A_2000
        ("garbage", None, [0xDEAD, 0xBEEF]),
        ("step_back", 0.5, f32(1000.0)),
    ],
)
async def test_float_meter_glitches_for_exactly_n_reads(
    meters: tuple[MeterSimulator, AsyncModbusTcpClient],
    kind: str,
    amount: float | None,
    words: list[int],
) -> None:
    sim, client = meters
    assert await sdm_total(client) == [0x447A, 0x2000]
    sim.meter(SDM_UNIT).inject_glitch(kind, reads=2, amount=amount)  # type: ignore[arg-type]
    assert await sdm_total(client) == words
    assert await sdm_total(client) == words
    assert await sdm_total(client) == [0x447A, 0x2000]  # healthy again, true total unchanged
    assert sim.meter(SDM_UNIT).total == 1000.5


async def test_float_nan(meters: tuple[MeterSimulator, AsyncModbusTcpClient]) -> None:
    sim, client = meters
    sim.meter(SDM_UNIT).inject_glitch("nan")
    high, low = await sdm_total(client)
    (decoded,) = struct.unpack(">f", bytes([high >> 8, high & 0xFF, low >> 8, low & 0xFF]))
    assert math.isnan(decoded)


async def test_integer_meter_glitches(meters: tuple[MeterSimulator, AsyncModbusTcpClient]) -> None:
    sim, client = meters
    meter = sim.meter(ACREL_UNIT)
    assert await acrel_total(client) == u32(123_456)  # 1234.56 kWh in 0.01 kWh
    meter.inject_glitch("swap_words")
    assert await acrel_total(client) == [0xE240, 0x0001]
    meter.inject_glitch("jump")  # + 1,000,000 kWh = + 100,000,000 counts
    assert await acrel_total(client) == u32(100_123_456)
    assert await acrel_total(client) == u32(123_456)
    with pytest.raises(ValueError, match="no NaN"):
        meter.inject_glitch("nan")
    with pytest.raises(ValueError, match="glitch must be one of"):
        meter.inject_glitch("wobble")  # type: ignore[arg-type]


async def test_a_read_that_misses_the_total_does_not_use_up_the_glitch(
    meters: tuple[MeterSimulator, AsyncModbusTcpClient],
) -> None:
    sim, client = meters
    sim.meter(SDM_UNIT).inject_glitch("zero")
    voltage = await client.read_input_registers(0x0000, count=2, device_id=SDM_UNIT)
    assert list(voltage.registers) == f32(230.0)
    assert await sdm_total(client) == [0, 0]
    assert await sdm_total(client) == [0x447A, 0x2000]
