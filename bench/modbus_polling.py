"""Modbus polling benchmark: our planner + shared hub against Home Assistant core's modbus.

Scenario: 32 meters behind one Modbus TCP gateway (the simulator), the six built-in models
round-robin, each polled for the standard values (energy/water total, power, voltage,
current, frequency, power factor where the model has them).

1. Ours: ``ModbusHub.read_meter`` per meter (block-planned reads on one shared connection).
2. Core: Home Assistant's own ``modbus`` integration, configured as YAML would configure it,
   one sensor per value, reading the same registers from the same simulator in the same run.
   Both sides are polled on demand (scan_interval 0 for core) so only the reads are timed.
   The same pair is then timed once more with the gateway's bus at 9600 baud (informational).
3. RTU at 9600 baud over a pseudo-terminal with the simulator imposing wire time: our cycle
   against the bound computed from the frame sizes (request + response + 2 x 3.5 silent
   characters per exchange, 11 bits per character). Then once more with wire-cost planning
   (``HubSettings.request_cost``), which reads fewer unused registers (informational).

Run as ``scripts/run python bench/modbus_polling.py [--cycles N]``. The last line reads
``modbus_polling: requests_ratio=N cycle_ratio=N rtu_wire_ratio=N``: core/ours for the first
two (higher is better for us), ours/bound for the third (1.0 is the physical limit).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Any

from custom_components.prepaid_meter.modbus import (
    HubSettings,
    ModbusHub,
    SerialEndpoint,
    TcpEndpoint,
)
from custom_components.prepaid_meter.modbus.planner import RTU_REQUEST_COST, plan_reads
from custom_components.prepaid_meter.profiles import PROFILES, MeterProfile
from meter_simulator import ConstantLoad, MeterSimulator, SimulatedMeter, rtu_exchange_time

METERS = 32
STANDARD_KEYS = (
    "energy_total",
    "water_total",
    "power",
    "voltage",
    "current",
    "frequency",
    "power_factor",
)
WIRE_BAUD = 9600


@dataclass(frozen=True)
class Meter:
    unit_id: int
    profile: MeterProfile
    keys: tuple[str, ...]


@dataclass
class Result:
    requests_per_meter: float
    cycle_seconds: float


def fleet(count: int = METERS) -> list[Meter]:
    profiles = list(PROFILES.values())
    meters = []
    for index in range(count):
        profile = profiles[index % len(profiles)]
        keys = tuple(k for k in STANDARD_KEYS if k in {r.key for r in profile.registers})
        meters.append(Meter(index + 1, profile, keys))
    return meters


def simulator(meters: list[Meter], wire_baudrate: int | None = None) -> MeterSimulator:
    sim = MeterSimulator(wire_baudrate=wire_baudrate)
    for meter in meters:
        sim.add(
            meter.unit_id, SimulatedMeter(meter.profile.id, load=ConstantLoad(1200.0), total=500.0)
        )
    return sim


async def poll_ours(hub: ModbusHub, meters: list[Meter]) -> None:
    # Every meter is polled at once, as the integration's coordinators would; the hub
    # serialises them on the one connection.
    await asyncio.gather(*(hub.read_meter(m.unit_id, m.profile, m.keys) for m in meters))


async def bench_ours(sim: MeterSimulator, port: int, meters: list[Meter], cycles: int) -> Result:
    hub = ModbusHub(TcpEndpoint(host="127.0.0.1", port=port), HubSettings(timeout=2.0))
    try:
        await poll_ours(hub, meters)  # connect + warm up
        before = sim.stats.requests
        times = []
        for _ in range(cycles):
            started = time.perf_counter()
            await poll_ours(hub, meters)
            times.append(time.perf_counter() - started)
        requests = sim.stats.requests - before
    finally:
        await hub.close()
    return Result(requests / cycles / len(meters), statistics.median(times))


def core_sensor(meter: Meter, key: str) -> dict[str, Any]:
    register = meter.profile.register(key)
    swap = {
        ("big", "big"): None,
        ("big", "little"): "byte",
        ("little", "big"): "word",
        ("little", "little"): "word_byte",
    }[(register.word_order, register.byte_order)]
    config: dict[str, Any] = {
        "name": f"meter {meter.unit_id} {key}",
        "unique_id": f"bench_{meter.unit_id}_{key}",
        "device_address": meter.unit_id,
        "address": register.address,
        "input_type": "holding" if register.function == 3 else "input",
        "data_type": register.data_type,
        "scale": float(register.scale),
        "precision": 4,
        "scan_interval": 0,
    }
    if swap:
        config["swap"] = swap
    return config


async def bench_core(
    sim: MeterSimulator, port: int, meters: list[Meter], cycles: int
) -> Result | None:
    try:
        from homeassistant.components.modbus.const import DATA_MODBUS_HUBS  # noqa: PLC0415
        from homeassistant.helpers import frame  # noqa: PLC0415
        from homeassistant.helpers.entity_platform import async_get_platforms  # noqa: PLC0415
        from homeassistant.setup import async_setup_component  # noqa: PLC0415
        from pytest_homeassistant_custom_component.common import (  # noqa: PLC0415
            async_test_home_assistant,
        )
    except ImportError as err:
        print(f"core modbus not available ({err}); skipping the side-by-side run")
        return None
    config = {
        "modbus": [
            {
                "name": "gateway",
                "type": "tcp",
                "host": "127.0.0.1",
                "port": port,
                "timeout": 2,
                "sensors": [core_sensor(m, key) for m in meters for key in m.keys],
            }
        ]
    }
    with tempfile.TemporaryDirectory() as config_dir:
        async with async_test_home_assistant(config_dir=config_dir) as hass:
            frame.async_setup(hass)
            assert await async_setup_component(hass, "modbus", config)
            await hass.async_block_till_done()
            hub = hass.data[DATA_MODBUS_HUBS]["gateway"]
            await asyncio.wait_for(hub.event_connected.wait(), 10)
            entities = [e for p in async_get_platforms(hass, "modbus") for e in p.entities.values()]
            expected = sum(len(m.keys) for m in meters)
            assert len(entities) == expected, (len(entities), expected)

            async def poll() -> None:
                await asyncio.gather(*(e.async_update() for e in entities))

            await poll()
            sample = hass.states.get(entities[0].entity_id)
            assert sample is not None
            assert sample.state not in {"unavailable", "unknown"}, sample
            before = sim.stats.requests
            times = []
            for _ in range(cycles):
                started = time.perf_counter()
                await poll()
                times.append(time.perf_counter() - started)
            requests = sim.stats.requests - before
            await hass.async_stop(force=True)
    return Result(requests / cycles / len(meters), statistics.median(times))


def wire_bound(meters: list[Meter], request_cost: float | None = None) -> float:
    """Seconds one poll cycle needs on a 9600-baud line, from the frames alone."""
    total = 0.0
    for meter in meters:
        for block in plan_reads(meter.profile, meter.keys, request_cost):
            request_pdu = 5  # function + address + count
            response_pdu = 2 + 2 * block.count  # function + byte count + data
            total += rtu_exchange_time(request_pdu, response_pdu, WIRE_BAUD)
    return total


async def bench_rtu(
    meters: list[Meter], cycles: int, request_cost: float | None = None
) -> tuple[float, float]:
    sim = simulator(meters, wire_baudrate=WIRE_BAUD)
    path = sim.open_pty()
    settings = HubSettings(timeout=2.0, request_cost=request_cost)
    hub = ModbusHub(SerialEndpoint(port=path, baudrate=WIRE_BAUD), settings)
    try:
        await hub.read_meter(meters[0].unit_id, meters[0].profile, meters[0].keys)
        times = []
        for _ in range(cycles):
            started = time.perf_counter()
            await poll_ours(hub, meters)
            times.append(time.perf_counter() - started)
    finally:
        await hub.close()
        await sim.close()
    return statistics.median(times), wire_bound(meters, request_cost)


async def main(cycles: int, rtu_cycles: int, wire_cycles: int) -> str:
    logging.basicConfig(level=logging.WARNING)
    meters = fleet()
    sim = simulator(meters)
    port = await sim.start_tcp()
    try:
        ours = await bench_ours(sim, port, meters, cycles)
        core = await bench_core(sim, port, meters, cycles)
    finally:
        await sim.close()
    values = sum(len(m.keys) for m in meters)
    print(f"fleet: {len(meters)} meters, {values} values, models {', '.join(PROFILES)}")
    print(
        f"ours : {ours.requests_per_meter:.2f} requests/meter/poll, "
        f"cycle {ours.cycle_seconds * 1000:.1f} ms (median of {cycles})"
    )
    if core is not None:
        print(
            f"core : {core.requests_per_meter:.2f} requests/meter/poll, "
            f"cycle {core.cycle_seconds * 1000:.1f} ms (median of {cycles})"
        )
    if core is not None and wire_cycles:
        # The same comparison with the gateway's RS485 side at 9600 baud, where real buses live.
        slow = simulator(meters, wire_baudrate=WIRE_BAUD)
        slow_port = await slow.start_tcp()
        try:
            ours_wire = await bench_ours(slow, slow_port, meters, wire_cycles)
            core_wire = await bench_core(slow, slow_port, meters, wire_cycles)
        finally:
            await slow.close()
        if core_wire is not None:
            print(
                f"9600-baud bus behind the gateway: ours {ours_wire.cycle_seconds * 1000:.0f} ms,"
                f" core {core_wire.cycle_seconds * 1000:.0f} ms per cycle"
                f" ({core_wire.cycle_seconds / ours_wire.cycle_seconds:.2f}x)"
            )
    rtu_cycle, bound = await bench_rtu(meters, rtu_cycles)
    print(
        f"rtu  : {WIRE_BAUD} baud, cycle {rtu_cycle * 1000:.0f} ms, "
        f"wire-time bound {bound * 1000:.0f} ms (median of {rtu_cycles})"
    )
    lean_cycle, lean_bound = await bench_rtu(meters, rtu_cycles, RTU_REQUEST_COST)
    print(
        f"rtu  : same line with wire-cost planning (request_cost={RTU_REQUEST_COST:g}): cycle "
        f"{lean_cycle * 1000:.0f} ms, bound {lean_bound * 1000:.0f} ms, "
        f"{rtu_cycle / lean_cycle:.2f}x faster than fewest-requests"
    )
    requests_ratio = core.requests_per_meter / ours.requests_per_meter if core else float("nan")
    cycle_ratio = core.cycle_seconds / ours.cycle_seconds if core else float("nan")
    return (
        f"modbus_polling: requests_ratio={requests_ratio:.2f} cycle_ratio={cycle_ratio:.2f} "
        f"rtu_wire_ratio={rtu_cycle / bound:.2f}"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=20, help="TCP poll cycles to time")
    parser.add_argument("--rtu-cycles", type=int, default=2, help="9600-baud cycles to time")
    parser.add_argument(
        "--wire-cycles",
        type=int,
        default=1,
        help="ours vs core behind a 9600-baud gateway (0: skip)",
    )
    args = parser.parse_args()
    print(asyncio.run(main(args.cycles, args.rtu_cycles, args.wire_cycles)))
    sys.exit(0)
