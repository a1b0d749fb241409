"""Ledger events, translated into the events automations and the logbook use.

Each kind is fired on the bus as ``prepaid_meter_<kind>`` and shown by the account's event
entity, so an automation can use either.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from prepaid_meter_contract.events import (
    LowBalanceAlert,
    ReadingHeldAlert,
    StreamEvent,
    TopupUpdated,
    VoucherGuessingAlert,
)
from prepaid_meter_contract.receipts import Receipt
from prepaid_meter_contract.vocabulary import OrderStatus
from prepaid_meter_contract.wire import format_decimal

from .money import minor_to_major

TOP_UP_CREDITED: Final = "top_up_credited"
LOW_BALANCE: Final = "low_balance"
SUPPLY_CHANGED: Final = "supply_changed"
ORDER_NEEDS_ATTENTION: Final = "order_needs_attention"
READING_HELD: Final = "reading_held"
VOUCHER_GUESSING: Final = "voucher_guessing"
#: Raised by the integration itself: a relay did not reach the commanded state after retries.
RELAY_FAILED: Final = "relay_failed"
EVENT_KINDS: Final = (
    TOP_UP_CREDITED,
    LOW_BALANCE,
    SUPPLY_CHANGED,
    ORDER_NEEDS_ATTENTION,
    READING_HELD,
    VOUCHER_GUESSING,
    RELAY_FAILED,
)


@dataclass(frozen=True, slots=True)
class AutomationEvent:
    """One event for automations: its kind, its data, and an amount to show in major units."""

    kind: str
    data: dict[str, Any]
    amount_minor: int | None = None


def bus_event_type(kind: str) -> str:
    """Return the bus event type of a kind, e.g. ``prepaid_meter_top_up_credited``."""
    return f"prepaid_meter_{kind}"


def receipt_data(receipt: Receipt) -> dict[str, Any]:
    """Return a receipt as event data: the ledger's fields, plus its amounts in major units.

    So an automation can e-mail or print it without arithmetic (``amount``: ``"12.50"``).
    """
    exponent = receipt.currency_exponent
    return receipt.model_dump(mode="json") | {
        "amount": str(minor_to_major(receipt.amount_minor, exponent)),
        "bonus": str(minor_to_major(receipt.bonus_minor, exponent)),
        "balance_after": str(minor_to_major(receipt.balance_after_minor, exponent)),
    }


def from_ledger_event(event: StreamEvent) -> AutomationEvent | None:
    """Map one ledger stream event to an automation event, or ``None`` if none is needed.

    An order needing attention is announced by the ledger's alert, which carries the whole
    order (``order_attention``), not by its ``topup.updated``.
    """
    match event:
        case TopupUpdated(status=OrderStatus.SUCCEEDED):
            data = {
                "order_id": event.order_id,
                "amount_minor": event.amount_minor,
                "currency": event.currency,
                # The receipt issued with the credit (None from a ledger without receipts).
                "receipt": None if event.receipt is None else receipt_data(event.receipt),
            }
            return AutomationEvent(TOP_UP_CREDITED, data, event.amount_minor)
        case LowBalanceAlert():
            data = {
                "level": event.level,
                "balance_minor": event.balance_minor,
                "threshold_minor": event.threshold_minor,
            }
            return AutomationEvent(LOW_BALANCE, data)
        case ReadingHeldAlert():
            data = {
                "reading_id": event.reading_id,
                "ledger_meter_id": event.meter_id,
                "hold": str(event.hold),
                "value": format_decimal(event.value),
                "last_value": None
                if event.last_value is None
                else format_decimal(event.last_value),
            }
            return AutomationEvent(READING_HELD, data)
        case VoucherGuessingAlert():
            data = {"failures": event.failures, "waits_until": event.waits_until.isoformat()}
            return AutomationEvent(VOUCHER_GUESSING, data)
    return None
