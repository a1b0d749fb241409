"""scripts/develop's Home Assistant configuration, checked with Home Assistant's own code.

No Home Assistant is started: the written configuration.yaml is loaded (with its ``!include``
files) by Home Assistant's YAML loader and validated by ``check_config``; the Energy dashboard
preferences are validated with the energy integration's own schemas.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from homeassistant.components.energy.data import DEVICE_CONSUMPTION_SCHEMA, ENERGY_SOURCE_SCHEMA
from homeassistant.components.onboarding import STEPS
from homeassistant.components.onboarding import STORAGE_VERSION as ONBOARDING_VERSION
from homeassistant.config import load_yaml_config_file
from homeassistant.scripts import check_config

LIB = Path(__file__).resolve().parents[1] / "scripts" / "lib"


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, LIB / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


develop_config = _load("develop_config")
develop_onboard = _load("develop_onboard")


def test_configuration_includes_the_ui_editors_files(tmp_path: Path) -> None:
    """Automations, scripts and scenes made in the UI are loaded; nothing needs the internet."""
    develop_config.write_config(tmp_path, 8123)
    config = load_yaml_config_file(str(tmp_path / "configuration.yaml"))
    # An empty included file loads as an empty mapping (Home Assistant's !include).
    for included in ("automation", "script", "scene"):
        assert config[included] in ([], {}, None)
        assert (tmp_path / f"{included}s.yaml").exists()
    for integration in ("history", "logbook", "energy", "recorder"):
        assert integration in config
    for internet in ("default_config", "cloud", "met", "homeassistant_alerts", "go2rtc"):
        assert internet not in config
    assert (
        json.loads((tmp_path / ".storage" / "http").read_text())["data"]["stable"]["server_port"]
        == 8123
    )
    assert sorted(p.name for p in (tmp_path / "blueprints/automation/prepaid_meter").iterdir())


def test_configuration_is_valid_for_home_assistant(tmp_path: Path) -> None:
    """Home Assistant's check_config finds no error in it."""
    develop_config.write_config(tmp_path, 8123)
    result = check_config.check(str(tmp_path))
    assert not result["except"], result["except"]
    for included in ("automations.yaml", "scripts.yaml", "scenes.yaml"):
        assert str(tmp_path / included) in result["yaml_files"]
    for integration in ("automation", "script", "scene", "history", "logbook", "energy"):
        assert integration in result["components"]


def test_an_older_dev_is_upgraded_and_ui_files_are_kept(tmp_path: Path) -> None:
    """An old configuration.yaml without the includes is replaced; UI automations stay."""
    (tmp_path / "configuration.yaml").write_text("homeassistant:\n  name: old\nconfig:\n")
    (tmp_path / "automations.yaml").write_text("- id: '1'\n  alias: mine\n  triggers: []\n")
    develop_config.write_config(tmp_path, 8123)
    config = load_yaml_config_file(str(tmp_path / "configuration.yaml"))
    assert config["automation"] == [{"id": "1", "alias": "mine", "triggers": []}]


def test_onboarding_skips_only_the_internet_step(tmp_path: Path) -> None:
    """Core config (met, radio, TTS) is marked done; the owner user is still to be created."""
    develop_config.write_config(tmp_path, 8123)
    stored = json.loads((tmp_path / ".storage" / "onboarding").read_text())
    assert stored["version"] == ONBOARDING_VERSION
    assert set(stored["data"]["done"]) <= set(STEPS)
    assert "core_config" in stored["data"]["done"]
    assert "user" not in stored["data"]["done"]


def test_onboarding_storage_is_left_alone_once_onboarded(tmp_path: Path) -> None:
    """An existing install keeps its onboarding state."""
    (tmp_path / ".storage").mkdir()
    (tmp_path / ".storage" / "auth").write_text("{}")
    develop_config.write_config(tmp_path, 8123)
    assert not (tmp_path / ".storage" / "onboarding").exists()


def _registry() -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Entity and device registry as the integration fills them for the demo's four meters."""
    entities: list[dict[str, Any]] = []
    devices = {}
    for number, name in enumerate(("Room 1", "Room 2", "Room 3", "Home"), start=1):
        device, slug = f"device{number}", name.lower().replace(" ", "_")
        devices[device] = name
        keys = ["energy_total", "power", "voltage"]
        if name != "Home":
            keys += ["balance", "total_cost", "relay"]
        for key in keys:
            domain = "switch" if key == "relay" else "sensor"
            entities.append(
                {"entity_id": f"{domain}.{slug}_{key}", "platform": "prepaid_meter",
                 "unique_id": f"sub{number}_{key}", "device_id": device, "disabled_by": None}
            )  # fmt: skip
    entities.append({"entity_id": "sun.sun", "platform": "sun", "unique_id": "x"})
    return entities, devices


def test_energy_dashboard_has_the_house_as_grid_and_rooms_inside_it() -> None:
    """The house meter is the grid (priced); each room is a device included in it."""
    entities, devices = _registry()
    prefs = develop_onboard.energy_prefs(entities, devices)
    (grid,) = ENERGY_SOURCE_SCHEMA(prefs["energy_sources"])
    assert grid["stat_energy_from"] == "sensor.home_energy_total"
    assert grid["stat_rate"] == "sensor.home_power"
    assert grid["number_energy_price"] == develop_onboard.GRID_PRICE
    rooms = [DEVICE_CONSUMPTION_SCHEMA(d) for d in prefs["device_consumption"]]
    assert [r["name"] for r in rooms] == ["Room 1", "Room 2", "Room 3"]
    assert rooms[0] == {
        "stat_consumption": "sensor.room_1_energy_total",
        "stat_rate": "sensor.room_1_power",
        "name": "Room 1",
        "included_in_stat": "sensor.home_energy_total",
    }


@pytest.mark.parametrize(
    ("kind", "data", "line"),
    [
        ("top_up_credited", {"device_ids": ["d1"], "amount": "10.00", "currency": "EUR"},
         "Room 1: top-up of 10.00 EUR credited"),
        ("supply_changed", {"meter": "Room 1", "state": "cut", "reason": "no credit"},
         "Room 1: supply cut (no credit)"),
    ],
)  # fmt: skip
def test_event_lines(kind: str, data: dict[str, Any], line: str) -> None:
    """The terminal shows one readable line per event that matters."""
    event = {"event_type": f"prepaid_meter_{kind}", "data": data}
    assert develop_onboard.event_line(event, {"d1": "Room 1"}) == line
