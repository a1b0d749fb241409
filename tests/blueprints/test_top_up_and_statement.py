"""The auto top-up and monthly statement blueprints against the real integration and ledger.

The balance is moved by the ledger (an admin adjustment), reaches Home Assistant over the
event stream, and the blueprint's top-ups and statements go back to the real ledger. Expected
amounts are worked from the blueprint's inputs: 10.00 EUR, a 5.00 threshold, 2.00 per top-up,
at most 5.00 a day.
"""

from __future__ import annotations

import asyncio
import secrets
from datetime import timedelta

import pytest
from homeassistant.core import HomeAssistant, ServiceCall
from homeassistant.util import dt as dt_util

from tests.blueprints.conftest import use_blueprint
from tests.integration.live_room import Room, RoomFactory, entity_id, room_device_id, wait_for

NOTIFY = "notify.landlord_phone"


async def adjust(hass: HomeAssistant, room: Room, amount_minor: int) -> None:
    """Move the balance in the ledger and wait until Home Assistant shows it."""
    await room.ledger.call(
        "POST",
        "/api/v1/adjustments",
        {"account": room.account["id"], "amount_minor": amount_minor, "reason": "test"},
        {"Idempotency-Key": secrets.token_hex(8)},
    )
    await in_sync(hass, room)


async def in_sync(hass: HomeAssistant, room: Room) -> None:
    """Wait until Home Assistant shows the ledger's balance (a top-up arrives by push)."""
    expected = f"{await room.balance_minor() / 100:.2f}"
    balance = entity_id(hass, room, "balance")
    await wait_for(lambda: hass.states.get(balance).state == expected)


async def auto_top_up(hass: HomeAssistant, room: Room, **inputs: object) -> None:
    await use_blueprint(
        hass,
        "auto_top_up.yaml",
        {
            "balance": entity_id(hass, room, "balance"),
            "threshold": 5,
            "amount": 2,
            "daily_cap": 5,
            "monthly_cap": 100,
            "notify": [NOTIFY],
        }
        | inputs,
    )


async def test_tops_up_below_the_threshold_and_never_past_the_daily_cap(
    hass: HomeAssistant, make_room: RoomFactory, notifications: list[ServiceCall]
) -> None:
    room = await make_room(credit_minor=1000)
    await auto_top_up(hass, room)
    await adjust(hass, room, -600)  # 10.00 -> 4.00: below 5.00
    await wait_for(lambda: len(notifications) == 1)
    assert await room.balance_minor() == 600
    assert notifications[0].data["message"].startswith("Topped up 2.00 EUR (order ")
    assert "2.00 of 5.00 today, 2.00 of 100.00 this month" in notifications[0].data["message"]
    await in_sync(hass, room)
    await adjust(hass, room, -200)  # 6.00 -> 4.00
    await wait_for(lambda: len(notifications) == 2)
    assert await room.balance_minor() == 600
    await in_sync(hass, room)
    await adjust(hass, room, -200)  # 4.00 + 2.00 = 6.00 more than the 5.00 cap: no top-up
    await wait_for(lambda: len(notifications) == 3)
    assert notifications[2].data["title"] == "Automatic top-up not made"
    assert "another 2.00 EUR would pass the cap (4.00 of 5.00 today" in " ".join(
        notifications[2].data["message"].split()
    )
    assert await room.balance_minor() == 400
    # The blueprint keeps no count of its own: each run reads the ledger's statement, so an
    # automation started afresh (as after a restart) still knows what was spent today.
    for service in ("turn_off", "turn_on"):
        await hass.services.async_call(
            "automation", service, {"entity_id": "automation.auto_top_up"}, blocking=True
        )
    await adjust(hass, room, 300)
    await adjust(hass, room, -300)
    await wait_for(lambda: len(notifications) == 4)
    assert notifications[3].data["title"] == "Automatic top-up not made"
    assert await room.balance_minor() == 400
    statement = await room.ledger.call(
        "GET", f"/api/v1/accounts/{room.account['id']}/statement?format=json"
    )
    auto = [t for t in statement["topups"] if ": auto top-up " in t["description"]]
    assert [t["amount_minor"] for t in auto] == [200, 200]


async def test_a_refused_top_up_stops_the_automation(
    hass: HomeAssistant, make_room: RoomFactory, notifications: list[ServiceCall]
) -> None:
    room = await make_room(credit_minor=1000)
    # 20,000 EUR is more than the ledger's largest top-up (10,000.00): refused.
    await auto_top_up(hass, room, amount=20000, daily_cap=100000, monthly_cap=100000)
    await adjust(hass, room, -600)
    await wait_for(lambda: len(notifications) == 1)
    assert notifications[0].data["title"] == "Automatic top-up failed"
    await wait_for(lambda: hass.states.get("automation.auto_top_up").state == "off")
    assert await room.balance_minor() == 400
    await adjust(hass, room, 300)
    await adjust(hass, room, -300)
    await asyncio.sleep(0.3)
    assert len(notifications) == 1  # switched off: no blind retry


@pytest.mark.parametrize("expected_lingering_timers", [True])  # next month's trigger time
async def test_monthly_statement_is_sent_on_the_chosen_day(
    hass: HomeAssistant, make_room: RoomFactory, notifications: list[ServiceCall]
) -> None:
    now = dt_util.now()
    if now.day > 28:
        pytest.skip("the blueprint offers days 1-28 only")
    room = await make_room(credit_minor=1000)
    await use_blueprint(
        hass,
        "monthly_statement.yaml",
        {
            "meters": [room_device_id(hass, room)],
            "day": now.day,
            "time": (now + timedelta(seconds=2)).strftime("%H:%M:%S"),
            "notify": [NOTIFY],
        },
    )
    await wait_for(lambda: len(notifications) == 1, within=10)
    first = now.replace(day=1).date()
    previous = (now.replace(day=1) - timedelta(days=1)).replace(day=1).date()
    assert notifications[0].data["title"] == f"Room 1: statement {previous} to {first}"
    # The account was opened today: last month it had no movement at all.
    assert notifications[0].data["message"] == (
        f"Account {room.account['number']} (EUR): opening 0.00, top-ups 0.00, "
        "consumption 0.00, standing charges 0.00, closing 0.00."
    )
