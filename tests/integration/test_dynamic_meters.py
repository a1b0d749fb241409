"""Meters come and go while the site runs: no reload, no neighbour unavailable, no needless write.

A site whose room relay is under live control gets five more meters, one after the other,
through the real meter flow; then one is removed. The simulator counts the relay writes that
reach the room's relay module, and a state listener sees every state the room's entities take.
"""

from __future__ import annotations

from typing import Any

from homeassistant.config_entries import SOURCE_USER, ConfigEntryState
from homeassistant.const import EVENT_STATE_CHANGED, STATE_UNAVAILABLE
from homeassistant.core import Event, EventStateChangedData, HomeAssistant, callback
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import entity_registry as er

from custom_components.prepaid_meter.const import DOMAIN, SUBENTRY_METER
from meter_simulator import ConstantLoad, SimulatedMeter

from .live_room import RELAY_UNIT, Room, RoomFactory

FIRST_NEW_UNIT = 11


async def _add_meter_by_flow(
    hass: HomeAssistant, entry_id: str, name: str, port: int, unit: int, ledger_meter_id: int
) -> None:
    result = await hass.config_entries.subentries.async_init(
        (entry_id, SUBENTRY_METER), context={"source": SOURCE_USER}
    )
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {"name": name, "profile": "acrel_ddsy1352", "connection": "tcp"}
    )
    assert result.get("step_id") == "connection", result
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {"host": "127.0.0.1", "port": port, "unit_id": unit}
    )
    assert result.get("step_id") == "ledger", result
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {"ledger_meter_id": str(ledger_meter_id)}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY, result


def _count_writes(device: Any) -> list[list[Any]]:
    """Record every write that reaches a simulated device (its Modbus write requests)."""
    writes: list[list[Any]] = []
    original_write = device.write

    def counting_write(function: int, address: int, values: list[Any]) -> int | None:
        writes.append(list(values))
        return original_write(function, address, values)

    device.write = counting_write
    return writes


def _watch_unavailable(hass: HomeAssistant, entity_ids: set[str]) -> list[str]:
    """Record each of ``entity_ids`` that goes unavailable or disappears."""
    seen: list[str] = []

    @callback
    def _on_state(event: Event[EventStateChangedData]) -> None:
        new = event.data["new_state"]
        if event.data["entity_id"] in entity_ids and (
            new is None or new.state == STATE_UNAVAILABLE
        ):
            seen.append(event.data["entity_id"])

    hass.bus.async_listen(EVENT_STATE_CHANGED, _on_state)
    return seen


async def _new_tenant(room: Room, n: int, tariff_id: int) -> int:
    """A ledger account with 10.00 EUR and its ledger meter; returns the ledger meter id."""
    account = await room.ledger.call(
        "POST",
        "/api/v1/accounts",
        {"name": f"Tenant {n}", "currency": "EUR", "timezone": "Europe/Berlin"},
    )
    await room.ledger.top_up(account["id"], 1_000)
    body = {"account_id": account["id"], "tariff_id": tariff_id, "name": f"Flat {n}", "unit": "kWh"}
    meter = await room.ledger.call("POST", "/api/v1/meters", body)
    return int(meter["id"])


def _state_of(hass: HomeAssistant, subentry_id: str, key: str) -> str:
    entity_id = er.async_get(hass).async_get_entity_id("sensor", DOMAIN, f"{subentry_id}_{key}")
    assert entity_id is not None, key
    state = hass.states.get(entity_id)
    assert state is not None, entity_id
    return state.state


async def test_five_meters_added_in_a_row_without_reload(
    hass: HomeAssistant, make_room: RoomFactory
) -> None:
    room = await make_room(credit_minor=50_000)
    entry = room.entry
    room_subentry_id = next(iter(entry.subentries))
    room_coordinator = room.coordinator
    room_controller = entry.runtime_data.supply[room_subentry_id]
    entities = er.async_get(hass)
    room_entity_ids = {
        e.entity_id for e in er.async_entries_for_config_entry(entities, entry.entry_id)
    }
    assert room_entity_ids
    writes = _count_writes(room.sim.devices[RELAY_UNIT])
    went_unavailable = _watch_unavailable(hass, room_entity_ids)
    ledger_meter = await room.ledger.call("GET", f"/api/v1/meters/{room.ledger_meter_id}")

    added: list[str] = []
    for n in range(5):
        unit = FIRST_NEW_UNIT + n
        room.sim.add(unit, SimulatedMeter("acrel_ddsy1352", load=ConstantLoad(0.0), total=5.0))
        ledger_meter_id = await _new_tenant(room, n, int(ledger_meter["tariff_id"]))
        before = set(entry.subentries)
        await _add_meter_by_flow(
            hass, entry.entry_id, f"Flat {n}", room.sim.tcp_port, unit, ledger_meter_id
        )
        await hass.async_block_till_done()
        (subentry_id,) = set(entry.subentries) - before
        added.append(subentry_id)
        # The new meter's entities show its first poll and its account before any timed poll.
        assert float(_state_of(hass, subentry_id, "energy_total")) == 5.0
        assert float(_state_of(hass, subentry_id, "balance")) == 10.0
        assert subentry_id in entry.runtime_data.supply, "the new meter's relay is controlled"

    # Nothing restarted: the same objects, no neighbour unavailable, no relay write.
    assert entry.state is ConfigEntryState.LOADED
    assert room.coordinator is room_coordinator
    assert entry.runtime_data.supply[room_subentry_id] is room_controller
    assert went_unavailable == []
    assert writes == []

    # Removing one meter removes its device and entities and stops it; the room carries on.
    removed = added[2]
    assert hass.config_entries.async_remove_subentry(entry, removed)
    await hass.async_block_till_done()
    assert removed not in entry.runtime_data.meters
    assert removed not in entry.runtime_data.supply
    assert not [e for e in entities.entities.values() if e.config_subentry_id == removed]
    devices = dr.async_get(hass)
    assert devices.async_get_device_by_identifier((DOMAIN, removed), entry.entry_id) is None
    assert room.coordinator is room_coordinator
    assert went_unavailable == []
    assert writes == []
