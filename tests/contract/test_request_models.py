"""The contract's account, meter, token and statement models against docs/ledger-api.md.

Each expected code and limit is the one the API document states (Limits on what a request may
say; Resources), not one read off the models.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from prepaid_meter_contract.accounts import AccountInput, AccountUpdate, CloseAccount
from prepaid_meter_contract.admin import TokenRequest
from prepaid_meter_contract.meters import AssignMeter, MeterInput, MeterLimitsChange
from prepaid_meter_contract.statements import Statement
from prepaid_meter_contract.vocabulary import Scope
from prepaid_meter_contract.wire import WireError, describe
from pydantic import BaseModel, ValidationError

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
ACCOUNT = {"name": "Room 1", "currency": "EUR", "timezone": "Europe/Berlin"}


def refusal(model: type[BaseModel], data: object) -> WireError:
    """Return how the model refuses the data (code, field, message)."""
    with pytest.raises(ValidationError) as info:
        model.model_validate(data, context={"now": NOW})
    return describe(info.value)


def test_an_account_with_every_documented_setting() -> None:
    account = AccountInput.model_validate(
        ACCOUNT
        | {
            "emergency_credit_minor": 500,
            "protected": True,
            "low_balance_minor": [1000, 200],
            "friendly_hours": {"monday": [{"start": "18:00", "end": "09:00"}]},
            "grace_minutes": 60,
            "reconnect_margin_minor": 100,
        }
    )
    assert account.low_balance_minor == (1000, 200)
    assert account.name == "Room 1"


@pytest.mark.parametrize(
    ("extra", "code", "field"),
    [
        # "Money set by a request ... is an integer from 0 to MAX_MINOR = 10^12 ... else 422
        # invalid_amount".
        ({"emergency_credit_minor": 10**12 + 1}, "invalid_amount", "emergency_credit_minor"),
        ({"emergency_credit_minor": -1}, "invalid_amount", "emergency_credit_minor"),
        ({"emergency_credit_minor": 1.5}, "invalid_amount", "emergency_credit_minor"),
        ({"emergency_credit_minor": "500"}, "invalid_amount", "emergency_credit_minor"),
        ({"reconnect_margin_minor": 10**30}, "invalid_amount", "reconnect_margin_minor"),
        ({"low_balance_minor": [10**30, 0]}, "invalid_amount", "low_balance_minor[0]"),
        ({"low_balance_minor": [100, 500]}, "invalid_amount", "low_balance_minor"),
        ({"low_balance_minor": [100]}, "invalid_field", "low_balance_minor[1]"),
        ({"protected": "yes"}, "invalid_field", "protected"),
        ({"protected": 1}, "invalid_field", "protected"),
        ({"grace_minutes": 7 * 24 * 60 + 1}, "invalid_field", "grace_minutes"),
        ({"timezone": "Mars/Olympus"}, "invalid_field", "timezone"),
        ({"currency": "eur"}, "invalid_currency", "currency"),
        ({"name": "   "}, "invalid_field", "name"),
        ({"name": "x" * 201}, "invalid_field", "name"),
    ],
)
def test_account_settings_out_of_bounds(extra: dict[str, Any], code: str, field: str) -> None:
    refused = refusal(AccountInput, ACCOUNT | extra)
    assert (refused.code, refused.field) == (code, field)
    assert refused.message().startswith(field)


def test_an_update_says_only_what_changes() -> None:
    change = AccountUpdate.model_validate({"protected": True, "low_balance_minor": None})
    assert change.model_dump(exclude_unset=True) == {"protected": True, "low_balance_minor": None}
    # Currency and time zone never change (Resources: "not currency or time zone").
    refused = refusal(AccountUpdate, {"currency": "USD"})
    assert (refused.code, refused.field) == ("invalid_field", "currency")


def test_closing_needs_a_reason() -> None:
    assert CloseAccount.model_validate({"reason": " moved out "}).reason == "moved out"
    for body in ({}, {"reason": ""}, {"reason": "  "}, {"reason": "x" * 501}):
        assert refusal(CloseAccount, body).field == "reason"


def test_a_meter_and_its_guard_limits() -> None:
    meter = MeterInput.model_validate(
        {"account_id": 1, "tariff_id": 2, "name": "Room 1", "unit": "kWh", "max_power": "25"}
    )
    assert (meter.unit, meter.max_power) == ("kWh", Decimal(25))
    # "max_power (above 0, at most 10,000 per hour)".
    for power in ("0", "10000.01"):
        refused = refusal(MeterLimitsChange, {"max_power": power})
        assert (refused.code, refused.field) == ("out_of_range", "max_power")
    assert MeterLimitsChange.model_validate({"max_power": "10000"}).max_power == 10000
    # "null returns one to its default": a null is a change, an empty body is not.
    assert MeterLimitsChange.model_validate({"register_modulus": None}).model_fields_set == {
        "register_modulus"
    }
    assert refusal(MeterLimitsChange, {}).code == "invalid_field"
    # PATCH "changes only model, max_power and register_modulus".
    assert refusal(MeterLimitsChange, {"unit": "m3"}).field == "unit"
    assert (
        refusal(MeterInput, {"account_id": 1, "tariff_id": 2, "name": "x", "unit": "l"}).field
        == "unit"
    )


def test_a_meter_moves_at_an_observed_time() -> None:
    move = AssignMeter.model_validate(
        {"account_id": 3, "from": "2026-12-01T00:00:00+01:00"}, context={"now": NOW}
    )
    assert move.from_ == datetime(2026, 11, 30, 23, 0, tzinfo=UTC)
    ahead = (NOW + timedelta(minutes=6)).isoformat()
    refused = refusal(AssignMeter, {"account_id": 3, "from": ahead})
    assert (refused.code, refused.field) == ("time_in_future", "from")
    refused = refusal(AssignMeter, {"account_id": 3, "from": "9999-12-31T23:59:59-01:00"})
    assert refused.code == "time_out_of_range"


@pytest.mark.parametrize("account_id", [0, -(10**30), 2**63, True, "7"])
def test_token_ids_are_positive_row_ids(account_id: object) -> None:
    refused = refusal(TokenRequest, {"scope": "tenant", "account_id": account_id})
    assert (refused.code, refused.field) == ("invalid_field", "account_id")


def test_tokens_by_scope() -> None:
    assert TokenRequest.model_validate({"scope": "integration"}).scope is Scope.INTEGRATION
    assert TokenRequest.model_validate({"scope": "tenant", "account_id": 7}).account_id == 7
    assert "account_id" in refusal(TokenRequest, {"scope": "tenant"}).message()
    # Only the admin token is admin; no request can make another.
    assert refusal(TokenRequest, {"scope": "admin"}).field == "scope"


def test_a_statement_ties_out_and_keeps_its_from_field() -> None:
    wire = {
        "account_id": 1,
        "number": "10003",
        "currency": "EUR",
        "from": "2026-12-01T00:00:00+01:00",
        "to": None,
        "opening_balance_minor": 1000,
        "topups": [
            {
                "transaction_id": 5,
                "at": "2026-12-02T10:00:00+00:00",
                "description": "cash",
                "amount_minor": 2000,
            }
        ],
        "topups_total_minor": 2000,
        "bonuses": [],
        "bonuses_total_minor": 0,
        "refunds": [],
        "refunds_total_minor": 0,
        "adjustments": [],
        "adjustments_total_minor": 0,
        "settlements": [],
        "settlements_total_minor": 0,
        "consumption": [
            {"day": "2026-12-02", "band": "all", "quantity": "12.5", "amount_minor": 313}
        ],
        "consumption_total_minor": 313,
        "standing_charges": [{"day": "2026-12-02", "amount_minor": 12}],
        "standing_total_minor": 12,
        # 1000 + 2000 - 313 - 12, the worked example of this test.
        "closing_balance_minor": 2675,
        "ties_out": True,
    }
    statement = Statement.model_validate(wire)
    assert statement.model_dump(mode="json") == wire
    # Money in an answer is an integer, never text or a float a broken peer sent.
    for broken in ("2675", 2675.0):
        with pytest.raises(ValidationError):
            Statement.model_validate(wire | {"closing_balance_minor": broken})
