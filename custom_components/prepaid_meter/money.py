"""Money as the ledger sends it: integer minor units plus the currency's exponent."""

from __future__ import annotations

from decimal import Decimal


def minor_to_major(amount_minor: int, exponent: int) -> Decimal:
    """Return exact major units (1050 with exponent 2 is 10.50); never a float."""
    return Decimal(amount_minor).scaleb(-exponent)
