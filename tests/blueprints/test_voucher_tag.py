"""The voucher tag blueprint against the real integration and ledger.

A tag scan is Home Assistant's own `tag_scanned` event (what the companion app or an NFC
reader fires); the voucher is minted at the real ledger and redeemed through the integration's
`prepaid_meter.redeem_voucher`. Expected amounts: a 12.50 EUR voucher on a 1.00 EUR balance.
"""

from __future__ import annotations

from homeassistant.core import HomeAssistant, ServiceCall

from tests.blueprints.conftest import use_blueprint
from tests.integration.live_room import RoomFactory, entity_id, wait_for

NOTIFY = "notify.room_tablet"


async def test_a_scanned_voucher_tag_credits_the_room_once(
    hass: HomeAssistant, make_room: RoomFactory, notifications: list[ServiceCall]
) -> None:
    room = await make_room(credit_minor=100)
    minted = await room.ledger.call(
        "POST", "/api/v1/vouchers/batches", {"value_minor": 1250, "currency": "EUR", "count": 2}
    )
    code, other = (card["code"] for card in minted["codes"])
    await use_blueprint(
        hass,
        "voucher_tag.yaml",
        {
            "balance": entity_id(hass, room, "balance"),
            "reader": "tablet-room-1",
            "notify": [NOTIFY],
        },
    )

    # A scan from another reader, and a tag that is no voucher, do nothing.
    hass.bus.async_fire("tag_scanned", {"tag_id": other, "device_id": "phone-in-the-hall"})
    hass.bus.async_fire("tag_scanned", {"tag_id": "kitchen-light", "device_id": "tablet-room-1"})
    await hass.async_block_till_done()
    assert notifications == []

    hass.bus.async_fire("tag_scanned", {"tag_id": code, "device_id": "tablet-room-1"})
    await wait_for(lambda: len(notifications) == 1)
    assert notifications[0].data["title"] == "Voucher accepted"
    assert "Credited 12.50 EUR (card 1 of voucher batch" in " ".join(
        notifications[0].data["message"].split()
    )
    assert await room.balance_minor() == 1350

    # The same tag again: not credited twice, and the tablet says so.
    hass.bus.async_fire("tag_scanned", {"tag_id": code, "device_id": "tablet-room-1"})
    await wait_for(lambda: len(notifications) == 2)
    assert notifications[1].data["title"] == "Voucher not accepted"
    assert await room.balance_minor() == 1350
