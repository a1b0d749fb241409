"""The room dashboard: docs/dashboard.md's YAML and the demo's dashboard() (issue 25).

The documented YAML must parse, use only cards the Home Assistant frontend ships (looked up in
the installed frontend package itself, ``hass_frontend``) and name exactly the entity ids that
Home Assistant gives a room's entities. Those are read from a real Home Assistant with the
integration, its recorder, the real ledger and a simulated meter with a relay, for a meter named
"Room 1" as in the doc. The demo's ``dashboard()`` gets the entity and device registry lists
from that Home Assistant's websocket API, as scripts/develop does; its balance graph and its
consumption graph must show the right entities, the latter one with long-term statistics.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import hass_frontend
import pytest
import yaml
from homeassistant.components.recorder import Recorder
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.typing import WebSocketGenerator

from custom_components.prepaid_meter.const import DOMAIN

from .live_room import Room, RoomFactory, room_device_id

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "dashboard.md"
#: Cards of Home Assistant's own frontend the dashboards may use (no custom cards).
ALLOWED_CARDS = {
    "vertical-stack", "grid", "heading", "tile", "entities", "history-graph", "statistics-graph",
}  # fmt: skip
#: The card whose editor edits another kind of card too (its options are read there).
EDITORS = {"vertical-stack": "stack"}
#: The room's name in docs/dashboard.md; live_room's meter subentry has the same title.
DOC_ROOM = "Room 1"


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(
    recorder_mock: Recorder, enable_custom_integrations: None
) -> None:
    """The recorder first (it must exist before Home Assistant starts), then our integration."""


def _load_develop_onboard() -> ModuleType:
    path = REPO / "scripts" / "lib" / "develop_onboard.py"
    spec = importlib.util.spec_from_file_location("develop_onboard", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


develop_onboard = _load_develop_onboard()


def doc_cards() -> list[dict[str, Any]]:
    """Each ```yaml block of docs/dashboard.md, parsed (one card each)."""
    text = DOC.read_text(encoding="utf-8")
    blocks = re.findall(r"^```yaml\n(.*?)^```", text, re.MULTILINE | re.DOTALL)
    assert blocks, "docs/dashboard.md has no ```yaml block"
    cards = [yaml.safe_load(block) for block in blocks]
    assert all(isinstance(card, dict) for card in cards)
    return cards


def walk(cards: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every card, with the cards inside stacks and grids."""
    for card in cards:
        yield card
        yield from walk(card.get("cards", []))


def entity_ids(card: dict[str, Any]) -> list[str]:
    """The entity ids a card names (``entity``, or ``entities`` as ids or objects)."""
    named = [card["entity"]] if "entity" in card else []
    return named + [
        item["entity"] if isinstance(item, dict) else item for item in card.get("entities", [])
    ]


def one(cards: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = [card for card in walk(cards) if card["type"] == kind]
    assert len(found) == 1, (kind, found)
    return found[0]


@cache
def frontend_sources() -> tuple[str, ...]:
    """The JavaScript of the installed Home Assistant frontend (modern build)."""
    folder = hass_frontend.where() / "frontend_latest"
    sources = tuple(p.read_text(encoding="utf-8") for p in sorted(folder.glob("*.js")))
    assert len(sources) > 100, folder
    return sources


def check_shipped(cards: list[dict[str, Any]]) -> None:
    """Each card is one the frontend defines (``hui-<type>-card``), with options it reads."""
    for card in walk(cards):
        kind = card["type"]
        assert kind in ALLOWED_CARDS, kind
        element = f'"hui-{kind}-card"'
        assert any(element in source for source in frontend_sources()), f"no {kind} card"
        editor = f'"hui-{EDITORS.get(kind, kind)}-card-editor"'
        code = [s for s in frontend_sources() if element in s or editor in s]
        for option in set(card) - {"type"}:
            assert any(option in source for source in code), (kind, option)


def test_the_documented_yaml_uses_only_cards_home_assistant_ships() -> None:
    cards = doc_cards()
    check_shipped(cards)
    history = one(cards, "history-graph")
    assert history["hours_to_show"] == 48
    statistics = one(cards, "statistics-graph")
    assert statistics["chart_type"] == "bar"
    assert statistics["period"] == "day"
    assert statistics["stat_types"] == ["change"]
    assert statistics["days_to_show"] == 30
    # The values the frontend's statistics graph editor accepts (its option schema).
    editors = [
        s
        for s in frontend_sources()
        if '"hui-statistics-graph-card-editor"' in s and "stat_types:" in s
    ]
    assert editors
    for value in ("bar", "day", "change"):
        assert any(f'"{value}"' in editor for editor in editors), value


def test_the_shipped_check_refuses_a_custom_card_and_an_unknown_option() -> None:
    with pytest.raises(AssertionError):
        check_shipped([{"type": "custom:mini-graph-card", "entities": ["sensor.x"]}])
    with pytest.raises(AssertionError):
        check_shipped([{"type": "history-graph", "entities": ["sensor.x"], "days_shown": 2}])


def _room_entries(hass: HomeAssistant, room: Room) -> dict[str, er.RegistryEntry]:
    """The room device's entities in Home Assistant's registry, by translation key."""
    registry = er.async_get(hass)
    entries = er.async_entries_for_device(registry, room_device_id(hass, room))
    assert all(entry.platform == DOMAIN for entry in entries)
    return {str(entry.translation_key): entry for entry in entries}


async def _statistic_ids_with_sum(hass_ws_client: WebSocketGenerator) -> set[str]:
    """What the recorder offers for sum statistics (the statistics graph's entity picker)."""
    client = await hass_ws_client()
    await client.send_json_auto_id({"type": "recorder/list_statistic_ids", "statistic_type": "sum"})
    reply = await client.receive_json()
    assert reply["success"], reply
    return {item["statistic_id"] for item in reply["result"] if item["has_sum"]}


async def test_the_documented_entity_ids_are_the_ones_home_assistant_gives(
    hass: HomeAssistant, make_room: RoomFactory, hass_ws_client: WebSocketGenerator
) -> None:
    room = await make_room(credit_minor=5_000)
    assert room.entry.subentries[next(iter(room.entry.subentries))].title == DOC_ROOM
    await room.poll_and_post(hass)
    by_key = _room_entries(hass, room)
    cards = doc_cards()
    named = {entity_id for card in walk(cards) for entity_id in entity_ids(card)}
    assert named, "the doc's YAML names no entity"
    assert named <= {entry.entity_id for entry in by_key.values()}, named
    for entity_id in named:
        state = hass.states.get(entity_id)
        assert state is not None, entity_id
        assert state.state != "unavailable", entity_id
    # Each card shows what the doc says it shows.
    assert entity_ids(one(cards, "history-graph")) == [by_key["balance"].entity_id]
    (energy,) = entity_ids(one(cards, "statistics-graph"))
    assert energy == by_key["energy_total"].entity_id
    assert hass.states.get(energy).attributes["state_class"] == "total_increasing"
    assert energy in await _statistic_ids_with_sum(hass_ws_client)
    tiles = {card["entity"] for card in walk(cards) if card["type"] == "tile"}
    assert tiles == {by_key[k].entity_id for k in ("balance", "days_left", "relay")}


async def test_the_demo_dashboard_graphs_each_rooms_balance_and_consumption(
    hass: HomeAssistant, make_room: RoomFactory, hass_ws_client: WebSocketGenerator
) -> None:
    room = await make_room(credit_minor=5_000)
    await room.poll_and_post(hass)
    assert await async_setup_component(hass, "config", {})
    client = await hass_ws_client()
    lists = []
    for kind in ("config/entity_registry/list", "config/device_registry/list"):
        await client.send_json_auto_id({"type": kind})
        reply = await client.receive_json()
        assert reply["success"], reply
        lists.append(reply["result"])
    entities, devices = lists
    names = {d["id"]: d.get("name_by_user") or d.get("name") or "" for d in devices}
    config = develop_onboard.dashboard(entities, names)

    (view,) = config["views"]
    (section,) = [s for s in view["sections"] if s["cards"][0].get("heading") == DOC_ROOM]
    cards = section["cards"]
    check_shipped(cards)
    passed = {e["entity_id"] for e in entities}
    by_key = _room_entries(hass, room)
    history = one(cards, "history-graph")
    assert history["hours_to_show"] == 48
    assert entity_ids(history) == [by_key["balance"].entity_id]
    statistics = one(cards, "statistics-graph")
    assert {k: statistics[k] for k in ("chart_type", "period", "stat_types", "days_to_show")} == {
        "chart_type": "bar", "period": "day", "stat_types": ["change"], "days_to_show": 30,
    }  # fmt: skip
    (energy,) = entity_ids(statistics)
    assert energy in passed
    assert hass.states.get(energy).attributes["state_class"] == "total_increasing"
    assert energy in await _statistic_ids_with_sum(hass_ws_client)
    shown = {entity_id for card in walk(cards) for entity_id in entity_ids(card)}
    assert shown <= passed
    assert {by_key["relay"].entity_id, by_key["days_left"].entity_id} <= shown
    assert all(hass.states.get(entity_id) is not None for entity_id in shown)


def test_a_meter_without_an_account_gets_no_balance_graph() -> None:
    """The homeowner's meter: consumption bars only; a water meter's total is graphed too."""
    entities = [
        {"entity_id": entity_id, "platform": DOMAIN, "unique_id": f"{sub}_{key}",
         "device_id": device, "disabled_by": None}
        for sub, device, key, entity_id in (
            ("s1", "d1", "energy_total", "sensor.home_energy"),
            ("s1", "d1", "power", "sensor.home_power"),
            ("s2", "d2", "water_total", "sensor.flat_water"),
            ("s2", "d2", "balance", "sensor.flat_balance"),
        )
    ]  # fmt: skip
    config = develop_onboard.dashboard(entities, {"d1": "Home", "d2": "Flat"})
    flat, home = (s["cards"] for s in config["views"][0]["sections"])
    assert not [c for c in home if c["type"] == "history-graph"]
    assert entity_ids(one(home, "statistics-graph")) == ["sensor.home_energy"]
    assert entity_ids(one(flat, "statistics-graph")) == ["sensor.flat_water"]
    assert entity_ids(one(flat, "history-graph")) == ["sensor.flat_balance"]
