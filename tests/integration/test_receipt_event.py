"""A credited top-up's receipt reaches Home Assistant's bus event (issue 22).

An automation e-mails the receipt from ``prepaid_meter_top_up_credited``: its data carries the
ledger's receipt (number, account, room, amounts, method, balance after) and the amounts in
major units.
"""

from __future__ import annotations

from homeassistant.core import Event, HomeAssistant

from tests.integration.live_room import RoomFactory, wait_for


async def test_top_up_credited_event_carries_the_receipt(
    hass: HomeAssistant, make_room: RoomFactory
) -> None:
    room = await make_room(credit_minor=100)  # receipt 1: the room's opening credit
    credited: list[Event] = []
    hass.bus.async_listen("prepaid_meter_top_up_credited", credited.append)
    before = int(
        (await room.ledger.call("GET", f"/api/v1/accounts/{room.account['id']}"))["balance_minor"]
    )
    await room.ledger.pay_by_stripe(room.account["number"], 1250)
    await wait_for(lambda: bool(credited), within=10)
    data = credited[0].data
    assert data["amount_minor"] == 1250
    receipt = data["receipt"]
    assert receipt["number"] == 2
    assert receipt["order_id"] == data["order_id"]
    assert receipt["account_id"] == room.account["id"]
    assert receipt["account_number"] == room.account["number"]
    assert (receipt["account_name"], receipt["room"]) == ("Room 1", "R1")
    assert (receipt["amount_minor"], receipt["bonus_minor"]) == (1250, 0)
    assert (receipt["currency"], receipt["method"]) == ("EUR", "card")
    assert receipt["balance_after_minor"] == before + 1250
    assert (receipt["amount"], receipt["bonus"]) == ("12.50", "0.00")
    ledger_receipt = await room.ledger.call("GET", f"/api/v1/topups/{data['order_id']}/receipt")
    assert {k: receipt[k] for k in ledger_receipt} == ledger_receipt
