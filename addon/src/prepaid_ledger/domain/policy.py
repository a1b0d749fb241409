"""Supply policy: when the relay may be cut and when it must be restored.

Pure rules, evaluated for a given instant: cut only when balance plus emergency credit is
exhausted and the grace period has passed; never for a protected account, never during the
account's friendly hours or holidays (local time), and restore once the balance reaches the
reconnect margin. Every decision says why and when, without new payments, it next changes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Final

from prepaid_meter_contract.vocabulary import SupplyReason

from prepaid_ledger.domain.localtime import local_to_instant, require_aware
from prepaid_ledger.domain.money import parse_minor
from prepaid_ledger.errors import InputError

WEEKDAYS: Final = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
MAX_WINDOWS_PER_DAY: Final = 8
MAX_HOLIDAYS: Final = 1000
MAX_GRACE_MINUTES: Final = 7 * 24 * 60
#: A protected stretch longer than this is treated as never ending (e.g. every day friendly).
HORIZON: Final = timedelta(days=400)
_MINUTES_PER_DAY: Final = 24 * 60
_HHMM: Final = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])|(24):(00)")

# Stable reason codes carried by SupplyDecision.reason.
PROTECTED: Final = SupplyReason.PROTECTED
CREDIT: Final = SupplyReason.CREDIT
EMERGENCY_CREDIT: Final = SupplyReason.EMERGENCY_CREDIT
GRACE: Final = SupplyReason.GRACE
FRIENDLY_HOURS: Final = SupplyReason.FRIENDLY_HOURS
HOLIDAY: Final = SupplyReason.HOLIDAY
EXHAUSTED: Final = SupplyReason.EXHAUSTED
AWAITING_RECONNECT_MARGIN: Final = SupplyReason.AWAITING_RECONNECT_MARGIN


@dataclass(frozen=True, slots=True)
class Window:
    """A friendly window starting on a weekday; ``end_minute`` > 1440 runs into the next day."""

    start_minute: int
    end_minute: int


@dataclass(frozen=True, slots=True)
class FriendlyHours:
    """Local times in which supply is never cut: weekly windows plus whole-day holidays."""

    weekly: tuple[tuple[Window, ...], ...] = ((),) * 7
    holidays: frozenset[date] = frozenset()

    def is_empty(self) -> bool:
        """Tell whether no window and no holiday is configured."""
        return not self.holidays and not any(self.weekly)


NO_FRIENDLY_HOURS: Final = FriendlyHours()


def _minute_of(value: object, field_name: str, *, allow_24: bool) -> int:
    match = _HHMM.fullmatch(value) if isinstance(value, str) else None
    if match is None or (match.group(3) and not allow_24):
        allowed = "00:00-24:00" if allow_24 else "00:00-23:59"
        raise InputError(
            "invalid_friendly_hours", f'{field_name} must be "HH:MM" in {allowed}; got {value!r}'
        )
    if match.group(3):
        return _MINUTES_PER_DAY
    return int(match.group(1)) * 60 + int(match.group(2))


def _parse_window(value: object, where: str) -> Window:
    if not isinstance(value, Mapping) or set(value) != {"start", "end"}:
        raise InputError(
            "invalid_friendly_hours", f'{where} must be {{"start": "HH:MM", "end": "HH:MM"}}'
        )
    start = _minute_of(value["start"], f"{where}.start", allow_24=False)
    end = _minute_of(value["end"], f"{where}.end", allow_24=True)
    if end == start:
        raise InputError(
            "invalid_friendly_hours",
            f'{where} is empty (start equals end); use "00:00"-"24:00" for a whole day',
        )
    # An end at or before the start means the window runs past midnight into the next day.
    return Window(start, end if end > start else end + _MINUTES_PER_DAY)


def _parse_holidays(value: object) -> frozenset[date]:
    if not isinstance(value, list | tuple):
        raise InputError("invalid_friendly_hours", "holidays must be a list of YYYY-MM-DD dates")
    if len(value) > MAX_HOLIDAYS:
        raise InputError("invalid_friendly_hours", f"at most {MAX_HOLIDAYS} holidays")
    days: set[date] = set()
    for index, item in enumerate(value):
        try:
            if not isinstance(item, str) or len(item) != 10:
                raise ValueError(item)  # noqa: TRY301 - same message as a bad date
            days.add(date.fromisoformat(item))
        except ValueError:
            raise InputError(
                "invalid_friendly_hours", f"holidays[{index}] must be a date YYYY-MM-DD"
            ) from None
    return frozenset(days)


def parse_friendly_hours(payload: object) -> FriendlyHours:
    """Validate ``{"monday": [{"start": "18:00", "end": "09:00"}], ..., "holidays": [...]}``.

    Weekdays are lower-case English names; a window whose end is not after its start runs
    past midnight. ``None`` or ``{}`` means no friendly hours.
    """
    if payload is None:
        return NO_FRIENDLY_HOURS
    if not isinstance(payload, Mapping):
        raise InputError("invalid_friendly_hours", "friendly_hours must be an object")
    unknown = sorted(str(key) for key in payload if key not in {*WEEKDAYS, "holidays"})
    if unknown:
        raise InputError(
            "invalid_friendly_hours",
            f"friendly_hours has unknown key(s) {', '.join(unknown)}; "
            f"use weekday names ({', '.join(WEEKDAYS)}) and 'holidays'",
        )
    weekly: list[tuple[Window, ...]] = []
    for day_name in WEEKDAYS:
        raw = payload.get(day_name, [])
        if not isinstance(raw, list | tuple) or len(raw) > MAX_WINDOWS_PER_DAY:
            raise InputError(
                "invalid_friendly_hours",
                f"friendly_hours.{day_name} must be a list of at most "
                f"{MAX_WINDOWS_PER_DAY} windows",
            )
        weekly.append(
            tuple(
                _parse_window(item, f"friendly_hours.{day_name}[{index}]")
                for index, item in enumerate(raw)
            )
        )
    return FriendlyHours(tuple(weekly), _parse_holidays(payload.get("holidays", [])))


def _hhmm(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def friendly_hours_to_json(hours: FriendlyHours) -> dict[str, object]:
    """Return the JSON form; ``parse_friendly_hours`` accepts it back unchanged."""
    body: dict[str, object] = {}
    for day_name, windows in zip(WEEKDAYS, hours.weekly, strict=True):
        body[day_name] = [
            {
                "start": _hhmm(w.start_minute),
                "end": "24:00"
                if w.end_minute == _MINUTES_PER_DAY
                else _hhmm(w.end_minute % _MINUTES_PER_DAY),
            }
            for w in windows
        ]
    body["holidays"] = [day.isoformat() for day in sorted(hours.holidays)]
    return body


# ---------------------------------------------------------------------------------------------
# Protected stretches in absolute time


def _wall(day: date, minute: int, tz: tzinfo) -> datetime:
    days, rest = divmod(minute, _MINUTES_PER_DAY)
    return local_to_instant(day + timedelta(days=days), time(rest // 60, rest % 60), tz)


def _intervals_starting_on(
    hours: FriendlyHours, day: date, tz: tzinfo
) -> list[tuple[datetime, datetime, SupplyReason]]:
    found = [
        (_wall(day, w.start_minute, tz), _wall(day, w.end_minute, tz), FRIENDLY_HOURS)
        for w in hours.weekly[day.weekday()]
    ]
    if day in hours.holidays:
        found.append((_wall(day, 0, tz), _wall(day, _MINUTES_PER_DAY, tz), HOLIDAY))
    return found


def _covering(
    hours: FriendlyHours, tz: tzinfo, instant: datetime
) -> list[tuple[datetime, datetime, SupplyReason]]:
    local_day = instant.astimezone(tz).date()
    return [
        interval
        for offset in (-2, -1, 0, 1)
        for interval in _intervals_starting_on(hours, local_day + timedelta(days=offset), tz)
        if interval[0] <= instant < interval[1]
    ]


def protection_at(
    hours: FriendlyHours, tz: tzinfo, instant: datetime
) -> tuple[SupplyReason, datetime | None] | None:
    """Return why cutting is barred at ``instant`` and when that protection ends.

    ``None`` means the instant is outside friendly hours and holidays. The end is that of the
    whole unbroken protected stretch (windows that touch or overlap chain together); ``None``
    as end means the stretch does not end within ``HORIZON``.
    """
    covering = _covering(hours, tz, instant)
    if not covering:
        return None
    reason = HOLIDAY if any(kind == HOLIDAY for _, _, kind in covering) else FRIENDLY_HOURS
    end = max(interval[1] for interval in covering)
    while end - instant <= HORIZON:
        extending = _covering(hours, tz, end)
        if not extending:
            return reason, end
        end = max(interval[1] for interval in extending)
    return reason, None


def first_unprotected(hours: FriendlyHours, tz: tzinfo, instant: datetime) -> datetime | None:
    """Return the first instant at or after ``instant`` outside friendly hours and holidays."""
    protection = protection_at(hours, tz, instant)
    return instant if protection is None else protection[1]


# ---------------------------------------------------------------------------------------------
# Decisions


def emergency_credit_remaining(balance_minor: int, emergency_minor: int) -> int:
    """Return how much emergency credit is still unused (it is used once the balance is < 0)."""
    return emergency_minor if balance_minor >= 0 else max(0, emergency_minor + balance_minor)


def debt_minor(balance_minor: int) -> int:
    """Return the debt: the amount by which the balance is below zero (0 when in credit)."""
    return max(0, -balance_minor)


def low_balance_level(balance_minor: int, levels: Sequence[int]) -> int:
    """Return 0 (fine), 1 or 2: the deepest warning level the balance is at or below."""
    return sum(1 for level in levels if balance_minor <= level)


def parse_low_balance_levels(value: object, field_name: str = "low_balance_minor") -> list[int]:
    """Validate ``[level1, level2]``: two amounts with level1 >= level2 >= 0 (minor units)."""
    if not isinstance(value, list | tuple) or len(value) != 2:
        raise InputError("invalid_amount", f"{field_name} must be a list [level1, level2]")
    first = parse_minor(value[0], f"{field_name}[0]")
    second = parse_minor(value[1], f"{field_name}[1]")
    if second > first:
        raise InputError(
            "invalid_amount", f"{field_name}[1] (the later warning) must not exceed level 1"
        )
    return [first, second]


def parse_grace_minutes(value: object, field_name: str = "grace_minutes") -> int:
    """Validate the grace period between exhausted credit and a cut, in minutes."""
    return parse_minor(value, field_name, maximum=MAX_GRACE_MINUTES)


@dataclass(frozen=True, slots=True)
class SupplyState:
    """Everything the supply decision depends on, for one account."""

    balance_minor: int
    emergency_credit_minor: int = 0
    protected: bool = False
    friendly_hours: FriendlyHours = field(default=NO_FRIENDLY_HOURS)
    grace_minutes: int = 0
    #: When balance plus emergency credit last reached zero. Set it whenever the account is
    #: exhausted: None is read as "now", which restarts the grace period on every decision.
    exhausted_since: datetime | None = None
    reconnect_margin_minor: int = 0
    #: The decision last applied: a cut account is only restored at the reconnect margin.
    currently_allowed: bool = True
    tz: tzinfo = UTC


@dataclass(frozen=True, slots=True)
class SupplyDecision:
    """Whether supply is allowed, a stable reason code, and when ``allowed`` next flips."""

    allowed: bool
    reason: SupplyReason
    changes_at: datetime | None


def is_exhausted(state: SupplyState) -> bool:
    """Tell whether balance plus emergency credit is used up (the cut condition)."""
    return state.balance_minor + state.emergency_credit_minor <= 0


def _check_state(state: SupplyState) -> None:
    for name in ("emergency_credit_minor", "grace_minutes", "reconnect_margin_minor"):
        if getattr(state, name) < 0:
            raise InputError("invalid_amount", f"{name} must not be negative")
    if state.exhausted_since is not None:
        require_aware(state.exhausted_since, "exhausted_since")


def decide_supply(state: SupplyState, now: datetime) -> SupplyDecision:
    """Decide the supply for ``now``; ``changes_at`` is when time alone flips the decision.

    Payments and readings change the state itself; the caller decides again after them.
    """
    require_aware(now, "now")
    _check_state(state)
    if state.protected:
        return SupplyDecision(allowed=True, reason=PROTECTED, changes_at=None)
    exhausted = is_exhausted(state)
    # A cut account stays cut until the balance reaches the margin (and is not exhausted);
    # once it does, the rules for a connected account below apply.
    if not state.currently_allowed and (
        exhausted or state.balance_minor < state.reconnect_margin_minor
    ):
        reason = EXHAUSTED if exhausted else AWAITING_RECONNECT_MARGIN
        return SupplyDecision(allowed=False, reason=reason, changes_at=None)
    if state.balance_minor > 0:
        return SupplyDecision(allowed=True, reason=CREDIT, changes_at=None)
    if not exhausted:
        return SupplyDecision(allowed=True, reason=EMERGENCY_CREDIT, changes_at=None)
    since = state.exhausted_since or now
    cut_at = since + timedelta(minutes=state.grace_minutes)
    if now < cut_at:
        return SupplyDecision(
            allowed=True,
            reason=GRACE,
            changes_at=first_unprotected(state.friendly_hours, state.tz, cut_at),
        )
    protection = protection_at(state.friendly_hours, state.tz, now)
    if protection is not None:
        reason, ends = protection
        return SupplyDecision(allowed=True, reason=reason, changes_at=ends)
    return SupplyDecision(allowed=False, reason=EXHAUSTED, changes_at=None)
