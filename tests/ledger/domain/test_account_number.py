"""Account numbers: Damm check digit catches every single-digit error and adjacent transposition."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prepaid_ledger.domain.account_number import (
    MAX_LENGTH,
    NUMBER_BASE,
    account_number_for,
    damm_check_digit,
    format_account_number,
    is_valid_account_number,
    normalize_account_number,
    serial_from_account_number,
)
from prepaid_ledger.errors import InputError

serials = st.integers(min_value=0, max_value=10**12)


def test_known_damm_example() -> None:
    # The published worked example: 572 gets check digit 4.
    assert damm_check_digit("572") == 4
    assert damm_check_digit("5724") == 0


def test_numbers_have_fixed_shape() -> None:
    assert account_number_for(0) == str(NUMBER_BASE) + "6"
    first = account_number_for(1)
    assert len(first) == 9
    assert first[0] != "0"
    assert is_valid_account_number(first)
    assert len(account_number_for(89_999_999)) == 9
    assert len(account_number_for(90_000_000)) == 10


@pytest.mark.parametrize("serial", [-1, True, "5", 10**20])
def test_bad_serials_rejected(serial: object) -> None:
    with pytest.raises(InputError):
        account_number_for(serial)  # type: ignore[arg-type]


@settings(max_examples=80, deadline=None)
@given(serial=serials)
def test_round_trip_and_formatting(serial: int) -> None:
    number = account_number_for(serial)
    assert is_valid_account_number(number)
    assert serial_from_account_number(number) == serial
    printed = format_account_number(number)
    assert normalize_account_number(printed) == number
    assert is_valid_account_number(printed)
    assert serial_from_account_number(" " + printed.replace(" ", "-") + " ") == serial


@settings(max_examples=80, deadline=None)
@given(serial=serials)
def test_every_single_digit_substitution_is_detected(serial: int) -> None:
    number = account_number_for(serial)
    for position, original in enumerate(number):
        for digit in "0123456789":
            if digit != original:
                typo = number[:position] + digit + number[position + 1 :]
                assert not is_valid_account_number(typo), typo


@settings(max_examples=80, deadline=None)
@given(serial=serials)
def test_every_adjacent_transposition_is_detected(serial: int) -> None:
    number = account_number_for(serial)
    for position in range(len(number) - 1):
        a, b = number[position], number[position + 1]
        if a != b:
            swapped = number[:position] + b + a + number[position + 2 :]
            assert not is_valid_account_number(swapped), swapped


@settings(max_examples=80, deadline=None)
@given(body=st.text(alphabet="0123456789", min_size=1, max_size=18))
def test_damm_check_on_arbitrary_digit_strings(body: str) -> None:
    """Property of the algorithm itself, not just of our numbers (leading zeros included)."""
    full = body + str(damm_check_digit(body))
    assert damm_check_digit(full) == 0
    for position in range(len(full) - 1):
        a, b = full[position], full[position + 1]
        if a != b:
            assert damm_check_digit(full[:position] + b + a + full[position + 2 :]) != 0


@pytest.mark.parametrize(
    "text",
    [
        "",
        "abc",
        "10000001",
        "100000012",
        "\uff11\uff10\uff10\uff10\uff10\uff10\uff10\uff11\uff11",
        "0" + "100000011"[1:],
        "1" * (MAX_LENGTH + 1),
        "100000011x",
        "100_000_011",
    ],
)
def test_invalid_numbers(text: str) -> None:
    assert not is_valid_account_number(text)
    with pytest.raises(InputError) as info:
        serial_from_account_number(text)
    assert info.value.code == "invalid_account_number"


def test_non_string_is_invalid() -> None:
    assert not is_valid_account_number(100000011)
