"""``parse_event`` and ``event_json`` with events shaped as the ledger emits them.

The ledger's services build a model and ``services/events.emit`` stores ``event_json(model)``;
``api/stream.format_event`` sends ``{"id": <row id>, "at": <row time>, **stored}`` as the
``data`` of an ``event: <type>`` frame (so an event's own ``at``, a supply cut's time or a held
reading's time, wins over the row time). The payloads below are written out by hand in that
shape, from the ``events.emit`` calls in ``services/accounts.py``, ``topups.py``,
``readings.py`` and ``held_readings.py``, and the alert example in docs/ledger-api.md.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from prepaid_meter_contract.events import (
    AccountUpdated,
    LowBalanceAlert,
    OrderNeedsAttentionAlert,
    ReadingHeldAlert,
    ReadingResolved,
    StreamHello,
    StreamPayload,
    StreamReset,
    SupplyCutScheduledAlert,
    TopupUpdated,
    UnknownEvent,
    VoucherGuessingAlert,
    event_json,
    parse_event,
)
from prepaid_meter_contract.resources import Supply
from prepaid_meter_contract.vocabulary import (
    AccountStatus,
    AlertKind,
    AttentionCode,
    OrderStatus,
    ReadingStatus,
    ResolveAction,
    StepKind,
    SupplyReason,
)

ROW_AT = "2026-03-01T10:00:00.123456+00:00"
ROW_TIME = datetime(2026, 3, 1, 10, 0, 0, 123456, tzinfo=UTC)


def _frame(event_id: int, payload: dict[str, object]) -> str:
    """The ``data`` text ``api/stream.format_event`` writes for a stored payload."""
    return json.dumps({"id": event_id, "at": ROW_AT, **payload})


ACCOUNT_PAYLOAD: dict[str, object] = {
    "account_id": 3,
    "balance_minor": 1250,
    "emergency_credit_remaining_minor": 500,
    "debt_minor": 0,
    "low_balance_level": 0,
    "currency": "EUR",
    "supply": {"allowed": True, "reason": "credit", "changes_at": None},
}


# --------------------------------------------------------------------------- connection events


def test_hello() -> None:
    assert parse_event("stream.hello", '{"last_event_id": 41}') == StreamHello(last_event_id=41)
    assert parse_event("stream.hello", '{"last_event_id": 0}') == StreamHello(last_event_id=0)


def test_reset() -> None:
    event = parse_event("stream.reset", '{"oldest_id": 100, "last_event_id": 41}')
    assert event == StreamReset(oldest_id=100, last_event_id=41)


# --------------------------------------------------------------------------- ledger events


def test_account_updated() -> None:
    event = parse_event("account.updated", _frame(42, ACCOUNT_PAYLOAD))
    assert isinstance(event, AccountUpdated)
    assert event.id == 42
    assert event.at == ROW_TIME
    assert (event.account_id, event.balance_minor, event.currency) == (3, 1250, "EUR")
    assert event.emergency_credit_remaining_minor == 500
    assert (event.debt_minor, event.low_balance_level) == (0, 0)
    assert event.supply == Supply(allowed=True, reason=SupplyReason.CREDIT, changes_at=None)
    assert event.status is None


def test_account_updated_closed_in_debt_with_a_supply_change_time() -> None:
    payload = ACCOUNT_PAYLOAD | {
        "balance_minor": -300,
        "debt_minor": 300,
        "status": "closed",
        "supply": {"allowed": True, "reason": "grace", "changes_at": "2026-03-01T22:00:00+01:00"},
    }
    event = parse_event("account.updated", _frame(43, payload))
    assert isinstance(event, AccountUpdated)
    assert event.status is AccountStatus.CLOSED
    assert event.balance_minor == -300
    assert event.supply.reason is SupplyReason.GRACE
    assert event.supply.changes_at == datetime(2026, 3, 1, 21, 0, tzinfo=UTC)


def test_fields_of_a_newer_ledger_are_ignored() -> None:
    event = parse_event("account.updated", _frame(44, ACCOUNT_PAYLOAD | {"new_thing": [1, 2]}))
    assert isinstance(event, AccountUpdated)
    assert event.balance_minor == 1250


@pytest.mark.parametrize("account_id", [3, None])
def test_topup_updated(account_id: int | None) -> None:
    payload = {
        "order_id": 17,
        "account_id": account_id,
        "status": "pending",
        "amount_minor": 2500,
        "currency": "EUR",
        "reason": "checkout opened",
    }
    event = parse_event("topup.updated", _frame(45, payload))
    assert event == TopupUpdated(
        id=45,
        at=ROW_TIME,
        order_id=17,
        account_id=account_id,
        status=OrderStatus.PENDING,
        amount_minor=2500,
        currency="EUR",
        reason="checkout opened",
    )


def test_reading_resolved() -> None:
    payload = {"reading_id": 9, "meter_id": 2, "action": "rebase", "status": "rebased"}
    event = parse_event("reading.resolved", _frame(46, payload))
    assert isinstance(event, ReadingResolved)
    assert (event.id, event.reading_id, event.meter_id) == (46, 9, 2)
    assert event.action is ResolveAction.REBASE
    assert event.status is ReadingStatus.REBASED


# --------------------------------------------------------------------------- alerts


@pytest.mark.parametrize(
    ("kind", "level"), [("low_balance_level_1", 1), ("low_balance_level_2", 2)]
)
def test_low_balance_alert(kind: str, level: int) -> None:
    payload = {"kind": kind, "account_id": 3, "balance_minor": 400, "threshold_minor": 500}
    event = parse_event("alert", _frame(47, payload))
    assert isinstance(event, LowBalanceAlert)
    assert event.kind == kind
    assert event.level == level
    assert (event.id, event.at) == (47, ROW_TIME)
    assert (event.account_id, event.balance_minor, event.threshold_minor) == (3, 400, 500)


def test_supply_cut_scheduled_alert_keeps_its_own_time() -> None:
    """The stored payload's ``at`` (when supply will be cut) overrides the row time."""
    payload = {
        "kind": "supply_cut_scheduled",
        "account_id": 3,
        "at": "2026-03-02T08:00:00+00:00",
        "reason": "friendly_hours",
    }
    event = parse_event("alert", _frame(48, payload))
    assert isinstance(event, SupplyCutScheduledAlert)
    assert event.at == datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
    assert (event.account_id, event.reason) == (3, "friendly_hours")


def test_order_needs_attention_alert_from_the_docs() -> None:
    """The example of docs/ledger-api.md "Top-up orders", as the stream sends it."""
    payload = {
        "kind": "order_needs_attention",
        "order_id": 17,
        "account_id": 3,
        "amount_minor": 2500,
        "currency": "EUR",
        "currency_exponent": 2,
        "account_number": "100000011",
        "reason": "unknown_account",
        "detail": "cannot credit: ...",
        "provider": "stripe",
        "provider_payment_id": "cs_...",
        "created_at": "2026-12-05T14:00:00+00:00",
        "age_minutes": 0,
    }
    event = parse_event("alert", _frame(49, payload))
    assert isinstance(event, OrderNeedsAttentionAlert)
    assert event.reason is AttentionCode.UNKNOWN_ACCOUNT
    assert (event.order_id, event.account_id, event.amount_minor) == (17, 3, 2500)
    assert (event.currency, event.currency_exponent) == ("EUR", 2)
    assert event.account_number == "100000011"
    assert event.created_at == datetime(2026, 12, 5, 14, 0, tzinfo=UTC)
    assert (event.provider, event.provider_payment_id) == ("stripe", "cs_...")
    assert event.age_minutes == 0


def test_order_needs_attention_alert_without_account_or_exponent() -> None:
    payload = {
        "kind": "order_needs_attention",
        "order_id": 18,
        "account_id": None,
        "amount_minor": 100,
        "currency": "XTS",
        "currency_exponent": None,
        "account_number": None,
        "reason": "currency_mismatch",
        "detail": None,
        "provider": None,
        "provider_payment_id": None,
        "created_at": "2026-12-05T14:00:00+00:00",
        "age_minutes": 75,
    }
    event = parse_event("alert", _frame(50, payload))
    assert isinstance(event, OrderNeedsAttentionAlert)
    assert event.account_id is None
    assert event.currency_exponent is None
    assert event.reason is AttentionCode.CURRENCY_MISMATCH


def test_reading_held_alert() -> None:
    payload = {
        "kind": "reading_held",
        "reading_id": 5,
        "meter_id": 2,
        "account_id": 3,
        "hold": "surge",
        "value": "5003.5",
        "at": "2026-03-01T09:15:00+00:00",
        "last_value": "5000",
        "last_at": "2026-03-01T09:00:00+00:00",
        "allowed": "3.019",
    }
    event = parse_event("alert", _frame(51, payload))
    assert isinstance(event, ReadingHeldAlert)
    assert event.hold is StepKind.SURGE
    assert event.value == Decimal("5003.5")
    assert event.last_value == Decimal(5000)
    assert event.allowed == Decimal("3.019")
    assert event.at == datetime(2026, 3, 1, 9, 15, tzinfo=UTC)  # the reading's, not the row's
    assert event.last_at == datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def test_voucher_guessing_alert() -> None:
    payload = {
        "kind": "voucher_guessing",
        "account_id": 3,
        "failures": 4,
        "waits_until": "2026-03-01T09:16:00+01:00",
    }
    event = parse_event("alert", _frame(52, payload))
    assert isinstance(event, VoucherGuessingAlert)
    assert (event.account_id, event.failures) == (3, 4)
    assert event.waits_until == datetime(2026, 3, 1, 8, 16, tzinfo=UTC)


def test_reading_held_alert_of_a_meter_without_history() -> None:
    payload = {
        "kind": "reading_held",
        "reading_id": 5,
        "meter_id": 2,
        "account_id": 3,
        "hold": "backwards",
        "value": "0",
        "at": "2026-03-01T09:15:00+00:00",
        "last_value": None,
        "last_at": None,
        "allowed": "0.000",
    }
    event = parse_event("alert", _frame(52, payload))
    assert isinstance(event, ReadingHeldAlert)
    assert (event.last_value, event.last_at) == (None, None)
    assert event.hold is StepKind.BACKWARDS


# --------------------------------------------------------------------------- unknown events


def test_unknown_event_type_keeps_its_id() -> None:
    event = parse_event("meter.renamed", _frame(60, {"meter_id": 2, "name": "Flat 2"}))
    assert event == UnknownEvent(type="meter.renamed", id=60)


def test_unknown_alert_kind_keeps_its_id() -> None:
    event = parse_event("alert", _frame(61, {"kind": "credit_expiring", "account_id": 3}))
    assert event == UnknownEvent(type="alert:credit_expiring", id=61)


@pytest.mark.parametrize("event_id", [True, "62", 6.2, None])
def test_unknown_event_without_an_integer_id(event_id: object) -> None:
    event = parse_event("meter.renamed", json.dumps({"id": event_id}))
    assert event == UnknownEvent(type="meter.renamed", id=None)


def test_unknown_event_without_id() -> None:
    assert parse_event("x.y", "{}") == UnknownEvent(type="x.y", id=None)


# --------------------------------------------------------------------------- malformed data


@pytest.mark.parametrize(
    ("event_type", "data"),
    [
        ("stream.hello", "not json"),
        ("stream.hello", ""),
        ("stream.hello", "[1, 2]"),
        ("stream.hello", "null"),
        ("stream.hello", '"text"'),
        ("stream.hello", '{"last_event_id": "x"}'),
        ("stream.hello", "{}"),
        ("stream.reset", '{"oldest_id": 100}'),
        ("account.updated", _frame(1, {k: v for k, v in ACCOUNT_PAYLOAD.items() if k != "supply"})),
        ("account.updated", _frame(1, ACCOUNT_PAYLOAD | {"balance_minor": "lots"})),
        ("account.updated", _frame(1, ACCOUNT_PAYLOAD | {"supply": {"allowed": True}})),
        ("account.updated", _frame(1, ACCOUNT_PAYLOAD | {"status": "frozen"})),
        ("account.updated", json.dumps({"at": "2026-03-01T10:00:00"} | ACCOUNT_PAYLOAD)),
        ("account.updated", json.dumps({"at": "0001-01-01T00:00:00+05:00"} | ACCOUNT_PAYLOAD)),
        ("topup.updated", _frame(1, {"order_id": 1, "status": "lost"})),
        ("reading.resolved", _frame(1, {"reading_id": 1, "meter_id": 1, "action": "approve"})),
        ("alert", "[]"),
        ("alert", "not json"),
        ("alert", _frame(1, {"kind": "low_balance_level_1", "account_id": 3})),
        (
            "alert",
            json.dumps({"kind": "supply_cut_scheduled", "account_id": 3, "reason": "grace"}),
        ),
        (
            "alert",
            json.dumps(
                {
                    "kind": "reading_held",
                    "reading_id": 5,
                    "meter_id": 2,
                    "account_id": 3,
                    "hold": "surge",
                    "value": 5003.5,  # a float, not decimal text
                    "at": "2026-03-01T09:15:00+00:00",
                    "allowed": "3.019",
                }
            ),
        ),
    ],
)
def test_malformed_data_raises_value_error(event_type: str, data: str) -> None:
    with pytest.raises(ValueError):  # the documented error of a stream not the ledger's
        parse_event(event_type, data)


# --------------------------------------------------------------------------- event_json


def test_event_json_has_only_the_fields_the_ledger_gave() -> None:
    event = AccountUpdated(
        account_id=3,
        balance_minor=1250,
        emergency_credit_remaining_minor=500,
        debt_minor=0,
        low_balance_level=0,
        currency="EUR",
        supply=Supply(allowed=True, reason=SupplyReason.CREDIT, changes_at=None),
    )
    assert event_json(event) == ACCOUNT_PAYLOAD  # no id, at or status


def test_event_json_never_stores_an_id() -> None:
    event = TopupUpdated(
        id=99,
        order_id=17,
        account_id=None,
        status=OrderStatus.NEEDS_ATTENTION,
        amount_minor=2500,
        currency="EUR",
    )
    assert event_json(event) == {
        "order_id": 17,
        "account_id": None,
        "status": "needs_attention",
        "amount_minor": 2500,
        "currency": "EUR",
    }


def test_event_json_writes_decimals_and_times_as_text() -> None:
    event = ReadingHeldAlert(
        kind=AlertKind.READING_HELD,
        reading_id=5,
        meter_id=2,
        account_id=3,
        hold=StepKind.RESET,
        value=Decimal("12.50"),
        at=datetime(2026, 3, 1, 9, 15, tzinfo=timezone(timedelta(hours=1))),
        last_value=None,
        last_at=None,
        allowed=Decimal("3.019"),
    )
    assert event_json(event) == {
        "kind": "reading_held",
        "reading_id": 5,
        "meter_id": 2,
        "account_id": 3,
        "hold": "reset",
        "value": "12.50",
        "at": "2026-03-01T09:15:00+01:00",
        "last_value": None,
        "last_at": None,
        "allowed": "3.019",
    }


ROUND_TRIP: list[StreamPayload] = [
    AccountUpdated(
        account_id=3,
        balance_minor=0,
        emergency_credit_remaining_minor=0,
        debt_minor=0,
        low_balance_level=2,
        currency="JPY",
        supply=Supply(
            allowed=False,
            reason=SupplyReason.CLOSED,
            changes_at=datetime(2026, 3, 2, tzinfo=UTC),
        ),
        status=AccountStatus.CLOSED,
    ),
    TopupUpdated(
        order_id=1,
        account_id=3,
        status=OrderStatus.REFUNDED,
        amount_minor=1,
        currency="EUR",
        reason="refund",
    ),
    ReadingResolved(
        reading_id=1, meter_id=1, action=ResolveAction.ACCEPT, status=ReadingStatus.ACCEPTED
    ),
    LowBalanceAlert(
        kind=AlertKind.LOW_BALANCE_LEVEL_2, account_id=3, balance_minor=-1, threshold_minor=0
    ),
    SupplyCutScheduledAlert(
        kind=AlertKind.SUPPLY_CUT_SCHEDULED,
        account_id=3,
        at=datetime(2026, 3, 2, 8, tzinfo=UTC),
        reason="grace",
    ),
    OrderNeedsAttentionAlert(
        kind=AlertKind.ORDER_NEEDS_ATTENTION,
        order_id=17,
        account_id=None,
        amount_minor=2500,
        currency="EUR",
        currency_exponent=2,
        reason=AttentionCode.STUCK_PROCESSING,
        created_at=datetime(2026, 3, 1, 9, tzinfo=UTC),
        age_minutes=61,
    ),
    ReadingHeldAlert(
        kind=AlertKind.READING_HELD,
        reading_id=5,
        meter_id=2,
        account_id=3,
        hold=StepKind.SURGE,
        value=Decimal("5003.5"),
        at=datetime(2026, 3, 1, 9, 15, tzinfo=UTC),
        last_value=Decimal(5000),
        last_at=datetime(2026, 3, 1, 9, tzinfo=UTC),
        allowed=Decimal("3.019"),
    ),
]


@pytest.mark.parametrize("event", ROUND_TRIP, ids=lambda e: type(e).__name__)
def test_event_json_round_trip_through_the_stream(event: StreamPayload) -> None:
    """Stored, framed as the stream frames it and parsed, an event is itself plus id and at."""
    parsed = parse_event(event.event_type, _frame(70, event_json(event)))
    assert type(parsed) is type(event)
    assert parsed.id == 70
    own_at = "at" in event.model_fields_set
    assert parsed.at == (event.at if own_at else ROW_TIME)  # type: ignore[union-attr]
    fields = set(type(event).model_fields) - {"id", "at"}
    assert parsed.model_dump(include=fields) == event.model_dump(include=fields)
