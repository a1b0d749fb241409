"""Prepaid accounts: creation, the public view (balance + supply), supply refresh, closing."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from prepaid_meter_contract.accounts import (
    AccountInput,
    AccountPolicy,
    AccountUpdate,
    CloseAccount,
    ClosedAccount,
    RefundPayment,
    Settlement,
)
from prepaid_meter_contract.events import (
    AccountUpdated,
    LowBalanceAlert,
    SupplyCutScheduledAlert,
    event_json,
)
from prepaid_meter_contract.resources import Account as AccountView
from prepaid_meter_contract.resources import Supply
from prepaid_meter_contract.vocabulary import AccountStatus, AlertKind, SupplyReason
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from prepaid_ledger.domain.account_number import (
    account_number_for,
    is_valid_account_number,
    normalize_account_number,
)
from prepaid_ledger.domain.money import currency_exponent, parse_currency
from prepaid_ledger.domain.policy import (
    SupplyDecision,
    SupplyState,
    debt_minor,
    decide_supply,
    emergency_credit_remaining,
    friendly_hours_to_json,
    low_balance_level,
    parse_friendly_hours,
)
from prepaid_ledger.errors import ConflictError, InputError, NotFoundError
from prepaid_ledger.services import audit, events, journal
from prepaid_ledger.services.lookup import load_by_id
from prepaid_ledger.store.models import DEFAULT_SITE_ID, Account, Site, utcnow


class AccountState(Protocol):
    """What pricing, supply decisions and ``refresh_account`` read and move on an account.

    A stored row, or a batch of readings' own copy of one (``readings.BatchAccount``).
    """

    id: int
    currency: str
    timezone: str
    status: str
    settings: dict[str, Any]
    book_id: int | None
    site_id: int
    supply_allowed: bool
    exhausted_since: datetime | None
    alert_level: int
    cut_scheduled_at: datetime | None
    last_published: dict[str, Any] | None


def stored_settings(policy: AccountPolicy) -> dict[str, Any]:
    """Return the settings row of an account's policy (friendly hours checked and normalised)."""
    friendly = parse_friendly_hours(policy.friendly_hours or {})
    return {
        "emergency_credit_minor": policy.emergency_credit_minor,
        "protected": policy.protected,
        "low_balance_minor": list(policy.low_balance_minor or ()),
        "friendly_hours": friendly_hours_to_json(friendly),
        "grace_minutes": policy.grace_minutes,
        "reconnect_margin_minor": policy.reconnect_margin_minor,
    }


def policy_of(account: Account) -> AccountPolicy:
    """Return the policy an account's stored settings describe."""
    return AccountPolicy.model_validate(
        account.settings | {"low_balance_minor": account.settings.get("low_balance_minor") or None}
    )


async def create_account(session: AsyncSession, request: AccountInput, actor: str) -> Account:
    """Create an account with its customer book and printed account number, in its site."""
    currency = parse_currency(request.currency)
    site_id = request.site_id or DEFAULT_SITE_ID
    if await session.get(Site, site_id) is None:
        raise NotFoundError(f"site {site_id}")
    account = Account(
        site_id=site_id,
        name=request.name,
        currency=currency,
        timezone=request.timezone,
        settings=stored_settings(request),
        status=AccountStatus.OPEN,
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
    audit.record(
        session,
        actor=actor,
        action="account.create",
        target=f"account:{account.id}",
        before=None,
        after=await account_view(session, account, utcnow()),
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


def book_of(account: AccountState) -> int:
    """Return the id of the book holding an account's balance."""
    if account.book_id is None:  # pragma: no cover - set when the account is created
        raise RuntimeError(f"account {account.id} has no book")
    return account.book_id


async def balance_of(session: AsyncSession, account: AccountState) -> int:
    """Return the account's stored balance in minor units."""
    book_id = book_of(account)
    return await journal.book_balance(session, book_id)


def supply_state(account: AccountState, balance_minor: int) -> SupplyState:
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


def decide(account: AccountState, balance_minor: int, now: datetime) -> SupplyDecision:
    """Return the supply decision for an account now."""
    if account.status == AccountStatus.CLOSED:
        return SupplyDecision(allowed=False, reason=SupplyReason.CLOSED, changes_at=None)
    return decide_supply(supply_state(account, balance_minor), now)


def supply_of(decision: SupplyDecision) -> Supply:
    """Return a supply decision as the contract describes it."""
    return Supply(
        allowed=decision.allowed,
        reason=decision.reason,
        changes_at=decision.changes_at,
    )


async def account_view(
    session: AsyncSession, account: Account, now: datetime, *, balance: int | None = None
) -> AccountView:
    """Return the account as the API shows it (without days left: see meter_status).

    BALANCE: the stored balance, when the caller read it already (a list reads a page's at once).
    """
    if balance is None:
        balance = await balance_of(session, account)
    policy = policy_of(account)
    levels = list(policy.low_balance_minor or ())
    return AccountView(
        id=account.id,
        number=account.number or "",
        name=account.name,
        currency=account.currency,
        currency_exponent=currency_exponent(account.currency),
        timezone=account.timezone,
        status=AccountStatus(account.status),
        balance_minor=balance,
        emergency_credit_minor=policy.emergency_credit_minor,
        emergency_credit_remaining_minor=emergency_credit_remaining(
            balance, policy.emergency_credit_minor
        ),
        debt_minor=debt_minor(balance),
        protected=policy.protected,
        low_balance_minor=levels,
        low_balance_level=low_balance_level(balance, levels),
        friendly_hours=policy.friendly_hours or {},
        grace_minutes=policy.grace_minutes,
        reconnect_margin_minor=policy.reconnect_margin_minor,
        supply=supply_of(decide(account, balance, now)),
        created_at=account.created_at,
        closed_at=account.closed_at,
        site_id=account.site_id,
    )


async def refresh_account(
    session: AsyncSession, account: AccountState, now: datetime, *, balance: int | None = None
) -> AccountUpdated:
    """After a balance change: update supply state, raise alerts, emit account.updated.

    Returns the account's state as published (also when nothing changed and nothing was
    emitted), so a caller can answer with it. BALANCE: the stored balance, when the caller
    has just read it (a batch of readings reads every account's in one query).
    """
    if balance is None:
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


async def update_account(
    session: AsyncSession, account_id: int, change: AccountUpdate, actor: str
) -> AccountView:
    """Change an open account's name or policy settings; currency and time zone stay."""
    account = await get_account(session, account_id, lock=True)
    if account.status != AccountStatus.OPEN:
        raise ConflictError("account_closed", f"account {account.id} is closed")
    now = utcnow()
    before = await account_view(session, account, now)
    given = change.model_dump(exclude_unset=True)
    if (name := given.pop("name", None)) is not None:
        account.name = name
    # A null means "unchanged", except for the warnings, where it means "none".
    updates = {
        key: value
        for key, value in given.items()
        if value is not None or key == "low_balance_minor"
    }
    account.settings = stored_settings(policy_of(account).model_copy(update=updates))
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
            Account.status == AccountStatus.OPEN,
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


async def _transfer_target(session: AsyncSession, account_id: int, ref: object) -> Account:
    """Return the account a closing one's balance moves to (not locked yet), or say why not."""
    try:
        target = await resolve_account_ref(session, ref)
    except NotFoundError:
        raise NotFoundError(f"transfer_to: account {ref}") from None
    except InputError as err:
        raise InputError(err.code, f"transfer_to: {err.message}", "transfer_to") from None
    if target.id == account_id:
        raise InputError(
            "same_account", "transfer_to must be another account than the one closed", "transfer_to"
        )
    return target


async def _lock_accounts(session: AsyncSession, ids: set[int]) -> dict[int, Account]:
    """Lock accounts by id order (as every writer does) and read their current rows."""
    rows = await session.scalars(
        select(Account)
        .where(Account.id.in_(sorted(ids)))
        .order_by(Account.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return {account.id: account for account in rows}


async def _transfer_balance(
    session: AsyncSession,
    account: Account,
    target: Account,
    *,
    balance: int,
    actor: str,
    reason: str,
) -> None:
    """Move an account's whole balance (credit or debt) to another account's book, audited."""
    if target.status != AccountStatus.OPEN:
        raise ConflictError("account_closed", f"transfer_to: account {target.id} is closed")
    if target.currency != account.currency:
        raise InputError(
            "currency_mismatch",
            f"transfer_to: account {target.id} is in {target.currency}, "
            f"this account in {account.currency}",
            "transfer_to",
        )
    now = utcnow()
    before = await account_view(session, target, now)
    txn = None
    if balance:
        txn = await journal.post(
            session,
            kind="transfer",
            account_id=account.id,
            description=(
                f"transfer from account {account.number} ({account.name}) "
                f"to account {target.number} ({target.name}): account closed: {reason}"
            ),
            legs=[journal.Leg(book_of(account), -balance), journal.Leg(book_of(target), balance)],
        )
    await refresh_account(session, target, now)
    audit.record(
        session,
        actor=actor,
        action="account.transfer_in",
        target=f"account:{target.id}",
        before=before,
        after=(await account_view(session, target, now)).model_dump(mode="json")
        | {
            "from_account_id": account.id,
            "amount_minor": balance,
            "transaction_id": None if txn is None else txn.id,
            "reason": reason,
        },
    )


async def close_account(
    session: AsyncSession, account_id: int, closing: CloseAccount, actor: str
) -> ClosedAccount:
    """Close an account and settle its balance; keep the history.

    By default credit left becomes a refund due (``refunds:payable``) and debt is written off.
    ``transfer_to`` first moves the whole balance to another open account (one transaction
    between the two customer books, on both statements); ``refund`` pays the credit out now
    (``refunds:paid``), recording how.
    """
    reason, refund = closing.reason, closing.refund
    target: Account | None = None
    if closing.transfer_to is None:
        account = await get_account(session, account_id, lock=True)
    else:
        account = await get_account(session, account_id)
        target = await _transfer_target(session, account.id, closing.transfer_to)
        locked = await _lock_accounts(session, {account.id, target.id})
        account, target = locked[account.id], locked[target.id]
    if account.status == AccountStatus.CLOSED:
        raise ConflictError("account_closed", "account is already closed")
    now = utcnow()
    before = await account_view(session, account, now)
    balance = before.balance_minor
    if refund is not None and balance <= 0:
        raise InputError(
            "nothing_to_refund",
            f"refund: the balance is {balance} minor units, nothing is owed back to the tenant",
            "refund",
        )
    if target is not None:
        await _transfer_balance(
            session, account, target, balance=balance, actor=actor, reason=reason
        )
        settlement = Settlement(
            refund_due_minor=0, shortfall_minor=0, transferred_minor=balance, transfer_to=target.id
        )
    else:
        settlement = await _settle(session, account, balance, reason, refund)
    account.status = AccountStatus.CLOSED
    account.closed_at = now
    account.supply_allowed = False
    after = await account_view(session, account, now)
    audit.record(
        session,
        actor=actor,
        action="account.close",
        target=f"account:{account.id}",
        before=before,
        after=after.model_dump(mode="json")
        | {"settlement": settlement.model_dump(mode="json"), "reason": reason},
    )
    events.emit(
        session,
        account.id,
        AccountUpdated(
            account_id=account.id,
            balance_minor=after.balance_minor,
            emergency_credit_remaining_minor=after.emergency_credit_remaining_minor,
            debt_minor=after.debt_minor,
            low_balance_level=after.low_balance_level,
            currency=account.currency,
            supply=after.supply,
            status=AccountStatus.CLOSED,
        ),
    )
    return ClosedAccount(**after.model_dump(), settlement=settlement)


async def _settle(
    session: AsyncSession,
    account: Account,
    balance: int,
    reason: str,
    refund: RefundPayment | None,
) -> Settlement:
    """Settle a closing account's balance against its site's system books."""
    settlement = Settlement(refund_due_minor=max(balance, 0), shortfall_minor=max(-balance, 0))
    if not balance:
        return settlement
    description = f"account closed: {reason}"
    if refund is not None:  # credit paid back now (close_account checked there is some)
        name = journal.REFUNDS_PAID
        description += f"; refund paid by {refund.method}: {refund.reference}"
        settlement = settlement.model_copy(
            update={"refund_method": refund.method, "refund_reference": refund.reference}
        )
    else:
        name = journal.REFUNDS_PAYABLE if balance > 0 else journal.SETTLEMENT_WRITE_OFF
    other = await journal.system_book(session, name, account.currency, account.site_id)
    await journal.post(
        session,
        kind="settlement",
        account_id=account.id,
        description=description,
        legs=[journal.Leg(book_of(account), -balance), journal.Leg(other, balance)],
    )
    return settlement
