"""Plausible value ranges shared by the built-in profiles.

A test read that decodes to values outside these ranges means the chosen profile does not
match the meter (wrong model, wrong word order), which the config flow reports as
``wrong_profile`` instead of creating a meter that shows nonsense.
"""

from __future__ import annotations

from decimal import Decimal

ENERGY_RANGE = (Decimal(0), Decimal(100_000_000))
MAINS_VOLTAGE = (Decimal(0), Decimal(500))
MAINS_CURRENT = (Decimal(0), Decimal(200))
SINGLE_PHASE_POWER = (Decimal(-50_000), Decimal(50_000))
THREE_PHASE_POWER = (Decimal(-200_000), Decimal(200_000))
MAINS_FREQUENCY = (Decimal(40), Decimal(70))
POWER_FACTOR_RANGE = (Decimal(-1), Decimal(1))
