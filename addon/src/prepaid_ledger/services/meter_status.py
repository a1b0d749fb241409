"""A meter's live status for dashboards: total cost, the current price and days left.

Computed by the ledger so that Home Assistant never re-implements tariff or charging rules.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from prepaid_meter_contract.resources import MeterStatus, Price
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from prepaid_ledger.domain.charging import TOTAL_BAND, tariff_at
from prepaid_ledger.domain.forecast import FORECAST_DAYS, current_rate, days_left
from prepaid_ledger.domain.tariffs import period_keys
from prepaid_ledger.services.accounts import balance_of, get_account
from prepaid_ledger.services.meters import get_meter, meter_view
from prepaid_ledger.services.tariffs import versions_for_pricing
from prepaid_ledger.store.models import Account, ChargeLine, ChargeState, PeriodUsage


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


async def daily_cost_history(session: AsyncSession, account: Account, now: datetime) -> list[int]:
    """Charged minor units per complete local day, oldest first, over the forecast window.

    Averages only over complete days since the first charged one (a new account's quiet first
    days are not "free" days), always excluding today's partial day.
    """
    today = now.astimezone(ZoneInfo(account.timezone)).date()
    daily = await daily_costs(session, account.id, today - timedelta(days=FORECAST_DAYS), today)
    if not daily:
        return []
    first = min(daily)
    return [daily.get(first + timedelta(days=i), 0) for i in range((today - first).days)]


async def account_forecast(
    session: AsyncSession, account: Account, now: datetime
) -> tuple[Decimal | None, int]:
    """Return the days the balance (plus emergency credit) lasts at the recent daily cost.

    Also how many complete days of history that rests on; None without a complete day.
    """
    history = await daily_cost_history(session, account, now)
    balance = await balance_of(session, account)
    emergency = int(account.settings.get("emergency_credit_minor", 0))
    return days_left(max(0, balance + emergency), history), len(history)


async def account_days_left(
    session: AsyncSession, account: Account, now: datetime
) -> Decimal | None:
    """Days the balance (plus emergency credit) lasts at the recent daily cost, or None."""
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
        days_left=forecast,
        forecast_days=history_days,
        # What the integration needs to show the meter's total as the guard judges it: the
        # last accepted reading and the guard's limits.
        last_value=described.last_value,
        last_at=described.last_at,
        limits=described.limits,
    )
