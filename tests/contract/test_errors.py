"""``LedgerRequestError.item_index``: which item of a request's list the ledger refused.

docs/ledger-api.md: a 422's ``field`` names the value at fault, e.g. ``readings[3].value``, "so
a client can set exactly that value aside".
"""

from __future__ import annotations

import pytest
from prepaid_meter_contract.errors import ErrorBody, LedgerError, LedgerRequestError
from prepaid_meter_contract.readings import ReadingsBatch
from prepaid_meter_contract.wire import describe
from pydantic import ValidationError


def _refused(field: str | None) -> LedgerRequestError:
    return LedgerRequestError(422, "invalid_decimal", "message", field)


@pytest.mark.parametrize(
    ("field", "index"),
    [
        ("readings[3].value", 3),
        ("readings[3].at", 3),
        ("readings[0].meter_id", 0),
        ("readings[0]", 0),
        ("readings[4999].value", 4999),
        ("readings[12]", 12),
    ],
)
def test_item_index_of_readings(field: str, index: int) -> None:
    assert _refused(field).item_index("readings") == index


@pytest.mark.parametrize(
    "field",
    [
        None,
        "readings",
        "readings.value",
        "readings[].value",
        "readings[-1].value",
        "readings[x].value",
        "readings[\u0663].value",  # ARABIC-INDIC DIGIT THREE is not an index
        "items[2].amount",
        "meter_readings[3].value",
        "reading[3].value",
        "value",
        "",
    ],
)
def test_no_item_index(field: str | None) -> None:
    assert _refused(field).item_index("readings") is None


def test_item_index_of_another_collection() -> None:
    assert _refused("items[2].amount").item_index("items") == 2
    assert _refused("readings[2].value").item_index("items") is None


def test_request_error_keeps_the_ledger_s_words() -> None:
    err = LedgerRequestError(409, "account_closed", "account 3 is closed")
    assert isinstance(err, LedgerError)
    assert (err.status, err.code, err.field) == (409, "account_closed", None)
    assert str(err) == "account 3 is closed"


def test_a_described_batch_error_points_at_its_reading() -> None:
    """What the ledger answers for a bad reading leads the client back to that reading."""
    readings = [{"meter_id": 1, "value": "1", "at": "2026-03-01T00:00:00Z"} for _ in range(8)]
    readings[6] = readings[6] | {"value": "1e3"}
    with pytest.raises(ValidationError) as caught:
        ReadingsBatch.model_validate({"readings": readings})
    wire = describe(caught.value)
    err = LedgerRequestError(422, wire.code, wire.message(), wire.field)
    assert err.item_index("readings") == 6


def test_error_body_shape() -> None:
    body = ErrorBody.model_validate({"error": {"code": "not_found", "message": "no account 9"}})
    assert (body.error.code, body.error.message, body.error.field) == (
        "not_found",
        "no account 9",
        None,
    )
    with pytest.raises(ValidationError):
        ErrorBody.model_validate({"code": "not_found", "message": "flat, not nested"})
