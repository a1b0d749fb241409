"""Property tests for the supply policy.

Never cut a protected account; never cut inside friendly hours or holidays (checked against a
wall-clock reference); ``changes_at`` lies in the future, the decision holds until then and
really flips there.
"""

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st
from prepaid_ledger.domain.policy import (
    HORIZON,
    WEEKDAYS,
    FriendlyHours,
    SupplyState,
    decide_supply,
    is_exhausted,
    parse_friendly_hours,
)

from .strategies import ZONES, instants

FAST = settings(max_examples=80, deadline=None)


@st.composite
def windows(draw: st.DrawFn) -> dict[str, str]:
    start = draw(st.integers(0, 24 * 4 - 1)) * 15
    end = draw(st.integers(1, 24 * 4).filter(lambda e: e * 15 != start)) * 15
    return {
        "start": f"{start // 60:02d}:{start % 60:02d}",
        "end": f"{end // 60:02d}:{end % 60:02d}",
    }


@st.composite
def friendly_payloads(draw: st.DrawFn, around: datetime) -> dict[str, object]:
    body: dict[str, object] = {
        day: draw(st.lists(windows(), max_size=2)) for day in WEEKDAYS if draw(st.booleans())
    }
    offsets = draw(st.lists(st.integers(-3, 10), max_size=4))
    body["holidays"] = [(around.date() + timedelta(days=o)).isoformat() for o in offsets]
    return body


@st.composite
def scenarios(draw: st.DrawFn, *, cuttable: bool = False) -> tuple[SupplyState, datetime]:
    """Random account states; ``cuttable`` ones are connected, unprotected and exhausted."""
    now = draw(instants)
    tz = ZoneInfo(draw(st.sampled_from(ZONES)))
    emergency = draw(st.integers(0, 1000))
    balance = draw(st.integers(-3000, -emergency) if cuttable else st.integers(-3000, 3000))
    exhausted = balance + emergency <= 0
    since = now - timedelta(minutes=draw(st.integers(-60, 3 * 24 * 60))) if exhausted else None
    state = SupplyState(
        balance_minor=balance,
        emergency_credit_minor=emergency,
        protected=False if cuttable else draw(st.booleans()),
        friendly_hours=parse_friendly_hours(draw(friendly_payloads(now))),
        grace_minutes=draw(st.integers(0, 600)),
        exhausted_since=since,
        reconnect_margin_minor=draw(st.integers(0, 1000)),
        currently_allowed=True if cuttable else draw(st.booleans()),
        tz=tz,
    )
    return state, now


def wall_clock_friendly(hours: FriendlyHours, tz: ZoneInfo, instant: datetime) -> bool | None:
    """Reference on the local wall clock; None near a DST change where wall time is ambiguous."""
    if tz.utcoffset(instant - timedelta(hours=26)) != tz.utcoffset(instant + timedelta(hours=26)):
        return None
    local = instant.astimezone(tz)
    if local.date() in hours.holidays:
        return True
    minute = local.hour * 60 + local.minute + local.second / 60
    today = hours.weekly[local.weekday()]
    yesterday = hours.weekly[(local.weekday() - 1) % 7]
    return any(w.start_minute <= minute < w.end_minute for w in today) or any(
        w.start_minute <= minute + 24 * 60 < w.end_minute for w in yesterday
    )


@FAST
@given(case=st.one_of(scenarios(), scenarios(cuttable=True)))
def test_never_cut_protected_or_friendly(case: tuple[SupplyState, datetime]) -> None:
    state, now = case
    decision = decide_supply(state, now)
    if state.protected:
        assert decision.allowed
        assert decision.reason == "protected"
    if not decision.allowed:
        assert decision.reason in {"exhausted", "awaiting_reconnect_margin"}
        assert state.balance_minor < max(state.reconnect_margin_minor, 1) or is_exhausted(state)
    if not state.currently_allowed:
        return  # a cut account is not re-cut; restoring follows the margin rule
    friendly = wall_clock_friendly(state.friendly_hours, state.tz, now)  # type: ignore[arg-type]
    if friendly:
        assert decision.allowed, "cut inside friendly hours or a holiday"
    if decision.allowed is False:
        assert friendly is not True
        assert state.exhausted_since is not None
        assert now >= state.exhausted_since + timedelta(minutes=state.grace_minutes)
    past_grace = state.exhausted_since is not None and now >= state.exhausted_since + timedelta(
        minutes=state.grace_minutes
    )
    if friendly is False and is_exhausted(state) and past_grace and not state.protected:
        assert not decision.allowed, "exhausted outside friendly hours after grace must cut"


@FAST
@given(
    case=st.one_of(scenarios(), scenarios(cuttable=True), scenarios(cuttable=True)),
    fractions=st.lists(st.floats(0.001, 0.999), min_size=1, max_size=5),
)
def test_changes_at_is_future_and_real(
    case: tuple[SupplyState, datetime], fractions: list[float]
) -> None:
    state, now = case
    decision = decide_supply(state, now)
    # The service stores what it applied; later decisions start from that.
    state = replace(state, currently_allowed=decision.allowed)
    if decision.changes_at is None:
        # No change by time alone: the decision must hold however long we wait.
        for fraction in fractions:
            later = now + HORIZON * fraction
            assert decide_supply(state, later).allowed == decision.allowed
        return
    assert decision.changes_at > now
    assert decide_supply(state, decision.changes_at).allowed != decision.allowed
    span = decision.changes_at - now
    for fraction in fractions:  # fractions of a time span only, never of money
        between = now + span * fraction
        assert decide_supply(state, between).allowed == decision.allowed
    assert decide_supply(state, decision.changes_at - timedelta(microseconds=1)).allowed == (
        decision.allowed
    )


@FAST
@given(case=scenarios())
def test_restore_exactly_at_reconnect_margin(case: tuple[SupplyState, datetime]) -> None:
    state, now = case
    if state.protected or state.currently_allowed:
        return
    decision = decide_supply(state, now)
    covers = state.balance_minor >= state.reconnect_margin_minor and not is_exhausted(state)
    assert decision.allowed == covers
    assert decision.changes_at is None


def test_reference_sees_wrapping_windows() -> None:
    hours = parse_friendly_hours({"monday": [{"start": "22:00", "end": "06:00"}]})
    utc = ZoneInfo("UTC")
    assert wall_clock_friendly(hours, utc, datetime(2026, 11, 24, 5, 59, tzinfo=UTC))  # Tuesday
    assert not wall_clock_friendly(hours, utc, datetime(2026, 11, 24, 6, 0, tzinfo=UTC))
