"""A voucher closes a cut room's relay like any payment, with the real ledger and meter.

The room's credit runs out while its simulated meter counts, the relay opens; a voucher is
minted at the ledger (the landlord) and redeemed through ``prepaid_meter.redeem_voucher`` on the
room's meter device (the counter sale, the NFC tag). No poll follows: the ledger's event stream
alone must close the relay. Expected: 20.00 EUR credited once, the relay closed, the credited
event carrying the voucher's receipt.
"""

from __future__ import annotations

import asyncio

import pytest
from homeassistant.core import Event, HomeAssistant

from custom_components.prepaid_meter.const import DOMAIN
from tests.integration.live_room import RoomFactory, entity_id, room_device_id, wait_for


@pytest.mark.parametrize("ledger_backend", ["sqlite", "postgres"])
async def test_a_voucher_restores_supply_without_a_poll(
    hass: HomeAssistant, make_room: RoomFactory
) -> None:
    room = await make_room(credit_minor=2)
    relay_id = entity_id(hass, room, "relay", "switch")
    await asyncio.sleep(0.5)  # half a second costs about 0.05 EUR, more than the 0.02
    await room.poll_and_post(hass)
    await wait_for(lambda: room.meter.relay_closed is False)
    await wait_for(lambda: hass.states.get(relay_id).state == "off")

    minted = await room.ledger.call(
        "POST", "/api/v1/vouchers/batches", {"value_minor": 2000, "currency": "EUR", "count": 1}
    )
    credited: list[Event] = []
    hass.bus.async_listen("prepaid_meter_top_up_credited", credited.append)
    debt = -await room.balance_minor()
    redeemed = await hass.services.async_call(
        DOMAIN,
        "redeem_voucher",
        {"device_id": room_device_id(hass, room), "code": minted["codes"][0]["code"]},
        blocking=True,
        return_response=True,
    )
    assert redeemed is not None
    assert redeemed["order"]["source"] == "voucher"
    # No poll from here on: the event stream alone closes the relay.
    await wait_for(lambda: room.meter.relay_closed is True)
    await wait_for(lambda: hass.states.get(relay_id).state == "on")
    await wait_for(lambda: bool(credited))
    assert credited[0].data["amount_minor"] == 2000
    receipt = credited[0].data["receipt"]
    assert (receipt["method"], receipt["amount_minor"]) == ("voucher", 2000)
    assert receipt["balance_after_minor"] == 2000 - debt
