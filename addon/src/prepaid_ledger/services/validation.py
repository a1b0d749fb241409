"""Small checks for JSON request fields; every failure is an InputError naming the field."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from prepaid_meter_contract.wire import (
    MAX_ID,
    check_not_in_future,
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


def require_mapping(value: object, field: str = "body") -> Mapping[str, object]:
    """Return a JSON object."""
    if not isinstance(value, Mapping):
        raise InputError("invalid_field", f"{field} must be a JSON object")
    return value


def require_str(data: Mapping[str, object], field: str, *, max_length: int = 200) -> str:
    """Return a non-empty string."""
    value = data.get(field)
    if not isinstance(value, str) or not value.strip():
        raise InputError("invalid_field", f"{field} must be a non-empty string")
    if len(value) > max_length:
        raise InputError("invalid_field", f"{field} must be at most {max_length} characters")
    return value.strip()


def optional_str(data: Mapping[str, object], field: str, *, max_length: int = 200) -> str | None:
    """Return a non-empty string or absent/null."""
    if data.get(field) is None:
        return None
    return require_str(data, field, max_length=max_length)


def require_int(
    data: Mapping[str, object],
    field: str,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
    default: int | None = None,
) -> int:
    """Return an integer (never a bool or float) within bounds."""
    value = data.get(field, default)
    if value is None or isinstance(value, bool) or not isinstance(value, int):
        raise InputError("invalid_field", f"{field} must be an integer")
    if minimum is not None and value < minimum:
        raise InputError("invalid_field", f"{field} must be >= {minimum}")
    if maximum is not None and value > maximum:
        raise InputError("invalid_field", f"{field} must be <= {maximum}")
    return value


def optional_bool(data: Mapping[str, object], field: str, *, default: bool) -> bool:
    """Return a JSON boolean."""
    value = data.get(field, default)
    if not isinstance(value, bool):
        raise InputError("invalid_field", f"{field} must be true or false")
    return value


def require_timezone(data: Mapping[str, object], field: str = "timezone") -> str:
    """Return an IANA time zone name."""
    name = require_str(data, field, max_length=64)
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as err:
        raise InputError("invalid_field", f"{field} is not a known IANA time zone") from err
    return name


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


def not_in_future(value: datetime, field: str, now: datetime) -> datetime:
    """Return an observed time that is not more than MAX_CLOCK_SKEW ahead of ``now``."""
    with wire_rule(field):
        return check_not_in_future(value, now)


def optional_time(data: Mapping[str, object], field: str) -> datetime | None:
    """Return an ISO-8601 timestamp or absent/null."""
    value = data.get(field)
    return None if value is None else parse_time(value, field)


def optional_observed_time(data: Mapping[str, object], field: str, now: datetime) -> datetime:
    """Return when something was observed: absent/null means now; never in the future."""
    value = optional_time(data, field)
    return now if value is None else not_in_future(value, field, now)


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
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: list[object] = list(item.values())
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
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
