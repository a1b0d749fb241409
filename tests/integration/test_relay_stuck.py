"""A relay that does not obey costs a few commands, keeps the poll on time and tells a person.

The simulator's ``relay_stuck`` fault acknowledges writes and changes nothing (a welded relay,
an unpowered module). The relay module counts the writes that reach it; the meter counts the
reads of its registers, which is how the line sees the poll cadence. Waits are scaled down
(the controller's retry waits, the coordinator's interval) so the tests run in seconds of real
time against the real ledger.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any

import pytest
from homeassistant.core import Event, HomeAssistant
from homeassistant.helpers import issue_registry as ir

from custom_components.prepaid_meter.const import DOMAIN

from .live_room import METER_UNIT, RELAY_UNIT, RoomFactory, room_device_id, wait_for

FIRST_WAIT = 1.0  # seconds: stands for the 10 s poll interval
LONGEST_WAIT = 2.0  # seconds: stands for 10 minutes


def _count(device: Any, method: str) -> list[object]:
    """Record each call of ``device.method`` (what reaches the simulated device)."""
    calls: list[object] = []
    original = getattr(device, method)

    def counting(*args: Any) -> Any:
        calls.append(args)
        return original(*args)

    setattr(device, method, counting)
    return calls


async def test_stuck_relay_is_retried_with_backoff_and_reported(
    hass: HomeAssistant, make_room: RoomFactory, caplog: pytest.LogCaptureFixture
) -> None:
    room = await make_room(credit_minor=2)
    controller = next(iter(room.entry.runtime_data.supply.values()))
    controller.first_retry_wait = timedelta(seconds=FIRST_WAIT)
    controller.longest_retry_wait = timedelta(seconds=LONGEST_WAIT)
    room.sim.set_fault(RELAY_UNIT, relay_stuck=True)
    writes = _count(room.sim.devices[RELAY_UNIT], "write")
    failed: list[Event] = []
    hass.bus.async_listen("prepaid_meter_relay_failed", failed.append)
    issue_id = f"relay_not_obeying_{next(iter(room.entry.subentries))}"

    await asyncio.sleep(0.5)  # 3.6 kW for half a second: about 0.05 EUR, more than the credit
    await room.poll_and_post(hass)
    await wait_for(lambda: len(writes) == 1)  # the ledger's cut decision arrives by push
    assert room.meter.relay_closed is True, "and does not take"
    failed_at = asyncio.get_running_loop().time()
    # Polls and pushes before the first wait is over send nothing more (before: 669 a second).
    while asyncio.get_running_loop().time() - failed_at < FIRST_WAIT / 2:
        await room.poll_and_post(hass)
    await asyncio.sleep(0.1)
    assert len(writes) == 1

    # Retried after the first wait, then after twice that: never faster than the poll.
    await asyncio.sleep(FIRST_WAIT / 2 + 0.3)
    await room.poll_and_post(hass)
    await wait_for(lambda: len(writes) == 2)  # on the ledger's push after the reading
    await wait_for(lambda: controller.failure is not None and controller.failure.tries == 2)
    await room.poll_and_post(hass)
    await asyncio.sleep(0.2)
    assert len(writes) == 2
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is None
    await asyncio.sleep(2 * FIRST_WAIT + 0.3)
    await room.poll_and_post(hass)
    await wait_for(lambda: len(writes) == 3)

    # After three tries a person is told, once: a repair issue and an event.
    await wait_for(lambda: len(failed) == 1)  # after the third try's read-back
    issue = ir.async_get(hass).async_get_issue(DOMAIN, issue_id)
    assert issue is not None
    assert issue.translation_key == "relay_not_open"
    assert len(failed) == 1
    assert failed[0].data["wanted"] == "open"
    assert failed[0].data["tries"] == 3
    warnings = [
        r
        for r in caplog.records
        if r.levelno == logging.WARNING and "could not open the relay" in r.getMessage()
    ]
    assert len(warnings) == 1, "one log line per state change, not per try"

    # Polled every 0.2 s: once capped, a try per longest wait at most, never a loop.
    loop = asyncio.get_running_loop()
    before, started = len(writes), loop.time()
    for _ in range(20):
        await asyncio.sleep(0.2)
        await room.poll_and_post(hass)
    elapsed = loop.time() - started
    assert 1 <= len(writes) - before <= elapsed / LONGEST_WAIT + 1
    assert len(failed) == 1

    # The relay is repaired: the next try opens it and the issue goes.
    room.sim.clear_faults(RELAY_UNIT)
    await asyncio.sleep(LONGEST_WAIT + 0.1)
    await room.poll_and_post(hass)
    await wait_for(lambda: room.meter.relay_closed is False)
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is None


async def test_relay_commands_do_not_move_the_poll_schedule(
    hass: HomeAssistant, make_room: RoomFactory
) -> None:
    room = await make_room(credit_minor=50_000)
    coordinator = room.coordinator
    coordinator.update_interval = timedelta(seconds=1)
    await coordinator.async_refresh()  # a poll now; the next is due in 1 s
    reads = _count(room.sim.devices[METER_UNIT], "read")
    device_id = room_device_id(hass, room)
    # A relay command every 0.25 s, as when a landlord switches a room back and forth.
    for step in range(6):
        await hass.services.async_call(
            DOMAIN,
            "set_supply_override",
            {"device_id": device_id, "supply": "off" if step % 2 == 0 else "on"},
            blocking=True,
        )
        await asyncio.sleep(0.25)
    # 1.5 s passed: the poll ran on time although the relay was commanded all along.
    assert reads, "no poll within the interval"
    # Back to polls on demand, with nothing in flight when the test ends.
    coordinator.update_interval = None
    await room.poll_and_post(hass)
