"""A payment the ledger cannot credit reaches a person in Home Assistant, and goes when resolved.

A Stripe-signed payment with a mistyped account number arrives at the real ledger. Home
Assistant must fire ``prepaid_meter_order_needs_attention`` carrying the order (amount,
currency, the number as typed, the reason) and raise a repair issue; when the landlord credits
the right account through the ledger, the issue goes. Expected values are the test's own
inputs.
"""

from __future__ import annotations

import secrets

from homeassistant.core import Event, HomeAssistant
from homeassistant.helpers import issue_registry as ir

from custom_components.prepaid_meter.const import DOMAIN

from .live_room import RoomFactory, wait_for

TYPO = "9999-9999-99"  # no such account


async def test_typo_payment_fires_event_raises_issue_and_clears(
    hass: HomeAssistant, make_room: RoomFactory
) -> None:
    room = await make_room(credit_minor=1000)
    events: list[Event] = []
    hass.bus.async_listen("prepaid_meter_order_needs_attention", events.append)

    await room.ledger.pay_by_stripe(TYPO, 1234)
    await wait_for(lambda: bool(events))
    data = events[0].data
    assert isinstance(data["order_id"], int)
    assert data["amount_minor"] == 1234
    assert data["amount"] == "12.34"
    assert data["currency"].upper() == "EUR"
    assert data["account_number"] == TYPO
    assert data["account_id"] is None
    assert data["reason"]
    assert data["config_entry_id"] == room.entry.entry_id
    issue_id = f"order_needs_attention_{room.entry.entry_id}_{data['order_id']}"
    issue = ir.async_get(hass).async_get_issue(DOMAIN, issue_id)
    assert issue is not None
    assert issue.translation_placeholders is not None
    assert issue.translation_placeholders["amount"] == "12.34 EUR"
    assert issue.translation_placeholders["account_number"] == TYPO

    # The landlord credits the right account, with a reason: the issue goes at once.
    await room.ledger.call(
        "POST",
        f"/api/v1/topups/{data['order_id']}/actions",
        {"action": "credit", "account": room.account["number"], "reason": "typo, tenant called"},
        {"Idempotency-Key": secrets.token_hex(8)},
    )
    await wait_for(lambda: ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is None)
    assert await room.balance_minor() == 1000 + 1234


async def test_orders_needing_attention_are_raised_after_a_restart(
    hass: HomeAssistant, make_room: RoomFactory
) -> None:
    """An order that went wrong while Home Assistant was away is still put in front of a person."""
    room = await make_room(credit_minor=1000)
    assert await hass.config_entries.async_unload(room.entry.entry_id)
    await room.ledger.pay_by_stripe(TYPO, 500)
    assert await hass.config_entries.async_setup(room.entry.entry_id)
    await hass.async_block_till_done()
    issues = [
        issue
        for (domain, issue_id), issue in ir.async_get(hass).issues.items()
        if domain == DOMAIN and issue_id.startswith("order_needs_attention_")
    ]
    assert len(issues) == 1
    assert issues[0].translation_placeholders is not None
    assert issues[0].translation_placeholders["amount"] == "5.00 EUR"
