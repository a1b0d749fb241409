"""The integration's money conversions: exact both ways, refusals by rule (property-tested)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from custom_components.prepaid_meter.money import AmountError, major_to_minor, minor_to_major

EXPONENTS = st.sampled_from([0, 2, 3, 4])  # JPY, EUR, KWD, CLF in ISO 4217
MINOR = st.integers(min_value=1, max_value=10**14)


@given(minor=MINOR, exponent=EXPONENTS, negative=st.booleans())
def test_major_to_minor_inverts_minor_to_major(minor: int, exponent: int, negative: bool) -> None:
    amount = -minor if negative else minor
    text = f"{minor_to_major(amount, exponent):f}"
    if abs(Decimal(text)) >= 10**12:
        with pytest.raises(AmountError, match="amount_too_large"):
            major_to_minor(text, exponent, signed=True)
        return
    assert major_to_minor(text, exponent, signed=True) == amount


@given(minor=MINOR, exponent=EXPONENTS)
def test_one_decimal_too_many_is_refused(minor: int, exponent: int) -> None:
    major = f"{minor_to_major(minor, exponent):f}"
    text = (major if "." in major else major + ".") + "1"  # 10.50 -> 10.501, 500 -> 500.1
    expected = "amount_too_large" if Decimal(text) >= 10**12 else "amount_too_precise"
    with pytest.raises(AmountError) as info:
        major_to_minor(text, exponent)
    assert info.value.reason == expected


@pytest.mark.parametrize(
    ("raw", "exponent", "minor"),
    [("10.50", 2, 1050), (10.5, 2, 1050), ("500", 0, 500), ("1.234", 3, 1234), ("+3", 2, 300)],
)
def test_worked_examples(raw: object, exponent: int, minor: int) -> None:
    assert major_to_minor(raw, exponent) == minor
