"""Vouchers: mint a batch, void it, and redeem a code into a credited top-up exactly once.

A redemption is a top-up order (source and provider ``voucher``) created and credited in the
same transaction that marks the voucher used, so a crash leaves either both or neither, and
the voucher row (locked, and UNIQUE on its order) lets one redemption through however many
arrive at once. Guessing is bounded by waits per source (``domain/voucher_codes.wait_after``):
an unknown code is a failure of every source it came from, and a source that must wait is
refused before its code is even looked up.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from datetime import datetime

from prepaid_meter_contract.events import VoucherGuessingAlert
from prepaid_meter_contract.resources import TopupOrder as OrderView
from prepaid_meter_contract.vocabulary import AccountStatus, AlertKind
from prepaid_meter_contract.vouchers import (
    MintedBatch,
    RedeemedVoucher,
    VoucherBatch,
    VoucherBatches,
    VoucherBatchRequest,
    VoucherCode,
)
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from prepaid_ledger.domain.money import currency_exponent, parse_currency
from prepaid_ledger.domain.voucher_codes import (
    FREE_FAILURES,
    code_hash,
    grouped,
    new_code,
    wait_after,
)
from prepaid_ledger.errors import ConflictError, InputError
from prepaid_ledger.services import audit, events, topups
from prepaid_ledger.services.accounts import get_account, resolve_account_ref
from prepaid_ledger.services.lookup import load_by_id
from prepaid_ledger.store.models import Account, Voucher, VoucherAttempts, utcnow
from prepaid_ledger.store.models import VoucherBatch as BatchRow

#: The order's source and provider for a voucher top-up.
CHANNEL = "voucher"


async def batch_view(session: AsyncSession, batch: BatchRow) -> VoucherBatch:
    """Return a batch as the landlord sees it, with how many of its vouchers were redeemed."""
    redeemed = await session.scalar(
        select(func.count())
        .select_from(Voucher)
        .where(Voucher.batch_id == batch.id, Voucher.redeemed_at.is_not(None))
    )
    return VoucherBatch(
        id=batch.id,
        value_minor=batch.value_minor,
        currency=batch.currency,
        count=batch.count,
        redeemed=int(redeemed or 0),
        expires_at=batch.expires_at,
        account_id=batch.account_id,
        note=batch.note,
        created_at=batch.created_at,
        voided_at=batch.voided_at,
    )


async def mint(
    session: AsyncSession, request: VoucherBatchRequest, ledger_id: str, actor: str
) -> MintedBatch:
    """Mint a batch; its codes are in this answer only (the ledger keeps their hashes)."""
    currency = parse_currency(request.currency)
    now = utcnow()
    if request.expires_at is not None and request.expires_at <= now:
        raise InputError("invalid_field", "expires_at must lie in the future", "expires_at")
    if request.account_id is not None:
        account = await get_account(session, request.account_id)
        if account.currency != currency:
            raise InputError(
                "currency_mismatch",
                f"account {account.id} is in {account.currency}, the batch in {currency}",
                "currency",
            )
    batch = BatchRow(
        value_minor=request.value_minor,
        currency=currency,
        count=request.count,
        account_id=request.account_id,
        expires_at=request.expires_at,
        note=request.note,
        created_at=now,
        created_by=actor,
    )
    session.add(batch)
    await session.flush()
    codes = [new_code() for _ in range(request.count)]
    session.add_all(
        Voucher(batch_id=batch.id, serial=serial, code_hash=code_hash(ledger_id, code))
        for serial, code in enumerate(codes, start=1)
    )
    await session.flush()  # 10**19 codes: a repeat is a UNIQUE failure, never a shared code
    view = await batch_view(session, batch)
    audit.record(
        session,
        actor=actor,
        action="voucher.mint",
        target=f"voucher_batch:{batch.id}",
        before=None,
        after=view,
    )
    return MintedBatch(
        batch=view,
        codes=[
            VoucherCode(serial=serial, code=grouped(code))
            for serial, code in enumerate(codes, start=1)
        ],
    )


async def list_batches(session: AsyncSession) -> VoucherBatches:
    """Every batch, newest first."""
    rows = await session.scalars(select(BatchRow).order_by(BatchRow.id.desc()))
    return VoucherBatches(batches=[await batch_view(session, row) for row in rows])


async def void_batch(session: AsyncSession, batch_id: int, reason: str, actor: str) -> VoucherBatch:
    """Stop a batch's unused codes from crediting anything (used ones stay as they were)."""
    batch = await load_by_id(session, BatchRow, batch_id, "voucher batch", lock=True)
    if batch.voided_at is not None:
        raise ConflictError("already_voided", f"voucher batch {batch.id} is already void")
    before = await batch_view(session, batch)
    batch.voided_at = utcnow()
    batch.voided_by = actor
    after = await batch_view(session, batch)
    audit.record(
        session,
        actor=actor,
        action="voucher.void",
        target=f"voucher_batch:{batch.id}",
        before=before,
        after=after.model_dump(mode="json") | {"reason": reason},
    )
    return after


class Refusal(enum.StrEnum):
    """Why a well-formed code credited nothing (only ``UNKNOWN`` counts as a guess)."""

    UNKNOWN = "unknown_voucher"
    USED = "voucher_used"
    EXPIRED = "voucher_expired"
    VOIDED = "voucher_void"
    OTHER_ACCOUNT = "voucher_other_account"
    CURRENCY = "currency_mismatch"
    ACCOUNT_CLOSED = "account_closed"
    WAIT = "too_many_attempts"


@dataclass(frozen=True, slots=True)
class Redemption:
    """What one redemption did: the credited voucher, or why not (and until when to wait)."""

    redeemed: RedeemedVoucher | None = None
    refusal: Refusal | None = None
    message: str = ""
    wait_until: datetime | None = None
    #: When the refused voucher was used or expired (USED, EXPIRED), for the reader's words.
    at: datetime | None = None
    #: The voucher's currency (CURRENCY), for the reader's words.
    currency: str | None = None

    def retry_after(self, now: datetime) -> int | None:
        """Return the whole seconds to wait before another try (at least 1), if it must wait."""
        if self.refusal is not Refusal.WAIT or self.wait_until is None:
            return None
        return max(1, math.ceil((self.wait_until - now).total_seconds()))


async def _waiting_until(session: AsyncSession, sources: list[str], now: datetime) -> datetime:
    """Return the latest time any of the sources must wait until (``now`` when none waits)."""
    latest = now
    for row in await session.scalars(
        select(VoucherAttempts).where(VoucherAttempts.source.in_(sources))
    ):
        if row.locked_until is not None and row.locked_until > latest:
            latest = row.locked_until
    return latest


async def _count_failure(session: AsyncSession, sources: list[str], now: datetime) -> datetime:
    """Record one more failure of each source; return when the first of them may try again."""
    until = now
    for source in sources:
        row = await session.get(VoucherAttempts, source, with_for_update=True)
        if row is None:
            row = VoucherAttempts(source=source, failures=0, last_failure_at=now)
            session.add(row)
        row.failures += 1
        row.last_failure_at = now
        row.locked_until = now + wait_after(row.failures)
        until = max(until, row.locked_until)
    await session.flush()
    return until


async def _alert_if_guessing(
    session: AsyncSession, account_id: int, account_source: str, now: datetime
) -> None:
    """Tell the landlord (the stream, Home Assistant) once the account's wrong codes cost waits."""
    row = await session.get(VoucherAttempts, account_source)
    if row is None or row.failures <= FREE_FAILURES or row.locked_until is None:
        return
    events.emit(
        session,
        account_id,
        VoucherGuessingAlert(
            kind=AlertKind.VOUCHER_GUESSING,
            account_id=account_id,
            failures=row.failures,
            waits_until=max(row.locked_until, now),
        ),
    )


async def _forget_failures(session: AsyncSession, sources: list[str]) -> None:
    """Clear the sources' failures after a voucher was redeemed from them."""
    for source in sources:
        row = await session.get(VoucherAttempts, source, with_for_update=True)
        if row is not None:
            await session.delete(row)


async def redeem(
    session: AsyncSession,
    *,
    account_ref: int | str,
    code: str,
    ledger_id: str,
    sources: list[str],
    actor: str,
) -> Redemption:
    """Credit a voucher's value to an account exactly once, or say why not.

    ``code`` is already parsed (``voucher_codes.parse_code``): a typo never gets here.
    ``sources`` name who tried (the account, and the pay link and client address on the
    public page). Refusals are answers, not exceptions, so the failure they count is
    committed with them.
    """
    now = utcnow()
    account = await resolve_account_ref(session, account_ref, lock=True)
    sources = [f"account:{account.id}", *sources]
    wait_until = await _waiting_until(session, sources, now)
    if wait_until > now:
        return Redemption(
            refusal=Refusal.WAIT,
            message="too many wrong voucher codes: please wait before trying again",
            wait_until=wait_until,
        )
    voucher = await session.scalar(
        select(Voucher).where(Voucher.code_hash == code_hash(ledger_id, code)).with_for_update()
    )
    if voucher is None:
        until = await _count_failure(session, sources, now)
        await _alert_if_guessing(session, account.id, sources[0], now)
        return Redemption(
            refusal=Refusal.UNKNOWN,
            message="no voucher has this code: please check it",
            wait_until=until if until > now else None,
        )
    batch = await load_by_id(session, BatchRow, voucher.batch_id, "voucher batch")
    refusal = _refusal(voucher, batch, account, now)
    if refusal is not None:
        return refusal
    order = await topups.new_order(
        session,
        account=account,
        account_ref=account_ref,
        amount_minor=batch.value_minor,
        currency=batch.currency,
        source=CHANNEL,
        provider=CHANNEL,
        payment_id=f"voucher-{voucher.id}",  # UNIQUE with the provider: one order per voucher
        reference=f"voucher batch {batch.id} card {voucher.serial}",
        payment_intent=None,
        actor=actor,
    )
    voucher.redeemed_at = now
    voucher.account_id = account.id
    voucher.order_id = order.id
    await topups.credit_order(session, order, account, actor, "voucher redeemed")
    await _forget_failures(session, sources)
    view: OrderView = await topups.order_with_timeline(session, order.id)
    audit.record(
        session,
        actor=actor,
        action="voucher.redeem",
        target=f"voucher:{voucher.id}",
        before=None,
        after={"batch_id": batch.id, "serial": voucher.serial, "order_id": order.id},
    )
    return Redemption(
        redeemed=RedeemedVoucher(
            batch_id=batch.id,
            serial=voucher.serial,
            currency_exponent=currency_exponent(batch.currency),
            order=view,
        )
    )


def _refusal(
    voucher: Voucher, batch: BatchRow, account: Account, now: datetime
) -> Redemption | None:
    """Return why a real voucher cannot credit this account now, or None when it can."""
    if voucher.redeemed_at is not None:
        return Redemption(
            refusal=Refusal.USED,
            message=f"this voucher was already used on {voucher.redeemed_at:%Y-%m-%d %H:%M} UTC",
            at=voucher.redeemed_at,
        )
    if batch.voided_at is not None:
        return Redemption(refusal=Refusal.VOIDED, message="this voucher was withdrawn")
    if batch.expires_at is not None and batch.expires_at <= now:
        return Redemption(
            refusal=Refusal.EXPIRED,
            message=f"this voucher expired on {batch.expires_at:%Y-%m-%d %H:%M} UTC",
            at=batch.expires_at,
        )
    if batch.account_id is not None and batch.account_id != account.id:
        return Redemption(
            refusal=Refusal.OTHER_ACCOUNT, message="this voucher belongs to another account"
        )
    if batch.currency != account.currency:
        return Redemption(
            refusal=Refusal.CURRENCY,
            message=f"this voucher is in {batch.currency}, the account in {account.currency}",
            currency=batch.currency,
        )
    if account.status != AccountStatus.OPEN:
        return Redemption(refusal=Refusal.ACCOUNT_CLOSED, message="the account is closed")
    return None
