"""Ledger events, translated into the events automations and the logbook use.

Each kind is fired on the bus as ``prepaid_meter_<kind>`` and shown by the account's event
entity, so an automation can use either.
"""

from __future__ import annotations

from typing import Any, Final

TOP_UP_CREDITED: Final = "top_up_credited"
LOW_BALANCE: Final = "low_balance"
SUPPLY_CHANGED: Final = "supply_changed"
ORDER_NEEDS_ATTENTION: Final = "order_needs_attention"
READING_HELD: Final = "reading_held"
#: Raised by the integration itself: a relay did not reach the commanded state after retries.
RELAY_FAILED: Final = "relay_failed"
EVENT_KINDS: Final = (
    TOP_UP_CREDITED,
    LOW_BALANCE,
    SUPPLY_CHANGED,
    ORDER_NEEDS_ATTENTION,
    READING_HELD,
    RELAY_FAILED,
)
_LOW_BALANCE_PREFIX: Final = "low_balance_level_"


def bus_event_type(kind: str) -> str:
    """Return the bus event type of a kind, e.g. ``prepaid_meter_top_up_credited``."""
    return f"prepaid_meter_{kind}"


def from_ledger_event(
    event_type: str, payload: dict[str, Any]
) -> tuple[str, dict[str, Any]] | None:
    """Map one ledger stream event to (kind, data), or ``None`` if automations need not see it."""
    if event_type == "topup.updated":
        status = payload.get("status")
        order = {
            "order_id": payload.get("order_id"),
            "amount_minor": payload.get("amount_minor"),
            "currency": payload.get("currency"),
        }
        if status == "succeeded":
            return TOP_UP_CREDITED, order
        # needs_attention: announced by the ledger's alert, which carries the whole order.
        return None
    if event_type == "alert":
        kind = str(payload.get("kind", ""))
        if kind.startswith(_LOW_BALANCE_PREFIX) and kind[len(_LOW_BALANCE_PREFIX) :].isdigit():
            return LOW_BALANCE, {
                "level": int(kind[len(_LOW_BALANCE_PREFIX) :]),
                "balance_minor": payload.get("balance_minor"),
                "threshold_minor": payload.get("threshold_minor"),
            }
        if kind == READING_HELD:
            return READING_HELD, {
                "reading_id": payload.get("reading_id"),
                "ledger_meter_id": payload.get("meter_id"),
                "hold": payload.get("hold"),
                "value": payload.get("value"),
                "last_value": payload.get("last_value"),
            }
    return None
