"""Command line: run simulated meters and inject faults by typing commands on stdin.

Example::

    scripts/simulator --tcp 127.0.0.1:5020 --meter 1:acrel_ddsy1352 --meter 2:eastron_sdm120:800 \
        --relay-module 10:0=2 --pty

Then type ``help`` for the fault commands (silence, delay, exception, corrupt, stuck, clear,
drop, restart, relay, status, quit).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .custom_maps import CustomMapError, load_custom_map_yaml
from .devices import RelayModule, SimulatedMeter
from .load import ConstantLoad, SineLoad
from .maps import MAPS, MeterMap, get_map
from .server import MeterSimulator

COMMANDS = """commands:
  status                      units, relays, totals and faults
  silence UNIT                unit stops answering
  delay UNIT SECONDS          unit answers late
  exception UNIT CODE         unit answers every request with a Modbus exception
  corrupt UNIT                unit answers with damaged frames
  stuck UNIT                  relay writes are acknowledged but ignored
  glitch UNIT KIND [READS] [AMOUNT]
                              the total register reads wrong for READS reads (default 1):
                              zero, jump, swap_words, nan, garbage, step_back
  clear [UNIT]                heal one unit or all
  relay UNIT open|close       switch a meter's relay locally (like its front button)
  drop                        close every TCP connection (gateway watchdog reset)
  restart SECONDS             gateway power cycle: offline for SECONDS, same port after
  quit                        stop the simulator"""


@dataclass(frozen=True, slots=True)
class MeterSpec:
    """``UNIT:PROFILE[:WATTS]`` from the command line."""

    unit_id: int
    map: MeterMap
    watts: float


def _unit(text: str) -> int:
    unit = int(text)
    if not 1 <= unit <= 247:
        raise ValueError(f"unit id {unit} outside 1..247")
    return unit


def parse_meter(text: str, custom: dict[str, MeterMap]) -> MeterSpec:
    """Parse ``UNIT:PROFILE[:WATTS]``."""
    parts = text.split(":")
    if len(parts) not in {2, 3}:
        raise argparse.ArgumentTypeError(f"{text!r}: expected UNIT:PROFILE[:WATTS]")
    try:
        unit = _unit(parts[0])
        meter_map = custom.get(parts[1]) or get_map(parts[1])
        watts = float(parts[2]) if len(parts) == 3 else 1000.0
    except (ValueError, KeyError) as err:
        raise argparse.ArgumentTypeError(f"{text!r}: {err}") from err
    return MeterSpec(unit, meter_map, watts)


def parse_relay_module(text: str) -> tuple[int, dict[int, int]]:
    """Parse ``UNIT:COIL=METER[,COIL=METER...]``."""
    try:
        unit_text, links_text = text.split(":", 1)
        links = {}
        for link in links_text.split(","):
            coil, meter = link.split("=")
            links[int(coil)] = _unit(meter)
        return _unit(unit_text), links
    except ValueError as err:
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected UNIT:COIL=METER[,...] ({err})"
        ) from err


def parse_host_port(text: str) -> tuple[str, int]:
    """Parse ``HOST:PORT``."""
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r}: expected HOST:PORT")
    return host, int(port)


def build_parser() -> argparse.ArgumentParser:
    """Build the simulator's command line."""
    parser = argparse.ArgumentParser(
        prog="scripts/simulator",
        description="Simulated Modbus meters (Modbus TCP, RTU over TCP, RTU over a pty).",
        epilog=f"models: {', '.join(MAPS)}\n\n{COMMANDS}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--tcp", type=parse_host_port, help="listen for Modbus TCP on HOST:PORT")
    parser.add_argument(
        "--rtu-over-tcp", action="store_true", help="use RTU framing on the TCP listener"
    )
    parser.add_argument("--pty", action="store_true", help="serve RTU on a pseudo-terminal")
    parser.add_argument(
        "--meter",
        action="append",
        default=[],
        metavar="UNIT:PROFILE[:WATTS]",
        help="add a meter (repeatable); WATTS is its load (default 1000)",
    )
    parser.add_argument(
        "--relay-module",
        action="append",
        default=[],
        type=parse_relay_module,
        metavar="UNIT:COIL=METER",
        help="add a Modbus relay module whose COIL switches meter unit METER",
    )
    parser.add_argument(
        "--custom-profile", action="append", default=[], type=Path, help="load a YAML profile"
    )
    parser.add_argument(
        "--swing", type=float, default=0.0, help="load swings by this fraction over --period"
    )
    parser.add_argument("--period", type=float, default=600.0, help="load period in seconds")
    parser.add_argument("--speed", type=float, default=1.0, help="simulated seconds per second")
    parser.add_argument("--wire-baud", type=int, help="delay answers by RTU wire time at this baud")
    return parser


def _say(text: str) -> None:
    """Print at once: a controlling process reads our stdout through a pipe."""
    print(text, flush=True)


class Runner:
    """The simulator plus the stdin command loop."""

    def __init__(
        self, simulator: MeterSimulator, out: Callable[[str], object] | None = None
    ) -> None:
        self.simulator = simulator
        self.out = out or _say

    def status(self) -> None:
        """Print one line per unit."""
        for unit, device in sorted(self.simulator.devices.items()):
            fault = self.simulator.faults.get(unit)
            faults = "" if fault is None or fault.healthy else f" fault={fault}"
            if isinstance(device, SimulatedMeter):
                relay = "closed" if device.relay_closed else "OPEN"
                glitch = f" glitch={device.glitch}x{device.glitch_reads}" if device.glitch else ""
                self.out(
                    f"unit {unit}: {device.map.model} relay={relay} "
                    f"rate={device.rate:.0f} total={device.advance():.4f}{faults}{glitch}"
                )
            elif isinstance(device, RelayModule):
                self.out(f"unit {unit}: relay module coils={device.coils}{faults}")

    async def command(self, line: str) -> bool:
        """Run one command; return False to quit."""
        words = line.split()
        if not words:
            return True
        name, args = words[0].lower(), words[1:]
        sim = self.simulator
        try:
            match name, args:
                case (("quit" | "exit"), []):
                    return False
                case "help", []:
                    self.out(COMMANDS)
                case "status", []:
                    self.status()
                case "silence", [unit]:
                    sim.set_fault(_unit(unit), silent=True)
                case "delay", [unit, seconds]:
                    sim.set_fault(_unit(unit), delay=float(seconds))
                case "exception", [unit, code]:
                    sim.set_fault(_unit(unit), exception=int(code))
                case "corrupt", [unit]:
                    sim.set_fault(_unit(unit), corrupt=True)
                case "stuck", [unit]:
                    sim.set_fault(_unit(unit), relay_stuck=True)
                case "glitch", [unit, kind, *rest] if len(rest) <= 2:
                    reads = int(rest[0]) if rest else 1
                    amount = float(rest[1]) if len(rest) == 2 else None
                    sim.meter(_unit(unit)).inject_glitch(kind, reads, amount)  # type: ignore[arg-type]
                case "clear", []:
                    sim.clear_faults()
                case "clear", [unit]:
                    sim.clear_faults(_unit(unit))
                case "relay", [unit, ("open" | "close") as state]:
                    sim.meter(_unit(unit)).set_relay(state == "close")
                case "drop", []:
                    await sim.drop_connections()
                case "restart", [seconds]:
                    await sim.restart_tcp(float(seconds))
                case _:
                    self.out(f"unknown command {line.strip()!r}; type 'help'")
                    return True
        except (ValueError, KeyError, TypeError) as err:
            self.out(f"error: {err}")
            return True
        self.out("ok")
        return True


async def run(args: argparse.Namespace) -> int:
    """Start the transports, print where they are, and serve until quit or EOF."""
    custom: dict[str, MeterMap] = {}
    try:
        for path in args.custom_profile:
            try:
                meter_map = load_custom_map_yaml(path.read_text(encoding="utf-8"))
            except CustomMapError as err:
                raise CustomMapError(f"{path}: {err}") from err
            custom[meter_map.model] = meter_map
        specs = [parse_meter(text, custom) for text in args.meter]
    except (OSError, CustomMapError, argparse.ArgumentTypeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if not specs:
        print("error: add at least one --meter", file=sys.stderr)
        return 2
    if not (args.tcp or args.pty):
        print("error: choose --tcp HOST:PORT and/or --pty", file=sys.stderr)
        return 2
    simulator = MeterSimulator(wire_baudrate=args.wire_baud)
    for spec in specs:
        load = (
            SineLoad(spec.watts, spec.watts * args.swing, args.period)
            if args.swing
            else ConstantLoad(spec.watts)
        )
        simulator.add(spec.unit_id, SimulatedMeter(spec.map, load=load, speed=args.speed))
    for unit, links in args.relay_module:
        module = RelayModule()
        simulator.add(unit, module)
        for coil, meter in links.items():
            module.link(coil, simulator.meter(meter))
    runner = Runner(simulator)
    try:
        if args.tcp:
            host, port = args.tcp
            port = await simulator.start_tcp(host, port, "rtu" if args.rtu_over_tcp else "socket")
            framing = "RTU over TCP" if args.rtu_over_tcp else "Modbus TCP"
            print(f"{framing} on {host}:{port}", flush=True)
        if args.pty:
            print(f"RTU on {simulator.open_pty()}", flush=True)
        runner.status()
        print("type 'help' for fault commands", flush=True)
        while True:
            line = await asyncio.to_thread(sys.stdin.readline)
            if not line or not await runner.command(line):
                break
    finally:
        await simulator.close()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point for ``python -m meter_simulator``."""
    args = build_parser().parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        return asyncio.run(run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
