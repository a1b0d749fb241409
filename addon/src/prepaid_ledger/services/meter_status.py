"""A meter's live status for dashboards: total cost, the current price and days left.

Computed by the ledger so that Home Assistant never re-implements tariff or charging rules.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
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
from prepaid_ledger.services.accounts import book_of, get_account
from prepaid_ledger.services.meters import get_meter, meter_view
from prepaid_ledger.services.tariffs import versions_for_pricing
from prepaid_ledger.store.models import (
    Account,
    Book,
    ChargeLine,
    ChargeState,
    Meter,
    PeriodUsage,
    Reading,
)

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


@dataclass(frozen=True, slots=True)
class ForecastInputs:
    """What an account's forecast reads from the database: fetched for a whole list at once."""

    balance: int
    #: Charged minor units per local day over the forecast window (days with charges).
    daily: dict[date, int]
    #: The account's first reading whose consumption the ledger believed.
    earliest: datetime | None
    #: The account's meters (an estimate from the first hours reads theirs).
    meters: tuple[Meter, ...] = ()


async def forecast_inputs(
    session: AsyncSession, accounts: Sequence[Account], now: datetime
) -> dict[int, ForecastInputs]:
    """Read the forecast inputs of ACCOUNTS in four queries, however many there are."""
    if not accounts:
        return {}
    ids = [account.id for account in accounts]
    balances = dict(
        (await session.execute(select(Book.id, Book.balance_minor).where(
            Book.id.in_([book_of(a) for a in accounts])
        ))).tuples().all()
    )  # fmt: skip
    # Each account's local today differs by its zone: one window wide enough for every zone.
    first = min(now.astimezone(ZoneInfo(a.timezone)).date() for a in accounts)
    rows = await session.execute(
        select(ChargeLine.account_id, ChargeLine.day, func.sum(ChargeLine.amount_minor))
        .where(
            ChargeLine.account_id.in_(ids),
            ChargeLine.day >= first - timedelta(days=FORECAST_DAYS),
        )
        .group_by(ChargeLine.account_id, ChargeLine.day)
    )
    daily: dict[int, dict[date, int]] = {account_id: {} for account_id in ids}
    for account_id, day, total in rows:
        daily[account_id][day] = int(total)
    charged = [account_id for account_id, days in daily.items() if days]
    earliest: dict[int, datetime] = {}
    if charged:  # only an account with charges looks at when its readings began
        found = await session.execute(
            select(Reading.account_id, func.min(Reading.at))
            .where(Reading.account_id.in_(charged), Reading.status.in_(_OBSERVED))
            .group_by(Reading.account_id)
        )
        earliest = {account_id: at for account_id, at in found if at is not None}
    meters: dict[int, list[Meter]] = {account_id: [] for account_id in ids}
    for meter in await session.scalars(
        select(Meter).where(Meter.account_id.in_(ids)).order_by(Meter.id)
    ):
        meters[meter.account_id].append(meter)
    return {
        a.id: ForecastInputs(
            int(balances.get(book_of(a), 0)), daily[a.id], earliest.get(a.id), tuple(meters[a.id])
        )
        for a in accounts
    }


def daily_cost_history(account: Account, inputs: ForecastInputs, now: datetime) -> list[int]:
    """Charged minor units per complete local day, oldest first, over the forecast window.

    Averages only over complete days since the first charged one (a new account's quiet first
    days are not "free" days), always excluding today's partial day, and excluding the first
    charged day when the account's readings began after its local midnight (a day with only
    its last hours of consumption would promise far more days than the credit buys).
    """
    tz = ZoneInfo(account.timezone)
    today = now.astimezone(tz).date()
    window = today - timedelta(days=FORECAST_DAYS)
    daily = {day: minor for day, minor in inputs.daily.items() if window <= day < today}
    if not daily:
        return []
    first = min(daily)
    first_midnight = datetime.combine(first, time(0), tzinfo=tz)
    if inputs.earliest is None or inputs.earliest > first_midnight:
        first += timedelta(days=1)
    return [daily.get(first + timedelta(days=i), 0) for i in range((today - first).days)]


async def _recent_loads(
    session: AsyncSession, account: Account, meters: Sequence[Meter], now: datetime
) -> list[Load]:
    """Each of the account's meters' consumption over the recent readings, for an estimate."""
    loads: list[Load] = []
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
    session: AsyncSession, account: Account, now: datetime, inputs: ForecastInputs | None = None
) -> tuple[Forecast, int]:
    """Return the days the balance (plus emergency credit) lasts, with their confidence.

    The average cost of recent complete local days when there is one; before that, a
    projection of at least an hour of consumption over the tariff (``domain.runout``). Also
    how many complete days of history the forecast rests on (0 for a projection). INPUTS:
    read beforehand for a whole list (``forecast_inputs``), else read here.
    """
    if inputs is None:
        inputs = (await forecast_inputs(session, [account], now))[account.id]
    history = daily_cost_history(account, inputs, now)
    balance = inputs.balance
    emergency = int(account.settings.get("emergency_credit_minor", 0))
    available = max(0, balance + emergency)
    if history:
        return from_history(available, history), len(history)
    loads = await _recent_loads(session, account, inputs.meters, now)
    tz = ZoneInfo(account.timezone)
    return estimate_days_left(loads, available, account.currency, tz, now), 0


async def account_days_left(
    session: AsyncSession, account: Account, now: datetime, inputs: ForecastInputs | None = None
) -> Forecast:
    """Days the balance (plus emergency credit) lasts and how far that can be trusted."""
    return (await account_forecast(session, account, now, inputs))[0]


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
