"""Money rules: integer minor units per ISO 4217, exact decimals, half-up rounding.

Floats never enter: amounts are parsed from decimal strings and computed with ``Decimal`` in a
context that raises instead of silently rounding.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Context, Decimal, Inexact, InvalidOperation, Overflow
from functools import lru_cache
from typing import Final

from prepaid_meter_contract.wire import MAX_MINOR as MAX_MINOR  # noqa: PLC0414 - re-exported
from prepaid_meter_contract.wire import check_decimal, check_minor, check_non_negative_decimal
from prepaid_meter_contract.wire import format_decimal as format_decimal  # noqa: PLC0414 - re-exported

from prepaid_ledger.errors import InputError, wire_rule

#: Context for exact arithmetic: any operation that would have to round raises ``Inexact``.
EXACT: Final = Context(prec=100, traps=[InvalidOperation, Inexact, Overflow])

#: MAX_MINOR (the contract's): 10**12 minor units keeps every posting the ledger derives from one
#: such amount (at most ``MAX_CHARGE_GAP_DAYS`` = 366 days of standing charge) below the
#: journal's per-posting limit of 10**15, and balances far inside the 64-bit integer columns
#: (9.2 * 10**18) of SQLite and PostgreSQL.

# ISO 4217 active codes whose minor unit is not 2 decimals. Every other code in
# _TWO_DECIMAL_CODES has 2. Codes without a minor unit (XAU, XDR, XXX, ...) are refused.
_EXPONENTS: Final[dict[str, int]] = {
    # 0 decimals
    **dict.fromkeys(
        [
            "BIF",
            "CLP",
            "DJF",
            "GNF",
            "ISK",
            "JPY",
            "KMF",
            "KRW",
            "PYG",
            "RWF",
            "UGX",
            "UYI",
            "VND",
            "VUV",
            "XAF",
            "XOF",
            "XPF",
        ],
        0,
    ),
    # 3 decimals
    **dict.fromkeys(["BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"], 3),
    # 4 decimals
    **dict.fromkeys(["CLF", "UYW"], 4),
}
_TWO_DECIMAL_CODES: Final = [
    "AED",
    "AFN",
    "ALL",
    "AMD",
    "ANG",
    "AOA",
    "ARS",
    "AUD",
    "AWG",
    "AZN",
    "BAM",
    "BBD",
    "BDT",
    "BGN",
    "BMD",
    "BND",
    "BOB",
    "BOV",
    "BRL",
    "BSD",
    "BTN",
    "BWP",
    "BYN",
    "BZD",
    "CAD",
    "CDF",
    "CHE",
    "CHF",
    "CHW",
    "CNY",
    "COP",
    "COU",
    "CRC",
    "CUP",
    "CVE",
    "CZK",
    "DKK",
    "DOP",
    "DZD",
    "EGP",
    "ERN",
    "ETB",
    "EUR",
    "FJD",
    "FKP",
    "GBP",
    "GEL",
    "GHS",
    "GIP",
    "GMD",
    "GTQ",
    "GYD",
    "HKD",
    "HNL",
    "HTG",
    "HUF",
    "IDR",
    "ILS",
    "INR",
    "IRR",
    "JMD",
    "KES",
    "KGS",
    "KHR",
    "KPW",
    "KYD",
    "KZT",
    "LAK",
    "LBP",
    "LKR",
    "LRD",
    "LSL",
    "MAD",
    "MDL",
    "MGA",
    "MKD",
    "MMK",
    "MNT",
    "MOP",
    "MRU",
    "MUR",
    "MVR",
    "MWK",
    "MXN",
    "MXV",
    "MYR",
    "MZN",
    "NAD",
    "NGN",
    "NIO",
    "NOK",
    "NPR",
    "NZD",
    "PAB",
    "PEN",
    "PGK",
    "PHP",
    "PKR",
    "PLN",
    "QAR",
    "RON",
    "RSD",
    "RUB",
    "SAR",
    "SBD",
    "SCR",
    "SDG",
    "SEK",
    "SGD",
    "SHP",
    "SLE",
    "SOS",
    "SRD",
    "SSP",
    "STN",
    "SVC",
    "SYP",
    "SZL",
    "THB",
    "TJS",
    "TMT",
    "TOP",
    "TRY",
    "TTD",
    "TWD",
    "TZS",
    "UAH",
    "USD",
    "USN",
    "UYU",
    "UZS",
    "VED",
    "VES",
    "WST",
    "XCD",
    "XCG",
    "YER",
    "ZAR",
    "ZMW",
    "ZWG",
]
_EXPONENTS.update(dict.fromkeys(_TWO_DECIMAL_CODES, 2))


def currency_exponent(code: str) -> int:
    """Return the number of minor-unit decimals of an ISO 4217 currency (``"EUR"`` -> 2)."""
    exponent = _EXPONENTS.get(code) if isinstance(code, str) else None
    if exponent is None:
        raise InputError(
            "invalid_currency",
            f"currency must be an ISO 4217 code with a minor unit, such as 'EUR'; got {code!r}",
        )
    return exponent


def parse_currency(value: object, field: str = "currency") -> str:
    """Validate a currency code from input and return it (upper-case letters only, no guessing)."""
    if not isinstance(value, str):
        raise InputError("invalid_currency", f"{field} must be a string such as 'EUR'")
    try:
        currency_exponent(value)
    except InputError:
        raise InputError(
            "invalid_currency", f"{field} must be an ISO 4217 code such as 'EUR'; got {value!r}"
        ) from None
    return value


def parse_decimal(value: object, field: str) -> Decimal:
    """Parse a plain decimal string such as ``"0.2513"`` or ``"-12"`` (the contract's rule)."""
    with wire_rule(field):
        return check_decimal(value)


def parse_non_negative_decimal(value: object, field: str) -> Decimal:
    """Parse a decimal string that must not be negative (prices, meter values, band limits)."""
    with wire_rule(field):
        return check_non_negative_decimal(value)


#: Rounding to minor units (quantize may round: no Inexact trap, unlike EXACT).
_ROUNDING: Final = Context(prec=100)


@lru_cache(maxsize=16)
def _quantum(exponent: int) -> Decimal:
    """One minor unit in major units (exponent 2 -> 0.01)."""
    return Decimal(1).scaleb(-exponent)


def to_minor(amount: Decimal, currency: str) -> int:
    """Round an exact amount in major units to integer minor units, half away from zero."""
    exponent = currency_exponent(currency)
    rounded = amount.quantize(_quantum(exponent), rounding=ROUND_HALF_UP, context=_ROUNDING)
    return int(rounded.scaleb(exponent, context=EXACT))


def from_minor(amount_minor: int, currency: str) -> Decimal:
    """Return integer minor units as an exact ``Decimal`` in major units (1234 EUR -> 12.34)."""
    return Decimal(amount_minor).scaleb(-currency_exponent(currency), context=EXACT)


def amount_to_post(exact_total: Decimal, posted_minor: int, currency: str) -> int:
    """Return the next charge under the cumulative rule: ``to_minor(exact_total) - posted``.

    ``exact_total`` is the exact cost of all consumption so far and ``posted_minor`` what was
    already posted, so rounding never accumulates: the posted sum always equals the rounded
    exact total.
    """
    return to_minor(exact_total, currency) - posted_minor


def parse_minor(value: object, field: str, *, minimum: int = 0, maximum: int = MAX_MINOR) -> int:
    """Validate an integer amount of minor units (JSON integer, not bool, float or string).

    Every money field goes through here, so none can exceed what the ledger can post.
    """
    with wire_rule(field):
        return check_minor(value, minimum, maximum)
