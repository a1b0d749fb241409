"""Accounts: what a landlord sends to open, change or close one, and what closing answers."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    ConfigDict,
    Field,
    PlainValidator,
    WithJsonSchema,
    model_validator,
)
from pydantic_core import PydanticCustomError

from prepaid_meter_contract.resources import Account
from prepaid_meter_contract.topups import AccountRef
from prepaid_meter_contract.wire import (
    Id,
    Minor,
    MinorSetting,
    Reason,
    StrictBool,
    Text,
    WireError,
    WireModel,
    rule_validator,
)

#: Longest grace between exhausted credit and a cut: a week, in minutes.
MAX_GRACE_MINUTES: Final = 7 * 24 * 60


def check_grace_minutes(value: object) -> int:
    """Return the grace period between exhausted credit and a cut, in minutes (0 to a week)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise WireError("invalid_field", "must be a whole number of minutes")
    if not 0 <= value <= MAX_GRACE_MINUTES:
        raise WireError("invalid_field", f"must be from 0 to {MAX_GRACE_MINUTES} minutes (a week)")
    return value


def check_currency_code(value: object) -> str:
    """Return a currency code in ISO 4217's shape: three capital letters such as ``EUR``."""
    if not (isinstance(value, str) and len(value) == 3 and value.isascii() and value.isupper()):
        shown = repr(value)[:20]
        raise WireError("invalid_currency", f"must be an ISO 4217 code such as 'EUR'; got {shown}")
    return value


def check_timezone(value: object) -> str:
    """Return an IANA time zone name such as ``Europe/Berlin``."""
    if not isinstance(value, str) or not value.strip() or len(value) > 64:
        raise WireError("invalid_field", "must be an IANA time zone name such as 'Europe/Berlin'")
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise WireError("invalid_field", "is not a known IANA time zone") from None
    return value


def _levels_in_order(levels: tuple[int, int]) -> tuple[int, int]:
    if levels[1] > levels[0]:
        raise PydanticCustomError(
            "invalid_amount", "[1] (the later warning) must not exceed level 1 (the first)"
        )
    return levels


GraceMinutes = Annotated[
    int,
    PlainValidator(rule_validator(check_grace_minutes)),
    WithJsonSchema({"type": "integer", "minimum": 0, "maximum": MAX_GRACE_MINUTES}),
]
TimeZoneName = Annotated[
    str,
    PlainValidator(rule_validator(check_timezone)),
    WithJsonSchema({"type": "string", "maxLength": 64, "example": "Europe/Berlin"}),
]
#: Two warning levels of the balance, ``[level1, level2]`` with level1 >= level2 >= 0.
LowBalanceLevels = Annotated[tuple[MinorSetting, MinorSetting], AfterValidator(_levels_in_order)]
#: Weekly HH:MM windows and holidays in which supply is never cut, e.g.
#: ``{"monday": [{"start": "18:00", "end": "09:00"}], "holidays": ["2026-12-25"]}``; the
#: ledger checks the windows (their rules live with the supply policy).
FriendlyHours = Annotated[
    dict[str, Any],
    WithJsonSchema(
        {
            "type": "object",
            "description": "weekday names (monday..sunday) with lists of {start, end} HH:MM "
            "windows, and holidays: a list of ISO dates",
        }
    ),
]
CurrencyCode = Annotated[
    str,
    PlainValidator(rule_validator(check_currency_code)),
    WithJsonSchema({"type": "string", "pattern": "^[A-Z]{3}$", "example": "EUR"}),
]


class AccountPolicy(WireModel):
    """How an account's supply is decided: emergency credit, warnings, grace, friendly hours."""

    emergency_credit_minor: MinorSetting = 0
    protected: StrictBool = False
    low_balance_minor: LowBalanceLevels | None = None
    friendly_hours: FriendlyHours | None = None
    grace_minutes: GraceMinutes = 0
    reconnect_margin_minor: MinorSetting = 0


class AccountInput(AccountPolicy):
    """``POST /api/v1/accounts``: open a prepaid account in one currency and time zone."""

    name: Text
    #: An ISO 4217 code with a minor unit, such as ``EUR`` (the ledger knows which exist).
    currency: CurrencyCode
    timezone: TimeZoneName
    #: The site whose Home Assistant meters the room (default: the caller's, else site 1).
    site_id: Id | None = None


class AccountUpdate(WireModel):
    """``PATCH /api/v1/accounts/{id}``: change the name or policy; absent fields stay as they are.

    ``low_balance_minor: null`` removes the warnings; currency and time zone never change.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: Text | None = None
    emergency_credit_minor: MinorSetting | None = None
    protected: StrictBool | None = None
    low_balance_minor: LowBalanceLevels | None = None
    friendly_hours: FriendlyHours | None = None
    grace_minutes: GraceMinutes | None = None
    reconnect_margin_minor: MinorSetting | None = None


class RefundMethod(StrEnum):
    """How a refund was paid out to the tenant."""

    CASH = "cash"
    BANK_TRANSFER = "bank_transfer"
    OTHER = "other"


class RefundPayment(WireModel):
    """The refund due on closing, paid out now: by which method, with what proof."""

    method: RefundMethod
    #: What identifies the payment: a receipt number, the bank transfer's reference...
    reference: Text


class CloseAccount(WireModel):
    """``POST /api/v1/accounts/{id}/close``: why the account is closed (kept in the audit log).

    With ``reason`` alone, credit left becomes a refund due (``refunds:payable``) and debt is
    written off. ``transfer_to`` moves the whole balance (credit or debt) to another open
    account of the same currency first; ``refund`` pays the credit out now. Not both.
    """

    reason: Reason
    #: The account (id or printed number) that receives the whole remaining balance.
    transfer_to: AccountRef | None = None
    #: The credit left is paid back now, by this method (only when there is credit).
    refund: RefundPayment | None = None

    @model_validator(mode="after")
    def _one_way_out(self) -> CloseAccount:
        if self.transfer_to is not None and self.refund is not None:
            raise PydanticCustomError(
                "invalid_field",
                "give transfer_to or refund, not both: the balance either moves to another "
                "account or is paid back to the tenant",
            )
        return self


class Settlement(WireModel):
    """What closing an account settled: credit owed back to the tenant, or debt written off.

    A transfer leaves nothing to settle (``transferred_minor``, signed, went to
    ``transfer_to``). ``refund_due_minor`` with a ``refund_method`` was paid out on closing;
    without one it is still owed (the ``refunds:payable`` book).
    """

    refund_due_minor: Minor
    shortfall_minor: Minor
    #: The balance moved to ``transfer_to`` before closing: credit positive, debt negative.
    transferred_minor: Minor = 0
    #: The id of the account that received the balance.
    transfer_to: int | None = None
    refund_method: RefundMethod | None = None
    refund_reference: str | None = None


class ClosedAccount(Account):
    """The closed account, with its settlement."""

    settlement: Settlement


class PayLink(WireModel):
    """``POST /api/v1/accounts/{id}/pay-link``: the tenant's new pay link and its QR code."""

    account_id: Id
    token_id: Id
    url: Annotated[str, Field(max_length=2048)]
    #: The URL as a QR code: a standalone SVG document, printable at any size.
    qr_svg: str
