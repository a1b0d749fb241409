"""Live prepaid control end to end: the simulator as the meter, the real ledger over HTTP.

Expected money comes from the simulator's own register total and the tariff's price, not
from the integration: charge = (total now - total at baseline) x price, rounded once.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any
from unittest.mock import patch

import pytest
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import Event, HomeAssistant
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import device_registry as dr
from homeassistant.util import dt as dt_util

from custom_components.prepaid_meter import logbook
from custom_components.prepaid_meter.const import (
    DOMAIN,
)
from custom_components.prepaid_meter.diagnostics import async_get_config_entry_diagnostics
from custom_components.prepaid_meter.reading_queue import ReadingQueue
from tests.integration.live_room import (
    METER_UNIT,
    RoomFactory,
    entity_id,
    expected_charge_minor,
    room_device_id,
    wait_for,
)


async def test_balance_falls_as_the_meter_consumes(
    hass: HomeAssistant, make_room: RoomFactory
) -> None:
    """Each poll's reading is charged; the balance entity shows the ledger's balance."""
    room = await make_room(credit_minor=500)
    balance_id = entity_id(hass, room, "balance")
    baseline = Decimal(str(room.meter.total))
    assert hass.states.get(balance_id).state == "5.00"
    assert hass.states.get(balance_id).attributes["unit_of_measurement"] == "EUR"
    await asyncio.sleep(1.5)
    await room.poll_and_post(hass)
    consumed = Decimal(str(room.meter.total)) - baseline
    ledger_balance = await room.balance_minor()
    # float32 register resolution at 10 kWh is below 1e-6 kWh: well under a cent at this price.
    assert abs((500 - ledger_balance) - expected_charge_minor(consumed)) <= 1
    assert ledger_balance < 500
    await wait_for(lambda: hass.states.get(balance_id).state == f"{ledger_balance / 100:.2f}")
    assert len(room.sync.queue) == 0


@pytest.mark.parametrize("ledger_backend", ["sqlite", "postgres"])
async def test_credit_exhausted_cuts_and_payment_restores_without_a_poll(
    hass: HomeAssistant, make_room: RoomFactory
) -> None:
    """Exhausted credit opens the relay (consumption stops); a Stripe payment closes it."""
    room = await make_room(credit_minor=2)
    relay_id = entity_id(hass, room, "relay", "switch")
    supply_id = entity_id(hass, room, "supply_allowed", "binary_sensor")
    assert hass.states.get(relay_id).state == "on"
    await asyncio.sleep(0.5)  # half a second costs about 0.05 EUR, more than the 0.02
    await room.poll_and_post(hass)
    await wait_for(lambda: room.meter.relay_closed is False)
    await wait_for(lambda: hass.states.get(relay_id).state == "off")
    assert hass.states.get(supply_id).state == "off"
    assert hass.states.get(supply_id).attributes["reason"] == "exhausted"
    stopped_at = room.meter.advance()
    await asyncio.sleep(0.3)
    assert room.meter.advance() == stopped_at  # an open relay stops consumption

    credited: list[Event] = []
    hass.bus.async_listen("prepaid_meter_top_up_credited", credited.append)
    changed: list[Event] = []
    hass.bus.async_listen("prepaid_meter_supply_changed", changed.append)
    debt = -await room.balance_minor()
    await room.ledger.pay_by_stripe(room.account["number"], debt + 1000)
    # No poll from here on: the event stream alone must close the relay.
    await wait_for(lambda: room.meter.relay_closed is True)
    await wait_for(lambda: hass.states.get(relay_id).state == "on")
    await wait_for(lambda: bool(credited) and bool(changed))
    assert hass.states.get(entity_id(hass, room, "balance")).state == "10.00"
    assert credited[0].data["amount_minor"] == debt + 1000
    assert changed[0].data["state"] == "restored"
    last_top_up = hass.states.get(entity_id(hass, room, "last_top_up"))
    assert last_top_up.attributes["status"] == "succeeded"
    event_state = hass.states.get(entity_id(hass, room, "account_events", "event"))
    assert event_state.attributes["event_type"] in ("top_up_credited", "supply_changed")


async def test_friendly_hours_hold_the_cut_until_they_end(
    hass: HomeAssistant, make_room: RoomFactory
) -> None:
    """Inside friendly hours an exhausted account keeps supply; when they end, it is cut."""
    every_day = {
        day: [{"start": "00:00", "end": "24:00"}]
        for day in (
            "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"
        )
    }  # fmt: skip
    room = await make_room(credit_minor=2, friendly_hours=every_day)
    await asyncio.sleep(0.5)
    await room.poll_and_post(hass)
    supply_id = entity_id(hass, room, "supply_allowed", "binary_sensor")
    assert await room.balance_minor() < 0
    assert hass.states.get(supply_id).attributes["reason"] == "friendly_hours"
    assert room.meter.relay_closed is True
    # The friendly hours end (the landlord removes them): the ledger re-decides and pushes.
    await room.ledger.call(
        "PATCH", f"/api/v1/accounts/{room.account['id']}", {"friendly_hours": {}}
    )
    await wait_for(lambda: room.meter.relay_closed is False)


async def test_protected_account_is_never_cut(hass: HomeAssistant, make_room: RoomFactory) -> None:
    """A protected account in debt keeps its supply."""
    room = await make_room(credit_minor=2, protected=True)
    for _ in range(3):
        await asyncio.sleep(0.3)
        await room.poll_and_post(hass)
    assert await room.balance_minor() < 0
    supply = hass.states.get(entity_id(hass, room, "supply_allowed", "binary_sensor"))
    assert supply.state == "on"
    assert supply.attributes["reason"] == "protected"
    assert room.meter.relay_closed is True
    assert hass.states.get(entity_id(hass, room, "debt")).state != "0.00"


@pytest.mark.parametrize("ledger_backend", ["sqlite", "postgres"])
async def test_ledger_outage_no_cut_readings_queued_and_charged_once(
    hass: HomeAssistant, make_room: RoomFactory
) -> None:
    """With the ledger down nothing is cut; queued readings are charged once after restart."""
    room = await make_room(credit_minor=1000)
    baseline = Decimal(str(room.meter.total))
    await room.ledger.stop()
    await wait_for(lambda: not room.sync.stream_connected)
    for _ in range(3):
        await asyncio.sleep(0.2)
        await room.poll_and_post(hass)
    assert len(room.sync.queue) == 3
    assert room.sync.ledger_ok is False
    # Even a known "no supply" decision does not cut while the ledger is unreachable.
    controller = next(iter(room.entry.runtime_data.supply.values()))
    inputs = controller.inputs()
    assert inputs.ledger_ok is False
    await room.ledger.start()
    await wait_for(lambda: room.sync.stream_connected, within=10)
    await wait_for(lambda: len(room.sync.queue) == 0)
    consumed = Decimal(str(room.meter.total)) - baseline
    charged = 1000 - await room.balance_minor()
    assert abs(charged - expected_charge_minor(consumed)) <= 1
    # Sending the same readings again (a crash after sending, before the queue was saved)
    # charges nothing more.
    before = await room.balance_minor()
    result = await room.ledger.call(
        "POST",
        "/api/v1/readings",
        {"readings": [{"meter_id": room.ledger_meter_id, "value": str(room.meter.total),
                       "at": room.coordinator.data.read_at.isoformat()}]},
    )  # fmt: skip
    assert result["meters"][0]["charged_minor"] == 0
    assert await room.balance_minor() == before


async def test_restart_with_queued_readings_loses_and_doubles_nothing(
    hass: HomeAssistant, make_room: RoomFactory
) -> None:
    """Home Assistant restarts while readings wait: they are sent once after the restart."""
    room = await make_room(credit_minor=1000)
    baseline = Decimal(str(room.meter.total))
    await room.ledger.stop()
    for _ in range(2):
        await asyncio.sleep(0.2)
        await room.poll_and_post(hass)
    assert len(room.sync.queue) == 2
    last_polled = Decimal(str(room.meter.total))
    assert await hass.config_entries.async_unload(room.entry.entry_id)
    await room.ledger.start()
    assert await hass.config_entries.async_setup(room.entry.entry_id)
    await hass.async_block_till_done()
    await wait_for(lambda: room.sync.stream_connected, within=10)
    await wait_for(lambda: len(room.sync.queue) == 0)
    readings = await room.ledger.call("GET", f"/api/v1/meters/{room.ledger_meter_id}")
    assert Decimal(readings["last_value"]) >= last_polled
    consumed = Decimal(readings["last_value"]) - baseline
    assert abs((1000 - await room.balance_minor()) - expected_charge_minor(consumed)) <= 1


async def test_stale_reading_never_cuts(hass: HomeAssistant, make_room: RoomFactory) -> None:
    """A meter that stops answering is not cut, even when credit runs out meanwhile."""
    room = await make_room(credit_minor=2)
    room.sim.set_fault(METER_UNIT, silent=True)
    await room.coordinator.async_refresh()
    assert room.coordinator.last_update_success is False
    # Credit runs out by another meter's consumption or an adjustment: not allowed now.
    await room.ledger.call(
        "POST",
        "/api/v1/adjustments",
        {"account": room.account["id"], "amount_minor": -500, "reason": "test"},
    )
    supply_id = entity_id(hass, room, "supply_allowed", "binary_sensor")
    await wait_for(lambda: hass.states.get(supply_id).state == "off")
    await asyncio.sleep(0.2)
    await hass.async_block_till_done()
    assert room.meter.relay_closed is True
    controller = next(iter(room.entry.runtime_data.supply.values()))
    assert controller.last_decision is not None
    assert controller.last_decision.reason == "stale_reading"


async def override(hass: HomeAssistant, **data: Any) -> Any:
    return await hass.services.async_call(
        DOMAIN, "set_supply_override", data, blocking=True, return_response=True
    )


async def test_override_wins_until_it_expires(hass: HomeAssistant, make_room: RoomFactory) -> None:
    """The action keeps supply on despite no credit; when its time is up, the relay opens."""
    room = await make_room(credit_minor=0)
    device_id = room_device_id(hass, room)
    held = await override(hass, device_id=device_id, supply="on")
    assert held == {"supply": "on", "until": None}
    await room.poll_and_post(hass)
    assert room.meter.relay_closed is True
    response = await override(hass, device_id=device_id, supply="on", duration={"seconds": 1})
    assert response["supply"] == "on"
    assert room.meter.relay_closed is True
    await wait_for(lambda: room.meter.relay_closed is False, within=5)
    controller = next(iter(room.entry.runtime_data.supply.values()))
    assert controller.override is None


async def test_override_back_to_auto(hass: HomeAssistant, make_room: RoomFactory) -> None:
    """supply: auto ends an override at once."""
    room = await make_room(credit_minor=500)
    device_id = room_device_id(hass, room)
    await override(
        hass, device_id=device_id, supply="off", until=dt_util.now() + timedelta(hours=2)
    )
    assert room.meter.relay_closed is False
    assert await override(hass, device_id=device_id, supply="auto") == {
        "supply": "auto",
        "until": None,
    }
    assert room.meter.relay_closed is True


async def test_override_survives_a_restart(hass: HomeAssistant, make_room: RoomFactory) -> None:
    """A person's override is stored: after a reload it still holds the relay."""
    room = await make_room(credit_minor=500)
    device_id = room_device_id(hass, room)
    in_two_hours = dt_util.now() + timedelta(hours=2)
    await override(hass, device_id=device_id, supply="off", until=in_two_hours)
    assert room.meter.relay_closed is False
    assert await hass.config_entries.async_reload(room.entry.entry_id)
    await hass.async_block_till_done()
    await wait_for(lambda: room.sync.stream_connected)
    await room.poll_and_post(hass)
    controller = next(iter(room.entry.runtime_data.supply.values()))
    assert controller.override is not None
    assert controller.override.closed is False
    assert room.meter.relay_closed is False
    await override(hass, device_id=device_id, supply="auto")
    assert room.meter.relay_closed is True


@pytest.mark.parametrize(
    ("extra", "key"),
    [
        ({"supply": "on", "duration": {"hours": 1}, "until": "2030-01-01 00:00:00"},
         "override_duration_or_until"),
        ({"supply": "auto", "duration": {"hours": 1}}, "override_duration_or_until"),
        ({"supply": "on", "duration": {"days": 400}}, "override_too_long"),
        ({"supply": "on", "until": "2001-01-01 00:00:00"}, "override_until_out_of_range"),
        ({"supply": "on", "until": "9999-12-31 23:59:59"}, "override_until_out_of_range"),
        ({"supply": "on", "until": "0001-01-01T00:00:00+01:00"}, "override_until_out_of_range"),
    ],
)  # fmt: skip
async def test_override_bad_input_changes_nothing(
    hass: HomeAssistant, make_room: RoomFactory, extra: dict[str, Any], key: str
) -> None:
    """Each bad call is a translated validation error, and no override is set."""
    room = await make_room(credit_minor=500)
    controller = next(iter(room.entry.runtime_data.supply.values()))
    with pytest.raises(ServiceValidationError) as caught:
        await override(hass, device_id=room_device_id(hass, room), **extra)
    assert caught.value.translation_key == key
    assert controller.override is None
    assert room.meter.relay_closed is True


async def test_override_needs_a_controlled_meter(
    hass: HomeAssistant, make_room: RoomFactory
) -> None:
    """An unknown device or one without relay control is refused by name."""
    room = await make_room(credit_minor=500)
    with pytest.raises(ServiceValidationError) as caught:
        await override(hass, device_id="no-such-device", supply="on")
    assert caught.value.translation_key == "not_a_meter"
    room.entry.runtime_data.supply.clear()  # as for a meter without a relay or ledger link
    with pytest.raises(ServiceValidationError) as caught:
        await override(hass, device_id=room_device_id(hass, room), supply="on")
    assert caught.value.translation_key == "no_relay_control"


async def test_stream_reconnects_after_ledger_restart_without_missing_an_event(
    hass: HomeAssistant, make_room: RoomFactory
) -> None:
    """A top-up made while the stream was down arrives after the reconnect."""
    room = await make_room(credit_minor=100)
    credited: list[Event] = []
    hass.bus.async_listen("prepaid_meter_top_up_credited", credited.append)
    await room.ledger.stop()
    await wait_for(lambda: not room.sync.stream_connected)
    await room.ledger.start()
    await room.ledger.top_up(room.account["id"], 250)  # before HA has reconnected
    await wait_for(lambda: bool(credited), within=10)
    assert credited[0].data["amount_minor"] == 250
    balance_id = entity_id(hass, room, "balance")
    await wait_for(lambda: hass.states.get(balance_id).state == "3.50")


async def test_low_balance_event_sensor_and_logbook_text(
    hass: HomeAssistant, make_room: RoomFactory
) -> None:
    """Crossing the first low-balance level (0.80) turns the sensor on and fires the event."""
    room = await make_room(credit_minor=100)
    low_id = entity_id(hass, room, "low_balance", "binary_sensor")
    assert hass.states.get(low_id).state == "off"
    fired: list[Event] = []
    hass.bus.async_listen("prepaid_meter_low_balance", fired.append)
    await room.ledger.call(
        "POST",
        "/api/v1/adjustments",
        {"account": room.account["id"], "amount_minor": -30, "reason": "test"},
    )
    await wait_for(lambda: hass.states.get(low_id).state == "on")
    await wait_for(lambda: bool(fired))
    assert fired[0].data["level"] == 1
    assert fired[0].data["threshold_minor"] == 80
    assert hass.states.get(low_id).attributes == {
        **hass.states.get(low_id).attributes,
        "level": 1,
        "threshold": "0.80",
    }
    device = dr.async_get(hass).async_get_device_by_identifier(
        (DOMAIN, next(iter(room.entry.subentries))), room.entry.entry_id
    )
    assert device is not None
    assert fired[0].data["device_ids"] == [device.id]

    described: dict[str, Callable[[Event], dict[str, str]]] = {}
    logbook.async_describe_events(
        hass, lambda _domain, event_type, describe: described.__setitem__(event_type, describe)
    )
    line = described["prepaid_meter_low_balance"](fired[0])
    assert line["message"] == "balance fell to low-balance level 1"


async def test_switching_against_the_decision_needs_an_override(
    hass: HomeAssistant, make_room: RoomFactory
) -> None:
    """With supply allowed, switching the relay off by hand is refused with a clear error."""
    room = await make_room(credit_minor=500)
    relay_id = entity_id(hass, room, "relay", "switch")
    with pytest.raises(ServiceValidationError) as caught:
        await hass.services.async_call("switch", "turn_off", {"entity_id": relay_id}, blocking=True)
    assert caught.value.translation_key == "relay_follows_credit"
    assert "set_supply_override" in str(caught.value)
    assert room.meter.relay_closed is True
    controller = next(iter(room.entry.runtime_data.supply.values()))
    await controller.async_set_override(closed=False, until=None)
    assert room.meter.relay_closed is False
    # With the override saying "off", switching off by hand is fine; on is refused.
    await hass.services.async_call("switch", "turn_off", {"entity_id": relay_id}, blocking=True)
    with pytest.raises(ServiceValidationError):
        await hass.services.async_call("switch", "turn_on", {"entity_id": relay_id}, blocking=True)
    await controller.async_clear_override()
    assert room.meter.relay_closed is True


async def test_options_and_diagnostics(hass: HomeAssistant, make_room: RoomFactory) -> None:
    """The options flow stores the relay settings; diagnostics show the queue and the stream."""
    room = await make_room(credit_minor=500)
    controller_before = next(iter(room.entry.runtime_data.supply.values()))
    result = await hass.config_entries.options.async_init(room.entry.entry_id)
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {"stale_polls": 5, "enforce_when_offline": True}
    )
    assert result["type"] == "create_entry"
    await hass.async_block_till_done()
    assert room.entry.options == {"stale_polls": 5, "enforce_when_offline": True}
    await wait_for(lambda: room.entry.state is ConfigEntryState.LOADED)
    await wait_for(lambda: room.sync.stream_connected and not len(room.sync.queue))
    controller = next(iter(room.entry.runtime_data.supply.values()))
    assert controller.enforce_when_offline is True
    # Applied without a restart: the same controller object, 5 polls of 10 s (the docs' interval).
    assert controller is controller_before
    assert controller.stale_after == timedelta(seconds=50)
    diagnostics = await async_get_config_entry_diagnostics(hass, room.entry)
    sync = diagnostics["ledger_sync"]
    assert sync["stream_connected"] is True
    assert sync["reading_queue"]["depth"] == 0
    assert sync["accounts"][str(room.account["id"])]["balance_minor"] == await room.balance_minor()
    assert diagnostics["entry"]["token"] == "**REDACTED**"
    # Tenants stay anonymous in a bug report: no name, no account number anywhere.
    account = sync["accounts"][str(room.account["id"])]
    assert account["name"] == "**REDACTED**"
    assert account["number"] == "**REDACTED**"
    text = json.dumps(diagnostics, default=str)
    assert room.account["number"] not in text
    supply = next(iter(diagnostics["supply"].values()))
    assert supply["ledger_meter_id"] == room.ledger_meter_id


async def test_reading_for_a_meter_the_ledger_lacks_is_set_aside(
    hass: HomeAssistant, make_room: RoomFactory
) -> None:
    """One reading the ledger refuses for good is dropped; the rest of the batch is charged."""
    room = await make_room(credit_minor=500)
    sync = room.sync
    at = dt_util.utcnow()
    sync.add_reading(987654, "1.0", at)
    sync.add_reading(room.ledger_meter_id, str(room.meter.advance()), at)
    await sync.async_flush()
    assert len(sync.queue) == 0
    stats = sync.queue.stats()
    assert stats.rejected == 1
    assert stats.last_rejection is not None
    assert "987654" in stats.last_rejection
    meter = await room.ledger.call("GET", f"/api/v1/meters/{room.ledger_meter_id}")
    assert meter["last_at"] == at.isoformat()


async def test_queue_is_bounded_oldest_first(hass: HomeAssistant) -> None:
    """Past the bound the oldest readings go, and diagnostics count them."""
    queue = ReadingQueue(hass, "bound-test")
    start = dt_util.utcnow()
    with patch("custom_components.prepaid_meter.reading_queue.MAX_QUEUED", 3):
        for minute in range(5):
            queue.add(1, Decimal(minute), start + timedelta(minutes=minute))
    assert [item.value for item in queue.head()] == [2, 3, 4]
    assert queue.stats().dropped == 2
    await queue.async_save()
    again = ReadingQueue(hass, "bound-test")
    await again.async_load()
    assert [item.value for item in again.head()] == [2, 3, 4]
    assert again.stats().dropped == 2


async def test_implausible_read_is_a_failed_poll_and_never_posted(
    hass: HomeAssistant, make_room: RoomFactory
) -> None:
    """A value no such meter can show (10 kV on a mains meter) fails the poll; nothing is sent."""
    room = await make_room(credit_minor=500)
    await room.sync.async_flush()  # the reading from setup goes first
    room.meter.voltage = 10_000.0  # SDM120 plausible voltage: 0..500 V
    queued_before = len(room.sync.queue)
    await room.coordinator.async_refresh()
    assert room.coordinator.last_update_success is False
    assert "voltage=" in str(room.coordinator.last_exception)
    assert len(room.sync.queue) == queued_before
    assert not room.sync.has_unsent(room.ledger_meter_id)
    energy = hass.states.get(entity_id(hass, room, "energy_total"))
    assert energy.state == "unavailable"
    room.meter.voltage = 230.0
    await room.poll_and_post(hass)
    assert room.coordinator.last_update_success is True
    meter = await room.ledger.call("GET", f"/api/v1/meters/{room.ledger_meter_id}")
    assert meter["last_at"] == room.coordinator.data.read_at.isoformat()
