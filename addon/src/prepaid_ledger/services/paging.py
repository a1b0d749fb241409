"""Cursor pages for every list the API serves, so a ledger with 10,000 rooms answers at once.

A page is the next LIMIT rows after the last row a client saw, in one fixed order whose last
column is unique (keyset pagination): no OFFSET to scan past, no row skipped or repeated when
rows are added between pages. The cursor is opaque to clients: the order's name and the last
row's sort values, base64url-encoded JSON; a cursor from another order or a forged one is a
422 that names the ``cursor`` field, never a 500.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Select, SQLColumnExpression, literal, tuple_
from sqlalchemy.sql.elements import ColumnElement

from prepaid_ledger.errors import InputError

#: The longest search text a list takes (longer is an error, not a slow scan).
MAX_SEARCH = 100
_MAX_CURSOR = 512


@dataclass(frozen=True)
class Order:
    """A list's sort order: its name (kept in cursors) and columns, the last one unique."""

    name: str
    columns: tuple[SQLColumnExpression[Any], ...]
    descending: bool = False


@dataclass(frozen=True)
class Page[T]:
    """One page of rows and the cursor of the next page (None on the last)."""

    rows: list[T]
    next_cursor: str | None


def encode_cursor(order: Order, values: Sequence[Any]) -> str:
    """Return the opaque cursor after a row with these sort VALUES."""
    raw = json.dumps({"o": order.name, "k": list(values)}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(order: Order, cursor: str | None) -> tuple[Any, ...] | None:
    """Return the sort values a cursor carries, or None for the first page (422 if forged)."""
    if cursor is None or cursor == "":
        return None
    problem = InputError(
        "invalid_field", "cursor is not one this list gave out (start again without it)", "cursor"
    )
    if len(cursor) > _MAX_CURSOR or not cursor.isascii():
        raise problem
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise problem from None
    if not isinstance(data, dict) or data.get("o") != order.name:
        raise problem
    values = data.get("k")
    if not isinstance(values, list) or len(values) != len(order.columns):
        raise problem
    if not all(isinstance(v, (str, int)) and not isinstance(v, bool) for v in values):
        raise problem
    return tuple(values)


def search_text(raw: str | None) -> str | None:
    """Return a list's ?q= search text, trimmed (None when empty; 422 when too long)."""
    text = (raw or "").strip()
    if len(text) > MAX_SEARCH:
        raise InputError("invalid_field", f"q must be at most {MAX_SEARCH} characters", "q")
    return text or None


def contains(text: str) -> str:
    """Return a LIKE pattern matching TEXT anywhere, its wildcards taken as text."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def page_query[Q: Select[Any]](
    query: Q, order: Order, after: tuple[Any, ...] | None, limit: int
) -> Q:
    """Order QUERY, start it after the cursor's row and fetch one row more than LIMIT."""
    key = tuple_(*order.columns)
    if after is not None:  # each value bound with its column's type (times stored as text)
        bound = tuple_(
            *(
                literal(v, cast("ColumnElement[Any]", c).type)
                for v, c in zip(after, order.columns, strict=True)
            )
        )
        query = query.where(key < bound if order.descending else key > bound)
    columns = [c.desc() if order.descending else c.asc() for c in order.columns]
    return query.order_by(*columns).limit(limit + 1)


def cut_page[T](rows: Sequence[T], order: Order, limit: int, key: Any) -> Page[T]:
    """Return LIMIT rows and, when there were more, the cursor after the last (KEY(row))."""
    shown = list(rows[:limit])
    more = len(rows) > limit
    return Page(shown, encode_cursor(order, key(shown[-1])) if more and shown else None)
