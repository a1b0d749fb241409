"""Vouchers: batches a landlord mints and sells for cash, and a code a tenant redeems.

A code is 20 digits (19 random and a Damm check digit) printed in groups of four; the ledger
keeps only a hash of it, so the codes of a batch are in the answer that mints it and nowhere
else.
"""

from __future__ import annotations

from typing import Annotated, Final

from pydantic import Field, PlainValidator, WithJsonSchema

from prepaid_meter_contract.accounts import CurrencyCode
from prepaid_meter_contract.resources import TopupOrder
from prepaid_meter_contract.topups import AccountRef
from prepaid_meter_contract.wire import (
    Id,
    Minor,
    PositiveMinor,
    Reason,
    Text,
    Timestamp,
    WireError,
    WireModel,
    rule_validator,
)

#: Most vouchers in one batch (a print run of cards).
MAX_BATCH_VOUCHERS: Final = 1000
#: Longest text accepted where a code is expected (spaces and dashes included).
MAX_CODE_CHARS: Final = 64


def check_code_text(value: object) -> str:
    """Return text that may be a code; its digits and check digit are the ledger's to judge."""
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_CODE_CHARS:
        raise WireError("invalid_voucher_code", "must be the voucher's 20 digits")
    return value


def check_count(value: object) -> int:
    """Return how many vouchers to mint: 1 to MAX_BATCH_VOUCHERS."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise WireError("invalid_field", "must be an integer")
    if not 1 <= value <= MAX_BATCH_VOUCHERS:
        raise WireError("invalid_field", f"must be from 1 to {MAX_BATCH_VOUCHERS}")
    return value


CodeText = Annotated[
    str,
    PlainValidator(rule_validator(check_code_text)),
    WithJsonSchema(
        {"type": "string", "maxLength": MAX_CODE_CHARS, "example": "1234 5678 9012 3456 7890"}
    ),
]
VoucherCount = Annotated[
    int,
    PlainValidator(rule_validator(check_count)),
    WithJsonSchema({"type": "integer", "minimum": 1, "maximum": MAX_BATCH_VOUCHERS}),
]


class VoucherBatchRequest(WireModel):
    """``POST /api/v1/vouchers/batches``: mint ``count`` vouchers of one value."""

    value_minor: PositiveMinor
    currency: CurrencyCode
    count: VoucherCount
    #: After this time the batch's unused codes no longer credit anything.
    expires_at: Timestamp | None = None
    #: Only this account may redeem the batch (a voucher sold for one room).
    account_id: Id | None = None
    note: Text | None = None


class VoucherBatch(WireModel):
    """A batch as the landlord sees it: what it is worth and how much of it was used."""

    id: int
    value_minor: Minor
    currency: str
    count: int
    redeemed: int
    expires_at: Timestamp | None = None
    account_id: int | None = None
    note: str | None = None
    created_at: Timestamp
    voided_at: Timestamp | None = None


class VoucherCode(WireModel):
    """One card of a batch: its place in the batch and its code as printed."""

    serial: int
    code: Annotated[str, Field(pattern=r"^[0-9]{4}( [0-9]{4}){4}$")]


class MintedBatch(WireModel):
    """The answer to minting: the batch and its codes, shown this once (only hashes are kept)."""

    batch: VoucherBatch
    codes: list[VoucherCode]


class VoucherBatches(WireModel):
    """``GET /api/v1/vouchers/batches``: newest first."""

    batches: list[VoucherBatch]


class VoidBatch(WireModel):
    """``POST /api/v1/vouchers/batches/{id}/void``: stop the batch's unused codes, with why."""

    reason: Reason


class RedeemVoucher(WireModel):
    """``POST /api/v1/vouchers/redeem``: credit a voucher's value to an account, once."""

    account: AccountRef
    code: CodeText


class RedeemedVoucher(WireModel):
    """The top-up order the voucher became (channel ``voucher``), credited at once."""

    batch_id: int
    serial: int
    #: Decimals of the order's currency, to show ``order.amount_minor`` in major units.
    currency_exponent: int
    order: TopupOrder
