"""The top-up models (``prepaid_meter_contract.topups``): what parses, what is refused, and why.

Expected codes and messages are written out from the documented rules, not computed:

- docs/ledger-api.md "Resources": ``POST /api/v1/topups {"account": id or number,
  "amount_minor", "reference"?}``, ``POST /api/v1/topups/batch {"items": [...]}`` with one
  result per item, ``POST /api/v1/topups/{id}/actions {"action": "credit"|"refund"|"fail"|
  "recheck", "reason", "amount_minor"?, "account"?}``, ``POST /api/v1/adjustments {"account",
  "amount_minor" (signed), "reason"}``;
- docs/ledger-api.md "Limits on what a request may say": money a request sets is a JSON integer
  up to ``MAX_MINOR`` = 10^12 minor units, else 422 ``invalid_amount``; a 422 names the field;
- docs/ledger-api.md "Payment webhooks": the answer says ``received``, ``duplicate``,
  ``outcome``, the order and its status;
- the docstrings of ``wire.py`` for the wording of each detail (``must be at least 1; got 0``).
"""

from __future__ import annotations

from typing import Any

import pytest
from prepaid_meter_contract.errors import ErrorDetail
from prepaid_meter_contract.resources import RecheckedOrder, TopupOrder, TopupOrders
from prepaid_meter_contract.topups import (
    Adjustment,
    AdjustmentRequest,
    BatchItemResult,
    BatchResults,
    OrderAction,
    ResolvedOrder,
    TopupBatch,
    TopupRequest,
    WebhookResult,
)
from prepaid_meter_contract.wire import WireError, describe
from pydantic import BaseModel, ValidationError

MAX_MINOR = 10**12
AMOUNT_NOT_INTEGER = "amount_minor must be an integer number of minor units (e.g. cents)"
ACCOUNT_SHAPE = "account must be an id or an account number"

#: An order as ``GET /api/v1/topups/{id}`` answers it (docs/ledger-api.md, "Top-up orders").
ORDER: dict[str, Any] = {
    "id": 17,
    "account_id": 3,
    "account_ref": "100000011",
    "amount_minor": 2500,
    "currency": "EUR",
    "status": "succeeded",
    "source": "manual",
    "reference": "cash-1",
    "provider": "manual",
    "provider_payment_id": "cash-1",
    "credited_minor": 2500,
    "refunded_minor": 0,
    "attention_reason": None,
    "attention_code": None,
    "created_at": "2026-12-05T14:00:00+00:00",
    "updated_at": "2026-12-05T14:00:00+00:00",
    "timeline": [
        {"status": "pending", "at": "2026-12-05T14:00:00+00:00", "reason": None, "actor": "a"},
        {"status": "succeeded", "at": "2026-12-05T14:00:00+00:00", "reason": None, "actor": "a"},
    ],
    # A succeeded order carries its receipt (issue 22).
    "receipt": {
        "number": 4,
        "order_id": 17,
        "issued_at": "2026-12-05T14:00:00+00:00",
        "account_id": 3,
        "account_number": "100000011",
        "account_name": "Room 3",
        "room": "Kitchen, Hall",
        "amount_minor": 2500,
        "bonus_minor": 250,
        "currency": "EUR",
        "currency_exponent": 2,
        "method": "cash",
        "balance_after_minor": 2500,
    },
    # ... and the bonus a promotion gave with it (issue 23), of which refunds took back none.
    "bonus": {
        "promotion_id": 2,
        "promotion_name": "Ten percent",
        "amount_minor": 250,
        "taken_back_minor": 0,
    },
}


def _refusal(model: type[BaseModel], data: object) -> WireError:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(data)
    return describe(caught.value)


# --------------------------------------------------------------------------- top-ups


@pytest.mark.parametrize(
    ("body", "account", "amount", "reference"),
    [
        ({"account": 3, "amount_minor": 2500}, 3, 2500, None),
        ({"account": "100 000 011", "amount_minor": 250}, "100 000 011", 250, None),
        ({"account": 3, "amount_minor": 1500, "reference": " cash-1 "}, 3, 1500, "cash-1"),
        ({"account": 3, "amount_minor": MAX_MINOR, "reference": None}, 3, MAX_MINOR, None),
        # Fields a newer ledger may add are ignored, not refused.
        ({"account": 3, "amount_minor": 1, "note": "x"}, 3, 1, None),
    ],
)
def test_top_up_requests_parse(
    body: dict[str, Any], account: int | str, amount: int, reference: str | None
) -> None:
    request = TopupRequest.model_validate(body)
    assert (request.account, request.amount_minor, request.reference) == (
        account,
        amount,
        reference,
    )


@pytest.mark.parametrize(
    ("amount", "code", "message"),
    [
        (0, "invalid_amount", "amount_minor must be at least 1; got 0"),
        (-5, "invalid_amount", "amount_minor must be at least 1; got -5"),
        (1.5, "invalid_amount", AMOUNT_NOT_INTEGER),
        (100.0, "invalid_amount", AMOUNT_NOT_INTEGER),
        ("100", "invalid_amount", AMOUNT_NOT_INTEGER),
        (True, "invalid_amount", AMOUNT_NOT_INTEGER),
        (None, "invalid_amount", AMOUNT_NOT_INTEGER),
        (
            MAX_MINOR + 1,
            "invalid_amount",
            f"amount_minor must be at most {MAX_MINOR}; got {MAX_MINOR + 1}",
        ),
    ],
)
def test_top_up_amount_refusals(amount: object, code: str, message: str) -> None:
    err = _refusal(TopupRequest, {"account": 3, "amount_minor": amount})
    assert (err.code, err.field, err.message()) == (code, "amount_minor", message)


@pytest.mark.parametrize("account", [True, False, "", "   ", None, 1.5, [3], {"id": 3}, "9" * 65])
def test_account_must_be_an_id_or_a_number(account: object) -> None:
    err = _refusal(TopupRequest, {"account": account, "amount_minor": 100})
    assert (err.code, err.field, err.message()) == ("invalid_account", "account", ACCOUNT_SHAPE)


def test_account_number_is_kept_as_typed_for_the_ledger_to_check() -> None:
    # The check digit and the look-up are the ledger's: the contract only knows the shape.
    request = TopupRequest.model_validate({"account": "100-000-012", "amount_minor": 1})
    assert request.account == "100-000-012"


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"amount_minor": 100}, "account", "account is required"),
        ({"account": 3}, "amount_minor", "amount_minor is required"),
        ({"account": 3, "amount_minor": 1, "reference": " "}, "reference", None),
        ({"account": 3, "amount_minor": 1, "reference": 5}, "reference", None),
        ({"account": 3, "amount_minor": 1, "reference": "r" * 201}, "reference", None),
    ],
)
def test_top_up_field_refusals(body: dict[str, Any], field: str, message: str | None) -> None:
    err = _refusal(TopupRequest, body)
    assert (err.code, err.field) == ("invalid_field", field)
    assert err.message().startswith(f"{field} ")
    if message is not None:
        assert err.message() == message


def test_a_body_that_is_not_an_object_is_refused() -> None:
    err = _refusal(TopupRequest, [{"account": 3, "amount_minor": 1}])
    assert (err.code, err.field, err.message()) == ("invalid_field", None, "must be an object")


# --------------------------------------------------------------------------- batches


def test_a_bad_batch_item_stays_that_items_error() -> None:
    batch = TopupBatch.model_validate(
        {
            "items": [
                {"account": 3, "amount_minor": 1000},
                {"account": "100000011", "amount_minor": 2000},
                {"account": 3, "amount_minor": -1},
                "not a top-up",
                {"account": True, "amount_minor": 5},
            ]
        }
    )
    first, second, negative, text, boolean = batch.items
    assert first == TopupRequest(account=3, amount_minor=1000)
    assert second == TopupRequest(account="100000011", amount_minor=2000)
    assert negative == ErrorDetail(
        code="invalid_amount",
        message="items[2].amount_minor must be at least 1; got -1",
        field="items[2].amount_minor",
    )
    assert text == ErrorDetail(
        code="invalid_field", message="items[3] must be an object", field="items[3]"
    )
    assert boolean == ErrorDetail(
        code="invalid_account",
        message="items[4].account must be an id or an account number",
        field="items[4].account",
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"items": []}, "items must be a list of 1 to 1000 top-ups"),
        (
            {"items": [{"account": 1, "amount_minor": 1}] * 1001},
            "items must be a list of 1 to 1000 top-ups",
        ),
        ({"items": {"account": 1, "amount_minor": 1}}, "items must be a list of 1 to 1000 top-ups"),
        ({}, "items is required"),
    ],
)
def test_only_the_list_itself_refuses_a_whole_batch(body: dict[str, Any], message: str) -> None:
    err = _refusal(TopupBatch, body)
    assert (err.code, err.field, err.message()) == ("invalid_field", "items", message)


def test_a_batch_of_1000_items_is_accepted() -> None:
    batch = TopupBatch.model_validate({"items": [{"account": 1, "amount_minor": 1}] * 1000})
    assert len(batch.items) == 1000


def test_batch_schema_describes_the_items_as_top_ups() -> None:
    items = TopupBatch.model_json_schema()["properties"]["items"]
    assert items["minItems"] == 1
    assert items["maxItems"] == 1000
    assert items["items"] == {"$ref": "#/$defs/TopupRequest"}


# --------------------------------------------------------------------------- order actions


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"action": "credit", "reason": "typo"}, ("credit", "typo", None, None)),
        (
            {"action": "credit", "reason": "typo", "account": "100 000 011"},
            ("credit", "typo", None, "100 000 011"),
        ),
        (
            {"action": "refund", "reason": "moved", "amount_minor": 400},
            ("refund", "moved", 400, None),
        ),
        ({"action": "refund", "reason": "rest"}, ("refund", "rest", None, None)),
        ({"action": "fail", "reason": "never paid"}, ("fail", "never paid", None, None)),
        ({"action": "recheck", "reason": "refresh"}, ("recheck", "refresh", None, None)),
    ],
)
def test_order_actions_parse(body: dict[str, Any], expected: tuple[object, ...]) -> None:
    action = OrderAction.model_validate(body)
    assert (action.action, action.reason, action.amount_minor, action.account) == expected


@pytest.mark.parametrize("word", ["cancel", "", "CREDIT", 1, None])
def test_an_unknown_action_is_refused(word: object) -> None:
    err = _refusal(OrderAction, {"action": word, "reason": "x"})
    assert (err.code, err.field) == ("invalid_field", "action")
    assert err.message().startswith("action must be one of ")
    for accepted in ("credit", "refund", "fail", "recheck"):
        assert accepted in err.message()


@pytest.mark.parametrize(
    ("reason", "message"),
    [
        ("", "reason must be a non-empty string"),
        ("   ", "reason must be a non-empty string"),
        (7, "reason must be a non-empty string"),
        ("r" * 501, "reason must be at most 500 characters"),
    ],
)
def test_an_action_needs_a_reason(reason: object, message: str) -> None:
    err = _refusal(OrderAction, {"action": "fail", "reason": reason})
    assert (err.code, err.field, err.message()) == ("invalid_field", "reason", message)


def test_a_missing_reason_is_named() -> None:
    err = _refusal(OrderAction, {"action": "fail"})
    assert (err.code, err.field, err.message()) == ("invalid_field", "reason", "reason is required")


@pytest.mark.parametrize(
    ("amount", "message"),
    [
        (0, "amount_minor must be at least 1; got 0"),
        (-400, "amount_minor must be at least 1; got -400"),
        ("400", AMOUNT_NOT_INTEGER),
        (4.0, AMOUNT_NOT_INTEGER),
    ],
)
def test_a_refund_amount_is_positive_money(amount: object, message: str) -> None:
    err = _refusal(OrderAction, {"action": "refund", "reason": "x", "amount_minor": amount})
    assert (err.code, err.field, err.message()) == ("invalid_amount", "amount_minor", message)


def test_a_credit_to_a_malformed_account_is_refused() -> None:
    err = _refusal(OrderAction, {"action": "credit", "reason": "x", "account": " "})
    assert (err.code, err.field, err.message()) == ("invalid_account", "account", ACCOUNT_SHAPE)


# --------------------------------------------------------------------------- adjustments


@pytest.mark.parametrize("amount", [-300, 5, -MAX_MINOR, MAX_MINOR])
def test_adjustments_are_signed(amount: int) -> None:
    adjustment = AdjustmentRequest.model_validate(
        {"account": 3, "amount_minor": amount, "reason": "meter error"}
    )
    assert (adjustment.account, adjustment.amount_minor, adjustment.reason) == (
        3,
        amount,
        "meter error",
    )


@pytest.mark.parametrize(
    ("body", "code", "field", "message"),
    [
        (
            {"account": 3, "amount_minor": 0, "reason": "x"},
            "invalid_amount",
            "amount_minor",
            "amount_minor must not be zero",
        ),
        (
            {"account": 3, "amount_minor": -MAX_MINOR - 1, "reason": "x"},
            "invalid_amount",
            "amount_minor",
            f"amount_minor must be at least {-MAX_MINOR}; got {-MAX_MINOR - 1}",
        ),
        (
            {"account": 3, "amount_minor": -1.5, "reason": "x"},
            "invalid_amount",
            "amount_minor",
            AMOUNT_NOT_INTEGER,
        ),
        (
            {"account": 3, "amount_minor": "-300", "reason": "x"},
            "invalid_amount",
            "amount_minor",
            AMOUNT_NOT_INTEGER,
        ),
        (
            {"account": 3, "amount_minor": False, "reason": "x"},
            "invalid_amount",
            "amount_minor",
            AMOUNT_NOT_INTEGER,
        ),
        (
            {"account": 3, "amount_minor": 5},
            "invalid_field",
            "reason",
            "reason is required",
        ),
        (
            {"account": 3, "amount_minor": 5, "reason": ""},
            "invalid_field",
            "reason",
            "reason must be a non-empty string",
        ),
        (
            {"account": True, "amount_minor": 5, "reason": "x"},
            "invalid_account",
            "account",
            ACCOUNT_SHAPE,
        ),
        (
            {"account": "", "amount_minor": 5, "reason": "x"},
            "invalid_account",
            "account",
            ACCOUNT_SHAPE,
        ),
    ],
)
def test_adjustment_refusals(body: dict[str, Any], code: str, field: str, message: str) -> None:
    err = _refusal(AdjustmentRequest, body)
    assert (err.code, err.field, err.message()) == (code, field, message)


# --------------------------------------------------------------------------- answers


def test_an_order_round_trips() -> None:
    order = TopupOrder.model_validate(ORDER)
    assert order.model_dump(mode="json") == ORDER
    listing = TopupOrders.model_validate({"topups": [ORDER]})
    assert listing.model_dump(mode="json") == {"topups": [ORDER], "next_cursor": None}


def test_a_resolved_order_carries_the_providers_answer_only_after_a_recheck() -> None:
    rechecked = ORDER | {"provider_status": "complete/paid"}
    assert ResolvedOrder.model_validate(rechecked).model_dump(mode="json") == rechecked
    assert RecheckedOrder.model_validate(rechecked).provider_status == "complete/paid"
    assert ResolvedOrder.model_validate(ORDER).provider_status is None


def test_batch_results_round_trip() -> None:
    answer = {
        "results": [
            {"index": 0, "ok": True, "order": ORDER, "error": None},
            {
                "index": 1,
                "ok": False,
                "order": None,
                "error": {
                    "code": "invalid_amount",
                    "message": "items[1].amount_minor must be at least 1; got -1",
                    "field": "items[1].amount_minor",
                },
            },
            {
                "index": 2,
                "ok": False,
                "order": None,
                "error": {
                    "code": "account_closed",
                    "message": "account 4 is closed",
                    "field": None,
                },
            },
        ]
    }
    assert BatchResults.model_validate(answer).model_dump(mode="json") == answer


def test_adjustment_and_webhook_answers_round_trip() -> None:
    adjustment = {"transaction_id": 9, "account_id": 3, "amount_minor": -300, "reason": "meter"}
    assert Adjustment.model_validate(adjustment).model_dump(mode="json") == adjustment
    credited = {
        "received": True,
        "duplicate": False,
        "outcome": "credited",
        "order_id": 17,
        "status": "succeeded",
    }
    assert WebhookResult.model_validate(credited).model_dump(mode="json") == credited
    # A duplicate delivery says what the first one did; it names no status.
    duplicate = WebhookResult.model_validate(
        {"received": True, "duplicate": True, "outcome": "credited", "order_id": 17}
    )
    assert (duplicate.duplicate, duplicate.status) == (True, None)


@pytest.mark.parametrize("money", ["1250", 1250.0, True, None])
@pytest.mark.parametrize(
    ("model", "answer", "field"),
    [
        (TopupOrder, ORDER, "amount_minor"),
        (TopupOrder, ORDER, "credited_minor"),
        (TopupOrder, ORDER, "refunded_minor"),
        (
            Adjustment,
            {"transaction_id": 9, "account_id": 3, "amount_minor": 1250, "reason": "x"},
            "amount_minor",
        ),
    ],
)
def test_answers_refuse_money_that_is_not_an_integer(
    model: type[BaseModel], answer: dict[str, Any], field: str, money: object
) -> None:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(answer | {field: money})
    assert caught.value.errors()[0]["loc"] == (field,)


def test_a_batch_result_refuses_an_order_with_money_as_text() -> None:
    with pytest.raises(ValidationError) as caught:
        BatchItemResult.model_validate(
            {"index": 0, "ok": True, "order": ORDER | {"amount_minor": "1250"}}
        )
    assert caught.value.errors()[0]["loc"] == ("order", "amount_minor")


def test_a_webhook_answer_refuses_an_unknown_status() -> None:
    with pytest.raises(ValidationError):
        WebhookResult.model_validate(
            {"received": True, "duplicate": False, "outcome": "x", "status": "paid"}
        )
