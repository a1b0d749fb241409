"""When the relay may move: a pure function, so its fail-safe rules can be property-tested.

Restoring supply is always safe and happens as soon as the ledger allows it. Cutting supply is
the one action that can hurt someone, so it needs every condition at once: a current decision
from a reachable ledger, taken after the last reading we sent, while the meter is answering.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum


class RelayAction(StrEnum):
    """What to do with the relay now."""

    CLOSE = "close"
    OPEN = "open"
    NONE = "none"


@dataclass(frozen=True, slots=True)
class SupplyOverride:
    """A person's decision that wins over the ledger's until it expires (``None``: until lifted)."""

    closed: bool
    until: datetime | None

    def active(self, now: datetime) -> bool:
        """Still in force at ``now``."""
        return self.until is None or now < self.until


@dataclass(frozen=True, slots=True)
class RelayInputs:
    """Everything the decision depends on, as the integration knows it now."""

    now: datetime
    relay_closed: bool | None
    supply_allowed: bool | None
    supply_reason: str | None
    last_reading_at: datetime | None
    stale_after: timedelta
    ledger_ok: bool
    enforce_when_offline: bool
    unsent_readings: bool
    override: SupplyOverride | None


@dataclass(frozen=True, slots=True)
class RelayDecision:
    """The action and why (shown in the logbook and the supply_changed event)."""

    action: RelayAction
    reason: str


def decide_relay(inputs: RelayInputs) -> RelayDecision:
    """Return what the relay should do; ``NONE`` whenever in doubt about a cut."""
    override = inputs.override
    if override is not None and override.active(inputs.now):
        want_closed = override.closed
        if inputs.relay_closed is want_closed:
            return RelayDecision(RelayAction.NONE, "override")
        return RelayDecision(RelayAction.CLOSE if want_closed else RelayAction.OPEN, "override")
    if inputs.supply_allowed is None:
        return RelayDecision(RelayAction.NONE, "no_decision")
    if inputs.supply_allowed:
        if inputs.relay_closed is True:
            return RelayDecision(RelayAction.NONE, inputs.supply_reason or "allowed")
        return RelayDecision(RelayAction.CLOSE, inputs.supply_reason or "allowed")
    if inputs.relay_closed is False:
        return RelayDecision(RelayAction.NONE, inputs.supply_reason or "not_allowed")
    if not inputs.ledger_ok and not inputs.enforce_when_offline:
        return RelayDecision(RelayAction.NONE, "ledger_unreachable")
    if inputs.unsent_readings:
        return RelayDecision(RelayAction.NONE, "decision_older_than_reading")
    if inputs.last_reading_at is None or inputs.now - inputs.last_reading_at > inputs.stale_after:
        return RelayDecision(RelayAction.NONE, "stale_reading")
    return RelayDecision(RelayAction.OPEN, inputs.supply_reason or "not_allowed")


@dataclass(frozen=True, slots=True)
class RelayFailure:
    """A relay that did not reach the commanded state: how often so far, and when to try again."""

    action: RelayAction
    tries: int
    retry_at: datetime

    def waiting(self, action: RelayAction, now: datetime) -> bool:
        """Whether ``action`` must wait: it is the one that failed and its retry is not due."""
        return action is self.action and now < self.retry_at


def after_failure(
    previous: RelayFailure | None,
    action: RelayAction,
    now: datetime,
    *,
    first_wait: timedelta,
    longest_wait: timedelta,
) -> RelayFailure:
    """Back off after a relay command that did not take: ``first_wait`` doubling, capped.

    A welded relay or an unpowered module must cost a few commands a minute at most, never a
    loop that starves the line; the first wait is one poll interval, so retries are never
    faster than the poll.
    """
    tries = previous.tries + 1 if previous is not None and previous.action is action else 1
    wait = min(first_wait * 2 ** min(tries - 1, 20), longest_wait)
    return RelayFailure(action, tries, now + wait)


def failure_resolved(failure: RelayFailure, inputs: RelayInputs) -> bool:
    """Whether a relay failure is over: the relay got there, or that move is wanted no more.

    A decision of "do nothing" out of doubt (stale reading, ledger unreachable) keeps the
    failure: the relay still is not where it should be.
    """
    target_closed = failure.action is RelayAction.CLOSE
    if inputs.relay_closed is target_closed:
        return True
    override = inputs.override
    if override is not None and override.active(inputs.now):
        wanted: bool | None = override.closed
    else:
        wanted = inputs.supply_allowed
    return wanted is not None and wanted is not target_closed
