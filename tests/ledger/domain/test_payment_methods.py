"""Payment methods and Stripe's amount rules, with the expected values taken from Stripe's docs.

Every expectation below is copied from the Stripe page it names (read 2026-12), not from the
module under test:

- Alipay (https://docs.stripe.com/payments/alipay, "Presentment currency"): CNY, AUD, CAD,
  EUR, GBP, HKD, JPY, SGD, MYR, NZD, USD (depending on business location); "immediate
  notification" (https://docs.stripe.com/payments/alipay/accept-a-payment?payment-ui=checkout).
- WeChat Pay (https://docs.stripe.com/payments/wechat-pay/accept-a-payment?payment-ui=checkout,
  "Presentment currencies"): aud, cad, cny, eur, gbp, hkd, jpy, sgd, usd, dkk, nok, sek, chf.
- SEPA Direct Debit (https://docs.stripe.com/payments/sepa-debit/accept-a-payment?payment-ui=
  checkout): "Presentment currencies: eur"; "a delayed notification payment method".
- iDEAL (https://docs.stripe.com/payments/ideal/accept-a-payment) and Bancontact
  (https://docs.stripe.com/payments/bancontact/accept-a-payment): line items "must be
  expressed in Euro (currency code eur)"; "immediate notification".
- Link (https://docs.stripe.com/payments/wallets/link): presentment currency "See supported
  presentment currencies"; "Link confirms all transactions immediately".
- Card: any of Stripe's 135+ presentment currencies (https://docs.stripe.com/currencies).
- Amounts (https://docs.stripe.com/currencies): "to charge 500 JPY, provide an amount value of
  500"; three-decimal currencies need "the least-significant (last) digit to be 0 ... For
  example, 5.124 KWD must be rounded to 5120 or 5130"; "ISK will remain a two-decimal
  currency in the Stripe API, and an ISK amount of 100 will continue to represent 1 krona"
  (https://support.stripe.com/questions/deprecation-of-fractional-isk-charges-and-refunds);
  MGA is in Stripe's zero-decimal list, while ISO 4217 gives it two decimals.
"""

from __future__ import annotations

import pytest
from prepaid_ledger.domain.money import currency_exponent
from prepaid_ledger.domain.payment_methods import (
    METHODS,
    accepts,
    check_methods,
    confirms_later,
    offered_for,
    stripe_amount,
)
from prepaid_ledger.errors import ConflictError, InputError
from prepaid_meter_contract.payment_settings import MAX_METHODS, PaymentMethod

ALIPAY = {"CNY", "AUD", "CAD", "EUR", "GBP", "HKD", "JPY", "SGD", "MYR", "NZD", "USD"}
WECHAT_PAY = {"AUD", "CAD", "CNY", "EUR", "GBP", "HKD", "JPY", "SGD", "USD", "DKK", "NOK", "SEK"}
WECHAT_PAY |= {"CHF"}
EUR_ONLY = {"EUR"}


def test_the_methods_the_task_names_are_all_there() -> None:
    assert {method.value for method in METHODS} >= {
        "card",
        "alipay",
        "wechat_pay",
        "sepa_debit",
        "ideal",
        "bancontact",
        "link",
    }
    assert set(METHODS) == set(PaymentMethod)  # one table, one vocabulary


@pytest.mark.parametrize(
    ("method", "currencies"),
    [
        (PaymentMethod.ALIPAY, ALIPAY),
        (PaymentMethod.WECHAT_PAY, WECHAT_PAY),
        (PaymentMethod.SEPA_DEBIT, EUR_ONLY),
        (PaymentMethod.IDEAL, EUR_ONLY),
        (PaymentMethod.BANCONTACT, EUR_ONLY),
    ],
)
def test_currencies_each_method_takes(method: PaymentMethod, currencies: set[str]) -> None:
    for currency in ("CNY", "JPY", "EUR", "USD", "GBP", "CHF", "MYR", "NZD", "PLN", "KWD"):
        assert accepts(method, currency) is (currency in currencies), (method, currency)
    rule = METHODS[method].currencies
    assert rule is not None
    assert set(rule) == currencies


def test_card_and_link_take_any_presentment_currency() -> None:
    for method in (PaymentMethod.CARD, PaymentMethod.LINK):
        assert METHODS[method].currencies is None
        for currency in ("EUR", "CNY", "JPY", "BRL", "KWD", "ZAR"):
            assert accepts(method, currency)


def test_only_sepa_debit_confirms_later() -> None:
    assert [m for m in PaymentMethod if confirms_later(m)] == [PaymentMethod.SEPA_DEBIT]


def test_check_methods_keeps_the_landlords_order() -> None:
    assert check_methods(["wechat_pay", "card", "alipay"], "CNY") == (
        PaymentMethod.WECHAT_PAY,
        PaymentMethod.CARD,
        PaymentMethod.ALIPAY,
    )
    assert check_methods(["card", "sepa_debit", "ideal", "bancontact", "link"], "EUR")
    assert check_methods([" Card "], "JPY") == (PaymentMethod.CARD,)  # Stripe's names, trimmed


@pytest.mark.parametrize(
    ("methods", "currency", "code", "words"),
    [
        ([], "EUR", "no_payment_method", ["at least one"]),
        (["card", "paypal"], "EUR", "unknown_payment_method", ["item 2", "'paypal'", "card"]),
        (["card", "card"], "EUR", "duplicate_payment_method", ["'card' twice"]),
        (["card", "CARD"], "EUR", "duplicate_payment_method", ["'card' twice"]),
        ([7], "EUR", "invalid_field", ["item 1", "int"]),
        ([None], "EUR", "invalid_field", ["item 1", "NoneType"]),
        (["x" * 10_000], "EUR", "unknown_payment_method", ["..."]),
        (["card"] * (MAX_METHODS + 1), "EUR", "too_many_payment_methods", ["at most"]),
        (["card", "sepa_debit"], "CNY", "payment_method_currency", ["sepa_debit", "CNY", "EUR"]),
        (["ideal"], "JPY", "payment_method_currency", ["ideal", "JPY", "EUR only"]),
        (["alipay"], "PLN", "payment_method_currency", ["alipay", "PLN", "CNY"]),
        (["wechat_pay"], "MYR", "payment_method_currency", ["wechat_pay", "MYR"]),
    ],
)
def test_check_methods_refuses_with_a_clear_message(
    methods: list[object], currency: str, code: str, words: list[str]
) -> None:
    with pytest.raises(InputError) as caught:
        check_methods(methods, currency)
    assert caught.value.code == code
    assert caught.value.field == "payment_methods"
    for word in words:
        assert word in caught.value.message, caught.value.message
    assert len(caught.value.message) < 300  # a huge name is not echoed back whole


def test_offered_for_leaves_out_methods_that_do_not_take_the_currency() -> None:
    landlord = (
        PaymentMethod.SEPA_DEBIT,
        PaymentMethod.CARD,
        PaymentMethod.WECHAT_PAY,
        PaymentMethod.IDEAL,
    )
    assert offered_for(landlord, "EUR") == landlord
    assert offered_for(landlord, "CNY") == (PaymentMethod.CARD, PaymentMethod.WECHAT_PAY)
    assert offered_for((PaymentMethod.SEPA_DEBIT, PaymentMethod.IDEAL), "JPY") == ()


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [
        (1000, "USD", 1000),  # "1000 to charge 10 USD"
        (500, "JPY", 500),  # "to charge 500 JPY, provide an amount value of 500"
        (8880, "CNY", 8880),  # 88.80 CNY: two decimals, as ISO 4217 and the ledger
        (5120, "KWD", 5120),  # "5.124 KWD must be rounded to 5120 or 5130"
        (5130, "KWD", 5130),
        (1000, "BHD", 1000),
    ],
)
def test_stripe_amount_is_the_ledgers_minor_units(
    amount: int, currency: str, expected: int
) -> None:
    assert stripe_amount(amount, currency) == expected


@pytest.mark.parametrize("currency", ["BHD", "JOD", "KWD", "OMR", "TND"])
def test_three_decimal_amounts_must_end_in_zero(currency: str) -> None:
    assert currency_exponent(currency) == 3
    with pytest.raises(InputError) as caught:
        stripe_amount(5124, currency)  # "5.124 KWD must be rounded"
    assert caught.value.code == "invalid_amount"
    assert currency in caught.value.message
    assert "last digit is 0" in caught.value.message


@pytest.mark.parametrize("currency", ["ISK", "UGX", "MGA"])
def test_currencies_stripe_counts_in_another_unit_are_refused(currency: str) -> None:
    with pytest.raises(ConflictError) as caught:
        stripe_amount(100, currency)
    assert caught.value.code == "provider_currency_unit"
    assert currency in caught.value.message


@pytest.mark.parametrize("currency", ["IQD", "LYD", "CLF", "UYW"])
def test_currencies_without_a_stripe_unit_are_refused(currency: str) -> None:
    with pytest.raises(ConflictError) as caught:
        stripe_amount(1000, currency)
    assert caught.value.code == "provider_currency_unsupported"
    assert currency in caught.value.message
