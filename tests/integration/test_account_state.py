"""What the ledger tells about an account changes exactly the account's own fields."""

from __future__ import annotations

import json

from prepaid_meter_contract.events import AccountUpdated, parse_event
from prepaid_meter_contract.readings import MeterIngest
from prepaid_meter_contract.resources import Account

from custom_components.prepaid_meter.ledger_sync import AccountState

SUPPLY = {"allowed": True, "reason": "credit", "changes_at": None}
# GET /api/v1/accounts/7 as docs/ledger-api.md describes it.
ACCOUNT = {
    "id": 7,
    "number": "100000075",
    "name": "Room 2",
    "currency": "EUR",
    "currency_exponent": 2,
    "timezone": "Europe/Berlin",
    "status": "open",
    "balance_minor": 1000,
    "emergency_credit_minor": 0,
    "emergency_credit_remaining_minor": 0,
    "debt_minor": 0,
    "protected": False,
    "low_balance_minor": [500],
    "low_balance_level": 0,
    "friendly_hours": {},
    "grace_minutes": 0,
    "reconnect_margin_minor": 0,
    "supply": SUPPLY,
    "created_at": "2026-12-01T10:00:00+00:00",
    "closed_at": None,
}


def _state() -> AccountState:
    return AccountState(Account.model_validate(ACCOUNT))


def test_an_event_changes_the_account_not_its_id() -> None:
    """The stream's event id (here 931) is not the account's id (7)."""
    data = {
        "id": 931,
        "at": "2026-12-05T10:00:00+00:00",
        "account_id": 7,
        "balance_minor": 400,
        "emergency_credit_remaining_minor": 0,
        "debt_minor": 0,
        "low_balance_level": 1,
        "currency": "EUR",
        "supply": SUPPLY,
    }
    event = parse_event("account.updated", json.dumps(data))
    assert isinstance(event, AccountUpdated)
    merged = _state().merged(event)
    assert merged is not None
    assert (merged.data.id, merged.data.balance_minor, merged.data.low_balance_level) == (7, 400, 1)
    assert merged.data.number == "100000075"


def test_a_readings_answer_changes_the_balance_and_supply() -> None:
    item = MeterIngest.model_validate(
        {
            "meter_id": 3,
            "account_id": 7,
            "accepted": 1,
            "baseline": 0,
            "duplicates": 0,
            "flagged": 0,
            "held": 0,
            "ignored_noise": 0,
            "unbilled": 0,
            "charged_minor": 1000,
            "standing_charged_minor": 0,
            "balance_minor": 0,
            "emergency_credit_remaining_minor": 0,
            "debt_minor": 0,
            "supply": {"allowed": False, "reason": "exhausted", "changes_at": None},
        }
    )
    merged = _state().merged(item)
    assert merged is not None
    assert (merged.data.id, merged.data.balance_minor, merged.data.supply.allowed) == (7, 0, False)


def test_news_that_changes_nothing_keeps_the_state() -> None:
    same = AccountUpdated.model_validate(
        {
            "id": 5,
            "account_id": 7,
            "balance_minor": 1000,
            "emergency_credit_remaining_minor": 0,
            "debt_minor": 0,
            "low_balance_level": 0,
            "currency": "EUR",
            "supply": SUPPLY,
        }
    )
    assert _state().merged(same) is None
