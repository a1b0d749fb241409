"""Finding accounts among thousands: server-side search, filters, sorts and cursor pages.

The landlord page and the API never load every account: a page is one indexed query (plus the
page's own views), whatever the ledger holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from prepaid_meter_contract.resources import LastTopup
from prepaid_meter_contract.vocabulary import AccountStatus, OrderStatus
from sqlalchemy import Select, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from prepaid_ledger.domain.account_number import normalize_account_number
from prepaid_ledger.errors import InputError
from prepaid_ledger.services.paging import (
    Order,
    Page,
    contains,
    cut_page,
    decode_cursor,
    page_query,
)
from prepaid_ledger.store.models import Account, Book, TopupOrder

_BALANCE = func.coalesce(Book.balance_minor, 0)
#: The sorts a list offers; "-name" is the same order reversed. The account id breaks ties.
SORTS: dict[str, tuple[Any, ...]] = {
    "name": (func.lower(Account.name), Account.id),
    "number": (func.coalesce(Account.number, ""), Account.id),
    "balance": (_BALANCE, Account.id),
    "created": (Account.id,),
}
SORT_NAMES = tuple(name for sort in SORTS for name in (sort, f"-{sort}"))


@dataclass(frozen=True)
class AccountFilter:
    """What a landlord is looking for: text, site, status, supply, low credit; in which order."""

    search: str | None = None
    site_id: int | None = None
    status: AccountStatus | None = None
    supply: Literal["on", "off"] | None = None
    low: bool = False
    sort: str = "name"


def sort_order(name: str) -> Order:
    """Return the page order for a sort name such as ``balance`` or ``-balance``."""
    if name not in SORT_NAMES:
        raise InputError("invalid_field", f"sort must be one of {', '.join(SORT_NAMES)}", "sort")
    descending = name.startswith("-")
    return Order(f"accounts:{name}", SORTS[name.removeprefix("-")], descending)


def _matching(wanted: AccountFilter) -> Select[Any]:
    """Select the accounts matching the filter (with their book, for the balance)."""
    query: Select[Any] = select(Account).outerjoin(Book, Book.id == Account.book_id)
    if wanted.search:
        text = wanted.search
        terms: list[ColumnElement[bool]] = [
            func.lower(Account.name).like(contains(text.lower()), escape="\\")
        ]
        digits = normalize_account_number(text)
        if digits.isascii() and digits.isdigit():
            terms.append(Account.number.like(contains(digits), escape="\\"))
        if text.isascii() and text.isdigit() and len(text) <= 12:
            terms.append(Account.id == int(text))
        query = query.where(or_(*terms))
    if wanted.site_id is not None:
        query = query.where(Account.site_id == wanted.site_id)
    if wanted.status is not None:
        query = query.where(Account.status == wanted.status.value)
    if wanted.supply is not None:
        query = query.where(Account.supply_allowed.is_(wanted.supply == "on"))
    if wanted.low:
        query = query.where(Account.alert_level > 0)
    return query


async def find_accounts(
    session: AsyncSession, wanted: AccountFilter, cursor: str | None, limit: int
) -> tuple[Page[Account], int]:
    """Return one page of matching accounts and how many match in all."""
    order = sort_order(wanted.sort)
    after = decode_cursor(order, cursor)
    matching = _matching(wanted)
    total = await session.scalar(select(func.count()).select_from(matching.subquery()))
    query = page_query(matching.add_columns(*order.columns), order, after, limit)
    rows = (await session.execute(query)).all()
    page = cut_page(rows, order, limit, key=lambda row: tuple(row[1:]))
    return Page([row[0] for row in page.rows], page.next_cursor), int(total or 0)


async def last_topups(session: AsyncSession, account_ids: list[int]) -> dict[int, LastTopup]:
    """Return each account's newest succeeded top-up (one query for a whole page)."""
    if not account_ids:
        return {}
    newest = (
        select(func.max(TopupOrder.id))
        .where(
            TopupOrder.account_id.in_(account_ids),
            TopupOrder.status.in_((OrderStatus.SUCCEEDED, OrderStatus.PARTIALLY_REFUNDED)),
        )
        .group_by(TopupOrder.account_id)
    )
    orders = await session.scalars(select(TopupOrder).where(TopupOrder.id.in_(newest)))
    return {
        order.account_id: LastTopup(
            order_id=order.id,
            amount_minor=order.amount_minor,
            currency=order.currency,
            at=order.created_at,
        )
        for order in orders
        if order.account_id is not None
    }
