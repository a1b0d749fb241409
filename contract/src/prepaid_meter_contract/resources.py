"""Accounts, meters, tariffs and top-up orders as the ledger describes them."""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict

from prepaid_meter_contract.receipts import Receipt
from prepaid_meter_contract.vocabulary import (
    AccountStatus,
    DaysLeftConfidence,
    OrderStatus,
    Scope,
    SupplyReason,
)
from prepaid_meter_contract.wire import (
    Minor,
    NonNegativeDecimal,
    PlainDecimal,
    Timestamp,
    WireModel,
)


class Supply(WireModel):
    """The ledger's supply decision: may the relay be closed, why, and until when."""

    allowed: bool
    reason: SupplyReason
    changes_at: Timestamp | None = None


class LastTopup(WireModel):
    """An account's newest succeeded top-up, as its list row shows it."""

    order_id: int
    amount_minor: Minor
    currency: str
    at: Timestamp


class Account(WireModel):
    """``GET /api/v1/accounts/{id}``: a prepaid account with its balance and supply."""

    id: int
    number: str
    name: str
    currency: str
    currency_exponent: int
    timezone: str
    status: AccountStatus
    balance_minor: int
    emergency_credit_minor: int
    emergency_credit_remaining_minor: int
    debt_minor: int
    protected: bool
    low_balance_minor: list[int]
    low_balance_level: int
    friendly_hours: dict[str, Any]
    grace_minutes: int
    reconnect_margin_minor: int
    supply: Supply
    created_at: Timestamp
    closed_at: Timestamp | None = None
    #: The site whose Home Assistant meters this account.
    site_id: int = 1
    #: Days the credit lasts: the average of recent complete local days, else projected from
    #: at least an hour of consumption with the tariff (None with less data or no cost).
    days_left: NonNegativeDecimal | None = None
    #: How far ``days_left`` can be trusted (None when there is no forecast).
    days_left_confidence: DaysLeftConfidence | None = None
    #: The newest succeeded top-up (None when there is none yet).
    last_topup: LastTopup | None = None


class MeterLimits(WireModel):
    """What the reading guard allows a meter (its own settings, else its model's)."""

    max_power: NonNegativeDecimal
    register_modulus: NonNegativeDecimal | None = None


class Price(WireModel):
    """The price of the next unit and the tariff band it falls in."""

    per_unit: PlainDecimal
    band: str
    kind: str


class MeterStatus(WireModel):
    """``GET /api/v1/meters/{id}/status``: cost so far, current price, days left, guard state."""

    meter_id: int
    account_id: int
    currency: str
    unit: str
    cost_total_minor: int
    price: Price
    days_left: NonNegativeDecimal | None = None
    #: How far ``days_left`` can be trusted (None when there is no forecast).
    days_left_confidence: DaysLeftConfidence | None = None
    forecast_days: int
    last_value: NonNegativeDecimal | None = None
    last_at: Timestamp | None = None
    limits: MeterLimits


class Accounts(WireModel):
    """``GET /api/v1/accounts``: one page of accounts matching the search and filters."""

    accounts: list[Account]
    #: How many accounts match (all pages).
    total: int = 0
    #: Pass as ``?cursor=`` (with the same search, filters and sort) for the next page.
    next_cursor: str | None = None


class Meter(WireModel):
    """``GET /api/v1/meters/{id}``: a meter, whose credit it uses and how it is priced."""

    id: int
    name: str
    unit: str
    account_id: int
    tariff_id: int
    last_value: NonNegativeDecimal | None = None
    last_at: Timestamp | None = None
    created_at: Timestamp
    model: str | None = None
    max_power: NonNegativeDecimal | None = None
    register_modulus: NonNegativeDecimal | None = None
    limits: MeterLimits


class Meters(WireModel):
    """``GET /api/v1/meters``."""

    meters: list[Meter]


class TimelineStep(WireModel):
    """One status an order went through."""

    status: OrderStatus
    at: Timestamp
    reason: str | None = None
    actor: str | None = None


class Bonus(WireModel):
    """The bonus an order earned (promotions.py): which promotion, how much, how much came back."""

    promotion_id: int
    promotion_name: str
    amount_minor: Minor
    #: What refunds of the order took back (in proportion to the amount refunded).
    taken_back_minor: Minor = 0


class TopupOrder(WireModel):
    """A top-up order: one payment's whole life."""

    # What the payer typed may have been sent as a number (a manual top-up's account id).
    model_config = ConfigDict(frozen=True, extra="ignore", coerce_numbers_to_str=True)

    id: int
    account_id: int | None
    account_ref: str | None = None
    amount_minor: Minor
    currency: str
    status: OrderStatus
    source: str | None = None
    reference: str | None = None
    provider: str | None = None
    provider_payment_id: str | None = None
    credited_minor: Minor = 0
    refunded_minor: Minor = 0
    attention_reason: str | None = None
    attention_code: str | None = None
    created_at: Timestamp
    updated_at: Timestamp
    timeline: list[TimelineStep] | None = None
    #: The order's receipt once it succeeded (kept after a refund); None before.
    receipt: Receipt | None = None
    #: The promotion's bonus credited with it; None when it earned none.
    bonus: Bonus | None = None


class RecheckedOrder(TopupOrder):
    """The order after the ledger asked its payment provider, with the provider's answer."""

    #: Stripe's ``status/payment_status`` of the Checkout Session, e.g. ``complete/paid``.
    provider_status: str


class TopupOrders(WireModel):
    """``GET /api/v1/topups``: one page of orders, newest first."""

    topups: list[TopupOrder]
    #: Pass as ``?cursor=`` (with the same filters) for the next page.
    next_cursor: str | None = None


class Health(WireModel):
    """``GET /api/v1/health``: who the ledger is."""

    status: str | None = None
    ledger_id: str
    version: str


class WhoAmI(WireModel):
    """``GET /api/v1/whoami``: what the caller's token may do."""

    scope: Scope
    account_id: int | None = None
    #: The one site an integration token reads and posts for (None: every site).
    site_id: int | None = None
