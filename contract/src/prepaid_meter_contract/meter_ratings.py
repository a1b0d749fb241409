"""Default maximum power per meter model: the most a meter of that model can count per hour.

Maximum current x nominal voltage (230 V) x phases, for the direct-connected variant of each
model the integration supports (the ids are its profile ids). The reading guard adds its own
margin on top (10 % for high mains voltage, plus a minute at full power). A meter on current
transformers, or another variant, gets its own ``max_power`` setting from the landlord.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Final

NOMINAL_VOLTAGE: Final = Decimal(230)
#: A uint32 energy register in hundredths of a kWh rolls over at 2**32 x 0.01 kWh.
UINT32_HUNDREDTHS: Final = Decimal(2**32) / 100


@dataclass(frozen=True, slots=True)
class Rating:
    """A model's nameplate maximum current, phases, and where its energy counter wraps."""

    max_current_a: int
    phases: int = 1
    register_modulus: Decimal | None = None

    @property
    def max_power_kw(self) -> Decimal:
        """Maximum current x nominal voltage x phases, in kW."""
        return Decimal(self.max_current_a) * NOMINAL_VOLTAGE * self.phases / 1000


RATINGS: Final[dict[str, Rating]] = {
    "eastron_sdm120": Rating(45),
    "eastron_sdm230": Rating(100),
    "eastron_sdm630": Rating(100, phases=3),
    "chint_ddsu666": Rating(60),
    "acrel_ddsy1352": Rating(60, register_modulus=UINT32_HUNDREDTHS),
    "hiking_dds238_2": Rating(100, register_modulus=UINT32_HUNDREDTHS),
}

#: For a meter whose model the ledger does not know: a 100 A three-phase supply in kW, and a
#: DN40 water meter's overload flow (Q4) in m3/h. High on purpose: a real glitch is orders of
#: magnitude beyond either, and a real load must never be held.
UNIT_DEFAULTS: Final[dict[str, Decimal]] = {
    "kWh": Rating(100, phases=3).max_power_kw,
    "m3": Decimal(20),
}

#: The highest max_power a landlord may set (per hour, in the meter's unit): 10 MW.
MAX_POWER_LIMIT: Final = Decimal(10_000)


def default_max_power(model: str | None, unit: str) -> Decimal:
    """Return the maximum power a meter gets when the landlord has set none."""
    rating = RATINGS.get(model or "")
    if rating is not None and unit == "kWh":
        return rating.max_power_kw
    return UNIT_DEFAULTS[unit]


def default_register_modulus(model: str | None) -> Decimal | None:
    """Return where the model's energy counter wraps (None: a float register never does)."""
    rating = RATINGS.get(model or "")
    return None if rating is None else rating.register_modulus
