"""Local wall-clock time in an account's timezone, with daylight-saving changes handled.

Tariff segments, tier periods and friendly hours are defined in local wall time, but money is
charged for intervals between absolute instants. This module turns one into the other.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from functools import lru_cache
from itertools import pairwise
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from prepaid_ledger.errors import InputError

_SCAN_STEP: Final = timedelta(hours=6)
_ONE_MICROSECOND: Final = timedelta(microseconds=1)
_MAX_TZ_NAME: Final = 64


def parse_timezone(value: object, field: str = "timezone") -> ZoneInfo:
    """Return the IANA zone named by value (``"Europe/Berlin"``); InputError if unknown."""
    if not isinstance(value, str) or not value or len(value) > _MAX_TZ_NAME:
        raise InputError("invalid_timezone", f"{field} must be an IANA zone name such as 'UTC'")
    if value.startswith(("/", ".")) or ".." in value or "\\" in value:
        raise InputError("invalid_timezone", f"{field} {value!r} is not an IANA zone name")
    try:
        return ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise InputError(
            "invalid_timezone", f"{field} {value!r} is not a known IANA zone name"
        ) from None


def require_aware(value: datetime, field: str) -> datetime:
    """Refuse naive datetimes: an instant without an offset is ambiguous for money."""
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise InputError("naive_datetime", f"{field} must be a datetime with a UTC offset")
    return value


def wall_to_instants(day: date, wall: time, tz: tzinfo) -> set[datetime]:
    """Return the UTC instants a local wall time maps to (two in a fall-back hour, else one).

    A wall time inside a spring-forward gap maps to instants just around the gap; the exact
    boundary there is the transition itself, which ``offset_transitions`` supplies.
    """
    naive = datetime.combine(day, wall)
    return {naive.replace(tzinfo=tz, fold=fold).astimezone(UTC) for fold in (0, 1)}


@lru_cache(maxsize=4096)
def day_cuts(day: date, walls: tuple[time, ...], tz: tzinfo) -> tuple[datetime, ...]:
    """Return the instants of a day's boundary wall times, in order.

    Every reading of a backlog asks for the same few days: worked out once (else 20 us each).
    """
    return tuple(sorted({instant for wall in walls for instant in wall_to_instants(day, wall, tz)}))


def local_to_instant(day: date, wall: time, tz: tzinfo) -> datetime:
    """Return the first UTC instant at which the local clock reads at least ``day`` ``wall``.

    In a repeated (fall-back) hour that is the first occurrence; for a wall time skipped by a
    spring-forward gap it is the moment of the jump.
    """
    naive = datetime.combine(day, wall)
    valid = [
        instant
        for fold in (0, 1)
        if (instant := naive.replace(tzinfo=tz, fold=fold).astimezone(UTC))
        .astimezone(tz)
        .replace(tzinfo=None)
        == naive
    ]
    if valid:
        return min(valid)
    # Skipped wall time: fold=1 applies the later offset (an instant before the jump) and
    # fold=0 the earlier one (an instant after it); the jump lies between them.
    low = naive.replace(tzinfo=tz, fold=1).astimezone(UTC)
    high = naive.replace(tzinfo=tz, fold=0).astimezone(UTC)
    low, high = min(low, high), max(low, high)
    jumps = offset_transitions(low, high, tz)
    return jumps[0] if jumps else high


def _offset(instant: datetime, tz: tzinfo) -> timedelta | None:
    return instant.astimezone(tz).utcoffset()


def offset_transitions(start: datetime, end: datetime, tz: tzinfo) -> list[datetime]:
    """Return the instants in (start, end] where the zone's UTC offset changes (DST changes)."""
    found: list[datetime] = []
    low = start
    low_offset = _offset(low, tz)
    while low < end:
        high = min(low + _SCAN_STEP, end)
        high_offset = _offset(high, tz)
        if high_offset != low_offset:
            found.append(_first_with_offset(low, high, high_offset, tz))
        low, low_offset = high, high_offset
    return found


def _first_with_offset(
    low: datetime, high: datetime, wanted: timedelta | None, tz: tzinfo
) -> datetime:
    """Bisect to the first instant after low whose offset is ``wanted`` (to the microsecond)."""
    while high - low > _ONE_MICROSECOND:
        middle = low + (high - low) // 2
        if _offset(middle, tz) == wanted:
            high = middle
        else:
            low = middle
    return high


def local_pieces[K](
    start: datetime,
    end: datetime,
    tz: tzinfo,
    boundaries_on: Callable[[date], Iterable[time]],
    classify: Callable[[datetime], K],
) -> list[tuple[datetime, datetime, K]]:
    """Split [start, end] where a local-time classification changes.

    ``boundaries_on(day)`` lists the local wall times at which ``classify`` may change on that
    day; ``classify`` maps a local datetime to a key. Adjacent pieces with equal keys merge.
    Each piece is classified at its midpoint, which is exact because the classification is
    constant between consecutive boundary instants (including DST transitions).
    """
    start_utc, end_utc = start.astimezone(UTC), end.astimezone(UTC)
    if start_utc == end_utc:
        return [(start_utc, end_utc, classify(start_utc.astimezone(tz)))]
    first_day = start_utc.astimezone(tz).date() - timedelta(days=1)
    last_day = end_utc.astimezone(tz).date() + timedelta(days=1)
    cuts = {cut for cut in offset_transitions(start_utc, end_utc, tz) if cut < end_utc}
    day = first_day
    while day <= last_day:
        found = day_cuts(day, tuple(boundaries_on(day)), tz)
        inside = found[bisect_right(found, start_utc) : bisect_left(found, end_utc)]
        cuts.update(inside)
        day += timedelta(days=1)
    points = [start_utc, *sorted(cuts), end_utc]
    pieces: list[tuple[datetime, datetime, K]] = []
    for low, high in pairwise(points):
        key = classify((low + (high - low) / 2).astimezone(tz))
        if pieces and pieces[-1][2] == key:
            pieces[-1] = (pieces[-1][0], high, key)
        else:
            pieces.append((low, high, key))
    return pieces
