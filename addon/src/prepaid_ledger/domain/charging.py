"""Charging as a pure function: (tariff, the meter's charge state, a reading) -> what to post.

The ledger keeps, per meter, account and band, the exact (unrounded) running total charged and
the minor units already posted, and per tier period the quantity used. A reading's interval is
priced with the tariff version in force on each part of it; each band posts
``amount_to_post(exact_total, posted)``, so many small readings never drift from one big one.
The database work (loading that state, writing it back, the journal) is around this, in
``services/readings.py``, not inside it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, tzinfo
from decimal import Decimal
from typing import Final

from prepaid_ledger.domain.apportion import split_by_time, whole
from prepaid_ledger.domain.localtime import require_aware
from prepaid_ledger.domain.money import EXACT, amount_to_post
from prepaid_ledger.domain.tariffs import (
    ChargePart,
    Tariff,
    period_keys,
    price_consumption,
    single_price,
    standing_charge_days,
)

#: The band of daily standing charges on statement lines.
STANDING_BAND = "standing"
#: The running total over all bands (the total posted follows it, never a sum of roundings).
TOTAL_BAND = "__total__"

type Versions = Sequence[tuple[datetime, Tariff]]


@dataclass(frozen=True, slots=True)
class Running:
    """A band's exact running total (major units) and the minor units posted of it."""

    exact: Decimal = Decimal(0)
    posted: int = 0


@dataclass(frozen=True, slots=True)
class Line:
    """One statement line's share of a charge: a local day and band."""

    day: date
    band: str
    quantity: Decimal
    minor: int


@dataclass(frozen=True, slots=True)
class ChargeState:
    """What charging a meter for an account remembers: running totals and tier usage."""

    bands: Mapping[str, Running] = field(default_factory=dict)
    usage: Mapping[str, Decimal] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Charge:
    """What one interval's consumption posts, and the state after it."""

    posted: int
    lines: tuple[Line, ...]
    state: ChargeState


def tariff_at(versions: Versions, instant: datetime) -> Tariff:
    """Return the tariff version in force at ``instant`` (the first one before any)."""
    tariff = versions[0][1]
    for effective, version in versions:
        if effective <= instant:
            tariff = version
    return tariff


def charge_consumption(
    versions: Versions,
    tz: tzinfo,
    currency: str,
    state: ChargeState,
    *,
    start: datetime,
    end: datetime,
    quantity: Decimal,
) -> Charge:
    """Charge ``quantity`` consumed over [start, end] from ``state``.

    The total posted follows the exact running total of all bands (so it never drifts by more
    than half a minor unit, however many bands); each band's share follows its own running
    total, and a rounding difference between the two goes to the interval's largest part, so
    statement lines always add up to what was posted.
    """
    usage = state.usage
    parts = _one_part(versions, tz, start=start, end=end, quantity=quantity)
    if parts is None:
        usage = dict(state.usage)
        cuts = [effective for effective, _ in versions[1:]]
        parts = []
        for low, high, piece in split_by_time(start, end, quantity, cuts):
            tariff = tariff_at(versions, low)
            used = {key: usage.get(key, Decimal(0)) for key in period_keys(tariff, low, high, tz)}
            priced = price_consumption(tariff, low, high, piece, tz, used)
            for part in priced:
                if part.period is not None:
                    usage[part.period] = EXACT.add(
                        usage.get(part.period, Decimal(0)), part.quantity
                    )
            parts.extend(priced)
    if not parts:
        return Charge(0, (), ChargeState(state.bands, usage))
    if len(parts) == 1:
        return _charge_one_part(parts[0], tz, currency, state.bands, usage)
    bands = dict(state.bands)
    shares: list[int] = []
    for part in parts:
        running = bands.get(part.band, Running())
        exact = EXACT.add(running.exact, part.amount)
        share = amount_to_post(exact, running.posted, currency)
        bands[part.band] = Running(exact, running.posted + share)
        shares.append(share)
    total = bands.get(TOTAL_BAND, Running())
    exact_total = total.exact
    for part in parts:
        exact_total = EXACT.add(exact_total, part.amount)
    posted = amount_to_post(exact_total, total.posted, currency)
    bands[TOTAL_BAND] = Running(exact_total, total.posted + posted)
    if difference := posted - sum(shares):
        largest = max(range(len(parts)), key=lambda i: parts[i].amount)
        shares[largest] += difference
        band = bands[parts[largest].band]
        bands[parts[largest].band] = Running(band.exact, band.posted + difference)
    lines = tuple(
        Line(part.start.astimezone(tz).date(), part.band, part.quantity, share)
        for part, share in zip(parts, shares, strict=True)
    )
    return Charge(posted, lines, ChargeState(bands, usage))


_NOTHING_YET: Final = Running()


def _charge_one_part(
    part: ChargePart,
    tz: tzinfo,
    currency: str,
    before: Mapping[str, Running],
    usage: Mapping[str, Decimal],
) -> Charge:
    """charge_consumption's rule for one part (nearly every reading), with nothing to share.

    The part's share is the whole total posted: its band's posted count moves by exactly that,
    as the general rule's rounding difference would make it.
    """
    total = before.get(TOTAL_BAND, _NOTHING_YET)
    running = before.get(part.band, _NOTHING_YET)
    exact_total = EXACT.add(total.exact, part.amount)
    posted = amount_to_post(exact_total, total.posted, currency)
    bands = dict(before)
    bands[part.band] = Running(EXACT.add(running.exact, part.amount), running.posted + posted)
    bands[TOTAL_BAND] = Running(exact_total, total.posted + posted)
    line = Line(part.start.astimezone(tz).date(), part.band, part.quantity, posted)
    return Charge(posted, (line,), ChargeState(bands, usage))


def _one_part(
    versions: Versions, tz: tzinfo, *, start: datetime, end: datetime, quantity: Decimal
) -> list[ChargePart] | None:
    """Price an interval in one tariff version at one price (nearly every reading) unsplit.

    The part the general path would make, without splitting anything; None for anything else
    (a version change or a price change inside, a tiered tariff, input the general path
    refuses), which the general path then prices.
    """
    if (
        start.utcoffset() is None
        or end.utcoffset() is None
        or end < start
        or not quantity.is_finite()
        or quantity < 0
        or (len(versions) > 1 and any(start < effective < end for effective, _ in versions[1:]))
    ):
        return None
    one = single_price(tariff_at(versions, start), start, end, tz)
    if one is None:
        return None
    band, price = one
    share = whole(quantity)
    return [ChargePart(band, None, start, end, share, EXACT.multiply(share, price), price)]


@dataclass(frozen=True, slots=True)
class Standing:
    """The daily standing charges due: which local days, at how much each."""

    days: tuple[date, ...]
    per_day_minor: int

    @property
    def minor(self) -> int:
        """The total due."""
        return self.per_day_minor * len(self.days)


def standing_due(
    versions: Versions, last_charged: date | None, now: datetime, tz: tzinfo
) -> Standing:
    """Return the daily standing charges due up to ``now`` (one per local day, charged once)."""
    per_day = tariff_at(versions, now).standing_charge_minor_per_day
    if last_charged is not None and require_aware(now, "now").astimezone(tz).date() <= last_charged:
        return Standing((), per_day)  # today's is charged: every other reading of a day
    return Standing(tuple(standing_charge_days(last_charged, now, tz)), per_day)
