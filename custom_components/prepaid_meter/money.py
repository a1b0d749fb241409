"""Money as the ledger sends it: integer minor units plus the currency's exponent.

And back: an amount a person types in major units becomes exact minor units, or is refused.
"""

from __future__ import annotations

import re
from decimal import Context, Decimal, Inexact, InvalidOperation, Overflow
from typing import Final

#: Amounts as people type them: digits, an optional dot and decimals, an optional sign. No
#: exponents, separators, non-ASCII digits, NaN or infinities.
_AMOUNT_RE: Final = re.compile(r"[+-]?[0-9]+(?:\.[0-9]+)?")
MAX_AMOUNT_CHARS: Final = 32
#: No real top-up or correction reaches a trillion major units; the ledger has its own cap.
MAX_MAJOR: Final = Decimal(10) ** 12
#: Exact arithmetic: any operation that would round raises instead.
_EXACT: Final = Context(prec=100, traps=[InvalidOperation, Inexact, Overflow])


class AmountError(ValueError):
    """An amount that is not exact minor units; ``reason`` names the rule it broke."""

    def __init__(self, reason: str) -> None:
        """Keep the reason (``invalid_amount``, ``amount_too_precise``, ...)."""
        super().__init__(reason)
        self.reason = reason


def minor_to_major(amount_minor: int, exponent: int) -> Decimal:
    """Return exact major units (1050 with exponent 2 is 10.50); never a float."""
    return Decimal(amount_minor).scaleb(-exponent)


def major_to_minor(raw: object, exponent: int, *, signed: bool = False) -> int:
    """Return an amount in major units (``"10.50"`` or ``10.5``) as exact integer minor units.

    Goes through ``Decimal(str(raw))``, never float arithmetic. Refused with an ``AmountError``:
    non-numbers (``invalid_amount``), a trillion major units or more (``amount_too_large``),
    more decimals than the currency has (``amount_too_precise``), zero and, unless ``signed``,
    negative amounts (``amount_not_zero`` / ``amount_not_positive``).
    """
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        raise AmountError("invalid_amount")
    text = str(raw).strip()
    if len(text) > MAX_AMOUNT_CHARS or not _AMOUNT_RE.fullmatch(text):
        raise AmountError("invalid_amount")
    value = Decimal(text)
    if abs(value) >= MAX_MAJOR:
        raise AmountError("amount_too_large")
    scaled = value.scaleb(exponent, context=_EXACT)
    if scaled != scaled.to_integral_value(context=_EXACT):
        raise AmountError("amount_too_precise")
    minor = int(scaled)
    if minor == 0 or (minor < 0 and not signed):
        raise AmountError("amount_not_zero" if signed else "amount_not_positive")
    return minor
