"""A voucher-guessing alert from the ledger becomes the integration's automation event."""

from __future__ import annotations

from datetime import UTC, datetime

from prepaid_meter_contract.events import VoucherGuessingAlert
from prepaid_meter_contract.vocabulary import AlertKind

from custom_components.prepaid_meter.automation_events import (
    EVENT_KINDS,
    bus_event_type,
    from_ledger_event,
)


def test_voucher_guessing_reaches_automations() -> None:
    alert = VoucherGuessingAlert(
        kind=AlertKind.VOUCHER_GUESSING,
        account_id=3,
        failures=5,
        waits_until=datetime(2026, 3, 1, 8, 18, tzinfo=UTC),
    )
    mapped = from_ledger_event(alert)
    assert mapped is not None
    assert (mapped.kind, mapped.data) == (
        "voucher_guessing",
        {"failures": 5, "waits_until": "2026-03-01T08:18:00+00:00"},
    )
    assert "voucher_guessing" in EVENT_KINDS  # shown by the account's event entity too
    assert bus_event_type(mapped.kind) == "prepaid_meter_voucher_guessing"
