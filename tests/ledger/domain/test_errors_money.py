"""Money rules: currency exponents, strict decimal parsing, half-up rounding, cumulative posting."""

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prepaid_ledger.domain.money import (
    amount_to_post,
    currency_exponent,
    format_decimal,
    from_minor,
    parse_currency,
    parse_decimal,
    parse_non_negative_decimal,
    to_minor,
)
from prepaid_ledger.errors import InputError


@pytest.mark.parametrize(
    ("code", "exponent"),
    [
        ("EUR", 2),
        ("USD", 2),
        ("GBP", 2),
        ("CNY", 2),
        ("ZAR", 2),
        ("JPY", 0),
        ("KRW", 0),
        ("KWD", 3),
        ("BHD", 3),
        ("CLF", 4),
    ],
)
def test_currency_exponent_known_codes(code: str, exponent: int) -> None:
    assert currency_exponent(code) == exponent


@pytest.mark.parametrize("code", ["eur", "EURO", "", "XAU", "XXX", "HRK", "E U"])
def test_currency_exponent_rejects_unknown_codes(code: str) -> None:
    with pytest.raises(InputError) as info:
        currency_exponent(code)
    assert info.value.code == "invalid_currency"
    assert repr(code) in info.value.message


def test_parse_currency_rejects_non_strings_and_names_field() -> None:
    assert parse_currency("EUR") == "EUR"
    with pytest.raises(InputError, match=r"tariff\.currency"):
        parse_currency(978, "tariff.currency")
    with pytest.raises(InputError, match="currency"):
        parse_currency("eur")


def test_input_error_carries_code_and_message() -> None:
    error = InputError("bad_thing", "thing is bad")
    assert isinstance(error, ValueError)
    assert (error.code, error.message, str(error)) == ("bad_thing", "thing is bad", "thing is bad")
    assert "bad_thing" in repr(error)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("0", "0"), ("0.2513", "0.2513"), ("-12", "-12"), ("123.450", "123.450"), ("007", "7")],
)
def test_parse_decimal_accepts_plain_strings(text: str, expected: str) -> None:
    assert parse_decimal(text, "price") == Decimal(expected)


@pytest.mark.parametrize(
    "value",
    [
        0.25,
        1,
        True,
        None,
        "",
        " 1",
        "1 ",
        "1e3",
        "1E3",
        "NaN",
        "nan",
        "Infinity",
        "-inf",
        ".5",
        "5.",
        "+5",
        "1,5",
        "0x10",
        "1_000",
        "\uff11\uff12",
        "9" * 33,
        Decimal("1.5"),
    ],
)
def test_parse_decimal_rejects_everything_else(value: object) -> None:
    with pytest.raises(InputError) as info:
        parse_decimal(value, "readings[3].value")
    assert info.value.code == "invalid_decimal"
    assert "readings[3].value" in info.value.message


def test_parse_non_negative_decimal() -> None:
    assert parse_non_negative_decimal("0.5", "price") == Decimal("0.5")
    assert str(parse_non_negative_decimal("-0.00", "price")) == "0.00"
    with pytest.raises(InputError) as info:
        parse_non_negative_decimal("-0.01", "price")
    assert info.value.code == "negative_decimal"


@pytest.mark.parametrize(
    ("amount", "currency", "minor"),
    [
        ("0.005", "EUR", 1),
        ("0.004999", "EUR", 0),
        ("-0.005", "EUR", -1),
        ("12.345", "USD", 1235),
        ("12.5", "JPY", 13),
        ("12.4999", "JPY", 12),
        ("1.0005", "KWD", 1001),
        ("0", "EUR", 0),
        ("123456789012345678901234567890.125", "EUR", 12345678901234567890123456789013),
    ],
)
def test_to_minor_rounds_half_away_from_zero(amount: str, currency: str, minor: int) -> None:
    assert to_minor(Decimal(amount), currency) == minor


def test_from_minor_and_format_round_trip() -> None:
    assert from_minor(1234, "EUR") == Decimal("12.34")
    assert from_minor(-5, "KWD") == Decimal("-0.005")
    assert from_minor(7, "JPY") == Decimal(7)
    assert format_decimal(Decimal("1E-7")) == "0.0000001"
    assert format_decimal(Decimal("-0.0")) == "0.0"
    assert format_decimal(Decimal("2.50")) == "2.50"


@settings(max_examples=60, deadline=None)
@given(
    minor=st.integers(min_value=-(10**15), max_value=10**15),
    currency=st.sampled_from(["EUR", "JPY", "KWD", "CLF"]),
)
def test_minor_round_trip(minor: int, currency: str) -> None:
    assert to_minor(from_minor(minor, currency), currency) == minor
    assert parse_decimal(format_decimal(from_minor(minor, currency)), "x") == from_minor(
        minor, currency
    )


@settings(max_examples=60, deadline=None)
@given(
    price=st.decimals(min_value=0, max_value=5, places=5),
    quantities=st.lists(st.decimals(min_value=0, max_value=3, places=3), min_size=1, max_size=200),
)
def test_cumulative_rule_never_drifts(price: Decimal, quantities: list[Decimal]) -> None:
    """Posting round(total so far) - posted keeps the posted sum equal to round(total)."""
    posted = 0
    exact_total = Decimal(0)
    naive = 0
    for quantity in quantities:
        exact_total += quantity * price
        charge = amount_to_post(exact_total, posted, "EUR")
        assert charge >= 0  # costs only grow, so no negative charge
        posted += charge
        naive += to_minor(quantity * price, "EUR")
    assert posted == to_minor(sum(quantities, Decimal(0)) * price, "EUR")
    # Rounding each reading separately may drift by up to half a cent per reading.
    assert abs(naive - posted) <= (len(quantities) + 1) // 2 + 1


def test_per_reading_rounding_drifts_but_cumulative_does_not() -> None:
    """1000 readings of 0.01 kWh at 0.2513 cost what 10 kWh cost; per-reading rounding does not."""
    price = Decimal("0.2513")
    posted = 0
    exact_total = Decimal(0)
    for _ in range(1000):
        exact_total += Decimal("0.01") * price
        posted += amount_to_post(exact_total, posted, "EUR")
    one_go = to_minor(Decimal(10) * price, "EUR")
    assert posted == one_go == 251
    assert sum(to_minor(Decimal("0.01") * price, "EUR") for _ in range(1000)) == 0
