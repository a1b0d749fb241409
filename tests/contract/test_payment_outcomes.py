"""``PaymentOutcome``: the words a payment webhook answers in ``outcome``, defined once.

docs/ledger-api.md "Payment webhooks" and "Reconciliation with Stripe" name the outcomes a
caller sees (``"outcome": "duplicate_payment"``); the ledger (services/topups.py and
services/webhooks.py) produces each member below, and a duplicate delivery answers the outcome
its first delivery stored.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from prepaid_meter_contract.topups import WebhookResult
from prepaid_meter_contract.vocabulary import PaymentOutcome
from pydantic import ValidationError

DOC = Path(__file__).resolve().parents[2] / "docs" / "ledger-api.md"

#: Written out from the ledger's code paths, not computed from the enum.
PRODUCED = {
    # receive_payment / credit_or_flag (a paid checkout, a Standard Webhooks payment)
    "credited",
    "duplicate_payment",
    "needs_attention",
    "processing",
    # checkout.session.async_payment_failed / checkout.session.expired on an open order
    "failed",
    "expired",
    # charge.refunded
    "refunded",
    "refund_already_applied",
    "ignored_no_payment_intent",
    "ignored_unknown_payment",
    # an event the ledger does not act on, a paid checkout without a session id
    "ignored",
    "ignored_no_session_id",
}


def _documented_outcomes() -> set[str]:
    """Every ``"outcome": "word"`` in the sections on payment webhooks and reconciliation."""
    text = DOC.read_text(encoding="utf-8")
    sections = re.findall(
        r"^## (?:Payment webhooks|Reconciliation with Stripe)\n(.*?)(?=^## |\Z)",
        text,
        flags=re.MULTILINE | re.DOTALL,
    )
    assert len(sections) == 2, "docs/ledger-api.md lost a section this test reads"
    return {word for section in sections for word in re.findall(r'"outcome": "(\w+)"', section)}


def test_every_documented_outcome_is_a_payment_outcome() -> None:
    documented = _documented_outcomes()
    assert documented, "the doc names no outcome any more"
    assert documented <= {outcome.value for outcome in PaymentOutcome}


def test_the_outcomes_are_exactly_those_the_ledger_produces() -> None:
    assert {outcome.value for outcome in PaymentOutcome} == PRODUCED


@pytest.mark.parametrize("outcome", list(PaymentOutcome))
def test_a_webhook_answer_carries_each_outcome_as_its_word(outcome: PaymentOutcome) -> None:
    answer = {"received": True, "duplicate": True, "outcome": outcome.value, "order_id": None}
    parsed = WebhookResult.model_validate(answer)
    assert parsed.outcome is outcome
    assert parsed.model_dump(mode="json") == answer | {"status": None}


def test_a_webhook_answer_refuses_an_outcome_the_ledger_never_gives() -> None:
    with pytest.raises(ValidationError) as caught:
        WebhookResult.model_validate(
            {"received": True, "duplicate": False, "outcome": "paid", "status": "succeeded"}
        )
    assert caught.value.errors()[0]["loc"] == ("outcome",)
