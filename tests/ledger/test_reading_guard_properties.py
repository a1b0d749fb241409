"""Property: glitches injected among good readings never cost money or change supply.

Good readings come from a physical model of an Eastron SDM120 (at most 45 A x 230 V =
10.35 kW): each step draws a power within that and a time. Between them, glitches of each kind
real meters show (a 0, a jump by millions, a word-swapped float32, random garbage, a small step
back) are sent on their own. The expected charge is computed here, independently of the
ledger: the good readings' total consumption x 1.00 EUR/kWh, rounded once to the cent; and
every glitch batch must leave balance and supply exactly as they were.
"""

from __future__ import annotations

import math
import struct
from datetime import UTC, datetime, timedelta
from decimal import ROUND_DOWN, ROUND_HALF_UP, Context, Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tests.ledger.conftest import Ledger

pytestmark = pytest.mark.usefixtures("socket_enabled")

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
MAX_KW = Decimal("10.35")  # SDM120: 45 A x 230 V
MILLI = Decimal("0.001")


def swap_words(value: Decimal) -> Decimal:
    """The value a torn read shows: the float32's two 16-bit words in the wrong order."""
    raw = struct.pack(">f", float(value))
    (glitched,) = struct.unpack(">f", raw[2:] + raw[:2])
    return Decimal(0) if math.isnan(glitched) else Decimal(repr(abs(glitched)))


def physically_possible(last: Decimal, value: Decimal, minutes: int) -> bool:
    """Our own statement of the physics: forward by at most 10.35 kW x time (+10 %, + 1 min)."""
    most = MAX_KW * Decimal(minutes) / 60 * Decimal("1.1") + MAX_KW / 60
    return last <= value <= last + most


@st.composite
def sessions(draw: st.DrawFn) -> list[tuple[str, int, Decimal]]:
    """A sequence of ("good" | glitch kind, minutes since the previous good reading, value)."""
    last = draw(st.decimals(min_value=10, max_value=10**6, places=3))
    events: list[tuple[str, int, Decimal]] = [("good", 0, last)]
    for _ in range(draw(st.integers(3, 12))):
        minutes = draw(st.integers(1, 180))
        if draw(st.booleans()):
            kind = draw(st.sampled_from(["zero", "jump", "swap", "garbage", "step_back"]))
            glitch = {
                "zero": Decimal(0),
                "jump": last + draw(st.integers(1_000, 10**8)),
                "swap": swap_words(last),
                "garbage": draw(st.decimals(min_value=0, max_value=10**9, places=2)),
                "step_back": last - draw(st.decimals(min_value=MILLI, max_value=1, places=3)),
            }[kind]
            if glitch < 0 or physically_possible(last, glitch, minutes):
                continue  # a value this meter could really show is not a glitch
            # A float32 reaches 3.4e38; the ledger takes plain decimals up to 32 characters.
            glitch = min(glitch, Decimal(10) ** 20)
            events.append((kind, minutes, glitch.quantize(MILLI, ROUND_DOWN, Context(prec=60))))
        kw = draw(st.decimals(min_value=0, max_value=MAX_KW, places=2))
        last = (last + kw * minutes / 60).quantize(MILLI, rounding=ROUND_DOWN)
        events.append(("good", minutes, last))
    return events


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(session=sessions())
async def test_glitches_among_good_readings_cost_nothing(
    sqlite_ledger: Ledger, session: list[tuple[str, int, Decimal]]
) -> None:
    ledger = sqlite_ledger
    assume(any(kind != "good" for kind, _, _ in session))
    tariff = await ledger.tariff(price="1.00")
    account = await ledger.account(low_balance_minor=[500, 100])
    meter = await ledger.meter(account["id"], tariff["id"], model="eastron_sdm120")
    await ledger.topup(account["id"], 2000, f"credit-{account['id']}")
    at = T0
    first = session[0][2]
    state: dict[str, Any] = {}
    for kind, minutes, value in session:
        # A glitch is read half a minute before the good reading that follows it.
        stamp = at + timedelta(minutes=minutes, seconds=0 if kind == "good" else -30)
        body = {
            "readings": [{"meter_id": meter["id"], "value": str(value), "at": stamp.isoformat()}]
        }
        (outcome,) = (await ledger.ok("POST", "/api/v1/readings", json=body))["meters"]
        if kind == "good":
            at = stamp
            good_so_far = value - first
            expected = 2000 - int((good_so_far * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))
            assert outcome["balance_minor"] == expected
        else:
            assert outcome["charged_minor"] == 0, kind
            assert outcome["balance_minor"] == state["balance_minor"], kind
            assert outcome["supply"] == state["supply"], kind
            assert outcome["held"] + outcome["ignored_noise"] == 1, kind
        state = outcome
