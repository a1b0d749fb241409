"""Bonus arithmetic for top-up promotions: pure, exact, in whole minor units.

A percentage bonus is rounded down to the minor unit (a promise never overpaid); a refund takes
back the bonus's share of everything refunded so far, also rounded down, so a full refund takes
back exactly the whole bonus and partial refunds never take back more than was given.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

#: A percentage is applied in hundredths of a percent (the contract allows two places).
_BASIS = 10_000


@dataclass(frozen=True, slots=True)
class Offer:
    """What decides a promotion's bonus for an amount."""

    promotion_id: int
    min_topup_minor: int
    bonus_minor: int | None = None
    bonus_percent: Decimal | None = None
    max_bonus_minor: int | None = None


def bonus_for(offer: Offer, amount_minor: int) -> int:
    """Return the bonus OFFER gives a top-up of AMOUNT_MINOR (0 below its minimum)."""
    if amount_minor < offer.min_topup_minor:
        return 0
    if offer.bonus_minor is not None:
        return offer.bonus_minor
    if offer.bonus_percent is None:
        return 0
    hundredths = int(offer.bonus_percent.scaleb(2))
    if hundredths != offer.bonus_percent.scaleb(2):
        raise ValueError(f"percentage {offer.bonus_percent} has more than two decimal places")
    share = amount_minor * hundredths // _BASIS  # integers: exact, rounded down
    if offer.max_bonus_minor is not None:
        share = min(share, offer.max_bonus_minor)
    return share


def best_offer(offers: Iterable[Offer], amount_minor: int) -> tuple[Offer, int] | None:
    """Return the offer giving the largest bonus (the oldest on a tie) and that bonus."""
    best: tuple[Offer, int] | None = None
    for offer in offers:
        bonus = bonus_for(offer, amount_minor)
        if bonus <= 0:
            continue
        if (
            best is None
            or bonus > best[1]
            or (bonus == best[1] and offer.promotion_id < best[0].promotion_id)
        ):
            best = (offer, bonus)
    return best


def bonus_to_take_back(
    bonus_minor: int, taken_back_minor: int, credited_minor: int, refunded_minor: int
) -> int:
    """Return what a refund takes back now, REFUNDED_MINOR being all refunded so far.

    The bonus's share of the refunded part (rounded down) less what earlier refunds took back;
    never negative, never beyond the bonus.
    """
    if bonus_minor <= 0 or credited_minor <= 0:
        return 0
    refunded = min(max(refunded_minor, 0), credited_minor)
    due = bonus_minor * refunded // credited_minor
    return max(0, min(due, bonus_minor) - taken_back_minor)
