"""Which payment methods Stripe Checkout offers tenants: the landlord's setting.

``GET /api/v1/settings/payment-methods`` answers the methods in force and where they come from
(the landlord's choice, else the add-on option ``payment_methods``);
``PUT /api/v1/settings/payment-methods`` sets the landlord's choice. The names are Stripe's
own payment method types (``card``, ``alipay``, ``wechat_pay``, ...). This module judges the
shape of a list (known names, each once, at least one); which currencies each method takes is
the ledger's to judge (``prepaid_ledger.domain.payment_methods``), since Stripe's rules change.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Final, Literal

from pydantic import PlainSerializer, PlainValidator, WithJsonSchema

from prepaid_meter_contract.wire import StrictBool, WireError, WireModel, rule_validator


class PaymentMethod(StrEnum):
    """A payment method Stripe Checkout can offer, by Stripe's own type name."""

    CARD = "card"
    ALIPAY = "alipay"
    WECHAT_PAY = "wechat_pay"
    SEPA_DEBIT = "sepa_debit"
    IDEAL = "ideal"
    BANCONTACT = "bancontact"
    LINK = "link"


#: A list can name every method once and no more.
MAX_METHODS: Final = len(PaymentMethod)
#: How much of an unknown name a refusal repeats.
_SHOWN_CHARS: Final = 40
_NAMES: Final = ", ".join(PaymentMethod)


def check_method_names(value: object) -> tuple[PaymentMethod, ...]:
    """Return the methods a list names: known names, each once, one to MAX_METHODS of them.

    The order is kept (it is the order the landlord chose). Anything else is refused with a
    code and a detail that names the item at fault.
    """
    if not isinstance(value, list | tuple):
        raise WireError("invalid_field", 'must be a list of payment method names, e.g. ["card"]')
    if not value:
        raise WireError("no_payment_method", 'must name at least one payment method, e.g. ["card"]')
    if len(value) > MAX_METHODS:
        raise WireError(
            "too_many_payment_methods",
            f"may name at most {MAX_METHODS} payment methods, each once; got {len(value)}",
        )
    names: list[PaymentMethod] = []
    for position, item in enumerate(value, start=1):
        if not isinstance(item, str):
            raise WireError(
                "invalid_field",
                f'item {position} must be a payment method name such as "card", '
                f"not {type(item).__name__}",
            )
        try:
            method = PaymentMethod(item.strip().lower())
        except ValueError:
            shown = item if len(item) <= _SHOWN_CHARS else item[:_SHOWN_CHARS] + "..."
            raise WireError(
                "unknown_payment_method",
                f"item {position} ({shown!r}) is not a payment method the ledger offers; "
                f"choose from {_NAMES}",
            ) from None
        if method in names:
            raise WireError("duplicate_payment_method", f"names {method.value!r} twice")
        names.append(method)
    return tuple(names)


def _names(methods: tuple[PaymentMethod, ...]) -> list[str]:
    return [method.value for method in methods]


#: One to MAX_METHODS known payment method names, each once, in the landlord's order.
PaymentMethods = Annotated[
    tuple[PaymentMethod, ...],
    PlainValidator(rule_validator(check_method_names)),
    PlainSerializer(_names, return_type=list[str]),
    WithJsonSchema(
        {
            "type": "array",
            "items": {"type": "string", "enum": [method.value for method in PaymentMethod]},
            "minItems": 1,
            "maxItems": MAX_METHODS,
            "uniqueItems": True,
        }
    ),
]


class PaymentMethodsRequest(WireModel):
    """``PUT /api/v1/settings/payment-methods``: the methods Checkout offers from now on.

    Each must take the ledger's default currency (else 422 naming the method and currency).
    """

    methods: PaymentMethods


class PaymentMethodInfo(WireModel):
    """One method the ledger can offer, as Stripe documents it."""

    method: PaymentMethod
    #: The currencies Stripe takes it in (ISO 4217 codes); null: any currency Stripe presents
    #: payments in (which ones depends on the Stripe account's country).
    currencies: list[str] | None
    #: True: Stripe confirms the payment days later; the order waits in ``processing``.
    confirms_later: StrictBool


class PaymentMethodsSettings(WireModel):
    """``GET`` (and the answer to ``PUT``) ``/api/v1/settings/payment-methods``."""

    #: The methods Checkout offers now, for an order in a currency each of them takes.
    methods: PaymentMethods
    #: ``landlord``: set through this API; ``add_on_option``: the add-on option (or
    #: ``PREPAID_LEDGER_PAYMENT_METHODS``), as no landlord choice is stored.
    source: Literal["landlord", "add_on_option"]
    #: What the add-on option says (in force while the landlord has chosen nothing).
    option_methods: PaymentMethods
    #: The currency a choice is checked against (the ledger's default currency).
    default_currency: str
    #: Every method the ledger can offer, with the currencies Stripe takes it in.
    available: list[PaymentMethodInfo]
