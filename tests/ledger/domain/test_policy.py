"""Supply policy examples: credit, emergency credit, grace, friendly hours, holidays, restore."""

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from prepaid_ledger.domain.money import parse_minor
from prepaid_ledger.domain.policy import (
    HORIZON,
    NO_FRIENDLY_HOURS,
    SupplyState,
    debt_minor,
    decide_supply,
    emergency_credit_remaining,
    first_unprotected,
    friendly_hours_to_json,
    low_balance_level,
    parse_friendly_hours,
    parse_grace_minutes,
    parse_low_balance_levels,
    protection_at,
)
from prepaid_ledger.errors import InputError

LONDON = ZoneInfo("Europe/London")
EVENINGS = {"start": "18:00", "end": "09:00"}
WHOLE_DAY = {"start": "00:00", "end": "24:00"}
# UK style: weekday evenings until the next morning, whole weekends.
UK = parse_friendly_hours(
    {
        **{day: [EVENINGS] for day in ("monday", "tuesday", "wednesday", "thursday", "friday")},
        "saturday": [WHOLE_DAY],
        "sunday": [WHOLE_DAY],
        "holidays": ["2026-12-25", "2026-12-28"],
    }
)


NAIVE = datetime(2026, 1, 1)  # noqa: DTZ001 - deliberately without offset


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def state(**changes: Any) -> SupplyState:
    base: dict[str, Any] = {
        "balance_minor": -600,
        "emergency_credit_minor": 500,
        "friendly_hours": UK,
        "grace_minutes": 30,
        "exhausted_since": at(2026, 11, 18, 10),  # a Wednesday, GMT
        "reconnect_margin_minor": 100,
        "tz": LONDON,
    }
    return SupplyState(**(base | changes))


def test_credit_and_emergency_credit_keep_supply() -> None:
    now = at(2026, 11, 18, 12)
    assert decide_supply(state(balance_minor=1), now) == (
        decide_supply(state(balance_minor=1), now)
    )
    credit = decide_supply(state(balance_minor=1, exhausted_since=None), now)
    assert (credit.allowed, credit.reason, credit.changes_at) == (True, "credit", None)
    emergency = decide_supply(state(balance_minor=-499, exhausted_since=None), now)
    assert (emergency.allowed, emergency.reason, emergency.changes_at) == (
        True,
        "emergency_credit",
        None,
    )
    zero = decide_supply(state(balance_minor=0, emergency_credit_minor=0, grace_minutes=0), now)
    assert (zero.allowed, zero.reason) == (False, "exhausted")


def test_grace_then_cut_outside_friendly_hours() -> None:
    during = decide_supply(state(), at(2026, 11, 18, 10, 10))
    assert (during.allowed, during.reason, during.changes_at) == (
        True,
        "grace",
        at(2026, 11, 18, 10, 30),
    )
    after = decide_supply(state(), at(2026, 11, 18, 10, 30))
    assert (after.allowed, after.reason, after.changes_at) == (False, "exhausted", None)


def test_grace_ending_in_friendly_hours_cuts_when_they_end() -> None:
    # Exhausted Wednesday 17:50; grace ends 18:20, inside the evening window until 09:00.
    exhausted = state(exhausted_since=at(2026, 11, 18, 17, 50))
    during = decide_supply(exhausted, at(2026, 11, 18, 18))
    assert (during.reason, during.changes_at) == ("grace", at(2026, 11, 19, 9))
    evening = decide_supply(exhausted, at(2026, 11, 18, 19))
    assert (evening.allowed, evening.reason, evening.changes_at) == (
        True,
        "friendly_hours",
        at(2026, 11, 19, 9),
    )
    morning = decide_supply(exhausted, at(2026, 11, 19, 9))
    assert (morning.allowed, morning.reason) == (False, "exhausted")


def test_friday_evening_chains_through_the_weekend() -> None:
    decision = decide_supply(state(), at(2026, 11, 20, 20))  # Friday evening
    assert (decision.allowed, decision.reason) == (True, "friendly_hours")
    # Friday 18:00 -> Saturday 09:00, then whole Saturday and Sunday: ends Monday 00:00 GMT.
    assert decision.changes_at == at(2026, 11, 23, 0)


def test_holiday_after_weekend_extends_protection() -> None:
    # Christmas 2026 is a Friday; the 28th (Monday) is a holiday too.
    decision = decide_supply(state(), at(2026, 12, 25, 12))
    assert (decision.allowed, decision.reason) == (True, "holiday")
    assert decision.changes_at == at(2026, 12, 29, 9)  # Tuesday after the evening window


def test_protection_end_follows_summer_time() -> None:
    # Friday 2026-03-27 evening, clocks go forward on Sunday: Monday 00:00 BST is 23:00 UTC.
    decision = decide_supply(state(exhausted_since=at(2026, 3, 27, 10)), at(2026, 3, 27, 20))
    assert (decision.reason, decision.changes_at) == ("friendly_hours", at(2026, 3, 29, 23))


def test_protected_account_is_never_cut() -> None:
    decision = decide_supply(
        state(protected=True, balance_minor=-(10**9), currently_allowed=False), at(2026, 11, 18, 12)
    )
    assert (decision.allowed, decision.reason, decision.changes_at) == (True, "protected", None)


def test_cut_account_waits_for_reconnect_margin() -> None:
    now = at(2026, 11, 18, 12)
    still_exhausted = decide_supply(state(currently_allowed=False, balance_minor=-500), now)
    assert (still_exhausted.allowed, still_exhausted.reason) == (False, "exhausted")
    below_margin = decide_supply(state(currently_allowed=False, balance_minor=99), now)
    assert (below_margin.allowed, below_margin.reason, below_margin.changes_at) == (
        False,
        "awaiting_reconnect_margin",
        None,
    )
    restored = decide_supply(state(currently_allowed=False, balance_minor=100), now)
    assert (restored.allowed, restored.reason) == (True, "credit")
    # Cut accounts are not reconnected by friendly hours alone.
    evening = decide_supply(
        state(currently_allowed=False, balance_minor=-600), at(2026, 11, 18, 20)
    )
    assert evening.allowed is False


def test_always_friendly_never_schedules_a_cut() -> None:
    always = parse_friendly_hours(
        {
            day: [WHOLE_DAY]
            for day in (
                "monday",
                "tuesday",
                "wednesday",
                "thursday",
                "friday",
                "saturday",
                "sunday",
            )
        }
    )
    decision = decide_supply(state(friendly_hours=always), at(2026, 11, 18, 12))
    assert (decision.allowed, decision.reason, decision.changes_at) == (
        True,
        "friendly_hours",
        None,
    )
    assert protection_at(always, LONDON, at(2026, 1, 1)) == ("friendly_hours", None)
    assert first_unprotected(NO_FRIENDLY_HOURS, LONDON, at(2026, 1, 1)) == at(2026, 1, 1)
    assert timedelta(days=366) < HORIZON


def test_no_friendly_hours_cuts_after_grace() -> None:
    decision = decide_supply(state(friendly_hours=NO_FRIENDLY_HOURS, tz=UTC), at(2026, 11, 21, 12))
    assert (decision.allowed, decision.reason) == (False, "exhausted")


def test_missing_exhausted_since_starts_grace_now() -> None:
    now = at(2026, 11, 18, 12)
    decision = decide_supply(state(exhausted_since=None), now)
    assert (decision.reason, decision.changes_at) == ("grace", now + timedelta(minutes=30))


@pytest.mark.parametrize(
    "changes",
    [
        {"emergency_credit_minor": -1},
        {"grace_minutes": -5},
        {"reconnect_margin_minor": -1},
        {"exhausted_since": NAIVE},
    ],
)
def test_bad_state_is_refused(changes: dict[str, Any]) -> None:
    with pytest.raises(InputError):
        decide_supply(state(**changes), at(2026, 11, 18, 12))


def test_naive_now_is_refused() -> None:
    with pytest.raises(InputError) as info:
        decide_supply(state(), NAIVE)
    assert info.value.code == "naive_datetime"


def test_money_helpers() -> None:
    assert emergency_credit_remaining(300, 500) == 500
    assert emergency_credit_remaining(-200, 500) == 300
    assert emergency_credit_remaining(-900, 500) == 0
    assert debt_minor(-250) == 250
    assert debt_minor(10) == 0
    assert [low_balance_level(b, [500, 100]) for b in (501, 500, 101, 100, -5)] == [0, 1, 1, 2, 2]
    assert parse_low_balance_levels([500, 100]) == [500, 100]
    assert parse_grace_minutes(60) == 60
    assert parse_minor(5, "amount_minor", minimum=1, maximum=10) == 5


@pytest.mark.parametrize("value", [[100, 500], [100], "500,100", [1.5, 1], [True, 0], [-1, -2]])
def test_bad_low_balance_levels(value: object) -> None:
    with pytest.raises(InputError):
        parse_low_balance_levels(value)


@pytest.mark.parametrize(
    ("value", "kwargs"),
    [(0, {"minimum": 1}), (11, {"maximum": 10}), ("5", {}), (5.0, {}), (False, {})],
)
def test_bad_minor_amounts(value: object, kwargs: dict[str, int]) -> None:
    with pytest.raises(InputError) as info:
        parse_minor(value, "amount_minor", **kwargs)
    assert info.value.code == "invalid_amount"
    assert "amount_minor" in info.value.message


def test_grace_has_an_upper_bound() -> None:
    with pytest.raises(InputError):
        parse_grace_minutes(7 * 24 * 60 + 1)


def test_friendly_hours_round_trip() -> None:
    assert parse_friendly_hours(friendly_hours_to_json(UK)) == UK
    assert parse_friendly_hours(None) == NO_FRIENDLY_HOURS
    assert parse_friendly_hours({}).is_empty()
    assert not UK.is_empty()
    assert friendly_hours_to_json(UK)["monday"] == [EVENINGS]
    assert friendly_hours_to_json(UK)["holidays"] == ["2026-12-25", "2026-12-28"]
    assert date(2026, 12, 25) in UK.holidays


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ([], "object"),
        ({"mon": []}, "mon"),
        ({"monday": {"start": "18:00", "end": "09:00"}}, "friendly_hours.monday"),
        ({"monday": [{"start": "18:00"}]}, "friendly_hours.monday[0]"),
        ({"monday": [{"start": "24:00", "end": "09:00"}]}, "friendly_hours.monday[0].start"),
        ({"monday": [{"start": "18:00", "end": "9:00"}]}, "friendly_hours.monday[0].end"),
        ({"monday": [{"start": "18:00", "end": "18:00"}]}, "friendly_hours.monday[0]"),
        ({"monday": [EVENINGS] * 9}, "friendly_hours.monday"),
        ({"holidays": "2026-12-25"}, "holidays"),
        ({"holidays": ["2026-02-30"]}, "holidays[0]"),
        ({"holidays": ["20261225"]}, "holidays[0]"),
        ({"holidays": [20261225]}, "holidays[0]"),
        ({"holidays": ["2026-01-01"] * 1001}, "holidays"),
    ],
)
def test_bad_friendly_hours(payload: object, field: str) -> None:
    with pytest.raises(InputError) as info:
        parse_friendly_hours(payload)
    assert info.value.code == "invalid_friendly_hours"
    assert field in info.value.message
