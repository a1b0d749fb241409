"""Bonus arithmetic, checked against worked examples done by hand.

"Top up 500, get 100" is the seeds' promotion (CNY, two decimals); a percentage bonus is rounded
down to the cent (never more than promised); refunds take back the bonus's share of what was
refunded so far, so that a full refund takes back exactly the bonus.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prepaid_ledger.domain.promotions import Offer, best_offer, bonus_for, bonus_to_take_back

TOP_UP_500_GET_100 = Offer(promotion_id=1, min_topup_minor=50_000, bonus_minor=10_000)


@pytest.mark.parametrize(
    ("offer", "amount", "expected"),
    [
        (TOP_UP_500_GET_100, 50_000, 10_000),  # 500.00 -> 100.00 extra
        (TOP_UP_500_GET_100, 49_999, 0),  # 499.99 is not 500
        (TOP_UP_500_GET_100, 200_000, 10_000),  # a fixed bonus does not grow
        # 20 % of 123.45 = 24.69
        (Offer(2, 1, bonus_percent=Decimal(20)), 12_345, 2_469),
        # 12.5 % of 10.01 = 1.25125 -> 1.25 (rounded down)
        (Offer(3, 1, bonus_percent=Decimal("12.5")), 1_001, 125),
        # 7.25 % of 0.99 = 0.071775 -> 0.07
        (Offer(4, 1, bonus_percent=Decimal("7.25")), 99, 7),
        # 10 % of 1000.00 = 100.00, capped at 30.00
        (Offer(5, 1, bonus_percent=Decimal(10), max_bonus_minor=3_000), 100_000, 3_000),
        # JPY has no minor unit: 5 % of 1999 yen = 99.95 -> 99 yen
        (Offer(6, 1_000, bonus_percent=Decimal(5)), 1_999, 99),
        # 100 % doubles; 1 % of 0.99 is under a cent: nothing
        (Offer(7, 1, bonus_percent=Decimal(100)), 4_321, 4_321),
        (Offer(8, 1, bonus_percent=Decimal(1)), 99, 0),
    ],
)
def test_bonus_worked_examples(offer: Offer, amount: int, expected: int) -> None:
    assert bonus_for(offer, amount) == expected


def test_the_largest_bonus_applies_and_the_oldest_wins_a_tie() -> None:
    fixed = Offer(promotion_id=3, min_topup_minor=10_000, bonus_minor=1_500)
    percent = Offer(promotion_id=5, min_topup_minor=10_000, bonus_percent=Decimal(10))
    # 150.00: 15.00 either way -> the older promotion (id 3)
    assert best_offer([percent, fixed], 15_000) == (fixed, 1_500)
    # 200.00: 20.00 beats 15.00
    assert best_offer([fixed, percent], 20_000) == (percent, 2_000)
    # under every minimum: none
    assert best_offer([fixed, percent], 9_999) is None
    assert best_offer([], 10**9) is None


@pytest.mark.parametrize(
    ("refunds", "expected"),
    [
        # bonus 100.00 on 500.00: half refunded -> 50.00, the rest -> 50.00
        ([25_000, 25_000], [5_000, 5_000]),
        # bonus 0.10 on 0.03 refunded a cent at a time: floor(10/3)=3, floor(20/3)=6 (+3), 10 (+4)
        ([1, 1, 1], [3, 3, 4]),
        # all at once
        ([50_000], [10_000]),
    ],
)
def test_refunds_take_back_the_share_and_never_more(
    refunds: list[int], expected: list[int]
) -> None:
    bonus, credited = (10_000, 50_000) if sum(refunds) == 50_000 else (10, 3)
    taken = refunded = 0
    got = []
    for amount in refunds:
        refunded += amount
        now = bonus_to_take_back(bonus, taken, credited, refunded)
        taken += now
        got.append(now)
    assert got == expected
    assert taken == bonus


@given(
    bonus=st.integers(0, 10**9),
    credited=st.integers(1, 10**12),
    parts=st.lists(st.integers(1, 10**12), min_size=1, max_size=8),
)
def test_take_back_never_exceeds_the_bonus(bonus: int, credited: int, parts: list[int]) -> None:
    taken = refunded = 0
    for part in parts:
        refunded = min(credited, refunded + part)
        now = bonus_to_take_back(bonus, taken, credited, refunded)
        assert now >= 0
        taken += now
        assert taken <= bonus
    if refunded == credited:
        assert taken == bonus
