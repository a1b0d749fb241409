"""What a meter's step from its last accepted reading to a new one can physically be.

A glitched Modbus read (a 0, a garbage or word-swapped 32-bit value, a jump by millions) must
never be charged: in a prepaid meter it would drain a balance and cut supply. The rule is
physics: a meter cannot count more than its maximum power times the time elapsed. A step
beyond that, plus a margin, is held for a person. A register that goes backwards is never
consumption; it is told apart as noise (a small step back), the wrap of a fixed-width
counter, a reset or swap (near zero after a large total) or garbage, and only noise and a
consistent wrap are decided without a person.

Pure functions of decimals and times. Both halves apply them: the ledger decides what is
charged, the integration what total an entity may show.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from prepaid_meter_contract.vocabulary import HELD_KINDS, StepKind

#: The margin on top of maximum power x elapsed time: 10 % (mains voltage may run 10 % above
#: nominal, EN 50160) ...
RELATIVE_MARGIN = Decimal("0.10")
#: ... plus one minute at full power, for the jitter between when a meter updates its register
#: and when the reading is stamped (and for register resolution on very short intervals).
ABSOLUTE_MARGIN_TIME = timedelta(minutes=1)
#: A total this many margins (one minute at full power each) above zero counts as "large": a
#: drop to near zero from there is a reset or a swap, not a meter that has barely started.
LARGE_TOTAL_MARGINS = 10


@dataclass(frozen=True, slots=True)
class MeterLimits:
    """What one meter can physically count.

    ``max_power`` is in the meter's unit per hour (kW for a kWh meter, m3/h for water).
    ``register_modulus`` is the count at which a fixed-width counter rolls over to 0 (2**32 x
    0.01 kWh for a uint32 register in hundredths); ``None`` for registers that do not wrap,
    such as float32 totals.
    """

    max_power: Decimal
    register_modulus: Decimal | None = None

    def absolute_margin(self) -> Decimal:
        """Return one minute at full power."""
        return self.max_power * _hours(ABSOLUTE_MARGIN_TIME)

    def allowed(self, elapsed: timedelta) -> Decimal:
        """Return the most a meter can count in ``elapsed``, with the margin."""
        return self.max_power * _hours(elapsed) * (1 + RELATIVE_MARGIN) + self.absolute_margin()


@dataclass(frozen=True, slots=True)
class Step:
    """The verdict on one reading: its kind and, when charged, the quantity consumed."""

    kind: StepKind
    quantity: Decimal
    allowed: Decimal

    @property
    def held(self) -> bool:
        """Whether a person must decide (the reading charges nothing until then)."""
        return self.kind in HELD_KINDS


def classify(
    last_value: Decimal,
    last_at: datetime,
    value: Decimal,
    at: datetime,
    limits: MeterLimits,
) -> Step:
    """Classify the step from the last accepted reading to a later one (``at > last_at``)."""
    allowed = limits.allowed(at - last_at)
    if value >= last_value:
        quantity = value - last_value
        if quantity <= allowed:
            return Step(StepKind.CONSUMPTION, quantity, allowed)
        return Step(StepKind.SURGE, quantity, allowed)
    if last_value - value <= limits.absolute_margin():
        return Step(StepKind.NOISE, Decimal(0), allowed)
    if limits.register_modulus is not None and last_value < limits.register_modulus:
        wrapped = limits.register_modulus - last_value + value
        if wrapped <= allowed:
            return Step(StepKind.WRAP, wrapped, allowed)
    if value <= allowed and last_value > limits.absolute_margin() * LARGE_TOTAL_MARGINS:
        return Step(StepKind.RESET, Decimal(0), allowed)
    return Step(StepKind.BACKWARDS, Decimal(0), allowed)


def _hours(span: timedelta) -> Decimal:
    """Return a time span in hours (microsecond resolution)."""
    micros = (span.days * 86_400 + span.seconds) * 1_000_000 + span.microseconds
    return Decimal(micros) / Decimal(3_600_000_000)
