"""Accounting events: what the ledger tells a landlord's finance systems, as Standard Webhooks.

A landlord registers endpoints (``EndpointRequest``); the ledger then POSTs each event it
records to every enabled endpoint subscribed to its type, signed with the endpoint's own
``whsec_`` secret (headers ``webhook-id``, ``webhook-timestamp``, ``webhook-signature``). The
body is ``{"type", "timestamp", "data"}`` (``AccountingEvent``), where ``data`` is one of the
event models below, chosen by ``type``. The ``webhook-id`` (``msg_...``) names the event for
good: a retry, a restart and a replay send the same id, so a receiver that keeps the ids it
processed handles every event exactly once. docs/accounting-events.md tells the whole story.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Annotated, Any, Final
from urllib.parse import urlsplit

from pydantic import Field, PlainValidator, WithJsonSchema

from prepaid_meter_contract.vocabulary import AttentionCode, OrderStatus
from prepaid_meter_contract.wire import (
    Minor,
    PlainDecimal,
    Reason,
    Text,
    Timestamp,
    WireError,
    WireModel,
    rule_validator,
)


class AccountingEventType(StrEnum):
    """What an accounting event reports (its ``type``; the schema of its ``data``)."""

    #: A top-up was credited to an account (``TopupSucceeded``).
    TOPUP_SUCCEEDED = "topup.succeeded"
    #: (Part of) a credited top-up was refunded (``TopupRefunded``).
    TOPUP_REFUNDED = "topup.refunded"
    #: An account's charges of one ended local day (``ChargePosted``), once per account and day.
    CHARGE_POSTED = "charge.posted"
    #: A person posted a correction to an account's balance (``AdjustmentCreated``).
    ADJUSTMENT_CREATED = "adjustment.created"
    #: A payment cannot be credited without a person (``OrderNeedsAttention``).
    ORDER_NEEDS_ATTENTION = "order.needs_attention"


class DeliveryStatus(StrEnum):
    """Where one event's delivery to one endpoint stands."""

    #: Not acknowledged yet: waiting for its turn (an earlier event of the account to the same
    #: endpoint is not acknowledged yet), for its next attempt, or being attempted.
    PENDING = "pending"
    #: The endpoint answered an attempt with a 2xx.
    DELIVERED = "delivered"
    #: Every attempt of the retry schedule failed, or the endpoint cannot be delivered to;
    #: later events of the account to this endpoint wait until it is replayed and delivered.
    FAILED = "failed"


#: Every event type, in the order the documentation lists them.
EVENT_TYPES: Final = tuple(AccountingEventType)
#: Longest endpoint URL accepted.
MAX_URL_CHARS: Final = 2048
#: Most endpoints that may be enabled at once (each event is sent to each of them).
MAX_ENABLED_ENDPOINTS: Final = 20
#: The prefix of every endpoint secret (Standard Webhooks' symmetric secrets).
SECRET_PREFIX: Final = "whsec_"  # noqa: S105 - a prefix, not a secret
#: How much of a secret the ledger shows after creating it (``whsec_`` and four characters).
SECRET_SHOWN_CHARS: Final = len(SECRET_PREFIX) + 4


def check_endpoint_url(value: object) -> str:
    """Return an absolute http(s) URL with a host: no credentials, no fragment, no spaces."""
    if not isinstance(value, str) or not value.strip():
        raise WireError("invalid_url", "must be an http:// or https:// URL")
    url = value.strip()
    if len(url) > MAX_URL_CHARS:
        raise WireError("invalid_url", f"must be at most {MAX_URL_CHARS} characters")
    if not url.isascii() or any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url):
        raise WireError(
            "invalid_url", "must be ASCII without spaces (percent-encode anything else)"
        )
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as err:
        raise WireError("invalid_url", f"is not a valid URL ({err})") from None
    if parts.scheme.lower() not in {"http", "https"}:
        raise WireError(
            "invalid_url",
            f"must use http or https, not {parts.scheme or 'no scheme'!r}",
        )
    if not parts.hostname:
        raise WireError("invalid_url", "must name a host (http://host/path)")
    if parts.username is not None or parts.password is not None:
        raise WireError(
            "invalid_url",
            "must not carry a user name or password (the signature authenticates the ledger)",
        )
    if parts.fragment or url.endswith("#"):
        raise WireError("invalid_url", "must not have a #fragment")
    if port == 0:
        raise WireError("invalid_url", "must not name port 0")
    return url


def check_event_types(value: object) -> list[AccountingEventType]:
    """Return a non-empty list of distinct known event types, in the order given."""
    if not isinstance(value, list) or not value:
        raise WireError(
            "invalid_field",
            "must be a non-empty list of event types: " + ", ".join(EVENT_TYPES),
        )
    found: list[AccountingEventType] = []
    for index, item in enumerate(value):
        if not isinstance(item, str) or item not in EVENT_TYPES:
            shown = repr(item)[:60]
            raise WireError(
                "unknown_event_type",
                f"item {index} ({shown}) is not an event type; known: " + ", ".join(EVENT_TYPES),
            )
        kind = AccountingEventType(item)
        if kind in found:
            raise WireError("invalid_field", f"item {index} ({item!r}) is listed twice")
        found.append(kind)
    return found


EndpointUrl = Annotated[
    str,
    PlainValidator(rule_validator(check_endpoint_url)),
    WithJsonSchema(
        {
            "type": "string",
            "minLength": 1,
            "maxLength": MAX_URL_CHARS,
            "example": "https://books.example.com/hooks/prepaid",
        }
    ),
]
EventTypes = Annotated[
    list[AccountingEventType],
    PlainValidator(rule_validator(check_event_types)),
    WithJsonSchema(
        {
            "type": "array",
            "items": {"type": "string", "enum": list(EVENT_TYPES)},
            "minItems": 1,
            "maxItems": len(EVENT_TYPES),
            "uniqueItems": True,
        }
    ),
]


# --------------------------------------------------------------------------- endpoints


class EndpointRequest(WireModel):
    """``POST /api/v1/accounting/endpoints``: where to send which events."""

    url: EndpointUrl
    #: The events to send there (default: every type).
    event_types: EventTypes = Field(default_factory=lambda: list(EVENT_TYPES))
    description: Text | None = None


class Endpoint(WireModel):
    """An endpoint as the landlord sees it; its secret only as its first characters."""

    id: int
    url: str
    description: str | None = None
    event_types: list[AccountingEventType]
    enabled: bool
    #: ``whsec_`` and the secret's first four characters, to tell secrets apart.
    secret_prefix: str
    created_at: Timestamp
    disabled_at: Timestamp | None = None
    disabled_reason: str | None = None


class CreatedEndpoint(WireModel):
    """The answer to creating an endpoint: its secret, shown this once."""

    endpoint: Endpoint
    #: ``whsec_`` + base64 of 32 random bytes: give it to the receiver to verify signatures.
    secret: str


class Endpoints(WireModel):
    """``GET /api/v1/accounting/endpoints``: newest first."""

    endpoints: list[Endpoint]


class DisableEndpoint(WireModel):
    """``POST /api/v1/accounting/endpoints/{id}/disable``: send it nothing more."""

    reason: Reason | None = None


# --------------------------------------------------------------------------- deliveries


class Delivery(WireModel):
    """One event's delivery to one endpoint: the delivery log's row."""

    id: int
    endpoint_id: int
    #: The ``webhook-id`` of every attempt and replay of this event.
    message_id: str
    type: AccountingEventType
    account_id: int | None = None
    status: DeliveryStatus
    #: Attempts since the event was recorded or last replayed.
    attempts: int
    #: When the next attempt is due (pending only; it may still wait for an earlier event).
    next_attempt_at: Timestamp | None = None
    last_attempt_at: Timestamp | None = None
    #: The HTTP status of the last answer (None: no answer, see last_error).
    last_http_status: int | None = None
    last_error: str | None = None
    delivered_at: Timestamp | None = None
    #: When the event was recorded (the body's ``timestamp``).
    created_at: Timestamp
    #: The body's ``data``, exactly as sent.
    data: dict[str, Any]


class Deliveries(WireModel):
    """``GET /api/v1/accounting/deliveries``: newest first."""

    deliveries: list[Delivery]


# --------------------------------------------------------------------------- event data


class AccountingEvent(WireModel):
    """The body of every accounting webhook (Standard Webhooks' recommended payload)."""

    type: AccountingEventType
    #: When the ledger recorded the event (the same in every attempt and replay).
    timestamp: Timestamp
    data: dict[str, Any]


class TopupSucceeded(WireModel):
    """``topup.succeeded``: an order was credited to an account."""

    order_id: int
    account_id: int
    account_number: str | None = None
    #: What the payer paid, credited to the account.
    amount_minor: Minor
    #: A promotion's bonus credited with it (0 without one).
    bonus_minor: Minor = 0
    currency: str
    currency_exponent: int
    #: The channel: manual, stripe, standard, voucher, ...
    source: str
    provider: str
    provider_payment_id: str | None = None
    reference: str | None = None
    #: The journal transaction that credited the amount.
    transaction_id: int
    receipt_number: int | None = None
    #: The account's balance right after the credit.
    balance_after_minor: Minor
    credited_at: Timestamp


class TopupRefunded(WireModel):
    """``topup.refunded``: part or all of a credited order was refunded (one event per refund)."""

    order_id: int
    account_id: int
    account_number: str | None = None
    #: This refund.
    refund_minor: Minor
    #: Every refund of the order so far, this one included.
    refunded_minor: Minor
    credited_minor: Minor
    currency: str
    currency_exponent: int
    status: OrderStatus
    reason: str
    provider: str
    provider_payment_id: str | None = None
    balance_after_minor: Minor
    refunded_at: Timestamp


class AdjustmentCreated(WireModel):
    """``adjustment.created``: a signed correction posted to an account by a person."""

    transaction_id: int
    account_id: int
    account_number: str | None = None
    #: Signed: what the correction added to the balance.
    amount_minor: Minor
    currency: str
    currency_exponent: int
    reason: str
    #: Who posted it (the audit log's actor).
    actor: str
    balance_after_minor: Minor
    created_at: Timestamp


class OrderNeedsAttention(WireModel):
    """``order.needs_attention``: a payment arrived that the ledger cannot credit by itself."""

    order_id: int
    #: The account it was meant for, when one was found (None: an unknown account number).
    account_id: int | None = None
    #: What the payer typed, else the payment's reference.
    account_ref: str | None = None
    amount_minor: Minor
    currency: str
    reason: AttentionCode | None = None
    detail: str | None = None
    provider: str
    provider_payment_id: str | None = None
    order_created_at: Timestamp
    flagged_at: Timestamp


class ChargeLineTotal(WireModel):
    """What one tariff band (or the standing charge) cost, for one day of consumption."""

    #: The local day the consumption or standing charge belongs to.
    day: date
    #: A tariff band, or ``standing`` for the daily standing charge.
    band: str
    quantity: PlainDecimal
    amount_minor: Minor


class ChargePosted(WireModel):
    """``charge.posted``: what was charged to an account during one local day, once it ended.

    A charge counts on the day it was posted (the journal's time), like the statement, so every
    charge is reported in exactly one ``charge.posted``; a late reading's consumption of an
    earlier day shows as a line of that earlier ``day`` in the day it was posted. A day without
    charges is reported too (amount 0), so a receiver can tell a quiet day from a missing one.
    """

    account_id: int
    account_number: str | None = None
    currency: str
    currency_exponent: int
    timezone: str
    #: The account's local day.
    day: date
    #: The day's bounds as instants: [starts_at, ends_at).
    starts_at: Timestamp
    ends_at: Timestamp
    #: Everything charged that day (consumption + standing); the lines add up to it.
    amount_minor: Minor
    consumption_minor: Minor
    standing_minor: Minor
    #: How many charge transactions were posted that day.
    transactions: int
    lines: list[ChargeLineTotal]


#: The data model of each event type.
EVENT_DATA: Final[dict[AccountingEventType, type[WireModel]]] = {
    AccountingEventType.TOPUP_SUCCEEDED: TopupSucceeded,
    AccountingEventType.TOPUP_REFUNDED: TopupRefunded,
    AccountingEventType.CHARGE_POSTED: ChargePosted,
    AccountingEventType.ADJUSTMENT_CREATED: AdjustmentCreated,
    AccountingEventType.ORDER_NEEDS_ATTENTION: OrderNeedsAttention,
}
