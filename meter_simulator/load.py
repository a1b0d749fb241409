"""Load profiles: how much a simulated meter's consumer draws over time.

A load is any callable ``(seconds since start) -> rate`` (W for energy meters, l/h for water
meters). The meter integrates it into its total, and only while its relay is closed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


class Load(Protocol):
    """Rate drawn at a point in (simulated) time."""

    def __call__(self, elapsed: float) -> float:
        """Return the rate at ``elapsed`` seconds since the simulator started."""
        ...


@dataclass(frozen=True, slots=True)
class ConstantLoad:
    """A steady consumer, e.g. a heater."""

    rate: float

    def __call__(self, elapsed: float) -> float:
        """Return the same rate at every moment."""
        return self.rate


@dataclass(frozen=True, slots=True)
class SineLoad:
    """A consumer that swings around a mean, e.g. a household over a (compressed) day."""

    mean: float
    amplitude: float
    period: float = 86_400.0

    def __call__(self, elapsed: float) -> float:
        """Return mean + amplitude * sin(phase), never below zero."""
        return max(0.0, self.mean + self.amplitude * math.sin(2 * math.pi * elapsed / self.period))


@dataclass(frozen=True, slots=True)
class StepLoad:
    """A scripted consumer: ``steps`` are (from_second, rate) pairs in time order."""

    steps: Sequence[tuple[float, float]]

    def __call__(self, elapsed: float) -> float:
        """Return the rate of the last step that has started (0 before the first)."""
        rate = 0.0
        for start, value in self.steps:
            if elapsed < start:
                break
            rate = value
        return rate
