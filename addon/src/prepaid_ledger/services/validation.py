"""Small checks for JSON request fields; every failure is an InputError naming the field."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from prepaid_ledger.domain.errors import InputError


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


def parse_time(value: object, field: str) -> datetime:
    """Return an ISO-8601 timestamp with an offset (naive times are ambiguous and rejected)."""
    if not isinstance(value, str):
        raise InputError("invalid_field", f"{field} must be an ISO-8601 timestamp string")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as err:
        raise InputError("invalid_field", f"{field} is not a valid ISO-8601 timestamp") from err
    if parsed.tzinfo is None:
        raise InputError("invalid_field", f"{field} must include a UTC offset")
    return parsed


def optional_time(data: Mapping[str, object], field: str) -> datetime | None:
    """Return an ISO-8601 timestamp or absent/null."""
    value = data.get(field)
    return None if value is None else parse_time(value, field)


def require_id(value: str) -> int:
    """Return a positive integer path id."""
    if not (value.isascii() and value.isdigit()) or len(value) > 18:
        raise InputError("invalid_id", "id must be a positive integer")
    return int(value)


MAX_ID = 2**62


def in_id_range(value: int) -> bool:
    """Tell whether an integer can be a row id (larger ones cannot exist and overflow SQL)."""
    return 1 <= value <= MAX_ID


def reject_lone_surrogates(value: object, where: str = "request body") -> None:
    """Refuse text that is not valid Unicode (a lone surrogate escape such as udb35)."""
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as err:
        raise InputError("invalid_unicode", f"{where} contains invalid Unicode text") from err
