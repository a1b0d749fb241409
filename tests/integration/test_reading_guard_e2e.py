"""A glitched meter read, end to end: simulator fault injection, real Home Assistant, real ledger.

Each glitch real meters send is injected into the simulated SDM120's total register for one
read. The balance must not move on it, the relay must stay closed, and a held reading must
become a repair issue a person can fix. Expected money comes from the simulator's own totals
and the tariff's price (tests/integration/test_live_control.py's independent model).
"""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest
from homeassistant.components.repairs import repairs_flow_manager
from homeassistant.core import Event, HomeAssistant
from homeassistant.helpers import issue_registry as ir
from homeassistant.setup import async_setup_component

from custom_components.prepaid_meter.const import DOMAIN
from tests.integration.live_room import (
    Room,
    RoomFactory,
    entity_id,
    expected_charge_minor,
    wait_for,
)


def held_issues(hass: HomeAssistant, room: Room) -> list[ir.IssueEntry]:
    prefix = f"reading_held_{room.entry.entry_id}_"
    return [
        issue
        for (domain, issue_id), issue in ir.async_get(hass).issues.items()
        if domain == DOMAIN and issue_id.startswith(prefix)
    ]


async def sdm120_room(hass: HomeAssistant, make_room: RoomFactory) -> Room:
    """A room whose ledger meter knows it is an SDM120 (45 A x 230 V = 10.35 kW at most)."""
    room = await make_room(credit_minor=100_000)
    await room.ledger.call(
        "PATCH", f"/api/v1/meters/{room.ledger_meter_id}", {"model": "eastron_sdm120"}
    )
    return room


@pytest.mark.parametrize(
    ("glitch", "outcome"),
    [
        ("zero", "held"),  # 0 after ~10 kWh: a reset or a glitch, for a person to say
        ("jump", "held"),  # +1,000,000 kWh in a fraction of a second: a surge
        ("swap_words", "held"),  # ~10.0 kWh with its words swapped is ~1e-39: near zero
        ("step_back", "noise"),  # 0.01 kWh back: less than a minute at 10.35 kW
        ("garbage", "not_posted"),  # 0xDEADBEEF as a float is -6.3e18: no such meter reading
        ("nan", "not_posted"),
    ],
)
async def test_a_glitched_read_charges_nothing_and_never_cuts(
    hass: HomeAssistant, make_room: RoomFactory, glitch: str, outcome: str
) -> None:
    room = await sdm120_room(hass, make_room)
    held_events: list[Event] = []
    hass.bus.async_listen(f"{DOMAIN}_reading_held", held_events.append)
    relay_id = entity_id(hass, room, "relay", "switch")
    supply_id = entity_id(hass, room, "supply_allowed", "binary_sensor")
    await asyncio.sleep(0.2)
    await room.poll_and_post(hass)
    good_total = Decimal(str(room.meter.total))
    balance = await room.balance_minor()
    queued = len(room.sync.queue)

    room.meter.inject_glitch(glitch)  # type: ignore[arg-type]
    await asyncio.sleep(0.2)
    await room.poll_and_post(hass)
    assert room.meter.glitch is None  # the poll read the glitched register
    assert await room.balance_minor() == balance
    assert room.meter.relay_closed is True
    assert hass.states.get(supply_id).state == "on"
    # A failed poll leaves the meter's entities unavailable for that poll, never switched.
    assert hass.states.get(relay_id).state == ("unavailable" if outcome == "not_posted" else "on")
    if outcome == "held":
        await wait_for(lambda: len(held_issues(hass, room)) == 1)
        (issue,) = held_issues(hass, room)
        assert issue.is_fixable
        assert issue.translation_placeholders is not None
        assert issue.translation_placeholders["meter"] == "Room 1"
        await wait_for(lambda: len(held_events) == 1)
        assert held_events[0].data["hold"] in {"surge", "reset"}
        assert held_events[0].data["device_ids"]
    elif outcome == "noise":
        assert room.coordinator.last_update_success is True
        assert held_issues(hass, room) == []
    else:
        assert room.coordinator.last_update_success is False
        assert len(room.sync.queue) == queued
        assert not room.sync.has_unsent(room.ledger_meter_id)
        assert held_issues(hass, room) == []

    # The next good read charges everything since the last good one, exactly once.
    await asyncio.sleep(0.2)
    await room.poll_and_post(hass)
    consumed = Decimal(str(room.meter.total)) - good_total
    charged = balance - await room.balance_minor()
    assert abs(charged - expected_charge_minor(consumed)) <= 1
    assert room.meter.relay_closed is True


async def test_repair_issue_fix_flow_rejects_the_glitch_and_survives_a_restart(
    hass: HomeAssistant, make_room: RoomFactory
) -> None:
    room = await sdm120_room(hass, make_room)
    assert await async_setup_component(hass, "repairs", {})
    room.meter.inject_glitch("zero")
    await asyncio.sleep(0.1)
    await room.poll_and_post(hass)
    await wait_for(lambda: len(held_issues(hass, room)) == 1)
    # A restart of the entry finds the held reading again in the ledger: the issue stays.
    assert await hass.config_entries.async_reload(room.entry.entry_id)
    await hass.async_block_till_done()
    await wait_for(lambda: room.sync.stream_connected)
    (issue,) = held_issues(hass, room)
    assert issue.translation_key == "reading_held_reset"

    manager = repairs_flow_manager(hass)
    assert manager is not None
    form = await manager.async_init(DOMAIN, data={"issue_id": issue.issue_id})
    assert form["type"] == "form"
    assert form["description_placeholders"]["meter"] == "Room 1"
    schema_keys = {str(key) for key in form["data_schema"].schema}
    assert schema_keys == {"action", "reason"}
    retry = await manager.async_configure(form["flow_id"], {"action": "reject", "reason": " "})
    assert retry["errors"] == {"reason": "reason_required"}
    done = await manager.async_configure(
        form["flow_id"], {"action": "reject", "reason": "a 0 from a loose RS-485 wire"}
    )
    assert done["type"] == "create_entry"
    assert held_issues(hass, room) == []
    assert (await room.ledger.call("GET", "/api/v1/readings/held"))["readings"] == []
    audit = await room.ledger.call("GET", "/api/v1/audit?limit=10")
    (entry,) = [e for e in audit["entries"] if e["action"] == "reading.reject"]
    assert entry["after"]["reason"] == "a 0 from a loose RS-485 wire"
    assert entry["actor"].startswith("token:")  # the integration's own token, not admin


async def test_accepting_a_surge_after_later_readings_is_refused_with_the_ledgers_reason(
    hass: HomeAssistant, make_room: RoomFactory
) -> None:
    room = await sdm120_room(hass, make_room)
    assert await async_setup_component(hass, "repairs", {})
    room.meter.inject_glitch("jump")
    await asyncio.sleep(0.1)
    await room.poll_and_post(hass)
    await wait_for(lambda: len(held_issues(hass, room)) == 1)
    (issue,) = held_issues(hass, room)
    assert issue.translation_key == "reading_held_surge"
    await asyncio.sleep(0.1)
    await room.poll_and_post(hass)  # a good reading, charged from the last accepted one
    manager = repairs_flow_manager(hass)
    assert manager is not None
    form = await manager.async_init(DOMAIN, data={"issue_id": issue.issue_id})
    refused = await manager.async_configure(form["flow_id"], {"action": "accept", "reason": "x"})
    assert refused["type"] == "form"
    assert refused["errors"] == {"base": "ledger_rejected"}
    assert "later reading was charged" in refused["description_placeholders"]["detail"]
    assert len(held_issues(hass, room)) == 1
    done = await manager.async_configure(form["flow_id"], {"action": "reject", "reason": "glitch"})
    assert done["type"] == "create_entry"
    assert held_issues(hass, room) == []
