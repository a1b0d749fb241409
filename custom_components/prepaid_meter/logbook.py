"""Logbook lines for the integration's events, so every supply change shows with its reason."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from homeassistant.components.logbook.const import (
    LOGBOOK_ENTRY_ENTITY_ID,
    LOGBOOK_ENTRY_MESSAGE,
    LOGBOOK_ENTRY_NAME,
)
from homeassistant.core import Event, HomeAssistant, callback

from .automation_events import (
    EVENT_KINDS,
    LOW_BALANCE,
    READING_HELD,
    RELAY_FAILED,
    SUPPLY_CHANGED,
    TOP_UP_CREDITED,
    VOUCHER_GUESSING,
    bus_event_type,
)
from .const import DOMAIN


def _message(kind: str, data: dict[str, Any]) -> str:
    if kind == SUPPLY_CHANGED:
        return f"supply {data.get('state')} ({data.get('reason')})"
    if kind == TOP_UP_CREDITED:
        return f"top-up of {data.get('amount')} {data.get('currency')} credited"
    if kind == LOW_BALANCE:
        return f"balance fell to low-balance level {data.get('level')}"
    if kind == RELAY_FAILED:
        return f"relay did not get {data.get('wanted')} after {data.get('tries')} tries"
    if kind == VOUCHER_GUESSING:
        failures, until = data.get("failures"), data.get("waits_until")
        return f"{failures} wrong voucher codes in a row: no more tries until {until}"
    if kind == READING_HELD:
        return f"reading {data.get('value')} held, not charged ({data.get('hold')})"
    return f"top-up order {data.get('order_id')} needs attention ({data.get('reason')})"


@callback
def async_describe_events(
    hass: HomeAssistant,
    async_describe_event: Callable[[str, str, Callable[[Event], dict[str, str]]], None],
) -> None:
    """Describe each of the integration's bus events for the logbook."""

    def describer(kind: str) -> Callable[[Event], dict[str, str]]:
        @callback
        def describe(event: Event) -> dict[str, str]:
            data = dict(event.data)
            entry = {
                LOGBOOK_ENTRY_NAME: str(data.get("meter") or f"Account {data.get('account_id')}"),
                LOGBOOK_ENTRY_MESSAGE: _message(kind, data),
            }
            if entity_id := data.get("entity_id"):
                entry[LOGBOOK_ENTRY_ENTITY_ID] = str(entity_id)
            return entry

        return describe

    for kind in EVENT_KINDS:
        async_describe_event(DOMAIN, bus_event_type(kind), describer(kind))
