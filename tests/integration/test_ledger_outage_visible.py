"""A ledger outage is visible in Home Assistant: a connectivity entity, ``as_of``, a repair.

The real ledger is stopped and started again under a running site. The repair's delay is
scaled down (the sync's ``outage_repair_after``) so the test runs in seconds.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers import issue_registry as ir
from homeassistant.util import dt as dt_util

from custom_components.prepaid_meter.const import DOMAIN

from .live_room import RoomFactory, entity_id, wait_for


async def test_ledger_outage_shows_and_clears(hass: HomeAssistant, make_room: RoomFactory) -> None:
    room = await make_room(credit_minor=1000)
    sync = room.sync
    sync.outage_repair_after = timedelta(seconds=1)
    connection = er.async_get(hass).async_get_entity_id(
        "binary_sensor", DOMAIN, f"{room.entry.entry_id}_ledger_connection"
    )
    assert connection is not None
    assert hass.states.get(connection).state == "on"
    balance = entity_id(hass, room, "balance")
    as_of = hass.states.get(balance).attributes["as_of"]
    assert as_of is not None
    assert dt_util.parse_datetime(as_of) <= dt_util.utcnow()
    issue_id = f"ledger_unreachable_{room.entry.entry_id}"

    await room.ledger.stop()
    await wait_for(lambda: hass.states.get(connection).state == "off")
    state = hass.states.get(connection)
    assert state.attributes["unreachable_since"] is not None
    assert state.attributes["event_stream"] is False
    # The balance is what it was, and says as of when.
    assert hass.states.get(balance).attributes["as_of"] == as_of
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is None, "not at once"
    await room.poll_and_post(hass)  # a reading taken meanwhile waits in the queue
    await wait_for(lambda: ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is not None)
    issue = ir.async_get(hass).async_get_issue(DOMAIN, issue_id)
    assert issue is not None
    assert issue.translation_placeholders is not None
    assert issue.translation_placeholders["url"] == room.ledger.url
    assert hass.states.get(connection).attributes["queued_readings"] >= 1

    await room.ledger.start()
    await wait_for(lambda: sync.stream_connected, within=10)
    await wait_for(lambda: hass.states.get(connection).state == "on")
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is None
    await wait_for(lambda: len(sync.queue) == 0)
    await asyncio.sleep(0)
    assert hass.states.get(connection).attributes["unreachable_since"] is None


async def test_short_blip_raises_no_repair(hass: HomeAssistant, make_room: RoomFactory) -> None:
    room = await make_room(credit_minor=1000)
    room.sync.outage_repair_after = timedelta(seconds=30)
    await room.ledger.stop()
    await wait_for(lambda: not room.sync.stream_connected)
    await room.ledger.start()
    await wait_for(lambda: room.sync.stream_connected, within=10)
    assert room.sync.unreachable_since is None
    issue_id = f"ledger_unreachable_{room.entry.entry_id}"
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is None
