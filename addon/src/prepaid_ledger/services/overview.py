"""The landlord's month at a glance, for one site or all: a handful of grouped queries.

Money in is what top-ups credited to the rooms' balances (refunds paid back counted apart);
consumption is what the charge lines say, by the rooms' own local days (the days statements
use). Top-ups are dated by the landlord's time zone.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from prepaid_meter_contract.overview import (
    CurrencyOverview,
    DayMoney,
    OrderCounts,
    Overview,
    RoomCounts,
    UnitUse,
)
from prepaid_meter_contract.vocabulary import AccountStatus, OrderStatus
from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from prepaid_ledger.domain.charging import STANDING_BAND
from prepaid_ledger.domain.money import EXACT, currency_exponent
from prepaid_ledger.services.sites import site_accounts
from prepaid_ledger.services.statement import charge_sums
from prepaid_ledger.store.models import (
    Account,
    ChargeLine,
    JournalEntry,
    JournalTransaction,
    Meter,
    TopupOrder,
)

#: How many days of history the overview's charts show.
OVERVIEW_DAYS = 30


async def build_overview(
    session: AsyncSession, *, site_id: int | None, timezone: str, now: datetime
) -> Overview:
    """Return this month's totals and the last OVERVIEW_DAYS days (SITE_ID: one site, or all)."""
    tz = ZoneInfo(timezone)
    today = now.astimezone(tz).date()
    first_day = today - timedelta(days=OVERVIEW_DAYS - 1)
    month_start = today.replace(day=1)
    since = min(first_day, month_start)
    in_site = site_accounts(site_id)
    money = await _money(session, in_site, tz, since)
    charged = await _charged(session, in_site, since)
    use = await _use(session, in_site, since)

    def money_view(currency: str) -> CurrencyOverview:
        days = {d: DayMoney(day=d) for d in _days(first_day, today)}
        totals = [0, 0, 0]
        for day, (topups, refunds) in money.get(currency, {}).items():
            if day >= month_start:
                totals[0] += topups
                totals[1] += refunds
            if day in days:
                days[day] = days[day].model_copy(
                    update={"topups_minor": topups, "refunds_minor": refunds}
                )
        for day, minor in charged.get(currency, {}).items():
            if day >= month_start:
                totals[2] += minor
            if day in days:
                days[day] = days[day].model_copy(update={"charged_minor": minor})
        return CurrencyOverview(
            currency=currency,
            currency_exponent=currency_exponent(currency),
            topups_this_month_minor=totals[0],
            refunds_this_month_minor=totals[1],
            charged_this_month_minor=totals[2],
            days=list(days.values()),
        )

    return Overview(
        timezone=timezone,
        month_start=month_start,
        first_day=first_day,
        last_day=today,
        money=[money_view(c) for c in sorted(set(money) | set(charged))],
        use=[
            UnitUse(
                unit=unit,
                this_month=_exact_sum(q for d, q in by_day.items() if d >= month_start),
                days={d: q for d, q in sorted(by_day.items()) if d >= first_day},
            )
            for unit, by_day in sorted(use.items())
        ],
        rooms=await _rooms(session, site_id),
        orders=await _orders(session, in_site, site_id),
    )


def _exact_sum(quantities: Iterable[Decimal]) -> Decimal:
    total = Decimal(0)
    for quantity in quantities:
        total = EXACT.add(total, quantity)
    return total


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


async def _money(
    session: AsyncSession, in_site: Any, tz: ZoneInfo, since: date
) -> dict[str, dict[date, tuple[int, int]]]:
    """Top-ups credited and refunds paid, per currency and the landlord's local day."""
    start = datetime.combine(since, time(0), tzinfo=tz)
    rows = await session.execute(
        select(
            JournalTransaction.kind,
            JournalTransaction.created_at,
            Account.currency,
            JournalEntry.amount_minor,
        )
        .join(JournalEntry, JournalEntry.transaction_id == JournalTransaction.id)
        .join(Account, Account.book_id == JournalEntry.book_id)
        .where(
            JournalTransaction.kind.in_(("topup", "refund")),
            JournalTransaction.created_at >= start,
            Account.id.in_(in_site),
        )
    )
    found: dict[str, dict[date, tuple[int, int]]] = defaultdict(dict)
    for kind, at, currency, amount in rows:
        day = at.astimezone(tz).date()
        topups, refunds = found[currency].get(day, (0, 0))
        if kind == "topup":
            topups += amount
        else:
            refunds -= amount  # a refund takes money off the room's balance
        found[currency][day] = (topups, refunds)
    return found


async def _charged(session: AsyncSession, in_site: Any, since: date) -> dict[str, dict[date, int]]:
    """Consumption and standing charges posted, per currency and the rooms' local day."""
    rows = await session.execute(
        select(ChargeLine.day, Account.currency, func.sum(ChargeLine.amount_minor))
        .join(Account, Account.id == ChargeLine.account_id)
        .where(ChargeLine.day >= since, ChargeLine.account_id.in_(in_site))
        .group_by(ChargeLine.day, Account.currency)
    )
    found: dict[str, dict[date, int]] = defaultdict(dict)
    for day, currency, minor in rows:
        found[currency][day] = int(minor or 0)
    return found


async def _use(session: AsyncSession, in_site: Any, since: date) -> dict[str, dict[date, Decimal]]:
    """Quantities used, per unit and the rooms' local day (exact decimals)."""
    lines = await charge_sums(session, ChargeLine.day >= since, ChargeLine.account_id.in_(in_site))
    meters = {line.meter_id for line in lines if line.meter_id is not None}
    units: dict[int, str] = {}
    if meters:
        rows = await session.execute(select(Meter.id, Meter.unit).where(Meter.id.in_(meters)))
        units = {int(meter_id): str(unit) for meter_id, unit in rows}
    found: dict[str, dict[date, Decimal]] = defaultdict(dict)
    for line in lines:
        if line.band == STANDING_BAND or line.meter_id not in units:
            continue
        by_day = found[units[line.meter_id]]
        by_day[line.day] = EXACT.add(by_day.get(line.day, Decimal(0)), line.quantity)
    return found


async def _rooms(session: AsyncSession, site_id: int | None) -> RoomCounts:
    """Count the rooms (open, cut off, low on credit, closed) and the meters linked to them."""
    is_open = Account.status == AccountStatus.OPEN.value
    query = select(
        func.sum(case((is_open, 1), else_=0)),
        func.sum(case((is_open & Account.supply_allowed.is_(False), 1), else_=0)),
        func.sum(case((is_open & (Account.alert_level > 0), 1), else_=0)),
        func.sum(case((~is_open, 1), else_=0)),
    )
    if site_id is not None:
        query = query.where(Account.site_id == site_id)
    counts = (await session.execute(query)).one()
    opened, off, low, closed = (int(n or 0) for n in counts)
    meters = select(func.count()).select_from(Meter).join(Account, Account.id == Meter.account_id)
    if site_id is not None:
        meters = meters.where(Account.site_id == site_id)
    linked = int(await session.scalar(meters) or 0)
    return RoomCounts(open=opened, supply_off=off, low=low, closed=closed, meters=linked)


async def _orders(session: AsyncSession, in_site: Any, site_id: int | None) -> OrderCounts:
    """Count the orders waiting for a person or for the payment provider."""
    wanted = (OrderStatus.NEEDS_ATTENTION, OrderStatus.PROCESSING, OrderStatus.PENDING)
    query = (
        select(TopupOrder.status, func.count())
        .where(TopupOrder.status.in_(wanted))
        .group_by(TopupOrder.status)
    )
    if site_id is not None:  # a site's orders are its rooms'; unclaimed ones are the landlord's
        query = query.where(TopupOrder.account_id.in_(in_site))
    counts = {status: int(n) for status, n in await session.execute(query)}
    return OrderCounts(
        needs_attention=counts.get(OrderStatus.NEEDS_ATTENTION, 0),
        processing=counts.get(OrderStatus.PROCESSING, 0),
        pending=counts.get(OrderStatus.PENDING, 0),
    )
