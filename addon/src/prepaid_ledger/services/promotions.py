"""Top-up promotions: the landlord's offers, and the bonus a credited top-up earns from them.

``grant`` runs inside ``topups.credit_order`` (every credit passes there), so a bonus is
credited in the same transaction as its top-up, exactly once; ``take_back`` runs inside
``topups.refund``. An offer is judged by when the order was made (a payment that confirms after
the promotion ended still earns what the tenant was promised). Use limits are counted with the
promotion's row locked, so two concurrent credits cannot both take its last use.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from prepaid_meter_contract.promotions import Promotion as PromotionView
from prepaid_meter_contract.promotions import PromotionInput, Promotions
from prepaid_meter_contract.resources import Bonus
from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from prepaid_ledger.domain.money import parse_currency
from prepaid_ledger.domain.promotions import Offer, best_offer, bonus_to_take_back
from prepaid_ledger.errors import ConflictError, InputError
from prepaid_ledger.services import audit, journal
from prepaid_ledger.services.accounts import book_of
from prepaid_ledger.services.lookup import load_by_id
from prepaid_ledger.store.models import Account, Meter, Promotion, Tariff, TopupOrder, utcnow


async def create(session: AsyncSession, request: PromotionInput, actor: str) -> PromotionView:
    """Add a promotion (from now on unless it says when), audited."""
    currency = parse_currency(request.currency)
    now = utcnow()
    if request.ends_at is not None and request.ends_at <= now:
        raise InputError("invalid_field", "ends_at must lie in the future", "ends_at")
    if request.tariff_id is not None:
        tariff = await load_by_id(session, Tariff, request.tariff_id, "tariff")
        if tariff.currency != currency:
            raise InputError(
                "currency_mismatch",
                f"tariff {tariff.id} is in {tariff.currency}, the promotion in {currency}",
                "currency",
            )
    row = Promotion(
        name=request.name,
        currency=currency,
        min_topup_minor=request.min_topup_minor,
        bonus_minor=request.bonus_minor,
        bonus_percent=request.bonus_percent,
        max_bonus_minor=request.max_bonus_minor,
        starts_at=request.starts_at or now,
        ends_at=request.ends_at,
        first_topup_only=request.first_topup_only,
        uses_per_account=request.uses_per_account,
        uses_total=request.uses_total,
        tariff_id=request.tariff_id,
        created_at=now,
        created_by=actor,
    )
    session.add(row)
    await session.flush()
    view = await promotion_view(session, row)
    audit.record(
        session,
        actor=actor,
        action="promotion.create",
        target=f"promotion:{row.id}",
        before=None,
        after=view,
    )
    return view


async def promotion_view(session: AsyncSession, row: Promotion) -> PromotionView:
    """Return a promotion as the API answers it, with its uses so far."""
    uses, granted = (
        await session.execute(
            select(func.count(), func.coalesce(func.sum(TopupOrder.bonus_minor), 0)).where(
                TopupOrder.promotion_id == row.id
            )
        )
    ).one()
    return PromotionView(
        id=row.id,
        name=row.name,
        currency=row.currency,
        min_topup_minor=row.min_topup_minor,
        bonus_minor=row.bonus_minor,
        bonus_percent=row.bonus_percent,
        max_bonus_minor=row.max_bonus_minor,
        starts_at=row.starts_at,
        ends_at=row.ends_at,
        first_topup_only=row.first_topup_only,
        uses_per_account=row.uses_per_account,
        uses_total=row.uses_total,
        tariff_id=row.tariff_id,
        created_at=row.created_at,
        created_by=row.created_by,
        ended_at=row.ended_at,
        uses=int(uses),
        granted_minor=int(granted),
    )


async def list_promotions(session: AsyncSession) -> Promotions:
    """Every promotion, newest first."""
    rows = await session.scalars(select(Promotion).order_by(Promotion.id.desc()))
    return Promotions(promotions=[await promotion_view(session, row) for row in rows])


async def end(session: AsyncSession, promotion_id: int, reason: str, actor: str) -> PromotionView:
    """End a promotion now: top-ups ordered from now on earn nothing from it."""
    row = await load_by_id(session, Promotion, promotion_id, "promotion", lock=True)
    if row.ended_at is not None:
        raise ConflictError("already_ended", f"promotion {row.id} has already ended")
    before = await promotion_view(session, row)
    row.ended_at = utcnow()
    row.ended_by = actor
    after = await promotion_view(session, row)
    audit.record(
        session,
        actor=actor,
        action="promotion.end",
        target=f"promotion:{row.id}",
        before=before,
        after=after.model_dump(mode="json") | {"reason": reason},
    )
    return after


def _running_at(at: datetime) -> ColumnElement[bool]:
    """Return the SQL condition: the promotion ran at AT (started, not past its end or ended)."""
    return (
        (Promotion.starts_at <= at)
        & or_(Promotion.ends_at.is_(None), Promotion.ends_at > at)
        & or_(Promotion.ended_at.is_(None), Promotion.ended_at > at)
    )


async def running(session: AsyncSession, currency: str, at: datetime) -> list[Promotion]:
    """Return the promotions in CURRENCY running at AT, oldest first (what a tenant is offered)."""
    found = await session.scalars(
        select(Promotion)
        .where(Promotion.currency == currency, _running_at(at))
        .order_by(Promotion.id)
    )
    return list(found)


async def _allowed(session: AsyncSession, row: Promotion, order: TopupOrder) -> bool:
    """Whether the order's account may still earn ROW's bonus (tariff, first top-up, limits)."""
    account_id = order.account_id
    if row.tariff_id is not None:
        on_tariff = await session.scalar(
            select(func.count())
            .select_from(Meter)
            .where(Meter.account_id == account_id, Meter.tariff_id == row.tariff_id)
        )
        if not on_tariff:
            return False
    if row.first_topup_only:
        earlier = await session.scalar(
            select(func.count())
            .select_from(TopupOrder)
            .where(
                TopupOrder.account_id == account_id,
                TopupOrder.transaction_id.is_not(None),
                TopupOrder.id != order.id,
            )
        )
        if earlier:
            return False
    uses = select(func.count()).select_from(TopupOrder).where(TopupOrder.promotion_id == row.id)
    if row.uses_total is not None and (await session.scalar(uses) or 0) >= row.uses_total:
        return False
    if row.uses_per_account is not None:
        mine = await session.scalar(uses.where(TopupOrder.account_id == account_id))
        if (mine or 0) >= row.uses_per_account:
            return False
    return True


async def grant(session: AsyncSession, order: TopupOrder, account: Account) -> int:
    """Credit the best bonus the order earns, as its own journal line; return it (0: none).

    Called by ``topups.credit_order`` right after the top-up's own posting.
    """
    candidates = list(
        await session.scalars(
            select(Promotion)
            .where(
                Promotion.currency == order.currency,
                Promotion.min_topup_minor <= order.amount_minor,
                _running_at(order.created_at),
            )
            .order_by(Promotion.id)
        )
    )
    if not candidates:
        return 0
    limited = [row.id for row in candidates if row.uses_total or row.uses_per_account]
    if limited:  # count uses with the rows locked: concurrent credits take turns
        await session.execute(
            select(Promotion.id).where(Promotion.id.in_(limited)).with_for_update()
        )
    offers = {row.id: row for row in candidates if await _allowed(session, row, order)}
    best = best_offer(
        (
            Offer(
                promotion_id=row.id,
                min_topup_minor=row.min_topup_minor,
                bonus_minor=row.bonus_minor,
                bonus_percent=row.bonus_percent,
                max_bonus_minor=row.max_bonus_minor,
            )
            for row in offers.values()
        ),
        order.amount_minor,
    )
    if best is None:
        return 0
    offer, bonus = best
    promotion = offers[offer.promotion_id]
    source = await journal.system_book(
        session, journal.PROMOTIONS, account.currency, account.site_id
    )
    await journal.post(
        session,
        kind="bonus",
        account_id=account.id,
        description=f"bonus for top-up order {order.id}: {promotion.name}",
        legs=[journal.Leg(book_of(account), bonus), journal.Leg(source, -bonus)],
    )
    order.promotion_id = promotion.id
    order.bonus_minor = bonus
    return bonus


async def take_back(session: AsyncSession, order: TopupOrder, account: Account) -> int:
    """After a refund of ORDER: take back the bonus's share of all refunded; return it."""
    amount = bonus_to_take_back(
        order.bonus_minor,
        order.bonus_taken_back_minor,
        order.credited_minor,
        order.refunded_minor,
    )
    if amount <= 0:
        return 0
    source = await journal.system_book(
        session, journal.PROMOTIONS, account.currency, account.site_id
    )
    await journal.post(
        session,
        kind="bonus_reversal",
        account_id=account.id,
        description=f"bonus of top-up order {order.id} taken back with its refund",
        legs=[journal.Leg(book_of(account), -amount), journal.Leg(source, amount)],
    )
    order.bonus_taken_back_minor += amount
    return amount


async def bonuses_of(session: AsyncSession, orders: Sequence[TopupOrder]) -> dict[int, Bonus]:
    """Return the bonuses these orders earned, by order id (orders without one left out)."""
    earned = [o for o in orders if o.promotion_id is not None and o.bonus_minor]
    if not earned:
        return {}
    wanted = {o.promotion_id for o in earned}
    found = await session.execute(
        select(Promotion.id, Promotion.name).where(Promotion.id.in_(wanted))
    )
    names = dict(found.tuples().all())
    return {
        o.id: Bonus(
            promotion_id=o.promotion_id,
            promotion_name=names.get(o.promotion_id, ""),
            amount_minor=o.bonus_minor,
            taken_back_minor=o.bonus_taken_back_minor,
        )
        for o in earned
        if o.promotion_id is not None
    }
