"""The ledger's tables.

Money is always an integer count of minor units (BigInteger). Exact decimal quantities and
cumulative exact charges are ``Decimal`` in Python and stored as their plain text
(``ExactDecimal``), so neither SQLite nor PostgreSQL ever turns them into floats. Exactly-once
rules live here as UNIQUE constraints, not only in application code.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from prepaid_meter_contract.vocabulary import AccountStatus
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from prepaid_ledger.domain.money import format_decimal


class UTCDateTime(TypeDecorator[datetime]):
    """Store aware datetimes as naive UTC; give back aware UTC datetimes on every backend."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Reject naive datetimes and normalise to naive UTC."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime cannot be stored")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Attach UTC again."""
        if value is None:
            return None
        return value.replace(tzinfo=UTC)


class ExactDecimal(TypeDecorator[Decimal]):
    """Store a finite ``Decimal`` as its plain text (``format_decimal``); give back ``Decimal``.

    The text is exactly what the columns held before this type existed, so stored rows, SQL
    comparisons (``Reading.value == value``) and migrations are unchanged. Anything but a finite
    ``Decimal`` is refused, so a float or an unparsed string never reaches the database.
    """

    impl = Text
    cache_ok = True

    @property
    def python_type(self) -> type[Decimal]:
        """The Python type of the column's values."""
        return Decimal

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> str | None:
        """Render a finite Decimal as plain text (no exponent, no negative zero)."""
        if value is None:
            return None
        if not isinstance(value, Decimal) or not value.is_finite():
            raise TypeError(f"ExactDecimal needs a finite Decimal, not {value!r}")
        return format_decimal(value)

    def process_result_value(self, value: str | None, dialect: Dialect) -> Decimal | None:
        """Parse the stored text back, digit for digit."""
        return None if value is None else Decimal(value)

    def compare_values(self, x: object, y: object) -> bool:
        """Equal only when the stored text is: ``5.0`` and ``5.00`` are different readings.

        (SQLAlchemy writes a changed attribute only when this says it changed.)
        """
        if isinstance(x, Decimal) and isinstance(y, Decimal):
            if not (x.is_finite() and y.is_finite()):
                return x is y
            return format_decimal(x) == format_decimal(y)
        return x == y


def utcnow() -> datetime:
    """Now, aware, in UTC."""
    return datetime.now(UTC)


class Base(DeclarativeBase):
    """Declarative base of every ledger table (named constraints, so migrations can alter them)."""

    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(column_0_label)s",
            "uq": "uq_%(table_name)s_%(column_0_N_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )

    type_annotation_map = {  # noqa: RUF012 - SQLAlchemy reads this class attribute
        datetime: UTCDateTime(),
        Decimal: ExactDecimal(),
        dict[str, Any]: JSON(),
        list[Any]: JSON(),
    }


class LedgerMeta(Base):
    """Key/value facts about this database, such as its ledger_id."""

    __tablename__ = "ledger_meta"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


#: The site every account belonged to before sites existed (created by migration 0012): the
#: landlord's own Home Assistant; accounts opened without naming a site go here.
DEFAULT_SITE_ID = 1


class Site(Base):
    """A building or property with its own Home Assistant: its accounts, meters and token."""

    __tablename__ = "sites"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Book(Base):
    """A ledger book (customer account or system account) with its stored balance."""

    __tablename__ = "books"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(120), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    currency: Mapped[str] = mapped_column(String(3))
    balance_minor: Mapped[int] = mapped_column(BigInteger, default=0)


class Account(Base):
    """A prepaid account (one tenant / one household)."""

    __tablename__ = "accounts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    number: Mapped[str | None] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    currency: Mapped[str] = mapped_column(String(3))
    timezone: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default=AccountStatus.OPEN)
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    book_id: Mapped[int | None] = mapped_column(ForeignKey("books.id"))
    supply_allowed: Mapped[bool] = mapped_column(Boolean, default=True)
    exhausted_since: Mapped[datetime | None]
    alert_level: Mapped[int] = mapped_column(Integer, default=0)
    cut_scheduled_at: Mapped[datetime | None]
    last_published: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    closed_at: Mapped[datetime | None]
    #: The site whose Home Assistant meters this account (the fleet's distribution key). No
    #: foreign key: SQLite cannot add one with a default to a table others refer to; sites are
    #: never deleted and services.sites checks a site exists before anything names it.
    site_id: Mapped[int] = mapped_column(
        Integer, index=True, default=DEFAULT_SITE_ID, server_default="1"
    )


class JournalTransaction(Base):
    """One immutable business event in the journal; its entries sum to zero."""

    __tablename__ = "journal_transactions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"), index=True)
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class JournalEntry(Base):
    """One leg of a transaction: a signed amount on one book."""

    __tablename__ = "journal_entries"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    transaction_id: Mapped[int] = mapped_column(ForeignKey("journal_transactions.id"), index=True)
    book_id: Mapped[int] = mapped_column(ForeignKey("books.id"), index=True)
    amount_minor: Mapped[int] = mapped_column(BigInteger)


class ChargeLine(Base):
    """Detail of a consumption or standing charge, for statements (sums to the posted amount)."""

    __tablename__ = "charge_lines"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    transaction_id: Mapped[int] = mapped_column(ForeignKey("journal_transactions.id"), index=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    meter_id: Mapped[int | None] = mapped_column(ForeignKey("meters.id"))
    day: Mapped[date] = mapped_column(Date)
    band: Mapped[str] = mapped_column(String(64))
    quantity: Mapped[Decimal] = mapped_column(default=Decimal(0))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    __table_args__ = (Index("ix_charge_lines_account_day", "account_id", "day"),)


class Tariff(Base):
    """A named tariff; its prices live in versions with an effective time."""

    __tablename__ = "tariffs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    currency: Mapped[str] = mapped_column(String(3))
    unit: Mapped[str] = mapped_column(String(8))
    kind: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class TariffVersion(Base):
    """The definition of a tariff from effective_from on (the past keeps its old price)."""

    __tablename__ = "tariff_versions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tariff_id: Mapped[int] = mapped_column(ForeignKey("tariffs.id"), index=True)
    effective_from: Mapped[datetime]
    definition: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    __table_args__ = (UniqueConstraint("tariff_id", "effective_from"),)


class Meter(Base):
    """A physical meter with its charging state (last reading, register offset)."""

    __tablename__ = "meters"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    unit: Mapped[str] = mapped_column(String(8))
    tariff_id: Mapped[int] = mapped_column(ForeignKey("tariffs.id"))
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    last_value: Mapped[Decimal | None]
    last_at: Mapped[datetime | None]
    register_offset: Mapped[Decimal] = mapped_column(default=Decimal(0))
    last_standing_day: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: The meter model (the integration's profile id), for default limits of the reading guard.
    model: Mapped[str | None] = mapped_column(String(64))
    #: Most the meter can count per hour (its unit per hour); None: the model's or unit's default.
    max_power: Mapped[Decimal | None]
    #: Where a fixed-width counter wraps to 0; None: the model's default (float: no wrap).
    register_modulus: Mapped[Decimal | None]


class MeterAssignment(Base):
    """History of which account a meter belonged to, and from when."""

    __tablename__ = "meter_assignments"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    meter_id: Mapped[int] = mapped_column(ForeignKey("meters.id"), index=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    from_at: Mapped[datetime]
    to_at: Mapped[datetime | None]


class Reading(Base):
    """Every reading received, including flagged ones that charged nothing.

    On PostgreSQL the table is partitioned by month of ``at`` (migration 0014,
    store/partitions.py) and its primary key there is (``id``, ``at``), since PostgreSQL wants
    the partition key in it; ``id`` alone stays unique (one sequence) and is the primary key
    mapped here and SQLite's. Old readings may be removed (``prepaid-ledger
    readings-retention``): nothing about money reads them.
    """

    __tablename__ = "readings"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    meter_id: Mapped[int] = mapped_column(ForeignKey("meters.id"))
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    value: Mapped[Decimal]
    at: Mapped[datetime]
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    status: Mapped[str] = mapped_column(String(24))
    consumption: Mapped[Decimal | None]
    charged_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    transaction_id: Mapped[int | None] = mapped_column(ForeignKey("journal_transactions.id"))
    __table_args__ = (
        Index("ix_readings_meter_at", "meter_id", "at"),
        # An account's readings (days left, the first hours' estimate) without a table scan.
        Index("ix_readings_account_at", "account_id", "at"),
    )


class ChargeState(Base):
    """Cumulative exact charge and posted minor units per meter, account and band (no drift)."""

    __tablename__ = "charge_state"
    meter_id: Mapped[int] = mapped_column(ForeignKey("meters.id"), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    band: Mapped[str] = mapped_column(String(64), primary_key=True)
    exact_total: Mapped[Decimal] = mapped_column(default=Decimal(0))
    posted_minor: Mapped[int] = mapped_column(BigInteger, default=0)


class PeriodUsage(Base):
    """Consumption per tiered-tariff period (month/year) per meter and account."""

    __tablename__ = "period_usage"
    meter_id: Mapped[int] = mapped_column(ForeignKey("meters.id"), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    period: Mapped[str] = mapped_column(String(16), primary_key=True)
    quantity: Mapped[Decimal] = mapped_column(default=Decimal(0))


class TopupOrder(Base):
    """A top-up order; one provider payment maps to at most one order (UNIQUE)."""

    __tablename__ = "topup_orders"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"), index=True)
    account_ref: Mapped[str] = mapped_column(String(64))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(24), index=True)
    source: Mapped[str] = mapped_column(String(16))
    reference: Mapped[str | None] = mapped_column(String(200))
    provider: Mapped[str] = mapped_column(String(16))
    provider_payment_id: Mapped[str | None] = mapped_column(String(200))
    provider_payment_intent: Mapped[str | None] = mapped_column(String(200), index=True)
    credited_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    refunded_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    transaction_id: Mapped[int | None] = mapped_column(ForeignKey("journal_transactions.id"))
    attention_reason: Mapped[str | None] = mapped_column(Text)
    # A stable code for why it needs attention (services.topups.ATTENTION_CODES).
    attention_code: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The promotion whose bonus was credited with the order (services/promotions.py).
    promotion_id: Mapped[int | None] = mapped_column(ForeignKey("promotions.id"), index=True)
    bonus_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    bonus_taken_back_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    __table_args__ = (UniqueConstraint("provider", "provider_payment_id"),)


class Promotion(Base):
    """A landlord's top-up promotion: a fixed or percentage bonus over a minimum, for a while."""

    __tablename__ = "promotions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    currency: Mapped[str] = mapped_column(String(3))
    min_topup_minor: Mapped[int] = mapped_column(BigInteger)
    bonus_minor: Mapped[int | None] = mapped_column(BigInteger)
    bonus_percent: Mapped[Decimal | None]
    max_bonus_minor: Mapped[int | None] = mapped_column(BigInteger)
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime | None]
    first_topup_only: Mapped[bool] = mapped_column(default=False)
    uses_per_account: Mapped[int | None] = mapped_column(Integer)
    uses_total: Mapped[int | None] = mapped_column(Integer)
    tariff_id: Mapped[int | None] = mapped_column(ForeignKey("tariffs.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(64))
    ended_at: Mapped[datetime | None]
    ended_by: Mapped[str | None] = mapped_column(String(64))


class TopupOrderEvent(Base):
    """One timestamped status transition of an order."""

    __tablename__ = "topup_order_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("topup_orders.id"), index=True)
    status: Mapped[str] = mapped_column(String(24))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    reason: Mapped[str | None] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(64))


class IdempotencyKey(Base):
    """First response of an Idempotency-Key, replayed on retries (UNIQUE per actor and key)."""

    __tablename__ = "idempotency_keys"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    actor: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(255))
    request_hash: Mapped[str] = mapped_column(String(64))
    response_status: Mapped[int] = mapped_column(Integer)
    response_body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    __table_args__ = (UniqueConstraint("actor", "key"),)


class ProviderEvent(Base):
    """A verified webhook event; the event id is UNIQUE per provider."""

    __tablename__ = "provider_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    provider: Mapped[str] = mapped_column(String(16))
    event_id: Mapped[str] = mapped_column(String(255))
    type: Mapped[str] = mapped_column(String(100))
    outcome: Mapped[str] = mapped_column(String(32))
    order_id: Mapped[int | None] = mapped_column(ForeignKey("topup_orders.id"))
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    payload: Mapped[str] = mapped_column(Text)
    __table_args__ = (UniqueConstraint("provider", "event_id"),)


class WebhookRejection(Base):
    """A webhook delivery that failed verification: recorded, never credited."""

    __tablename__ = "webhook_rejections"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    provider: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text)
    body_sha256: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(default=utcnow)


class AuditLog(Base):
    """Append-only record of every mutating call."""

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(64))
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class StreamEvent(Base):
    """Event stream for SSE; ids only increase."""

    __tablename__ = "stream_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    type: Mapped[str] = mapped_column(String(32))
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"), index=True)
    payload: Mapped[dict[str, Any]]
    __table_args__ = ({"sqlite_autoincrement": True},)


class ApiToken(Base):
    """An integration or tenant token; only its SHA-256 is stored."""

    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scope: Mapped[str] = mapped_column(String(16))
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    name: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]
    #: An integration token's site: it reads and posts for that site's accounts only (no
    #: foreign key, as accounts.site_id).
    site_id: Mapped[int | None] = mapped_column(Integer)


class WebSession(Base):
    """A landlord's browser session: only the SHA-256 of its random id is stored.

    token_fingerprint ties the session to the admin token it was started with, so changing the
    token ends every session; expiry is checked against created_at and last_seen_at.
    """

    __tablename__ = "web_sessions"
    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    token_fingerprint: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)


class VoucherBatch(Base):
    """Vouchers minted together: one value and currency, maybe an expiry and one account."""

    __tablename__ = "voucher_batches"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    value_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    count: Mapped[int] = mapped_column(Integer)
    # Only this account may redeem the batch's vouchers (None: any account in the currency).
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    expires_at: Mapped[datetime | None]
    note: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(64))
    voided_at: Mapped[datetime | None]
    voided_by: Mapped[str | None] = mapped_column(String(64))


class Voucher(Base):
    """One voucher: its code kept only as a keyed hash; redeemed at most once (UNIQUE order)."""

    __tablename__ = "vouchers"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("voucher_batches.id"), index=True)
    # Its place in the batch (card 17 of 100), printed on the card next to the code.
    serial: Mapped[int] = mapped_column(Integer)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    redeemed_at: Mapped[datetime | None]
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    order_id: Mapped[int | None] = mapped_column(ForeignKey("topup_orders.id"), unique=True)


class VoucherAttempts(Base):
    """Failed voucher entries of one source (an account, a client address, a pay link)."""

    __tablename__ = "voucher_attempts"
    source: Mapped[str] = mapped_column(String(96), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_failure_at: Mapped[datetime] = mapped_column(default=utcnow)
    locked_until: Mapped[datetime | None]


class Receipt(Base):
    """A succeeded top-up's receipt: a gap-free number and the facts printed, frozen at issue.

    Issued in the transaction that credits the order (services/receipts.py), so a credit that
    rolls back takes its number with it; UNIQUE number and order are the last line of defence.
    """

    __tablename__ = "receipts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    number: Mapped[int] = mapped_column(BigInteger, unique=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("topup_orders.id"), unique=True)
    issued_at: Mapped[datetime]
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    account_number: Mapped[str | None] = mapped_column(String(32))
    account_name: Mapped[str] = mapped_column(String(200))
    # The account's meter names when issued (its "room"), comma-separated.
    room: Mapped[str | None] = mapped_column(Text)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    bonus_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    currency: Mapped[str] = mapped_column(String(3))
    method: Mapped[str] = mapped_column(String(16))
    balance_after_minor: Mapped[int] = mapped_column(BigInteger)


class AccountingEndpoint(Base):
    """Where the landlord's finance system receives accounting events (Standard Webhooks).

    The secret is kept as given to the receiver (it signs every delivery); the API shows it
    once, at creation, and then only its first characters.
    """

    __tablename__ = "accounting_endpoints"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    url: Mapped[str] = mapped_column(String(2048))
    secret: Mapped[str] = mapped_column(String(128))
    description: Mapped[str | None] = mapped_column(String(200))
    # The event types sent there (a JSON list of AccountingEventType values).
    event_types: Mapped[list[Any]]
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(64))
    disabled_at: Mapped[datetime | None]
    disabled_by: Mapped[str | None] = mapped_column(String(64))
    disabled_reason: Mapped[str | None] = mapped_column(Text)


class OutboxMessage(Base):
    """An accounting event, written in the transaction of the change it reports (the outbox).

    ``id`` orders an account's events (they are recorded with the account's row locked, so ids
    follow commit order per account); ``message_id`` is the public ``webhook-id``. A
    ``charge.posted`` carries its local ``day``: UNIQUE per type, account and day.
    """

    __tablename__ = "outbox_messages"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    message_id: Mapped[str] = mapped_column(String(40), unique=True)
    type: Mapped[str] = mapped_column(String(40))
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"), index=True)
    day: Mapped[date | None] = mapped_column(Date)
    payload: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    __table_args__ = (
        UniqueConstraint("type", "account_id", "day"),
        {"sqlite_autoincrement": True},
    )


class OutboxDelivery(Base):
    """One event to one endpoint: its status, attempts and the last answer (the delivery log).

    A worker holds a delivery while it attempts it (``leased_until``, ``lease_token``); one that
    died mid-attempt lets go when the lease runs out, and the event is sent again, same id.
    ``account_id`` copies the message's, so "an earlier event of this account to this endpoint
    is not delivered yet" is one indexed look-up.
    """

    __tablename__ = "outbox_deliveries"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    outbox_id: Mapped[int] = mapped_column(ForeignKey("outbox_messages.id"))
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("accounting_endpoints.id"))
    account_id: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None]
    leased_until: Mapped[datetime | None]
    lease_token: Mapped[str | None] = mapped_column(String(32))
    last_attempt_at: Mapped[datetime | None]
    last_http_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    __table_args__ = (
        UniqueConstraint("outbox_id", "endpoint_id"),
        Index("ix_outbox_deliveries_order", "endpoint_id", "account_id", "outbox_id"),
        Index("ix_outbox_deliveries_due", "status", "next_attempt_at"),
    )
