"""The payment methods Stripe Checkout may offer a tenant, and Stripe's rules for amounts.

Pure: no I/O. For each method, the currencies Stripe takes it in and whether Stripe confirms
it later (a "delayed notification" method: Checkout completes unpaid and Stripe reports the
outcome days later). Each fact names the Stripe page it comes from; docs/payments.md
("Payment methods and currencies") gathers them.

Stripe lets a business offer only what its account's country allows: Alipay and WeChat Pay
take CNY plus the business's local currency, card and Link take any of Stripe's presentment
currencies for that account. The tables below are the union Stripe documents; a currency the
landlord's Stripe account does not take is refused by Stripe itself when the session is
created (the pay page says so, and nothing is recorded).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from prepaid_meter_contract.payment_settings import PaymentMethod, check_method_names

from prepaid_ledger.domain.money import currency_exponent
from prepaid_ledger.errors import ConflictError, InputError, wire_rule


@dataclass(frozen=True, slots=True)
class MethodRule:
    """What Stripe documents about one payment method in Checkout."""

    method: PaymentMethod
    #: ISO 4217 codes Stripe presents it in; None: any currency Stripe presents payments in.
    currencies: frozenset[str] | None
    #: Stripe confirms it later: checkout.session.completed arrives with payment_status
    #: "unpaid", then checkout.session.async_payment_succeeded or _failed.
    confirms_later: bool
    #: Where Stripe says so.
    source: str


_DOCS: Final = "https://docs.stripe.com/payments"
METHODS: Final[Mapping[PaymentMethod, MethodRule]] = {
    rule.method: rule
    for rule in (
        MethodRule(
            PaymentMethod.CARD,
            None,
            confirms_later=False,
            source="https://docs.stripe.com/currencies (135+ presentment currencies)",
        ),
        MethodRule(
            PaymentMethod.ALIPAY,
            frozenset(
                {"CNY", "AUD", "CAD", "EUR", "GBP", "HKD", "JPY", "SGD", "MYR", "NZD", "USD"}
            ),
            confirms_later=False,
            source=f"{_DOCS}/alipay (presentment currency, depending on business location)",
        ),
        MethodRule(
            PaymentMethod.WECHAT_PAY,
            frozenset(
                {
                    *("CNY", "AUD", "CAD", "EUR", "GBP", "HKD", "JPY"),
                    *("SGD", "USD", "DKK", "NOK", "SEK", "CHF"),
                }
            ),
            confirms_later=False,
            source=f"{_DOCS}/wechat-pay/accept-a-payment?payment-ui=checkout",
        ),
        MethodRule(
            PaymentMethod.SEPA_DEBIT,
            frozenset({"EUR"}),
            confirms_later=True,
            source=f"{_DOCS}/sepa-debit/accept-a-payment?payment-ui=checkout "
            "(a delayed notification payment method)",
        ),
        MethodRule(
            PaymentMethod.IDEAL,
            frozenset({"EUR"}),
            confirms_later=False,
            source=f"{_DOCS}/ideal/accept-a-payment (immediate notification)",
        ),
        MethodRule(
            PaymentMethod.BANCONTACT,
            frozenset({"EUR"}),
            confirms_later=False,
            source=f"{_DOCS}/bancontact/accept-a-payment (immediate notification)",
        ),
        MethodRule(
            PaymentMethod.LINK,
            None,
            confirms_later=False,
            source=f"{_DOCS}/wallets/link (Link confirms all transactions immediately)",
        ),
    )
}

#: What a Checkout Session offers when the landlord chose nothing (the add-on option's default).
DEFAULT_METHODS: Final = (PaymentMethod.CARD,)


def accepts(method: PaymentMethod, currency: str) -> bool:
    """Tell whether Stripe documents METHOD for payments in CURRENCY (an ISO 4217 code)."""
    currencies = METHODS[method].currencies
    return currencies is None or currency in currencies


def confirms_later(method: PaymentMethod) -> bool:
    """Tell whether Stripe confirms METHOD's payments later (the order waits in processing)."""
    return METHODS[method].confirms_later


def _currencies_words(method: PaymentMethod) -> str:
    currencies = METHODS[method].currencies
    if currencies is None:
        return "any currency Stripe presents payments in"
    return ", ".join(sorted(currencies))


def check_methods(
    methods: Sequence[object], currency: str, field: str = "payment_methods"
) -> tuple[PaymentMethod, ...]:
    """Return the chosen methods if each is known, named once, and takes CURRENCY.

    Refused (InputError naming FIELD, the method and the currency): an empty list, an unknown
    name, a name twice, a method Stripe does not take in CURRENCY.
    """
    with wire_rule(field):
        chosen = check_method_names(list(methods))
    for method in chosen:
        if not accepts(method, currency):
            raise InputError(
                "payment_method_currency",
                f"{field} has {method.value}, which does not take {currency}: Stripe takes "
                f"{method.value} in {_currencies_words(method)} only",
                field,
            )
    return chosen


def offered_for(methods: Sequence[PaymentMethod], currency: str) -> tuple[PaymentMethod, ...]:
    """Return the methods of METHODS that take CURRENCY, in order (maybe none)."""
    return tuple(method for method in methods if accepts(method, currency))


# ---- Amounts as Stripe counts them ----------------------------------------------------------

#: Stripe's three-decimal currencies: amounts in thousandths whose last digit is 0
#: (https://docs.stripe.com/currencies#three-decimal: "5.124 KWD must be rounded to 5120 or
#: 5130").
STRIPE_THREE_DECIMAL: Final = frozenset({"BHD", "JOD", "KWD", "OMR", "TND"})
#: Currencies Stripe counts in another unit than ISO 4217 (the ledger's), so the amount a
#: webhook reports would not be the ledger's: ISK and UGX in hundredths although ISO has no
#: minor unit (https://support.stripe.com/questions/deprecation-of-fractional-isk-charges-and-
#: refunds; docs.stripe.com/currencies#special-cases), MGA in whole ariary although ISO counts
#: two decimals (docs.stripe.com/currencies#zero-decimal).
STRIPE_OTHER_UNIT: Final[Mapping[str, str]] = {
    "ISK": "hundredths of a krona (ISO 4217 and the ledger: whole kronur)",
    "UGX": "hundredths of a shilling (ISO 4217 and the ledger: whole shillings)",
    "MGA": "whole ariary (ISO 4217 and the ledger: hundredths)",
}


def stripe_amount(amount_minor: int, currency: str) -> int:
    """Return AMOUNT_MINOR (the ledger's minor units) as Stripe's ``unit_amount``.

    Only currencies whose Stripe unit is the ledger's go to Stripe, so the amount a webhook
    reports is credited as it is. Refused before anything is sent: a currency Stripe counts
    differently or documents no amounts for (ConflictError), and a three-decimal amount
    whose last digit is not 0 (InputError: another amount works).
    """
    exponent = currency_exponent(currency)
    if currency in STRIPE_OTHER_UNIT:
        raise ConflictError(
            "provider_currency_unit",
            f"Stripe counts {currency} in {STRIPE_OTHER_UNIT[currency]}; the pay page does "
            f"not take {currency} payments through Stripe (vouchers and top-ups by the "
            "landlord still work)",
        )
    if exponent > 3 or (exponent == 3 and currency not in STRIPE_THREE_DECIMAL):
        raise ConflictError(
            "provider_currency_unsupported",
            f"Stripe takes no payments in {currency} (its three-decimal currencies are "
            f"{', '.join(sorted(STRIPE_THREE_DECIMAL))}); vouchers and top-ups by the "
            "landlord still work",
        )
    if exponent == 3 and amount_minor % 10:
        raise InputError(
            "invalid_amount",
            f"Stripe takes {currency} amounts in steps of 0.010 (its rule for three-decimal "
            "currencies: the last digit is 0); use at most 2 decimal places",
            "amount",
        )
    return amount_minor
