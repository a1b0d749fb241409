"""Ledger invariants: balanced transactions, stored balances equal to their entries.

Also the tariffs stored before the reserved band names were refused on input.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from prepaid_meter_contract.tariffs import RESERVED_BAND_NAMES
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from prepaid_ledger.store.models import (
    Book,
    ChargeLine,
    JournalEntry,
    JournalTransaction,
    Meter,
    TariffVersion,
)


async def verify_ledger(session: AsyncSession) -> list[str]:
    """Every violation, described; an empty list means the ledger is consistent."""
    problems: list[str] = []
    unbalanced = await session.execute(
        select(JournalEntry.transaction_id, func.sum(JournalEntry.amount_minor))
        .group_by(JournalEntry.transaction_id)
        .having(func.sum(JournalEntry.amount_minor) != 0)
    )
    problems.extend(
        f"transaction {txn_id}: entries sum to {total}, not 0" for txn_id, total in unbalanced
    )
    sums = (
        select(JournalEntry.book_id, func.sum(JournalEntry.amount_minor).label("total"))
        .group_by(JournalEntry.book_id)
        .subquery()
    )
    rows = await session.execute(
        select(Book.id, Book.key, Book.balance_minor, sums.c.total).outerjoin(
            sums, sums.c.book_id == Book.id
        )
    )
    for book_id, key, stored, total in rows:
        if int(stored) != int(total or 0):
            problems.append(
                f"book {book_id} ({key}): stored balance {stored} != sum of entries {total or 0}"
            )
    lines = (
        select(ChargeLine.transaction_id, func.sum(ChargeLine.amount_minor).label("total"))
        .group_by(ChargeLine.transaction_id)
        .subquery()
    )
    customer_legs = await session.execute(
        select(JournalTransaction.id, func.sum(JournalEntry.amount_minor), lines.c.total)
        .join(JournalEntry, JournalEntry.transaction_id == JournalTransaction.id)
        .join(Book, Book.id == JournalEntry.book_id)
        .join(lines, lines.c.transaction_id == JournalTransaction.id)
        .where(Book.kind == "customer")
        .group_by(JournalTransaction.id, lines.c.total)
    )
    for txn_id, customer_total, line_total in customer_legs:
        if int(customer_total) != -int(line_total):
            problems.append(
                f"transaction {txn_id}: charge lines {line_total} != charged {-customer_total}"
            )
    problems.extend(await _reserved_band_names(session))
    return problems


async def _reserved_band_names(session: AsyncSession) -> list[str]:
    """Meters' tariffs stored before input refused the band names the ledger uses itself.

    Only tariffs some meter is on: moving those meters to another tariff ends the problem.
    """
    versions = await session.execute(
        select(TariffVersion.tariff_id, TariffVersion.effective_from, TariffVersion.definition)
        .where(TariffVersion.tariff_id.in_(select(Meter.tariff_id)))
        .order_by(TariffVersion.tariff_id, TariffVersion.effective_from)
    )
    return [
        f"tariff {tariff_id}, version from {effective_from.isoformat()}: band {name!r} "
        "is a name the ledger uses for its own rows (charges in it may be counted twice in "
        "its meters' running totals, or shown as standing charges): check those meters' "
        "charges and move the meters to a tariff without that band name"
        for tariff_id, effective_from, definition in versions
        for name in sorted(_band_names(definition) & RESERVED_BAND_NAMES)
    ]


def _band_names(definition: Mapping[str, Any]) -> set[str]:
    """Every band name a stored tariff definition gives (segments, weekend segments, tiers)."""
    names: set[str] = set()
    for key in ("segments", "weekend_segments", "bands"):
        for item in definition.get(key) or ():
            if isinstance(item, Mapping) and isinstance(item.get("band"), str):
                names.add(item["band"])
    return names
