"""The ledger's event stream: one model per event, and the parser that picks it.

The stream (``GET /api/v1/events``, Server-Sent Events) carries ``event: <type>`` and a JSON
object per event; the ledger adds the event's ``id`` and ``at`` to what the service emitted.
An event type or alert kind this version does not know (a newer ledger) parses as
``UnknownEvent``: a client skips it but still moves its position past it.
"""

from __future__ import annotations

import json
from typing import Annotated, ClassVar, Final, Literal

from pydantic import Discriminator, Tag, TypeAdapter

from prepaid_meter_contract.receipts import Receipt
from prepaid_meter_contract.resources import Supply
from prepaid_meter_contract.vocabulary import (
    AccountStatus,
    AlertKind,
    AttentionCode,
    EventType,
    OrderStatus,
    ReadingStatus,
    ResolveAction,
    StepKind,
)
from prepaid_meter_contract.wire import NonNegativeDecimal, Timestamp, WireModel


class StreamHello(WireModel):
    """First event of every connection: the id the stream continues after."""

    last_event_id: int


class StreamReset(WireModel):
    """The events after ``last_event_id`` were pruned: re-read the state, then follow on."""

    oldest_id: int
    last_event_id: int


class Recorded(WireModel):
    """What the stream adds to every stored event: its id and when it happened.

    Alerts about a time of their own (a scheduled cut, a held reading) carry that time as
    ``at`` instead.
    """

    id: int | None = None
    at: Timestamp | None = None


class AccountUpdated(Recorded):
    """An account's balance, warning level or supply decision changed."""

    event_type: ClassVar[EventType] = EventType.ACCOUNT_UPDATED
    account_id: int
    balance_minor: int
    currency: str
    supply: Supply
    emergency_credit_remaining_minor: int
    debt_minor: int
    low_balance_level: int
    #: Only when the account was closed.
    status: AccountStatus | None = None


class TopupUpdated(Recorded):
    """A top-up order moved to a new status."""

    event_type: ClassVar[EventType] = EventType.TOPUP_UPDATED

    order_id: int
    account_id: int | None
    status: OrderStatus
    amount_minor: int
    currency: str
    reason: str | None = None
    #: The receipt issued with the credit: only on the move to ``succeeded``.
    receipt: Receipt | None = None


class ReadingResolved(Recorded):
    """A person decided on a held reading."""

    event_type: ClassVar[EventType] = EventType.READING_RESOLVED

    reading_id: int
    meter_id: int
    action: ResolveAction
    status: ReadingStatus


class LowBalanceAlert(Recorded):
    """The balance fell to or below one of the account's warning levels."""

    event_type: ClassVar[EventType] = EventType.ALERT

    kind: Literal[AlertKind.LOW_BALANCE_LEVEL_1, AlertKind.LOW_BALANCE_LEVEL_2]
    account_id: int
    balance_minor: int
    threshold_minor: int

    @property
    def level(self) -> int:
        """The warning level (1 or 2)."""
        return int(AlertKind(self.kind).low_balance_level or 0)


class SupplyCutScheduledAlert(Recorded):
    """Credit is exhausted and supply will be cut at ``at`` (after grace or friendly hours)."""

    event_type: ClassVar[EventType] = EventType.ALERT

    kind: Literal[AlertKind.SUPPLY_CUT_SCHEDULED]
    #: When supply will be cut (not when the alert was raised).
    at: Timestamp
    account_id: int
    reason: str


class OrderNeedsAttentionAlert(Recorded):
    """An order a person must look at: the whole order, and why."""

    event_type: ClassVar[EventType] = EventType.ALERT

    kind: Literal[AlertKind.ORDER_NEEDS_ATTENTION]
    order_id: int
    account_id: int | None
    amount_minor: int
    currency: str
    currency_exponent: int | None = None
    #: What the payer typed, else whatever reference the payment carried.
    account_number: str | None = None
    reason: AttentionCode | None = None
    detail: str | None = None
    provider: str | None = None
    provider_payment_id: str | None = None
    created_at: Timestamp
    age_minutes: int


class ReadingHeldAlert(Recorded):
    """The reading guard held a reading no meter can produce; a person decides."""

    event_type: ClassVar[EventType] = EventType.ALERT

    kind: Literal[AlertKind.READING_HELD]
    reading_id: int
    meter_id: int
    account_id: int
    hold: StepKind
    value: NonNegativeDecimal
    #: When the held reading was taken.
    at: Timestamp
    last_value: NonNegativeDecimal | None = None
    last_at: Timestamp | None = None
    allowed: NonNegativeDecimal


class VoucherGuessingAlert(Recorded):
    """Wrong voucher codes keep arriving for an account: someone may be guessing."""

    event_type: ClassVar[EventType] = EventType.ALERT

    kind: Literal[AlertKind.VOUCHER_GUESSING]
    account_id: int
    #: Wrong codes in a row for the account (the counter a redeemed voucher clears).
    failures: int
    #: No code is looked up for the account before this time.
    waits_until: Timestamp


class UnknownEvent(WireModel):
    """An event this version of the contract does not describe (from a newer ledger)."""

    type: str
    id: int | None = None


def _alert_kind(value: object) -> str:
    kind = value.get("kind") if isinstance(value, dict) else getattr(value, "kind", None)
    return str(kind)


type Alert = Annotated[
    Annotated[LowBalanceAlert, Tag(AlertKind.LOW_BALANCE_LEVEL_1)]
    | Annotated[LowBalanceAlert, Tag(AlertKind.LOW_BALANCE_LEVEL_2)]
    | Annotated[SupplyCutScheduledAlert, Tag(AlertKind.SUPPLY_CUT_SCHEDULED)]
    | Annotated[OrderNeedsAttentionAlert, Tag(AlertKind.ORDER_NEEDS_ATTENTION)]
    | Annotated[ReadingHeldAlert, Tag(AlertKind.READING_HELD)]
    | Annotated[VoucherGuessingAlert, Tag(AlertKind.VOUCHER_GUESSING)],
    Discriminator(_alert_kind),
]
#: What the ledger emits into the stream (``hello`` and ``reset`` belong to a connection).
type StreamPayload = (
    AccountUpdated
    | TopupUpdated
    | ReadingResolved
    | LowBalanceAlert
    | SupplyCutScheduledAlert
    | OrderNeedsAttentionAlert
    | ReadingHeldAlert
    | VoucherGuessingAlert
)
type StreamEvent = (
    StreamHello
    | StreamReset
    | AccountUpdated
    | TopupUpdated
    | ReadingResolved
    | LowBalanceAlert
    | SupplyCutScheduledAlert
    | OrderNeedsAttentionAlert
    | ReadingHeldAlert
    | VoucherGuessingAlert
    | UnknownEvent
)

_ALERT: Final[TypeAdapter[Alert]] = TypeAdapter(Alert)
_MODELS: Final[
    dict[str, type[StreamHello | StreamReset | AccountUpdated | TopupUpdated | ReadingResolved]]
] = {
    EventType.HELLO: StreamHello,
    EventType.RESET: StreamReset,
    EventType.ACCOUNT_UPDATED: AccountUpdated,
    EventType.TOPUP_UPDATED: TopupUpdated,
    EventType.READING_RESOLVED: ReadingResolved,
}
_ALERT_KINDS: Final = frozenset(AlertKind)


def parse_event(event_type: str, data: str) -> StreamEvent:
    """Return the typed event for an ``event:`` name and its ``data:`` JSON text.

    Raises ``ValueError`` (``pydantic.ValidationError`` or ``json.JSONDecodeError``) when a
    known event does not have its documented shape: the stream is not the ledger's.
    """
    payload = json.loads(data)
    if not isinstance(payload, dict):
        raise ValueError(f"{event_type}: data is not a JSON object")  # noqa: TRY004 - one error kind for a bad stream
    if event_type == EventType.ALERT:
        if payload.get("kind") not in _ALERT_KINDS:
            return UnknownEvent(type=f"alert:{payload.get('kind')}", id=_event_id(payload))
        return _ALERT.validate_python(payload)
    model = _MODELS.get(event_type)
    if model is None:
        return UnknownEvent(type=event_type, id=_event_id(payload))
    return model.model_validate(payload)


def _event_id(payload: dict[str, object]) -> int | None:
    event_id = payload.get("id")
    return event_id if isinstance(event_id, int) and not isinstance(event_id, bool) else None


def event_json(event: StreamPayload) -> dict[str, object]:
    """Return an event's ``data`` object as the ledger stores it: the fields it was given.

    The stream adds ``id`` and the event's time ``at`` (unless the event carries its own
    ``at``, such as the time a supply cut is due).
    """
    return event.model_dump(mode="json", exclude_unset=True, exclude={"id"})


__all__ = [
    "AccountUpdated",
    "Alert",
    "LowBalanceAlert",
    "OrderNeedsAttentionAlert",
    "ReadingHeldAlert",
    "ReadingResolved",
    "StreamEvent",
    "StreamHello",
    "StreamPayload",
    "StreamReset",
    "SupplyCutScheduledAlert",
    "TopupUpdated",
    "UnknownEvent",
    "VoucherGuessingAlert",
    "event_json",
    "parse_event",
]
