"""Prepaid accounts: creation, the public view (balance + supply), supply refresh, closing."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from prepaid_meter_contract.events import (
    AccountUpdated,
    LowBalanceAlert,
    SupplyCutScheduledAlert,
    event_json,
)
from prepaid_meter_contract.resources import Supply
from prepaid_meter_contract.vocabulary import AccountStatus, AlertKind, SupplyReason
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from prepaid_ledger.domain.account_number import (
    account_number_for,
    is_valid_account_number,
    normalize_account_number,
)
from prepaid_ledger.domain.money import currency_exponent, parse_currency, parse_minor
from prepaid_ledger.domain.policy import (
    SupplyDecision,
    SupplyState,
    debt_minor,
    decide_supply,
    emergency_credit_remaining,
    friendly_hours_to_json,
    low_balance_level,
    parse_friendly_hours,
    parse_grace_minutes,
    parse_low_balance_levels,
)
from prepaid_ledger.errors import ConflictError, InputError
from prepaid_ledger.services import audit, events, journal
from prepaid_ledger.services.lookup import load_by_id
from prepaid_ledger.services.validation import (
    optional_bool,
    require_mapping,
    require_str,
    require_timezone,
)
from prepaid_ledger.store.models import Account, utcnow


def parse_account_settings(body: Mapping[str, object]) -> dict[str, Any]:
    """Validate the policy part of an account body into stored settings."""
    levels = body.get("low_balance_minor")
    friendly = parse_friendly_hours(
        require_mapping(body.get("friendly_hours") or {}, "friendly_hours")
    )
    return {
        "emergency_credit_minor": parse_minor(
            body.get("emergency_credit_minor", 0), "emergency_credit_minor"
        ),
        "protected": optional_bool(body, "protected", default=False),
        "low_balance_minor": [] if levels is None else parse_low_balance_levels(levels),
        "friendly_hours": friendly_hours_to_json(friendly),
        "grace_minutes": parse_grace_minutes(body.get("grace_minutes", 0)),
        "reconnect_margin_minor": parse_minor(
            body.get("reconnect_margin_minor", 0), "reconnect_margin_minor"
        ),
    }


async def create_account(session: AsyncSession, body: Mapping[str, object], actor: str) -> Account:
    """Create an account with its customer book and printed account number."""
    name = require_str(body, "name")
    currency = parse_currency(body.get("currency"))
    timezone = require_timezone(body)
    settings = parse_account_settings(body)
    account = Account(
        name=name,
        currency=currency,
        timezone=timezone,
        settings=settings,
        status="open",
        supply_allowed=True,
        alert_level=0,
    )
    session.add(account)
    await session.flush()
    account.number = account_number_for(account.id)
    account.book_id = await journal.book_id_for(
        session, journal.customer_book_key(account.id), "customer", currency
    )
    await session.flush()
    view = await account_view(session, account, utcnow())
    audit.record(
        session,
        actor=actor,
        action="account.create",
        target=f"account:{account.id}",
        before=None,
        after=view,
    )
    return account


async def get_account(session: AsyncSession, account_id: int, *, lock: bool = False) -> Account:
    """Load an account (row-locked on PostgreSQL when lock is set) or raise NotFoundError."""
    return await load_by_id(session, Account, account_id, "account", lock=lock)


async def resolve_account_ref(session: AsyncSession, ref: object, *, lock: bool = False) -> Account:
    """Return an account from an integer id or a typed account number (check digit verified)."""
    if isinstance(ref, int) and not isinstance(ref, bool):
        return await get_account(session, ref, lock=lock)
    if isinstance(ref, str) and ref.strip():
        text = normalize_account_number(ref)
        if not (text.isascii() and text.isdigit()):
            raise InputError("invalid_account", "account must be an id or an account number")
        if not is_valid_account_number(text):
            raise InputError(
                "invalid_account_number",
                "account number fails its check digit: please check for a typo",
            )
        query = select(Account).where(Account.number == text)
        if lock:
            query = query.with_for_update()
        account = await session.scalar(query)
        if account is None:
            raise InputError("unknown_account", f"no account has the number {text}")
        return account
    raise InputError("invalid_account", "account must be an id or an account number")


def book_of(account: Account) -> int:
    """Return the id of the book holding an account's balance."""
    if account.book_id is None:  # pragma: no cover - set when the account is created
        raise RuntimeError(f"account {account.id} has no book")
    return account.book_id


async def balance_of(session: AsyncSession, account: Account) -> int:
    """Return the account's stored balance in minor units."""
    book_id = book_of(account)
    return await journal.book_balance(session, book_id)


def supply_state(account: Account, balance_minor: int) -> SupplyState:
    """Return the policy input for an account."""
    settings = account.settings
    return SupplyState(
        balance_minor=balance_minor,
        emergency_credit_minor=int(settings.get("emergency_credit_minor", 0)),
        protected=bool(settings.get("protected", False)),
        friendly_hours=parse_friendly_hours(settings.get("friendly_hours") or {}),
        grace_minutes=int(settings.get("grace_minutes", 0)),
        exhausted_since=account.exhausted_since,
        reconnect_margin_minor=int(settings.get("reconnect_margin_minor", 0)),
        currently_allowed=account.supply_allowed,
        tz=ZoneInfo(account.timezone),
    )


def decide(account: Account, balance_minor: int, now: datetime) -> SupplyDecision:
    """Return the supply decision for an account now."""
    if account.status == "closed":
        return SupplyDecision(allowed=False, reason=SupplyReason.CLOSED, changes_at=None)
    return decide_supply(supply_state(account, balance_minor), now)


def supply_of(decision: SupplyDecision) -> Supply:
    """Return a supply decision as the contract describes it."""
    return Supply(
        allowed=decision.allowed,
        reason=decision.reason,
        changes_at=decision.changes_at,
    )


def supply_json(decision: SupplyDecision) -> dict[str, Any]:
    """Return the API shape of a supply decision."""
    return supply_of(decision).model_dump(mode="json")


async def account_view(session: AsyncSession, account: Account, now: datetime) -> dict[str, Any]:
    """Return the account as the API shows it."""
    balance = await balance_of(session, account)
    settings = account.settings
    emergency = int(settings.get("emergency_credit_minor", 0))
    return {
        "id": account.id,
        "number": account.number,
        "name": account.name,
        "currency": account.currency,
        "currency_exponent": currency_exponent(account.currency),
        "timezone": account.timezone,
        "status": account.status,
        "balance_minor": balance,
        "emergency_credit_minor": emergency,
        "emergency_credit_remaining_minor": emergency_credit_remaining(balance, emergency),
        "debt_minor": debt_minor(balance),
        "protected": bool(settings.get("protected", False)),
        "low_balance_minor": list(settings.get("low_balance_minor", [])),
        "low_balance_level": low_balance_level(
            balance, [int(v) for v in settings.get("low_balance_minor", [])]
        ),
        "friendly_hours": settings.get("friendly_hours") or {},
        "grace_minutes": int(settings.get("grace_minutes", 0)),
        "reconnect_margin_minor": int(settings.get("reconnect_margin_minor", 0)),
        "supply": supply_json(decide(account, balance, now)),
        "created_at": account.created_at.isoformat(),
        "closed_at": account.closed_at.isoformat() if account.closed_at else None,
    }


async def refresh_account(session: AsyncSession, account: Account, now: datetime) -> AccountUpdated:
    """After a balance change: update supply state, raise alerts, emit account.updated.

    Returns the account's state as published (also when nothing changed and nothing was
    emitted), so a caller can answer with it.
    """
    balance = await balance_of(session, account)
    settings = account.settings
    emergency = int(settings.get("emergency_credit_minor", 0))
    exhausted = balance + emergency <= 0
    if exhausted and account.exhausted_since is None:
        account.exhausted_since = now
    elif not exhausted:
        account.exhausted_since = None
    decision = decide(account, balance, now)
    account.supply_allowed = decision.allowed
    levels = [int(v) for v in settings.get("low_balance_minor", [])]
    level = low_balance_level(balance, levels)
    if level > account.alert_level:
        events.emit(
            session,
            account.id,
            LowBalanceAlert(
                kind=AlertKind.LOW_BALANCE_LEVEL_1 if level == 1 else AlertKind.LOW_BALANCE_LEVEL_2,
                account_id=account.id,
                balance_minor=balance,
                threshold_minor=levels[level - 1],
            ),
        )
    account.alert_level = level
    cut_at = decision.changes_at if decision.allowed and exhausted else None
    if cut_at is not None and cut_at != account.cut_scheduled_at:
        events.emit(
            session,
            account.id,
            SupplyCutScheduledAlert(
                kind=AlertKind.SUPPLY_CUT_SCHEDULED,
                account_id=account.id,
                at=cut_at,
                reason=decision.reason,
            ),
        )
    account.cut_scheduled_at = cut_at
    published = AccountUpdated(
        account_id=account.id,
        balance_minor=balance,
        emergency_credit_remaining_minor=emergency_credit_remaining(balance, emergency),
        debt_minor=debt_minor(balance),
        low_balance_level=level,
        currency=account.currency,
        supply=supply_of(decision),
    )
    stored = event_json(published)
    if stored != account.last_published:  # readings that change nothing stay quiet
        account.last_published = stored
        events.emit(session, account.id, published)
    return published


_EDITABLE = frozenset(
    {
        "name",
        "emergency_credit_minor",
        "protected",
        "low_balance_minor",
        "friendly_hours",
        "grace_minutes",
        "reconnect_margin_minor",
    }
)


async def update_account(
    session: AsyncSession, account_id: int, body: Mapping[str, object], actor: str
) -> dict[str, Any]:
    """Change an open account's name or policy settings; currency and time zone stay."""
    unknown = sorted(set(body) - _EDITABLE)
    if unknown:
        raise InputError(
            "invalid_field",
            f"cannot change {', '.join(unknown)}; editable: {', '.join(sorted(_EDITABLE))}",
        )
    account = await get_account(session, account_id, lock=True)
    if account.status != "open":
        raise ConflictError("account_closed", f"account {account.id} is closed")
    now = utcnow()
    before = await account_view(session, account, now)
    if "name" in body:
        account.name = require_str(body, "name")
    merged = {**account.settings, **{k: v for k, v in body.items() if k != "name"}}
    if not merged.get("low_balance_minor"):
        merged.pop("low_balance_minor", None)
    account.settings = parse_account_settings(merged)
    await refresh_account(session, account, now)
    after = await account_view(session, account, now)
    audit.record(
        session,
        actor=actor,
        action="account.update",
        target=f"account:{account.id}",
        before=before,
        after=after,
    )
    return after


async def reevaluate_supply(session: AsyncSession, now: datetime) -> int:
    """Apply time-driven supply changes (grace over, friendly hours ended); return how many."""
    candidates = await session.scalars(
        select(Account)
        .where(
            Account.status == "open",
            Account.supply_allowed.is_(True),
            Account.exhausted_since.is_not(None),
        )
        .order_by(Account.id)
        .with_for_update()
    )
    changed = 0
    for account in candidates:
        if not decide(account, await balance_of(session, account), now).allowed:
            await refresh_account(session, account, now)
            changed += 1
    return changed


async def close_account(
    session: AsyncSession, account_id: int, actor: str, reason: str
) -> dict[str, Any]:
    """Close an account: settle its balance (refund due or shortfall written off), keep history."""
    account = await get_account(session, account_id, lock=True)
    if account.status == "closed":
        raise ConflictError("account_closed", "account is already closed")
    now = utcnow()
    before = await account_view(session, account, now)
    balance = before["balance_minor"]
    book_id = book_of(account)
    settlement: dict[str, Any] = {"refund_due_minor": 0, "shortfall_minor": 0}
    if balance > 0:
        other = await journal.system_book(session, journal.REFUNDS_PAYABLE, account.currency)
        settlement["refund_due_minor"] = balance
    elif balance < 0:
        other = await journal.system_book(session, journal.SETTLEMENT_WRITE_OFF, account.currency)
        settlement["shortfall_minor"] = -balance
    if balance:
        await journal.post(
            session,
            kind="settlement",
            account_id=account.id,
            description=f"account closed: {reason}",
            legs=[journal.Leg(book_id, -balance), journal.Leg(other, balance)],
        )
    account.status = "closed"
    account.closed_at = now
    account.supply_allowed = False
    after = await account_view(session, account, now)
    audit.record(
        session,
        actor=actor,
        action="account.close",
        target=f"account:{account.id}",
        before=before,
        after=after | {"settlement": settlement, "reason": reason},
    )
    events.emit(
        session,
        account.id,
        AccountUpdated(
            account_id=account.id,
            balance_minor=0,
            emergency_credit_remaining_minor=after["emergency_credit_remaining_minor"],
            debt_minor=0,
            low_balance_level=after["low_balance_level"],
            currency=account.currency,
            supply=supply_of(decide(account, 0, now)),
            status=AccountStatus.CLOSED,
        ),
    )
    return after | {"settlement": settlement}
