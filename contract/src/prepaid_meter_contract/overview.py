"""The landlord's overview: money in, consumption, rooms cut or low, orders needing a person."""

from __future__ import annotations

from datetime import date

from prepaid_meter_contract.wire import Minor, NonNegativeDecimal, PlainDecimal, WireModel


class DayMoney(WireModel):
    """One local day of one currency: top-ups credited, refunds paid, consumption charged."""

    day: date
    topups_minor: Minor = 0
    refunds_minor: Minor = 0
    charged_minor: Minor = 0


class CurrencyOverview(WireModel):
    """Money in one currency: this month's totals and each of the last days."""

    currency: str
    currency_exponent: int
    topups_this_month_minor: Minor
    refunds_this_month_minor: Minor
    charged_this_month_minor: Minor
    days: list[DayMoney]


class UnitUse(WireModel):
    """Consumption in one unit (kWh, m3): this month and each of the last days."""

    unit: str
    this_month: NonNegativeDecimal
    days: dict[date, PlainDecimal]


class RoomCounts(WireModel):
    """How many rooms are open, cut off (supply off), low on credit, closed; meters linked."""

    open: int
    supply_off: int
    low: int
    closed: int
    meters: int = 0


class OrderCounts(WireModel):
    """Orders a person should look at, by status."""

    needs_attention: int
    processing: int
    pending: int


class Overview(WireModel):
    """``GET /api/v1/overview``: the landlord's month at a glance (one site or all)."""

    timezone: str
    month_start: date
    first_day: date
    last_day: date
    money: list[CurrencyOverview]
    use: list[UnitUse]
    rooms: RoomCounts
    orders: OrderCounts
