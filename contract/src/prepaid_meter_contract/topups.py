"""Top-ups: what a landlord sends to credit, resolve or correct money, and what the ledger answers.

Requests carry money as ``PositiveMinor``/``SignedMinor`` (a JSON integer, bounded by
``MAX_MINOR``) and answers as ``Minor`` (exactly an integer), so both halves and the OpenAPI
document agree on every amount. The order answers themselves (``TopupOrder``,
``RecheckedOrder``, ``TimelineStep``, ``TopupOrders``) live with the other resources in
``resources.py``.
"""

from __future__ import annotations

from typing import Annotated, Final, Literal

from pydantic import (
    AfterValidator,
    Field,
    PlainValidator,
    ValidationError,
    WithJsonSchema,
)
from pydantic_core import PydanticCustomError

from prepaid_meter_contract.errors import ErrorDetail
from prepaid_meter_contract.resources import TopupOrder
from prepaid_meter_contract.vocabulary import OrderStatus, PaymentOutcome
from prepaid_meter_contract.wire import (
    Minor,
    PositiveMinor,
    Reason,
    SignedMinor,
    StrictBool,
    Text,
    WireError,
    WireModel,
    describe,
    rule_validator,
)

#: Most top-ups one batch may carry (a whole building's rooms, with room to spare).
MAX_BATCH_ITEMS: Final = 1000
#: Longest account reference kept (the order's ``account_ref`` column holds 64 characters).
MAX_ACCOUNT_REF_CHARS: Final = 64


def check_account_ref(value: object) -> int | str:
    """Return an account reference: an integer id, or an account number as typed.

    Only the shape is checked here; the ledger looks the account up, verifies the number's
    check digit and answers ``invalid_account_number``, ``unknown_account`` or 404 itself.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip() and len(value) <= MAX_ACCOUNT_REF_CHARS:
        return value
    raise WireError("invalid_account", "must be an id or an account number")


def _not_zero(value: int) -> int:
    if value == 0:
        raise PydanticCustomError("invalid_amount", "must not be zero")
    return value


#: Which account: its id (``3``) or its account number as printed (``"100 000 011"``).
AccountRef = Annotated[
    int | str,
    PlainValidator(rule_validator(check_account_ref)),
    WithJsonSchema(
        {
            "oneOf": [
                {"type": "integer", "minimum": 1},
                {"type": "string", "minLength": 1, "maxLength": MAX_ACCOUNT_REF_CHARS},
            ],
            "description": "an account id, or its account number (check digit verified)",
        }
    ),
]
#: A signed correction that moves money: never zero.
NonZeroSignedMinor = Annotated[SignedMinor, AfterValidator(_not_zero)]


# --------------------------------------------------------------------------- requests


class TopupRequest(WireModel):
    """``POST /api/v1/topups``: credit cash or a bank transfer to an account at once.

    A ``reference`` (a receipt number) maps to at most one order; the ledger also bounds the
    amount by its ``--max-topup-minor`` (``amount_too_large``).
    """

    account: AccountRef
    amount_minor: PositiveMinor
    reference: Text | None = None


def _batch_items(value: object) -> list[TopupRequest | ErrorDetail]:
    """Read each item on its own: a bad one becomes its refusal, the others still count."""
    if isinstance(value, tuple):
        value = list(value)  # a Python peer's tuple of requests
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_BATCH_ITEMS:
        raise PydanticCustomError(
            "invalid_field", f"must be a list of 1 to {MAX_BATCH_ITEMS} top-ups"
        )
    items: list[TopupRequest | ErrorDetail] = []
    for index, item in enumerate(value):
        if isinstance(item, ErrorDetail):  # already refused (a model validated again)
            items.append(item)
            continue
        try:
            items.append(TopupRequest.model_validate(item))
        except ValidationError as err:
            wrong = describe(err)
            field = f"items[{index}]" + (f".{wrong.field}" if wrong.field else "")
            items.append(ErrorDetail(code=wrong.code, message=wrong.message(field), field=field))
    return items


class TopupBatch(WireModel):
    """``POST /api/v1/topups/batch``: top up many accounts, one result per item.

    One bad item does not refuse the batch: it is kept as its ``ErrorDetail`` (code, message
    and field such as ``items[2].amount_minor``) and answered as that item's error, while the
    good items are credited. Only a missing or wrongly sized list refuses the whole request.
    """

    items: Annotated[
        list[TopupRequest | ErrorDetail],
        PlainValidator(
            _batch_items,
            json_schema_input_type=Annotated[
                list[TopupRequest], Field(min_length=1, max_length=MAX_BATCH_ITEMS)
            ],
        ),
    ]


class OrderAction(WireModel):
    """``POST /api/v1/topups/{id}/actions``: resolve an order by hand, always with a reason.

    ``credit`` a needs_attention order (to ``account`` if given, else its own), ``refund``
    ``amount_minor`` (default: all not yet refunded), ``fail`` it, or ``recheck`` it with its
    payment provider.
    """

    action: Literal["credit", "refund", "fail", "recheck"]
    reason: Reason
    amount_minor: PositiveMinor | None = None
    account: AccountRef | None = None


class AdjustmentRequest(WireModel):
    """``POST /api/v1/adjustments``: a signed correction of an account's balance, with a reason.

    The ledger also bounds the amount by its ``--max-topup-minor``.
    """

    account: AccountRef
    amount_minor: NonZeroSignedMinor
    reason: Reason


# --------------------------------------------------------------------------- answers


class ResolvedOrder(TopupOrder):
    """The answer to an order action: the order, and after a recheck the provider's answer.

    ``provider_status`` is there only after a ``recheck`` (then the answer is a
    ``RecheckedOrder``): Stripe's ``status/payment_status`` such as ``complete/paid``.
    """

    provider_status: str | None = None


class BatchItemResult(WireModel):
    """One item of a batch: its order when credited, else why not."""

    index: int
    ok: StrictBool
    order: TopupOrder | None = None
    error: ErrorDetail | None = None


class BatchResults(WireModel):
    """The answer to a batch: one result per item, in the items' order."""

    results: list[BatchItemResult]


class Adjustment(WireModel):
    """The answer to an adjustment: the transaction it posted."""

    transaction_id: int
    account_id: int
    amount_minor: Minor
    reason: str


class WebhookResult(WireModel):
    """What the ledger made of a verified payment event (also for a duplicate delivery)."""

    received: StrictBool
    duplicate: StrictBool
    #: What the ledger did: ``credited``, ``duplicate_payment``, ``needs_attention``, ...
    outcome: PaymentOutcome
    order_id: int | None = None
    #: The order's status after the event (absent for a duplicate delivery).
    status: OrderStatus | None = None
