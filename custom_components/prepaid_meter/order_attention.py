"""Payments the ledger could not credit, in front of a person in Home Assistant.

A payment for an unknown or closed account, in the wrong currency, or stuck with the provider
becomes a ``needs_attention`` order in the ledger, which announces it with an ``alert`` that
carries the order. Here each such order fires ``prepaid_meter_order_needs_attention`` (for
blueprints that escalate) and is one repair issue, until the order is resolved in the ledger
(credited to the right account, refunded or marked failed on the landlord page).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Self

from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir
from prepaid_meter_contract.events import OrderNeedsAttentionAlert
from prepaid_meter_contract.resources import TopupOrder

from .const import DOMAIN
from .money import minor_to_major

ISSUE_PREFIX: Final = "order_needs_attention_"
#: What an order's alert carries, as automations receive it.
ORDER_FIELDS: Final = frozenset(
    {
        "order_id",
        "account_id",
        "amount_minor",
        "currency",
        "account_number",
        "reason",
        "created_at",
        "age_minutes",
        "currency_exponent",
    }
)


@dataclass(frozen=True, slots=True)
class AttentionOrder:
    """What a person needs to see of an order that needs attention."""

    order_id: int
    amount_minor: int
    currency: str
    currency_exponent: int | None
    account_number: str | None
    reason: str | None

    @classmethod
    def from_alert(cls, alert: OrderNeedsAttentionAlert) -> Self:
        """Read the order from the ledger's alert."""
        return cls(
            alert.order_id,
            alert.amount_minor,
            alert.currency,
            alert.currency_exponent,
            alert.account_number,
            alert.reason,
        )

    @classmethod
    def from_order(cls, order: TopupOrder, currency_exponent: int | None) -> Self:
        """Read it from a listed order (orders carry no exponent: the site's accounts know it)."""
        return cls(
            order.id,
            order.amount_minor,
            order.currency,
            currency_exponent,
            order.account_ref or order.reference,
            order.attention_code or order.attention_reason,
        )


def issue_id(entry_id: str, order_id: int) -> str:
    """Return the repair issue id of one order of one site."""
    return f"{ISSUE_PREFIX}{entry_id}_{order_id}"


def order_data(alert: OrderNeedsAttentionAlert) -> dict[str, Any]:
    """Return the order as automations receive it (absent fields as ``None``)."""
    return alert.model_dump(mode="json", include=set(ORDER_FIELDS))


@callback
def async_raise(hass: HomeAssistant, entry_id: str, ledger_url: str, order: AttentionOrder) -> None:
    """Tell the landlord about one order (a repair issue; the same order raises it once)."""
    ir.async_create_issue(
        hass,
        DOMAIN,
        issue_id(entry_id, order.order_id),
        is_fixable=False,
        is_persistent=False,
        severity=ir.IssueSeverity.WARNING,
        translation_key="order_needs_attention",
        translation_placeholders={
            "order_id": str(order.order_id),
            "amount": _amount(order),
            "account_number": order.account_number or "-",
            "reason": order.reason or "-",
            "url": ledger_url,
        },
    )


def _amount(order: AttentionOrder) -> str:
    """Return the amount in major units with its currency, as a person reads it."""
    if order.currency_exponent is None:
        return f"{order.amount_minor} {order.currency} minor units".strip()
    return f"{minor_to_major(order.amount_minor, order.currency_exponent)} {order.currency}"


@callback
def async_resolved(hass: HomeAssistant, entry_id: str, order_id: int) -> None:
    """Drop the issue of an order that left ``needs_attention`` in the ledger."""
    ir.async_delete_issue(hass, DOMAIN, issue_id(entry_id, order_id))


@callback
def async_sync(
    hass: HomeAssistant,
    entry_id: str,
    ledger_url: str,
    orders: Iterable[TopupOrder],
    exponents: Mapping[str, int],
) -> None:
    """Make the site's order issues match the ledger's orders that need attention now."""
    wanted = {order.id: order for order in orders}
    prefix = f"{ISSUE_PREFIX}{entry_id}_"
    registry = ir.async_get(hass)
    for domain, existing in list(registry.issues):
        if domain != DOMAIN or not existing.startswith(prefix):
            continue
        if int(existing.removeprefix(prefix)) not in wanted:
            ir.async_delete_issue(hass, DOMAIN, existing)
    for order in wanted.values():
        attention = AttentionOrder.from_order(order, exponents.get(order.currency))
        async_raise(hass, entry_id, ledger_url, attention)
