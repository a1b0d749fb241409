"""Modbus polling benchmark: our integration on core's shared Modbus stack vs core's YAML modbus.

Scenario: 32 meters behind one Modbus TCP gateway (the simulator), the six built-in models
round-robin, each polled for the standard values (energy/water total, power, voltage,
current, frequency, power factor where the model has them).

Like with like: both sides run inside a real Home Assistant and end in entity state writes.

1. Ours: the prepaid_meter integration set up in Home Assistant with one meter subentry per
   meter (a real ledger on SQLite behind it, as setup needs), every meter coordinator
   refreshed at once; each refresh reads the meter's whole profile (its ``modbus_connection``
   components, planned by that library, through a unit core ``modbus`` hands out), its relay
   where the model has one, and writes its entities' states.
2. Core: Home Assistant's own ``modbus`` integration configured in YAML on the same
   simulator, twice: one sensor per value, and batched the way a careful user would
   (``virtual_count``: one sensor reading a run of same-typed, same-scaled values, gaps read
   and ignored, within the model's request limit). Polled on demand (scan_interval 0).
   All three are then timed over several cycles with the gateway's bus at 9600 baud.
3. RTU at 9600 baud over a pseudo-terminal with the simulator imposing wire time: our links
   (every meter's whole profile, on one shared ``modbus_connection`` serial connection)
   against a wire-time bound computed here from the Modbus serial-line specification (RTU
   ADU sizes, 11 bits per character, 3.5 characters of silence before each frame) for the
   very reads the simulator received, not from the simulator's delay function. Twice: with
   the gap the integration bridges on RTU (``RTU_MAX_GAP``) and bridging every gap (fewest
   requests), to show what the RTU setting is worth.

Run as ``scripts/run python bench/modbus_polling.py [--cycles N]``. The last line reads
``modbus_polling: requests_ratio=N batched_requests_ratio=N cycle_ratio=N batched_cycle_ratio=N
wire_ratio=N batched_wire_ratio=N rtu_wire_ratio=N``: core/ours (higher is better for us),
except the last, ours/bound (1.0 is the physical limit).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import modbus_connection as mc
from modbus_connection.tmodbus import ModbusConnection

from custom_components.prepaid_meter.meter_link import ANSWER_TIMEOUT, RTU_MAX_GAP, MeterLink
from custom_components.prepaid_meter.profiles import PROFILES, MeterProfile
from meter_simulator import ConstantLoad, MeterSimulator, SimulatedMeter

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


class _Resolver(aiohttp.ThreadedResolver):
    """The threaded resolver with the ``real_close`` Home Assistant calls on shutdown."""

    async def real_close(self) -> None:
        await self.close()


@asynccontextmanager
async def home_assistant() -> AsyncIterator[Any]:
    """A real Home Assistant in a temporary config directory, custom integrations enabled.

    Its HTTP client resolves names with aiohttp's threaded resolver: the zeroconf-backed one
    needs the network integration, which a benchmark on loopback does not set up.
    """
    from unittest.mock import patch  # noqa: PLC0415

    from homeassistant import loader  # noqa: PLC0415
    from homeassistant.helpers import aiohttp_client, frame  # noqa: PLC0415
    from pytest_homeassistant_custom_component.common import (  # noqa: PLC0415
        async_test_home_assistant,
    )

    with (
        tempfile.TemporaryDirectory() as config_dir,
        patch.object(aiohttp_client, "_async_make_resolver", lambda _hass: _Resolver()),
    ):
        async with async_test_home_assistant(config_dir=config_dir) as hass:
            frame.async_setup(hass)
            hass.data.pop(loader.DATA_CUSTOM_COMPONENTS, None)
            yield hass
            await hass.async_stop(force=True)


@asynccontextmanager
async def ledger() -> AsyncIterator[tuple[str, str]]:
    """The real ledger on SQLite on a free loopback port: (url, admin token)."""
    import secrets  # noqa: PLC0415

    from aiohttp import web  # noqa: PLC0415
    from prepaid_ledger.app import create_app  # noqa: PLC0415
    from prepaid_ledger.config import Settings  # noqa: PLC0415
    from prepaid_ledger.store.database import sqlite_url  # noqa: PLC0415

    token = secrets.token_urlsafe(16)
    with tempfile.TemporaryDirectory() as data_dir:
        path = Path(data_dir)
        settings = Settings(data_dir=path, database_url=sqlite_url(path), admin_token=token)
        runner = web.AppRunner(create_app(settings))
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        try:
            yield f"http://127.0.0.1:{runner.addresses[0][1]}", token
        finally:
            await runner.cleanup()


async def timed(
    sim: MeterSimulator, poll: Callable[[], Any], meters: list[Meter], cycles: int
) -> Result:
    await poll()  # connect + warm up
    before = sim.stats.requests
    times = []
    for _ in range(cycles):
        started = time.perf_counter()
        await poll()
        times.append(time.perf_counter() - started)
    requests = sim.stats.requests - before
    return Result(requests / cycles / len(meters), statistics.median(times))


async def bench_ours(sim: MeterSimulator, port: int, meters: list[Meter], cycles: int) -> Result:
    """Our integration in Home Assistant: every meter coordinator refreshed, entities written."""
    from homeassistant.config_entries import ConfigSubentryData  # noqa: PLC0415
    from pytest_homeassistant_custom_component.common import MockConfigEntry  # noqa: PLC0415

    from custom_components.prepaid_meter.meter_flow import meter_unique_id  # noqa: PLC0415

    subentries = []
    for meter in meters:
        data = {
            "name": f"meter {meter.unit_id}",
            "profile": meter.profile.id,
            "connection": "tcp",
            "host": "127.0.0.1",
            "port": port,
            "unit_id": meter.unit_id,
        }
        subentries.append(
            ConfigSubentryData(
                data=data,
                subentry_type="meter",
                title=data["name"],
                unique_id=meter_unique_id(data),
            )
        )
    async with ledger() as (url, token), home_assistant() as hass:
        entry = MockConfigEntry(
            domain="prepaid_meter",
            data={"url": url, "token": token},
            subentries_data=subentries,
        )
        entry.add_to_hass(hass)
        assert await hass.config_entries.async_setup(entry.entry_id)
        await hass.async_block_till_done()
        coordinators = list(entry.runtime_data.meters.values())
        assert len(coordinators) == len(meters)

        async def poll() -> None:
            await asyncio.gather(*(c.async_refresh() for c in coordinators))

        result = await timed(sim, poll, meters, cycles)
        assert all(c.last_update_success for c in coordinators)
        await hass.config_entries.async_unload(entry.entry_id)
    return result


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
        "input_type": "holding" if meter.profile.function_of(key) == 3 else "input",
        "data_type": register.data_type,
        "scale": float(register.scale),
        "precision": 4,
        "scan_interval": 0,
    }
    if swap:
        config["swap"] = swap
    return config


def core_batched_sensors(meter: Meter) -> list[dict[str, Any]]:
    """The meter's values as a careful YAML user would batch them with ``virtual_count``.

    Runs of values of one function, data type, word/byte order and scale share one sensor;
    the values in the gaps of a run are read too (extra virtual sensors nobody looks at), as
    long as the run stays within the model's request limit.
    """

    def function(register: Any) -> int:
        return meter.profile.function_of(register.key)

    registers = sorted(
        (meter.profile.register(k) for k in meter.keys), key=lambda r: (function(r), r.address)
    )
    groups: list[list[Any]] = []
    for register in registers:
        if groups:
            first, last = groups[-1][0], groups[-1][-1]
            same_kind = (function(first), first.data_type, first.word_order, first.byte_order,
                         first.scale) == (function(register), register.data_type,
                                          register.word_order, register.byte_order,
                                          register.scale)  # fmt: skip
            aligned = (register.address - first.address) % first.count == 0
            span = register.end - first.address + 1
            if (
                same_kind
                and aligned
                and register.address > last.end
                and span <= meter.profile.max_registers_per_request
            ):
                groups[-1].append(register)
                continue
        groups.append([register])
    sensors = []
    for group in groups:
        first, last = group[0], group[-1]
        config = core_sensor(meter, first.key)
        items = (last.end - first.address + 1) // first.count
        if items > 1:
            config["virtual_count"] = items - 1
        sensors.append(config)
    return sensors


async def bench_core(
    sim: MeterSimulator, port: int, meters: list[Meter], cycles: int, *, batched: bool = False
) -> Result | None:
    try:
        from homeassistant.components.modbus.const import DATA_MODBUS_HUBS  # noqa: PLC0415
        from homeassistant.components.modbus.sensor import (  # noqa: PLC0415
            ModbusRegisterSensor,
        )
        from homeassistant.helpers.entity_platform import async_get_platforms  # noqa: PLC0415
        from homeassistant.setup import async_setup_component  # noqa: PLC0415
    except ImportError as err:
        print(f"core modbus not available ({err}); skipping the side-by-side run")
        return None
    if batched:
        sensors = [c for m in meters for c in core_batched_sensors(m)]
    else:
        sensors = [core_sensor(m, key) for m in meters for key in m.keys]
    config = {
        "modbus": [
            {
                "name": "gateway",
                "type": "tcp",
                "host": "127.0.0.1",
                "port": port,
                "timeout": 2,
                "sensors": sensors,
            }
        ]
    }
    async with home_assistant() as hass:
        assert await async_setup_component(hass, "modbus", config)
        await hass.async_block_till_done()
        hub = hass.data[DATA_MODBUS_HUBS]["gateway"]
        await asyncio.wait_for(hub.event_connected.wait(), 10)
        entities = [e for p in async_get_platforms(hass, "modbus") for e in p.entities.values()]
        # Virtual sensors follow their main sensor's read; only main sensors are polled.
        polled = [e for e in entities if isinstance(e, ModbusRegisterSensor)]
        assert len(polled) == len(sensors), (len(polled), len(sensors))
        assert len(entities) >= sum(len(m.keys) for m in meters)

        async def poll() -> None:
            await asyncio.gather(*(e.async_update() for e in polled))

        result = await timed(sim, poll, meters, cycles)
        sample = hass.states.get(polled[0].entity_id)
        assert sample is not None
        assert sample.state not in {"unavailable", "unknown"}, sample
    return result


#: Modbus over serial line V1.02, 2.5.1: 11 bits per RTU character (start, 8 data, parity or
#: a second stop bit, stop), and at least 3.5 characters of silence before every frame.
SPEC_BITS_PER_CHAR = 11
SPEC_SILENCE_CHARS = 3.5


def spec_exchange_seconds(request_adu: int, response_adu: int, baudrate: int) -> float:
    """Wire time of one request/response pair, from the specification alone."""
    chars = request_adu + response_adu + 2 * SPEC_SILENCE_CHARS
    return chars * SPEC_BITS_PER_CHAR / baudrate


def wire_bound(read_sizes: dict[int, int]) -> float:
    """Seconds the given FC03/FC04 reads need on a 9600-baud line, from the RTU frame sizes.

    ``read_sizes``: number of reads by registers asked for. Request ADU: unit id, function,
    address (2), count (2), CRC (2) = 8 bytes; response ADU: unit id, function, byte count,
    2 per register, CRC (2) = 5 + 2n bytes.
    """
    return sum(
        reads * spec_exchange_seconds(8, 5 + 2 * size, WIRE_BAUD)
        for size, reads in read_sizes.items()
    )


async def bench_rtu(
    meters: list[Meter], cycles: int, max_gap: int | None
) -> tuple[float, float, float]:
    """Median cycle, wire-time bound of one cycle's reads, and reads per meter per cycle."""
    sim = simulator(meters, wire_baudrate=WIRE_BAUD)
    path = sim.open_pty()
    connection = ModbusConnection(mc.ModbusSerialParams(device=path, baudrate=WIRE_BAUD))
    links = []
    for meter in meters:
        unit = connection.for_unit(meter.unit_id)
        unit.require_timeout(2 * ANSWER_TIMEOUT)
        links.append(
            MeterLink(unit, meter.profile, unit_id=meter.unit_id, endpoint=path, max_gap=max_gap)
        )
    try:
        await links[0].read_values()
        before = dict(sim.stats.read_sizes)
        times = []
        for _ in range(cycles):
            started = time.perf_counter()
            await asyncio.gather(*(link.read_values() for link in links))
            times.append(time.perf_counter() - started)
        sizes = {
            size: (count - before.get(size, 0)) / cycles
            for size, count in sim.stats.read_sizes.items()
        }
    finally:
        await connection.close()
        await sim.close()
    reads = sum(sizes.values()) / len(meters)
    return statistics.median(times), wire_bound(sizes), reads


def _line(name: str, result: Result, cycles: int) -> str:
    return (
        f"{name}: {result.requests_per_meter:.2f} requests/meter/poll, "
        f"cycle {result.cycle_seconds * 1000:.1f} ms (median of {cycles})"
    )


async def side_by_side(
    meters: list[Meter], cycles: int, wire_baudrate: int | None
) -> tuple[Result, Result | None, Result | None]:
    sim = simulator(meters, wire_baudrate=wire_baudrate)
    port = await sim.start_tcp()
    try:
        ours = await bench_ours(sim, port, meters, cycles)
        core = await bench_core(sim, port, meters, cycles)
        batched = await bench_core(sim, port, meters, cycles, batched=True)
    finally:
        await sim.close()
    return ours, core, batched


def _ratio(core: Result | None, ours: Result, field: str) -> float:
    return getattr(core, field) / getattr(ours, field) if core else float("nan")


async def main(cycles: int, rtu_cycles: int, wire_cycles: int) -> str:
    logging.basicConfig(level=logging.WARNING)
    meters = fleet()
    ours, core, batched = await side_by_side(meters, cycles, None)
    values = sum(len(m.keys) for m in meters)
    print(f"fleet: {len(meters)} meters, {values} values, models {', '.join(PROFILES)}")
    print(_line("ours (HA, entities)        ", ours, cycles))
    if core is not None and batched is not None:
        print(_line("core (one sensor per value)", core, cycles))
        print(_line("core (virtual_count)       ", batched, cycles))
    wire = (float("nan"), float("nan"))
    if core is not None and wire_cycles:
        # The same comparison with the gateway's RS485 side at 9600 baud, where real buses live.
        ours_w, core_w, batched_w = await side_by_side(meters, wire_cycles, WIRE_BAUD)
        print(f"9600-baud bus behind the gateway, median of {wire_cycles} cycles:")
        print(_line("  ours                       ", ours_w, wire_cycles))
        if core_w is not None and batched_w is not None:
            print(_line("  core (one sensor per value)", core_w, wire_cycles))
            print(_line("  core (virtual_count)       ", batched_w, wire_cycles))
            wire = (
                _ratio(core_w, ours_w, "cycle_seconds"),
                _ratio(batched_w, ours_w, "cycle_seconds"),
            )
    rtu_cycle, bound, rtu_reads = await bench_rtu(meters, rtu_cycles, RTU_MAX_GAP)
    print(
        f"rtu  : {WIRE_BAUD} baud, gaps up to {RTU_MAX_GAP} registers bridged (the integration's "
        f"RTU setting): {rtu_reads:.2f} requests/meter, cycle {rtu_cycle * 1000:.0f} ms, "
        f"wire-time bound {bound * 1000:.0f} ms (median of {rtu_cycles})"
    )
    wide_cycle, wide_bound, wide_reads = await bench_rtu(meters, rtu_cycles, None)
    print(
        f"rtu  : same line bridging every gap (fewest requests): {wide_reads:.2f} requests/meter, "
        f"cycle {wide_cycle * 1000:.0f} ms, bound {wide_bound * 1000:.0f} ms; the RTU setting "
        f"is {wide_cycle / rtu_cycle:.2f}x faster"
    )
    return (
        f"modbus_polling: requests_ratio={_ratio(core, ours, 'requests_per_meter'):.2f} "
        f"batched_requests_ratio={_ratio(batched, ours, 'requests_per_meter'):.2f} "
        f"cycle_ratio={_ratio(core, ours, 'cycle_seconds'):.2f} "
        f"batched_cycle_ratio={_ratio(batched, ours, 'cycle_seconds'):.2f} "
        f"wire_ratio={wire[0]:.2f} batched_wire_ratio={wire[1]:.2f} "
        f"rtu_wire_ratio={rtu_cycle / bound:.2f}"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=20, help="TCP poll cycles to time")
    parser.add_argument("--rtu-cycles", type=int, default=3, help="9600-baud cycles to time")
    parser.add_argument(
        "--wire-cycles",
        type=int,
        default=3,
        help="ours vs core behind a 9600-baud gateway (0: skip)",
    )
    args = parser.parse_args()
    print(asyncio.run(main(args.cycles, args.rtu_cycles, args.wire_cycles)))
    sys.exit(0)
