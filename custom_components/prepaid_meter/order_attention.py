"""Payments the ledger could not credit, in front of a person in Home Assistant.

A payment for an unknown or closed account, in the wrong currency, or stuck with the provider
becomes a ``needs_attention`` order in the ledger, which announces it with an ``alert`` that
carries the order. Here each such order fires ``prepaid_meter_order_needs_attention`` (for
blueprints that escalate) and is one repair issue, until the order is resolved in the ledger
(credited to the right account, refunded or marked failed on the landlord page).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir

from .const import DOMAIN
from .money import minor_to_major

ISSUE_PREFIX: Final = "order_needs_attention_"
#: What an order's alert carries, as automations receive it.
ORDER_FIELDS: Final = (
    "order_id",
    "account_id",
    "amount_minor",
    "currency",
    "account_number",
    "reason",
    "created_at",
    "age_minutes",
    "currency_exponent",
)


def issue_id(entry_id: str, order_id: int) -> str:
    """Return the repair issue id of one order of one site."""
    return f"{ISSUE_PREFIX}{entry_id}_{order_id}"


def order_data(payload: Mapping[str, Any]) -> dict[str, Any]:
    """Return the order as the alert describes it (missing fields as ``None``)."""
    return {field: payload.get(field) for field in ORDER_FIELDS}


@callback
def async_raise(
    hass: HomeAssistant, entry_id: str, ledger_url: str, order: Mapping[str, Any]
) -> None:
    """Tell the landlord about one order (a repair issue; the same order raises it once)."""
    order_id = order.get("order_id")
    if not isinstance(order_id, int):
        return
    ir.async_create_issue(
        hass,
        DOMAIN,
        issue_id(entry_id, order_id),
        is_fixable=False,
        is_persistent=False,
        severity=ir.IssueSeverity.WARNING,
        translation_key="order_needs_attention",
        translation_placeholders={
            "order_id": str(order_id),
            "amount": _amount(order),
            "account_number": str(order.get("account_number") or "-"),
            "reason": str(order.get("reason") or "-"),
            "url": ledger_url,
        },
    )


def _amount(order: Mapping[str, Any]) -> str:
    """Return the amount in major units with its currency, as a person reads it."""
    minor, exponent = order.get("amount_minor"), order.get("currency_exponent")
    currency = str(order.get("currency") or "")
    if not isinstance(minor, int):
        return "-"
    if not isinstance(exponent, int):
        return f"{minor} {currency} minor units".strip()
    return f"{minor_to_major(minor, exponent)} {currency}".strip()


@callback
def async_resolved(hass: HomeAssistant, entry_id: str, order_id: int) -> None:
    """Drop the issue of an order that left ``needs_attention`` in the ledger."""
    ir.async_delete_issue(hass, DOMAIN, issue_id(entry_id, order_id))


@callback
def async_sync(
    hass: HomeAssistant, entry_id: str, ledger_url: str, orders: Iterable[Mapping[str, Any]]
) -> None:
    """Make the site's order issues match the ledger's orders that need attention now."""
    wanted = {int(order["id"]): order for order in orders if isinstance(order.get("id"), int)}
    prefix = f"{ISSUE_PREFIX}{entry_id}_"
    registry = ir.async_get(hass)
    for domain, existing in list(registry.issues):
        if domain != DOMAIN or not existing.startswith(prefix):
            continue
        if int(existing.removeprefix(prefix)) not in wanted:
            ir.async_delete_issue(hass, DOMAIN, existing)
    for order_id, order in wanted.items():
        async_raise(
            hass,
            entry_id,
            ledger_url,
            {
                "order_id": order_id,
                "amount_minor": order.get("amount_minor"),
                "currency": order.get("currency"),
                "account_number": order.get("account_ref") or order.get("reference"),
                "reason": order.get("attention_code") or order.get("attention_reason"),
                "currency_exponent": order.get("currency_exponent"),
            },
        )
