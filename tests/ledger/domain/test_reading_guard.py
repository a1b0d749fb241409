"""The reading guard's rule on worked examples (numbers computed by hand in the comments)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from prepaid_meter_contract.meter_ratings import default_max_power, default_register_modulus
from prepaid_meter_contract.reading_guard import MeterLimits, classify

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
# Eastron SDM120: 45 A maximum x 230 V = 10.35 kW.
SDM120 = MeterLimits(Decimal("10.35"))
# Acrel DDSY1352: 60 A x 230 V = 13.8 kW; uint32 in 0.01 kWh wraps at 42,949,672.96 kWh.
DDSY1352 = MeterLimits(Decimal("13.8"), Decimal("42949672.96"))


def test_model_defaults_from_nameplate_current_and_voltage() -> None:
    assert default_max_power("eastron_sdm120", "kWh") == Decimal("10.35")
    assert default_max_power("eastron_sdm630", "kWh") == Decimal(69)  # 100 A x 230 V x 3
    assert default_max_power("no_such_model", "kWh") == Decimal(69)
    assert default_max_power(None, "m3") == Decimal(20)
    assert default_register_modulus("acrel_ddsy1352") == Decimal("42949672.96")
    assert default_register_modulus("eastron_sdm120") is None


# 15 minutes on an SDM120: 10.35 kW x 0.25 h x 1.1 + 10.35 kW x 1/60 h
#   = 2.84625 + 0.1725 = 3.01875 kWh at most.
@pytest.mark.parametrize(
    ("step", "kind"),
    [("0", "consumption"), ("3.01875", "consumption"), ("3.019", "surge"), ("1000000", "surge")],
)
def test_steps_up_to_max_power_times_time_are_consumption(step: str, kind: str) -> None:
    verdict = classify(
        Decimal(5000), T0, Decimal(5000) + Decimal(step), T0 + timedelta(minutes=15), SDM120
    )
    assert verdict.kind == kind
    assert verdict.allowed == Decimal("3.01875")
    assert verdict.quantity == Decimal(step)
    assert verdict.held is (kind == "surge")


# Backwards on an SDM120 after 15 minutes from 5000 kWh. Noise: at most a minute at full power,
# 10.35 / 60 = 0.1725 kWh. Reset: a value the meter could have counted from 0 (<= 3.01875 kWh)
# after a total above ten such minutes (1.725 kWh). Anything else below: garbage, held.
@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("4999.8275", "noise"),
        ("4999.82", "backwards"),
        ("4000", "backwards"),
        ("3.01875", "reset"),
        ("0", "reset"),
        ("3.02", "backwards"),
    ],
)
def test_backwards_steps(value: str, kind: str) -> None:
    verdict = classify(Decimal(5000), T0, Decimal(value), T0 + timedelta(minutes=15), SDM120)
    assert verdict.kind == kind
    assert verdict.quantity == 0
    assert verdict.held is (kind in {"reset", "backwards"})


def test_a_new_meter_near_zero_going_back_is_not_called_a_reset() -> None:
    # 1.5 kWh is below ten minutes at full power (1.725 kWh): not a "large total".
    verdict = classify(Decimal("1.5"), T0, Decimal("0.2"), T0 + timedelta(minutes=15), SDM120)
    assert verdict.kind == "backwards"


def test_a_fixed_width_counter_wraps_into_consumption() -> None:
    # DDSY1352, 5 minutes: 13.8 x 5/60 x 1.1 + 13.8/60 = 1.265 + 0.23 = 1.495 kWh at most.
    # From 42,949,672.50 over the top (0.46 kWh to 42,949,672.96 = 0) to 0.20: 0.66 kWh.
    verdict = classify(
        Decimal("42949672.50"), T0, Decimal("0.20"), T0 + timedelta(minutes=5), DDSY1352
    )
    assert verdict.kind == "wrap"
    assert verdict.quantity == Decimal("0.66")
    # The same drop in 10 seconds (at most 13.8/360 x 1.1 + 0.23 = 0.27216... kWh) is too
    # fast for a wrap, and near zero after a large total: a reset.
    fast = classify(
        Decimal("42949672.50"), T0, Decimal("0.20"), T0 + timedelta(seconds=10), DDSY1352
    )
    assert fast.kind == "reset"


def test_a_float_register_never_wraps() -> None:
    verdict = classify(
        Decimal("42949672.50"), T0, Decimal("0.20"), T0 + timedelta(minutes=5), SDM120
    )
    assert verdict.kind == "reset"
