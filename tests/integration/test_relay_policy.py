"""Property tests of the relay's fail-safe rules, stated as the issue states them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from custom_components.prepaid_meter.relay_policy import (
    RelayAction,
    RelayInputs,
    SupplyOverride,
    decide_relay,
)

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
STALE_AFTER = timedelta(seconds=90)

overrides = st.none() | st.builds(
    SupplyOverride,
    closed=st.booleans(),
    until=st.none() | st.sampled_from([NOW - timedelta(seconds=1), NOW + timedelta(hours=1)]),
)
inputs = st.builds(
    RelayInputs,
    now=st.just(NOW),
    relay_closed=st.none() | st.booleans(),
    supply_allowed=st.none() | st.booleans(),
    supply_reason=st.sampled_from([None, "credit", "exhausted", "protected", "grace"]),
    last_reading_at=st.none()
    | st.timedeltas(min_value=timedelta(0), max_value=timedelta(minutes=10)).map(
        lambda age: NOW - age
    ),
    stale_after=st.just(STALE_AFTER),
    ledger_ok=st.booleans(),
    enforce_when_offline=st.booleans(),
    unsent_readings=st.booleans(),
    override=overrides,
)


def _override_active(given_inputs: RelayInputs) -> bool:
    override = given_inputs.override
    return override is not None and (override.until is None or override.until > NOW)


@given(inputs)
def test_never_cut_on_stale_data_offline_or_undecided(given_inputs: RelayInputs) -> None:
    """Without an override, a cut needs every condition of the fail-safe rule at once."""
    decision = decide_relay(given_inputs)
    if decision.action is not RelayAction.OPEN or _override_active(given_inputs):
        return
    assert given_inputs.supply_allowed is False
    assert given_inputs.last_reading_at is not None
    assert NOW - given_inputs.last_reading_at <= STALE_AFTER
    assert given_inputs.ledger_ok or given_inputs.enforce_when_offline
    assert not given_inputs.unsent_readings
    assert given_inputs.relay_closed is not False


@given(inputs)
def test_supply_restored_as_soon_as_allowed(given_inputs: RelayInputs) -> None:
    """An allowed decision closes an open or unknown relay, whatever else is going on."""
    if _override_active(given_inputs) or given_inputs.supply_allowed is not True:
        return
    expected = RelayAction.NONE if given_inputs.relay_closed is True else RelayAction.CLOSE
    assert decide_relay(given_inputs).action is expected


@given(inputs)
def test_an_active_override_wins(given_inputs: RelayInputs) -> None:
    """While an override is in force the relay goes where the person said, and only there."""
    if not _override_active(given_inputs):
        return
    assert given_inputs.override is not None
    want = given_inputs.override.closed
    action = decide_relay(given_inputs).action
    if given_inputs.relay_closed is want:
        assert action is RelayAction.NONE
    else:
        assert action is (RelayAction.CLOSE if want else RelayAction.OPEN)


def test_a_fresh_current_decision_cuts() -> None:
    """The one case that cuts: not allowed, fresh reading, ledger reachable, nothing unsent."""
    decision = decide_relay(
        RelayInputs(
            now=NOW,
            relay_closed=True,
            supply_allowed=False,
            supply_reason="exhausted",
            last_reading_at=NOW - timedelta(seconds=5),
            stale_after=STALE_AFTER,
            ledger_ok=True,
            enforce_when_offline=False,
            unsent_readings=False,
            override=None,
        )
    )
    assert decision.action is RelayAction.OPEN
    assert decision.reason == "exhausted"
