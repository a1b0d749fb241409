"""The integration applies the ledger's own reading guard: one implementation, never two."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LEDGER = ROOT / "addon/src/prepaid_ledger/domain"
INTEGRATION = ROOT / "custom_components/prepaid_meter/shared"


@pytest.mark.parametrize("name", ["reading_guard.py", "meter_ratings.py"])
def test_integration_copy_is_the_ledgers_code(name: str) -> None:
    """Run scripts/sync-shared after changing the ledger's file."""
    assert (INTEGRATION / name).read_bytes() == (LEDGER / name).read_bytes(), (
        f"custom_components/prepaid_meter/shared/{name} differs from the ledger's; "
        "run scripts/sync-shared"
    )


def test_both_halves_judge_a_glitch_alike() -> None:
    """The same step gets the same verdict from both copies (a 0 after 1,000 kWh: a reset)."""
    from datetime import UTC, datetime, timedelta  # noqa: PLC0415
    from decimal import Decimal  # noqa: PLC0415

    from prepaid_ledger.domain import reading_guard as ledger  # noqa: PLC0415

    from custom_components.prepaid_meter.shared import reading_guard as ours  # noqa: PLC0415

    at = datetime(2026, 12, 1, tzinfo=UTC)
    later = at + timedelta(seconds=10)
    for module in (ledger, ours):
        limits = module.MeterLimits(Decimal("10.35"))
        assert module.classify(Decimal(1000), at, Decimal(0), later, limits).kind == "reset"
