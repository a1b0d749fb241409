"""Exact splitting of a quantity into parts that sum back to it to the last digit."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Context, Decimal, Inexact, InvalidOperation
from itertools import pairwise
from typing import Final

from prepaid_ledger.errors import InputError

#: Parts are at least this fine (10^-9 of a kWh or m3), finer if the input is finer.
MIN_PART_EXPONENT: Final = -9
_MICROSECOND: Final = timedelta(microseconds=1)
_PART_UNIT: Final = Decimal(1).scaleb(MIN_PART_EXPONENT)
#: Quantizing to _PART_UNIT in this context is exact or raises: never a rounded quantity.
_EXACTLY: Final = Context(prec=100, traps=[Inexact, InvalidOperation])


def part_exponent(quantity: Decimal) -> int:
    """Return the decimal exponent parts of ``quantity`` are expressed in."""
    exponent = quantity.as_tuple().exponent
    if not isinstance(exponent, int):
        raise InputError("invalid_decimal", "quantity must be a finite decimal")
    return min(exponent, MIN_PART_EXPONENT)


def apportion(quantity: Decimal, weights: Sequence[int]) -> list[Decimal]:
    """Split quantity in proportion to non-negative integer weights; parts sum to it exactly.

    Uses the largest-remainder method on integer multiples of 10^part_exponent, so every part
    is within one such unit of its exact proportional share. All-zero weights split evenly.
    """
    if not weights:
        raise ValueError("apportion needs at least one weight")
    if any(weight < 0 for weight in weights):
        raise ValueError("weights must not be negative")
    if len(weights) == 1:  # the common case (an interval in one band): nothing to split
        return [whole(quantity)]
    units, exponent = _in_units(quantity)
    total = sum(weights)
    if total == 0:
        weights, total = [1] * len(weights), len(weights)
    shares = [units * weight // total for weight in weights]
    remainders = [units * weight % total for weight in weights]
    leftover = units - sum(shares)
    by_remainder = sorted(range(len(weights)), key=lambda i: (-remainders[i], i))
    for index in by_remainder[:leftover]:
        shares[index] += 1
    return [Decimal(share).scaleb(exponent, context=_EXACTLY) for share in shares]


def whole(quantity: Decimal) -> Decimal:
    """Return QUANTITY as apportion's one part: the same value, in parts' units."""
    sign, _, exponent = quantity.as_tuple()
    if sign == 0 and isinstance(exponent, int) and exponent >= MIN_PART_EXPONENT:
        # A meter's step (0.025 kWh) in units of 10^-9: one exact quantize, not four steps.
        return quantity.quantize(_PART_UNIT, context=_EXACTLY)
    units, exponent = _in_units(quantity)
    return Decimal(units).scaleb(exponent, context=_EXACTLY)


def _in_units(quantity: Decimal) -> tuple[int, int]:
    """Return QUANTITY as (units, exponent): a whole number of 10^exponent; refuse < 0."""
    exponent = part_exponent(quantity)
    units = int(quantity.scaleb(-exponent, context=_EXACTLY))  # never rounded to 28 digits
    if units < 0:
        raise InputError("negative_quantity", "quantity must not be negative")
    return units, exponent


def microseconds(span: timedelta) -> int:
    """Return a timedelta as an integer number of microseconds."""
    return span // _MICROSECOND


def split_by_time(
    start: datetime, end: datetime, quantity: Decimal, cuts: Sequence[datetime]
) -> list[tuple[datetime, datetime, Decimal]]:
    """Split consumption over [start, end] at the given instants, in proportion to time.

    Useful when a tariff changes price or a meter moves account inside a reading interval.
    Cuts outside the open interval are ignored; quantities sum exactly to ``quantity``.
    """
    inner = sorted({cut for cut in cuts if start < cut < end})
    points = [start, *inner, end]
    spans = list(pairwise(points))
    parts = apportion(quantity, [microseconds(high - low) for low, high in spans])
    return [(low, high, part) for (low, high), part in zip(spans, parts, strict=True)]
