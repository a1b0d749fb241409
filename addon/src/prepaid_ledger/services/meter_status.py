"""A meter's live status for dashboards: total cost, the current price and days left.

Computed by the ledger so that Home Assistant never re-implements tariff or charging rules.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from prepaid_meter_contract.resources import MeterStatus, Price
from prepaid_meter_contract.vocabulary import ReadingStatus
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from prepaid_ledger.domain.charging import TOTAL_BAND, tariff_at
from prepaid_ledger.domain.forecast import FORECAST_DAYS, current_rate
from prepaid_ledger.domain.runout import Forecast, Load, estimate_days_left, from_history
from prepaid_ledger.domain.tariffs import period_keys
from prepaid_ledger.services.accounts import balance_of, get_account
from prepaid_ledger.services.meters import get_meter, meter_view
from prepaid_ledger.services.tariffs import versions_for_pricing
from prepaid_ledger.store.models import (
    Account,
    ChargeLine,
    ChargeState,
    Meter,
    PeriodUsage,
    Reading,
)


async def daily_costs(
    session: AsyncSession, account_id: int, first: date, end: date
) -> dict[date, int]:
    """Charged minor units per local day from FIRST up to (not including) END; days with charges."""
    rows = await session.execute(
        select(ChargeLine.day, func.sum(ChargeLine.amount_minor))
        .where(ChargeLine.account_id == account_id, ChargeLine.day >= first, ChargeLine.day < end)
        .group_by(ChargeLine.day)
    )
    return {day: int(total) for day, total in rows}


#: Readings that show consumption the ledger believed (held and flagged ones do not count).
_OBSERVED: tuple[str, ...] = (
    ReadingStatus.BASELINE,
    ReadingStatus.CHARGED,
    ReadingStatus.CHARGED_WRAP,
    ReadingStatus.IGNORED_NOISE,
)
#: How far back an estimate from the first hours looks for readings (it is made only while
#: no complete local day exists, so this always holds all of them).
_ESTIMATE_WINDOW = timedelta(days=2)


async def daily_cost_history(session: AsyncSession, account: Account, now: datetime) -> list[int]:
    """Charged minor units per complete local day, oldest first, over the forecast window.

    Averages only over complete days since the first charged one (a new account's quiet first
    days are not "free" days), always excluding today's partial day, and excluding the first
    charged day when the account's readings began after its local midnight (a day with only
    its last hours of consumption would promise far more days than the credit buys).
    """
    tz = ZoneInfo(account.timezone)
    today = now.astimezone(tz).date()
    daily = await daily_costs(session, account.id, today - timedelta(days=FORECAST_DAYS), today)
    if not daily:
        return []
    first = min(daily)
    first_midnight = datetime.combine(first, time(0), tzinfo=tz)
    earliest = await session.scalar(
        select(func.min(Reading.at)).where(
            Reading.account_id == account.id, Reading.status.in_(_OBSERVED)
        )
    )
    if earliest is None or earliest > first_midnight:
        first += timedelta(days=1)
    return [daily.get(first + timedelta(days=i), 0) for i in range((today - first).days)]


async def _recent_loads(session: AsyncSession, account: Account, now: datetime) -> list[Load]:
    """Each of the account's meters' consumption over the recent readings, for an estimate."""
    loads: list[Load] = []
    meters = (await session.scalars(select(Meter).where(Meter.account_id == account.id))).all()
    for meter in meters:
        rows = (
            await session.execute(
                select(Reading.at, Reading.consumption)
                .where(
                    Reading.meter_id == meter.id,
                    Reading.account_id == account.id,
                    Reading.status.in_(_OBSERVED),
                    Reading.at >= now - _ESTIMATE_WINDOW,
                    Reading.at <= now,
                )
                .order_by(Reading.at)
            )
        ).all()
        if len(rows) < 2:
            continue
        # The first reading's consumption happened before the span it opens.
        quantity = sum((row.consumption or Decimal(0) for row in rows[1:]), Decimal(0))
        usage = await session.scalars(
            select(PeriodUsage).where(
                PeriodUsage.meter_id == meter.id, PeriodUsage.account_id == account.id
            )
        )
        loads.append(
            Load(
                versions=await versions_for_pricing(session, meter.tariff_id),
                start=rows[0].at,
                end=rows[-1].at,
                quantity=quantity,
                used_in_period={row.period: row.quantity for row in usage},
            )
        )
    return loads


async def account_forecast(
    session: AsyncSession, account: Account, now: datetime
) -> tuple[Forecast, int]:
    """Return the days the balance (plus emergency credit) lasts, with their confidence.

    The average cost of recent complete local days when there is one; before that, a
    projection of at least an hour of consumption over the tariff (``domain.runout``). Also
    how many complete days of history the forecast rests on (0 for a projection).
    """
    history = await daily_cost_history(session, account, now)
    balance = await balance_of(session, account)
    emergency = int(account.settings.get("emergency_credit_minor", 0))
    available = max(0, balance + emergency)
    if history:
        return from_history(available, history), len(history)
    loads = await _recent_loads(session, account, now)
    tz = ZoneInfo(account.timezone)
    return estimate_days_left(loads, available, account.currency, tz, now), 0


async def account_days_left(session: AsyncSession, account: Account, now: datetime) -> Forecast:
    """Days the balance (plus emergency credit) lasts and how far that can be trusted."""
    return (await account_forecast(session, account, now))[0]


async def meter_status(session: AsyncSession, meter_id: int, now: datetime) -> MeterStatus:
    """Return cost so far, the price of the next unit (with its band) and the days left."""
    meter = await get_meter(session, meter_id)
    account = await get_account(session, meter.account_id)
    tz = ZoneInfo(account.timezone)
    versions = await versions_for_pricing(session, meter.tariff_id)
    tariff = tariff_at(versions, now)
    used: dict[str, Decimal] = {}
    for key in period_keys(tariff, now, now + timedelta(seconds=1), tz):
        usage = await session.get(PeriodUsage, (meter.id, account.id, key))
        used[key] = usage.quantity if usage is not None else Decimal(0)
    rate = current_rate(tariff, now, tz, used)
    cost = await session.scalar(
        select(func.coalesce(func.sum(ChargeState.posted_minor), 0)).where(
            ChargeState.meter_id == meter.id, ChargeState.band == TOTAL_BAND
        )
    )
    forecast, history_days = await account_forecast(session, account, now)
    described = meter_view(meter)
    return MeterStatus(
        meter_id=meter.id,
        account_id=account.id,
        currency=account.currency,
        unit=meter.unit,
        cost_total_minor=int(cost or 0),
        price=Price(per_unit=rate.price, band=rate.band, kind=tariff.kind),
        days_left=forecast.days,
        days_left_confidence=forecast.confidence,
        forecast_days=history_days,
        # What the integration needs to show the meter's total as the guard judges it: the
        # last accepted reading and the guard's limits.
        last_value=described.last_value,
        last_at=described.last_at,
        limits=described.limits,
    )
