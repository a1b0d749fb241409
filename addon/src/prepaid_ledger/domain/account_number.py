"""Account numbers people type and print: a serial with a Damm check digit.

The Damm algorithm uses a totally anti-symmetric quasigroup of order 10, so one check digit
catches every single-digit substitution and every transposition of two adjacent digits
(including the check digit itself). Numbers are ``str(NUMBER_BASE + serial)`` plus the check
digit: nine digits for the first 90 million accounts and never a leading zero.
"""

from __future__ import annotations

from typing import Final

from prepaid_ledger.errors import InputError

#: Added to the serial so numbers have a fixed length and never start with 0.
NUMBER_BASE: Final = 10_000_000
#: Shortest and longest valid numbers (body plus check digit).
MIN_LENGTH: Final = len(str(NUMBER_BASE)) + 1
MAX_LENGTH: Final = 20

# Damm's operation table: row = interim digit, column = next digit.
_DAMM: Final[tuple[tuple[int, ...], ...]] = (
    (0, 3, 1, 7, 5, 9, 8, 6, 4, 2),
    (7, 0, 9, 2, 1, 5, 4, 8, 6, 3),
    (4, 2, 0, 6, 8, 7, 1, 3, 5, 9),
    (1, 7, 5, 0, 9, 8, 3, 4, 2, 6),
    (6, 1, 2, 3, 0, 4, 5, 9, 7, 8),
    (3, 6, 7, 4, 2, 0, 9, 5, 8, 1),
    (5, 8, 6, 9, 7, 2, 0, 1, 3, 4),
    (8, 9, 4, 5, 3, 6, 2, 0, 1, 7),
    (9, 4, 3, 8, 6, 1, 7, 2, 0, 5),
    (2, 5, 8, 1, 4, 3, 6, 7, 9, 0),
)
_SEPARATORS: Final = frozenset(" -\t\u00a0")


def damm_check_digit(digits: str) -> int:
    """Return the Damm check digit of a string of ASCII digits (0 for a valid full number)."""
    interim = 0
    for char in digits:
        interim = _DAMM[interim][ord(char) - 48]
    return interim


def account_number_for(serial: int) -> str:
    """Return the printed account number for a positive database serial (1 -> "100000011")."""
    if isinstance(serial, bool) or not isinstance(serial, int) or serial < 0:
        raise InputError(
            "invalid_serial", f"account serial must be an integer >= 0; got {serial!r}"
        )
    body = str(NUMBER_BASE + serial)
    if len(body) + 1 > MAX_LENGTH:
        raise InputError("invalid_serial", f"account serial {serial} is too large")
    return body + str(damm_check_digit(body))


def strip_grouping(text: str) -> str:
    """Strip the spaces and dashes people use to group digits ("100-000 011" -> "100000011")."""
    return "".join(char for char in text if char not in _SEPARATORS)


def normalize_account_number(text: str) -> str:
    """Return a typed account number without its grouping."""
    return strip_grouping(text)


def is_valid_account_number(text: object) -> bool:
    """Tell whether text (after normalising) is a well-formed number with a correct check digit."""
    if not isinstance(text, str):
        return False
    number = normalize_account_number(text)
    return (
        MIN_LENGTH <= len(number) <= MAX_LENGTH
        and number.isascii()
        and number.isdigit()
        and number[0] != "0"
        and damm_check_digit(number) == 0
    )


def serial_from_account_number(text: str) -> int:
    """Return the serial behind a typed account number; InputError when it fails its check."""
    if not is_valid_account_number(text):
        raise InputError(
            "invalid_account_number",
            "account number is not valid: check the digits (the last one is a check digit)",
        )
    return int(normalize_account_number(text)[:-1]) - NUMBER_BASE


def format_account_number(number: str) -> str:
    """Group a number in threes for printing ("100000011" -> "100 000 011")."""
    digits = normalize_account_number(number)
    return " ".join(digits[i : i + 3] for i in range(0, len(digits), 3))
