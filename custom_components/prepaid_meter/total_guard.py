"""The meter's cumulative register as Home Assistant may show it: never a glitch.

Home Assistant's long-term statistics (the Energy dashboard) read a drop of a
``total_increasing`` sensor as a meter reset and a jump as consumption, and keep both
forever. So the total an entity shows is judged first, by the ledger's own rule
(``shared.reading_guard``, the same code that decides what is charged): a step no meter can
physically make is held, and the entity keeps showing the last good total until the step is
explained. The raw register still goes to the ledger, which holds it for a person; when the
person accepts or re-bases, the ledger's new starting point becomes ours.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Final

from prepaid_meter_contract.reading_guard import MeterLimits, classify

#: A meter not linked to a ledger has no person deciding on its holds. A held register that
#: stays consistent with itself this many polls in a row (five minutes at the 10 s poll) is
#: the meter's new truth: it was really reset or replaced. A glitch never lasts that long.
SELF_REBASE_READS: Final = 30


@dataclass(frozen=True, slots=True)
class HeldTotal:
    """A total register value that is not shown: what it was, why, since when, how often."""

    value: Decimal
    kind: str
    since: datetime
    reads: int


class TotalGuard:
    """Judges each read of one meter's total register against the last good one."""

    def __init__(self, limits: MeterLimits) -> None:
        """Start with the meter model's limits and no known good total."""
        self.limits = limits
        #: Holds are decided by a person in the ledger (a linked meter), not by time.
        self.decided_by_ledger = False
        self.good: tuple[Decimal, datetime] | None = None
        self.held: HeldTotal | None = None
        self._last_held: tuple[Decimal, datetime] | None = None

    @property
    def shown(self) -> Decimal | None:
        """The total an entity may show now."""
        return None if self.good is None else self.good[0]

    def judge(self, value: Decimal, at: datetime) -> Decimal:
        """Take one read of the register; return the total to show."""
        if self.good is None:
            self.rebase(value, at)
            return value
        good_value, good_at = self.good
        if at <= good_at:
            return good_value
        step = classify(good_value, good_at, value, at, self.limits)
        if step.kind == "noise":  # a register a hair below the last one: show no drop
            return good_value
        if not step.held:
            self.rebase(value, at)
            return value
        self._hold(value, at, step.kind)
        return self.good[0]

    def _hold(self, value: Decimal, at: datetime, kind: str) -> None:
        previous = self._last_held
        consistent = (
            self.held is not None
            and previous is not None
            and at > previous[1]
            and classify(previous[0], previous[1], value, at, self.limits).kind == "consumption"
        )
        if consistent and self.held is not None:
            self.held = HeldTotal(value, kind, self.held.since, self.held.reads + 1)
        else:
            self.held = HeldTotal(value, kind, at, 1)
        self._last_held = (value, at)
        if not self.decided_by_ledger and self.held.reads >= SELF_REBASE_READS:
            self.rebase(value, at)

    def rebase(self, value: Decimal, at: datetime) -> None:
        """Make ``value`` the last good total (a person's decision, or the first read)."""
        self.good = (value, at)
        self.held = None
        self._last_held = None

    def follow_ledger(
        self, limits: MeterLimits, value: Decimal | None, at: datetime | None
    ) -> bool:
        """Take the ledger meter's limits and its last accepted reading, if newer than ours.

        Returns whether the shown total changed (a person accepted or re-based in the ledger).
        """
        self.limits = limits
        self.decided_by_ledger = True
        if value is None or at is None or (self.good is not None and at <= self.good[1]):
            return False
        before = self.shown
        self.rebase(value, at)
        return self.shown != before
