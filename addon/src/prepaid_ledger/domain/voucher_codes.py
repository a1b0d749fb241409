"""Voucher codes a person types: 19 random digits and a Damm check digit, in groups of four.

The check digit catches every single-digit typo and every swap of two neighbouring digits
before the code counts as an attempt, so a slip of the finger never earns a wait. The 19
random digits (about 63 bits) are what a guesser has to find; see ``docs/vouchers.md`` for the
odds with the waits of ``wait_after``.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from typing import Final

from prepaid_meter_contract.vouchers import MAX_CODE_CHARS

from prepaid_ledger.domain.account_number import damm_check_digit, strip_grouping
from prepaid_ledger.errors import InputError

#: Random digits in a code (the secret part) and the full length with the check digit.
RANDOM_DIGITS: Final = 19
CODE_DIGITS: Final = RANDOM_DIGITS + 1
GROUP: Final = 4

#: Failed entries a source may make before the first wait.
FREE_FAILURES: Final = 3
#: The first wait, doubled after each further failure up to LONGEST_WAIT (OpenPAYGO Token's
#: schedule: 1 minute doubling to 512 minutes).
FIRST_WAIT: Final = timedelta(minutes=1)
LONGEST_WAIT: Final = timedelta(minutes=512)


def new_code() -> str:
    """Return a fresh code: 19 digits from the OS's CSPRNG and their check digit."""
    body = f"{secrets.randbelow(10**RANDOM_DIGITS):0{RANDOM_DIGITS}d}"
    return body + str(damm_check_digit(body))


def grouped(code: str) -> str:
    """Return a code as printed: groups of four digits ("1234 5678 9012 3456 7890")."""
    return " ".join(code[i : i + GROUP] for i in range(0, len(code), GROUP))


def parse_code(text: str, field: str = "code") -> str:
    """Return the code's 20 digits, or refuse a wrong format or a typo (never an attempt)."""
    if len(text) > MAX_CODE_CHARS:
        raise InputError("invalid_voucher_code", f"{field} must be {CODE_DIGITS} digits", field)
    digits = strip_grouping(text)
    if len(digits) != CODE_DIGITS or not (digits.isascii() and digits.isdigit()):
        raise InputError(
            "invalid_voucher_code",
            f"{field} must be {CODE_DIGITS} digits (spaces and dashes allowed)",
            field,
        )
    if damm_check_digit(digits) != 0:
        raise InputError(
            "voucher_typo",
            f"{field} fails its check digit: please check the digits for a typo",
            field,
        )
    return digits


def code_hash(ledger_id: str, code: str) -> str:
    """Return what the ledger keeps of a code: SHA-256 over the ledger's id and the digits.

    Scoped to the ledger so one database's hashes say nothing about another's; 19 random
    digits make reversing a hash a search of 10**19 codes.
    """
    return hashlib.sha256(f"prepaid-voucher:{ledger_id}:{code}".encode()).hexdigest()


def wait_after(failures: int) -> timedelta:
    """Return how long a source waits after its ``failures``-th failed entry in a row."""
    if failures <= FREE_FAILURES:
        return timedelta(0)
    doublings = min(failures - FREE_FAILURES - 1, 9)  # 2**9 minutes = 512: the longest wait
    wait: timedelta = FIRST_WAIT * (1 << doublings)
    return min(wait, LONGEST_WAIT)
