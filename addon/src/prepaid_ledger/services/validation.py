"""Small checks for JSON request fields; every failure is an InputError naming the field."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Final

from prepaid_meter_contract.wire import (
    MAX_ID,
    check_time_window,
    check_timestamp,
    describe,
)
from pydantic import BaseModel, ValidationError

from prepaid_ledger.errors import InputError, wire_rule


def parse_model[M: BaseModel](model: type[M], data: object, *, now: datetime | None = None) -> M:
    """Read a parsed JSON body into a contract model, or fail naming the first field at fault.

    ``now`` (the ledger's clock) lets observed times be refused when they lie in the future.
    """
    try:
        return model.model_validate(data, context=None if now is None else {"now": now})
    except ValidationError as err:
        wrong = describe(err)
        raise InputError(wrong.code, wrong.message(), wrong.field) from None


def bound_time(value: datetime, field: str) -> datetime:
    """Return an aware time inside [EARLIEST_TIME, LATEST_TIME) or fail naming the field."""
    with wire_rule(field):
        return check_time_window(value)


def parse_time(value: object, field: str) -> datetime:
    """Return an ISO-8601 timestamp with an offset inside the accepted window.

    Naive times are ambiguous and rejected. Every time any route accepts comes through here
    (or ``bound_time``, or the contract's ``Timestamp``), so none can overflow later.
    """
    if isinstance(value, datetime):  # only text comes from JSON
        raise InputError("invalid_field", f"{field} must be an ISO-8601 timestamp string")
    with wire_rule(field):
        return check_timestamp(value)


def require_id(value: str) -> int:
    """Return a positive integer path id."""
    if not (value.isascii() and value.isdigit()) or len(value) > 18:
        raise InputError("invalid_id", "id must be a positive integer")
    return int(value)


def in_id_range(value: int) -> bool:
    """Tell whether an integer can be a row id (larger ones cannot exist and overflow SQL)."""
    return 1 <= value <= MAX_ID


#: Deepest JSON nesting any request of ours needs is 4 (a tariff's bands); 32 leaves room and
#: keeps a body nested 100,000 deep from reaching a recursive walk.
MAX_JSON_DEPTH: Final = 32


def _too_deep(value: object, limit: int) -> bool:
    """Return whether containers nest deeper than ``limit`` (iterative: no recursion)."""
    containers = (dict, list)  # isinstance checks a tuple faster than dict | list
    if not isinstance(value, containers):
        return False
    # Only containers go on the stack: a backlog's 5,000 readings are 15,000 scalars.
    stack: list[tuple[dict[str, object] | list[object], int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        children = item.values() if isinstance(item, dict) else item
        stack.extend((child, depth + 1) for child in children if isinstance(child, containers))
    return False


def loads_bounded(raw: bytes | str, where: str = "request body") -> object:
    """Parse JSON that must be UTF-8, at most MAX_JSON_DEPTH deep, and valid Unicode text."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        value = json.loads(text)
    except UnicodeDecodeError as err:
        raise InputError("invalid_json", f"{where} is not UTF-8 text") from err
    except json.JSONDecodeError as err:
        raise InputError("invalid_json", f"{where} is not valid JSON: {err}") from err
    except RecursionError as err:
        raise InputError("too_deep", f"{where} nests deeper than {MAX_JSON_DEPTH}") from err
    if _too_deep(value, MAX_JSON_DEPTH):
        raise InputError("too_deep", f"{where} nests deeper than {MAX_JSON_DEPTH}")
    reject_lone_surrogates(value, where)
    return value


def reject_lone_surrogates(value: object, where: str = "request body") -> None:
    """Refuse text that is not valid Unicode (a lone surrogate escape such as udb35)."""
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as err:
        raise InputError("invalid_unicode", f"{where} contains invalid Unicode text") from err
