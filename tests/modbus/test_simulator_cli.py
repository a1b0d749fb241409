"""The simulator's command line: argument parsing and the fault commands typed on stdin."""

from __future__ import annotations

import argparse

import pytest

from meter_simulator import MeterSimulator, RelayModule, SimulatedMeter, SineLoad, StepLoad
from meter_simulator.__main__ import (
    Runner,
    build_parser,
    main,
    parse_host_port,
    parse_meter,
    parse_relay_module,
)


def test_parse_arguments():
    assert parse_host_port("127.0.0.1:5020") == ("127.0.0.1", 5020)
    spec = parse_meter("3:eastron_sdm120:800", {})
    assert (spec.unit_id, spec.map.model, spec.watts) == (3, "eastron_sdm120", 800.0)
    assert parse_meter("1:acrel_ddsy1352", {}).watts == 1000.0
    assert parse_relay_module("10:0=2,1=3") == (10, {0: 2, 1: 3})
    args = build_parser().parse_args(["--tcp", "127.0.0.1:0", "--meter", "1:acrel_ddsy1352"])
    assert args.tcp == ("127.0.0.1", 0)


@pytest.mark.parametrize(
    ("parser", "text", "message"),
    [
        (parse_host_port, "nohost", "HOST:PORT"),
        (parse_host_port, "h:99999", "HOST:PORT"),
        (lambda t: parse_meter(t, {}), "1", "UNIT:PROFILE"),
        (lambda t: parse_meter(t, {}), "0:acrel_ddsy1352", "outside 1..247"),
        (lambda t: parse_meter(t, {}), "1:nope", "unknown meter model"),
        (parse_relay_module, "10:x", "UNIT:COIL=METER"),
    ],
)
def test_bad_arguments_are_clear(parser, text, message):
    with pytest.raises(argparse.ArgumentTypeError, match=message):
        parser(text)


def test_main_refuses_incomplete_configuration(capsys):
    assert main(["--tcp", "127.0.0.1:0"]) == 2
    assert "at least one --meter" in capsys.readouterr().err
    assert main(["--meter", "1:acrel_ddsy1352"]) == 2
    assert "--tcp" in capsys.readouterr().err
    assert main(["--tcp", "127.0.0.1:0", "--meter", "1:nope"]) == 2
    assert "unknown meter model" in capsys.readouterr().err


async def test_fault_commands_change_the_simulator():
    sim = MeterSimulator()
    sim.add(1, SimulatedMeter("acrel_ddsy1352"))
    sim.add(9, RelayModule())
    lines: list[str] = []
    runner = Runner(sim, lines.append)
    assert await runner.command("silence 1")
    assert sim.faults[1].silent
    assert await runner.command("delay 1 0.5")
    assert sim.faults[1].delay == 0.5
    assert await runner.command("exception 1 6")
    assert sim.faults[1].exception == 6
    assert await runner.command("corrupt 1")
    assert sim.faults[1].corrupt
    assert await runner.command("stuck 9")
    assert sim.devices[9].stuck
    assert await runner.command("clear")
    assert not sim.faults
    assert not sim.devices[9].stuck
    assert await runner.command("relay 1 open")
    assert sim.meter(1).relay_closed is False
    assert await runner.command("glitch 1 jump 3 500")
    assert (sim.meter(1).glitch, sim.meter(1).glitch_reads) == ("jump", 3)
    assert sim.meter(1).glitch_amount == 500
    assert await runner.command("status")
    assert any("relay=OPEN" in line and "glitch=jumpx3" in line for line in lines)
    assert await runner.command("glitch 1 nan")  # an integer register has no NaN
    assert lines[-1].startswith("error:")
    assert "no NaN" in lines[-1]
    assert await runner.command("silence 77")
    assert lines[-1].startswith("error:")
    assert await runner.command("frobnicate")
    assert "unknown command" in lines[-1]
    assert await runner.command("")
    assert await runner.command("quit") is False
    await sim.close()


def test_load_profiles():
    sine = SineLoad(mean=1000, amplitude=500, period=100)
    assert sine(0) == pytest.approx(1000)
    assert sine(25) == pytest.approx(1500)
    assert sine(75) == pytest.approx(500)
    assert SineLoad(mean=100, amplitude=500, period=100)(75) == 0
    steps = StepLoad([(10, 200), (20, 0)])
    assert [steps(t) for t in (0, 10, 15, 20, 99)] == [0, 200, 200, 0, 0]


def test_relay_module_refuses_what_it_does_not_have():
    module = RelayModule(coils=2)
    assert module.read(3, 0, 1) == 1
    assert module.read(1, 1, 2) == 2
    assert module.write(6, 0, [1]) == 1
    assert module.write(15, 0, [True, True, True]) == 2
    assert module.write(15, 0, [True, False]) is None
    assert module.read(1, 0, 2) == [True, False]
