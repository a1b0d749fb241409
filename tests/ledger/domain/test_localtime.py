"""Local wall time to UTC instants around daylight-saving changes."""

from datetime import UTC, date, datetime, time
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from prepaid_ledger.domain.apportion import apportion
from prepaid_ledger.domain.localtime import (
    local_pieces,
    local_to_instant,
    offset_transitions,
    wall_to_instants,
)
from prepaid_ledger.domain.policy import (
    SupplyState,
    decide_supply,
    parse_friendly_hours,
    protection_at,
)
from prepaid_ledger.errors import InputError

NEW_YORK = ZoneInfo("America/New_York")


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


@pytest.mark.parametrize(
    ("day", "wall", "expected"),
    [
        (date(2026, 3, 8), time(2, 30), at(2026, 3, 8, 7)),  # skipped: the jump itself
        (date(2026, 3, 8), time(3, 0), at(2026, 3, 8, 7)),  # first instant after the jump
        (date(2026, 11, 1), time(1, 30), at(2026, 11, 1, 5, 30)),  # repeated: first occurrence
        (date(2026, 7, 1), time(12, 0), at(2026, 7, 1, 16)),
    ],
)
def test_local_to_instant(day: date, wall: time, expected: datetime) -> None:
    assert local_to_instant(day, wall, NEW_YORK) == expected


def test_wall_to_instants_gives_both_occurrences() -> None:
    assert wall_to_instants(date(2026, 11, 1), time(1, 30), NEW_YORK) == {
        at(2026, 11, 1, 5, 30),
        at(2026, 11, 1, 6, 30),
    }
    assert wall_to_instants(date(2026, 7, 1), time(12, 0), NEW_YORK) == {at(2026, 7, 1, 16)}


def test_offset_transitions_found_to_the_microsecond() -> None:
    assert offset_transitions(at(2026, 1, 1), at(2026, 12, 31), NEW_YORK) == [
        at(2026, 3, 8, 7),
        at(2026, 11, 1, 6),
    ]
    assert offset_transitions(at(2026, 1, 1), at(2026, 12, 31), UTC) == []


def test_local_pieces_merge_equal_keys() -> None:
    pieces = local_pieces(
        at(2026, 5, 1, 10),
        at(2026, 5, 3, 10),
        UTC,
        lambda day: [time(0), time(12)],
        lambda local: local.weekday() >= 5,  # 2026-05-02 is a Saturday
    )
    assert pieces == [
        (at(2026, 5, 1, 10), at(2026, 5, 2), False),
        (at(2026, 5, 2), at(2026, 5, 3, 10), True),
    ]


def test_friendly_window_starting_in_a_skipped_hour() -> None:
    # Sunday 2026-03-08 in New York: 02:30 never shows on the clock; the window starts at the jump.
    hours = parse_friendly_hours({"sunday": [{"start": "02:30", "end": "06:00"}]})
    assert protection_at(hours, NEW_YORK, at(2026, 3, 8, 6, 59)) is None
    assert protection_at(hours, NEW_YORK, at(2026, 3, 8, 7)) == (
        "friendly_hours",
        at(2026, 3, 8, 10),
    )
    state = SupplyState(
        balance_minor=-1, friendly_hours=hours, exhausted_since=at(2026, 3, 1), tz=NEW_YORK
    )
    assert decide_supply(state, at(2026, 3, 8, 6, 59)).allowed is False
    assert decide_supply(state, at(2026, 3, 8, 8)).changes_at == at(2026, 3, 8, 10)


def test_apportion_refuses_non_finite() -> None:
    with pytest.raises(InputError):
        apportion(Decimal("NaN"), [1])
