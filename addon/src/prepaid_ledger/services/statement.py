"""Account statements that tie out: opening + every line = closing, to the minor unit."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from prepaid_meter_contract.statements import (
    ConsumptionLine,
    MoneyLine,
    StandingChargeLine,
    Statement,
)
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from prepaid_ledger.domain.charging import STANDING_BAND
from prepaid_ledger.domain.money import EXACT, format_decimal
from prepaid_ledger.errors import InputError
from prepaid_ledger.services.accounts import book_of, get_account
from prepaid_ledger.services.validation import bound_time, parse_time
from prepaid_ledger.store.models import ChargeLine, JournalEntry, JournalTransaction, Meter

_SECTIONS = {
    "topup": "topups",
    "bonus": "bonuses",
    "bonus_reversal": "bonuses",
    "refund": "refunds",
    "adjustment": "adjustments",
    "settlement": "settlements",
}


def parse_bound(raw: str | None, field: str, tz: ZoneInfo) -> datetime | None:
    """Return a date (local midnight in the account's zone) or an ISO-8601 time with offset."""
    if raw is None or raw == "":
        return None
    if len(raw) != 10:
        return parse_time(raw, field)
    try:
        day = date.fromisoformat(raw)
    except ValueError as err:
        raise InputError("invalid_field", f"{field} must be YYYY-MM-DD or ISO-8601") from err
    return bound_time(datetime.combine(day, time(0), tzinfo=tz), field)


@dataclass(frozen=True, slots=True)
class ChargeSum:
    """Charge lines added up: what one meter's consumption in one band cost on one local day."""

    day: date
    band: str
    meter_id: int | None
    quantity: Decimal
    amount_minor: int


async def charge_sums(session: AsyncSession, *conditions: Any) -> list[ChargeSum]:
    """Add up the charge lines matching CONDITIONS by day, band and meter, exactly.

    The database adds the amounts (integers) and counts the lines of each quantity; the
    quantities (exact decimals stored as text, which neither database adds without a float) are
    multiplied out here. A meter's steps repeat (its register's resolution), so this reads a row
    per distinct step rather than one per line: a batch of readings every few seconds leaves
    thousands of lines a day.
    """
    rows = await session.execute(
        select(
            ChargeLine.day,
            ChargeLine.band,
            ChargeLine.meter_id,
            ChargeLine.quantity,
            func.count(),
            func.sum(ChargeLine.amount_minor),
        )
        .where(*conditions)
        .group_by(ChargeLine.day, ChargeLine.band, ChargeLine.meter_id, ChargeLine.quantity)
    )
    sums: dict[tuple[date, str, int | None], tuple[Decimal, int]] = {}
    for day, band, meter_id, quantity, count, minor in rows:
        total, amount = sums.get((day, band, meter_id), (Decimal(0), 0))
        sums[day, band, meter_id] = (
            EXACT.add(total, EXACT.multiply(quantity, Decimal(count))),
            amount + int(minor),
        )
    return [ChargeSum(*key, quantity, amount) for key, (quantity, amount) in sums.items()]


@dataclass(frozen=True, slots=True)
class Usage:
    """What an account used, per unit (kWh, m³), and what it cost, standing charges included."""

    quantities: Mapping[str, Decimal] = field(default_factory=dict)
    cost_minor: int = 0

    def __add__(self, other: Usage) -> Usage:
        quantities = dict(self.quantities)
        for unit, quantity in other.quantities.items():
            quantities[unit] = EXACT.add(quantities.get(unit, Decimal(0)), quantity)
        return Usage(quantities, self.cost_minor + other.cost_minor)


async def daily_usage(
    session: AsyncSession, account_id: int, first: date, end: date
) -> dict[date, Usage]:
    """Each local day's usage of an account from FIRST up to (not including) END; days charged.

    The same charge lines as the account's statement, by the day they were used on.
    """
    lines = await charge_sums(
        session,
        ChargeLine.account_id == account_id,
        ChargeLine.day >= first,
        ChargeLine.day < end,
    )
    meters = {line.meter_id for line in lines if line.meter_id is not None}
    units: dict[int | None, str] = {}
    if meters:
        found = await session.execute(select(Meter.id, Meter.unit).where(Meter.id.in_(meters)))
        units.update((meter_id, unit) for meter_id, unit in found)
    days: dict[date, Usage] = {}
    for line in lines:
        unit = None if line.band == STANDING_BAND else units.get(line.meter_id)
        used = Usage({unit: line.quantity} if unit else {}, line.amount_minor)
        days[line.day] = days.get(line.day, Usage()) + used
    return days


async def build_statement(
    session: AsyncSession, account_id: int, start: str | None, end: str | None
) -> Statement:
    """Return the statement of an account for [from, to) (open ends allowed)."""
    account = await get_account(session, account_id)
    tz = ZoneInfo(account.timezone)
    low = parse_bound(start, "from", tz)
    high = parse_bound(end, "to", tz)
    if low and high and high < low:
        raise InputError("invalid_field", "to must not be before from")
    book = book_of(account)

    def in_range(query: Any) -> Any:
        if low is not None:
            query = query.where(JournalTransaction.created_at >= low)
        if high is not None:
            query = query.where(JournalTransaction.created_at < high)
        return query

    opening = 0
    if low is not None:
        opening = int(
            await session.scalar(
                select(func.coalesce(func.sum(JournalEntry.amount_minor), 0))
                .join(JournalTransaction, JournalTransaction.id == JournalEntry.transaction_id)
                .where(JournalEntry.book_id == book, JournalTransaction.created_at < low)
            )
            or 0
        )
    # Money lines one by one; the charges (one per meter per batch of readings: a year of them
    # can be millions) summed by the database, their lines by day, band and quantity.
    rows = await session.execute(
        in_range(
            select(JournalTransaction, JournalEntry.amount_minor)
            .join(JournalEntry, JournalEntry.transaction_id == JournalTransaction.id)
            .where(JournalEntry.book_id == book, JournalTransaction.kind != "charge")
            .order_by(JournalTransaction.id)
        )
    )
    sections: dict[str, list[MoneyLine]] = {name: [] for name in _SECTIONS.values()}
    movement = 0
    for txn, amount in rows:
        movement += amount
        sections[_SECTIONS.get(txn.kind, "adjustments")].append(
            MoneyLine(
                transaction_id=txn.id,
                at=txn.created_at,
                description=txn.description,
                amount_minor=amount,
            )
        )

    def charge_entries(column: Any) -> Any:
        """Select COLUMN of this book's entries of charges in the period."""
        return in_range(
            select(column)
            .select_from(JournalEntry)
            .join(JournalTransaction, JournalTransaction.id == JournalEntry.transaction_id)
            .where(JournalEntry.book_id == book, JournalTransaction.kind == "charge")
        )

    charged = charge_entries(func.coalesce(func.sum(JournalEntry.amount_minor), 0))
    movement += int(await session.scalar(charged) or 0)
    charges = charge_entries(JournalEntry.transaction_id)
    consumption: dict[tuple[date, str], tuple[Decimal, int]] = {}
    standing: dict[date, int] = {}
    for line in await charge_sums(session, ChargeLine.transaction_id.in_(charges)):
        if line.band == STANDING_BAND:
            standing[line.day] = standing.get(line.day, 0) + line.amount_minor
            continue
        quantity, minor = consumption.get((line.day, line.band), (Decimal(0), 0))
        consumption[line.day, line.band] = (
            EXACT.add(quantity, line.quantity),
            minor + line.amount_minor,
        )
    consumption_lines = [
        ConsumptionLine(day=day, band=band, quantity=q, amount_minor=m)
        for (day, band), (q, m) in sorted(consumption.items())
    ]
    standing_lines = [
        StandingChargeLine(day=d, amount_minor=m) for d, m in sorted(standing.items())
    ]
    totals = {name: sum(item.amount_minor for item in items) for name, items in sections.items()}
    consumption_total = sum(m for _, m in consumption.values())
    standing_total = sum(standing.values())
    closing = opening + movement
    tie_out = (
        opening
        + totals["topups"]
        + totals["bonuses"]
        + totals["adjustments"]
        + totals["refunds"]
        + totals["settlements"]
        - consumption_total
        - standing_total
    )
    return Statement(
        account_id=account.id,
        number=account.number or "",
        currency=account.currency,
        from_=low,
        to=high,
        opening_balance_minor=opening,
        topups=sections["topups"],
        topups_total_minor=totals["topups"],
        bonuses=sections["bonuses"],
        bonuses_total_minor=totals["bonuses"],
        refunds=sections["refunds"],
        refunds_total_minor=totals["refunds"],
        adjustments=sections["adjustments"],
        adjustments_total_minor=totals["adjustments"],
        settlements=sections["settlements"],
        settlements_total_minor=totals["settlements"],
        consumption=consumption_lines,
        consumption_total_minor=consumption_total,
        standing_charges=standing_lines,
        standing_total_minor=standing_total,
        closing_balance_minor=closing,
        ties_out=tie_out == closing,
    )


#: A spreadsheet reads a cell starting with one of these as a formula (OWASP, CSV Injection).
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
#: Characters that make a text cell quoted: separators (a comma here, a semicolon or a tab in
#: spreadsheets set up for other locales), quotes and line breaks. Quoted, a cell stays one cell
#: whatever separator the reader assumes, so no formula can start mid-text.
_QUOTE_IF = frozenset(',;\t"\r\n')


class Number:
    """A cell holding a number the ledger computed; written as is, never neutralised."""

    __slots__ = ("text",)

    def __init__(self, value: int | Decimal) -> None:
        self.text = str(value) if isinstance(value, int) else format_decimal(value)


def text_cell(value: object) -> str:
    """Return a text cell (reason, name, band) neutralised as OWASP recommends, quoted if needed.

    A leading =, +, -, @, tab or carriage return gets a single quote in front, so spreadsheets
    show the text instead of evaluating it; a reason "-5" is text and is neutralised too.
    """
    text = "" if value is None else str(value)
    if text.startswith(FORMULA_TRIGGERS):
        text = "'" + text
    if _QUOTE_IF.isdisjoint(text):
        return text
    return '"' + text.replace('"', '""') + '"'


def _when(at: datetime | None) -> str:
    return at.isoformat() if at is not None else ""


def _row(cells: list[str | Number]) -> str:
    return (
        ",".join(cell.text if isinstance(cell, Number) else text_cell(cell) for cell in cells)
        + "\r\n"
    )


def statement_csv(statement: Statement) -> str:
    """Return the statement as CSV: section, date, description, quantity, amount (signed, minor).

    Numbers (quantities, amounts) are written as numbers; every text cell goes through
    text_cell, since descriptions and band names are typed by people (and tenants read this).
    """
    rows: list[list[str | Number]] = [
        ["section", "date", "description", "quantity", "amount_minor"],
    ]
    opening = Number(statement.opening_balance_minor)
    rows.append(["opening_balance", _when(statement.from_), "", "", opening])
    sections = {
        "topups": statement.topups,
        "bonuses": statement.bonuses,
        "adjustments": statement.adjustments,
        "refunds": statement.refunds,
        "settlements": statement.settlements,
    }
    for name, items in sections.items():
        rows.extend(
            [name, item.at.isoformat(), item.description, "", Number(item.amount_minor)]
            for item in items
        )
    rows.extend(
        [
            "consumption",
            line.day.isoformat(),
            line.band,
            Number(line.quantity),
            Number(-line.amount_minor),
        ]
        for line in statement.consumption
    )
    rows.extend(
        ["standing_charge", line.day.isoformat(), "", Number(1), Number(-line.amount_minor)]
        for line in statement.standing_charges
    )
    rows.append(
        ["closing_balance", _when(statement.to), "", "", Number(statement.closing_balance_minor)]
    )
    return "".join(_row(row) for row in rows)
