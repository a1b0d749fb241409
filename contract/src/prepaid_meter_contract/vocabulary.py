"""Every status word the ledger and the integration exchange, defined once.

``StrEnum`` members compare equal to their strings, so a value read from JSON or from a
database column can be compared with them directly.
"""

from __future__ import annotations

from enum import StrEnum


class Scope(StrEnum):
    """What a token may do."""

    ADMIN = "admin"
    INTEGRATION = "integration"
    TENANT = "tenant"


class OrderStatus(StrEnum):
    """Where a top-up order stands."""

    PENDING = "pending"
    PROCESSING = "processing"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    EXPIRED = "expired"
    REFUNDED = "refunded"
    PARTIALLY_REFUNDED = "partially_refunded"
    NEEDS_ATTENTION = "needs_attention"


class PaymentOutcome(StrEnum):
    """What the ledger made of one verified payment event (``WebhookResult.outcome``).

    The webhooks and the reconciliation with Stripe answer it, and each provider event row
    keeps it, so a duplicate delivery answers what the first one did.
    """

    #: The payment was credited to its account.
    CREDITED = "credited"
    #: The payment was already credited (another event for the same provider payment).
    DUPLICATE_PAYMENT = "duplicate_payment"
    #: The payment cannot be credited: its order needs a person (with an AttentionCode).
    NEEDS_ATTENTION = "needs_attention"
    #: The money is not final yet (an asynchronous payment): the order waits, processing.
    PROCESSING = "processing"
    #: The provider says the payment failed: the open order failed.
    FAILED = "failed"
    #: The provider's checkout expired unpaid: the open order expired.
    EXPIRED = "expired"
    #: The provider refunded (part of) a credited payment: the refund was posted.
    REFUNDED = "refunded"
    #: A refund the ledger had already posted (the provider's refunded total did not grow).
    REFUND_ALREADY_APPLIED = "refund_already_applied"
    #: An event the ledger does not act on (its type, or an order no longer open).
    IGNORED = "ignored"
    #: A paid-checkout event without a checkout session id.
    IGNORED_NO_SESSION_ID = "ignored_no_session_id"
    #: A refund event without a payment intent.
    IGNORED_NO_PAYMENT_INTENT = "ignored_no_payment_intent"
    #: A refund event for a payment the ledger has no order for.
    IGNORED_UNKNOWN_PAYMENT = "ignored_unknown_payment"


class AttentionCode(StrEnum):
    """Why an order needs a person (carried by the order and by its alert)."""

    UNKNOWN_ACCOUNT = "unknown_account"
    CLOSED_ACCOUNT = "closed_account"
    CURRENCY_MISMATCH = "currency_mismatch"
    INVALID_AMOUNT = "invalid_amount"
    STUCK_PROCESSING = "stuck_processing"
    PAID_NOT_CREDITED = "paid_not_credited"


class SupplyReason(StrEnum):
    """Why supply is allowed or cut right now."""

    CREDIT = "credit"
    EMERGENCY_CREDIT = "emergency_credit"
    PROTECTED = "protected"
    GRACE = "grace"
    FRIENDLY_HOURS = "friendly_hours"
    HOLIDAY = "holiday"
    EXHAUSTED = "exhausted"
    AWAITING_RECONNECT_MARGIN = "awaiting_reconnect_margin"
    CLOSED = "closed"


class AccountStatus(StrEnum):
    """Whether an account still bills."""

    OPEN = "open"
    CLOSED = "closed"


class StepKind(StrEnum):
    """What a meter's step from its last accepted reading is (``reading_guard.classify``)."""

    CONSUMPTION = "consumption"
    WRAP = "wrap"
    NOISE = "noise"
    SURGE = "surge"
    RESET = "reset"
    BACKWARDS = "backwards"


#: The kinds a person must decide on; the rest are charged (consumption, wrap) or ignored.
HELD_KINDS: frozenset[StepKind] = frozenset({StepKind.SURGE, StepKind.RESET, StepKind.BACKWARDS})
#: A held reading's status is this prefix and its kind (``held_surge``).
HELD_PREFIX = "held_"


class DaysLeftConfidence(StrEnum):
    """How far a "days left" forecast can be trusted (``docs/ledger-api.md`` states the rule).

    ``low``: projected from under 6 hours of consumption; ``medium``: projected from 6 hours or
    more but under a complete local day, or the average of 1 or 2 complete days; ``high``: the
    average of 3 or more complete local days.
    """

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class ReadingStatus(StrEnum):
    """What the ledger did with one reading."""

    BASELINE = "baseline"
    CHARGED = "charged"
    CHARGED_WRAP = "charged_wrap"
    IGNORED_NOISE = "ignored_noise"
    UNBILLED_ACCOUNT_CLOSED = "unbilled_account_closed"
    FLAGGED_OUT_OF_ORDER = "flagged_out_of_order"
    FLAGGED_GAP = "flagged_gap"
    HELD_SURGE = "held_surge"
    HELD_RESET = "held_reset"
    HELD_BACKWARDS = "held_backwards"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    REBASED = "rebased"

    @classmethod
    def held(cls, kind: StepKind) -> ReadingStatus:
        """Return the status of a reading held for a kind of step."""
        return cls(HELD_PREFIX + kind)


class ResolveAction(StrEnum):
    """What a person decides about a held reading."""

    ACCEPT = "accept"
    REJECT = "reject"
    REBASE = "rebase"


#: What a person may decide for each kind of hold; the first is the choice offered first.
RESOLUTIONS: dict[StepKind, tuple[ResolveAction, ...]] = {
    StepKind.SURGE: (ResolveAction.REJECT, ResolveAction.ACCEPT),
    StepKind.RESET: (ResolveAction.REJECT, ResolveAction.REBASE),
    StepKind.BACKWARDS: (ResolveAction.REJECT, ResolveAction.REBASE),
}


class EventType(StrEnum):
    """The ``event:`` names of the ledger's event stream."""

    HELLO = "stream.hello"
    RESET = "stream.reset"
    ACCOUNT_UPDATED = "account.updated"
    TOPUP_UPDATED = "topup.updated"
    READING_RESOLVED = "reading.resolved"
    ALERT = "alert"


class AlertKind(StrEnum):
    """The ``kind`` of an ``alert`` event (low-balance alerts carry their level)."""

    LOW_BALANCE_LEVEL_1 = "low_balance_level_1"
    LOW_BALANCE_LEVEL_2 = "low_balance_level_2"
    SUPPLY_CUT_SCHEDULED = "supply_cut_scheduled"
    ORDER_NEEDS_ATTENTION = "order_needs_attention"
    READING_HELD = "reading_held"
    VOUCHER_GUESSING = "voucher_guessing"

    @property
    def low_balance_level(self) -> int | None:
        """The level of a low-balance alert, else ``None``."""
        prefix = "low_balance_level_"
        return int(self.removeprefix(prefix)) if self.startswith(prefix) else None


class PaymentMethod(StrEnum):
    """How a top-up was paid, as its receipt prints it (from the order's source and provider)."""

    #: A card payment through Stripe Checkout.
    CARD = "card"
    #: Cash or a manual top-up the landlord recorded (one by one or in a batch).
    CASH = "cash"
    #: A prepaid voucher's code redeemed.
    VOUCHER = "voucher"
    #: A payment another provider confirmed by a signed Standard Webhooks delivery, or a
    #: Checkout payment whose session offered several methods (Stripe does not say which).
    ONLINE = "online"
    #: Checkout sessions that offered one method only: that method (Stripe's names).
    WECHAT_PAY = "wechat_pay"
    ALIPAY = "alipay"
    SEPA_DEBIT = "sepa_debit"
    IDEAL = "ideal"
    BANCONTACT = "bancontact"
    #: A source this ledger has no word for.
    OTHER = "other"
