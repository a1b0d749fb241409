"""Property: every tariff and account the API accepts can be charged without error.

Money fields and prices are drawn with their edges (0, the 10**12 limit, just above it, 2**63,
10**30) in currencies with 0, 2 and 3 decimals. Whatever the API accepts must then take a
baseline and a reading after the longest gap the ledger charges (366 days) with up to 10**6
units of consumption, answer 200 and post exactly what it reports. What is out of bounds
must be refused with a 422, never accepted to fail later (10**30 as a standing charge once
was, after which every reading of that meter failed).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.ledger.conftest import Ledger
from tests.ledger.domain.strategies import ZONES, segments, tiered_payloads

pytestmark = pytest.mark.usefixtures("socket_enabled")

LIMIT = 10**12  # docs/ledger-api.md: the largest money amount a request may set
PRICE_LIMIT = Decimal(10_000)  # the highest price per kWh or m3
# Mostly in bounds (with their edges), so that most examples get accepted and charged; one
# draw in four is beyond a bound and must be refused.
_money_in = st.one_of(st.sampled_from([0, 1, LIMIT - 1, LIMIT]), st.integers(0, LIMIT))
_money_out = st.sampled_from([LIMIT + 1, 2**63 - 1, 2**63, 10**30, -1])
money = st.one_of(_money_in, _money_in, _money_in, _money_out)
_price_in = st.one_of(
    st.sampled_from(["0", "10000", "9999.9999999999", "0.0000000001"]),
    st.decimals(min_value=0, max_value=PRICE_LIMIT, places=4).map(str),
)
prices = st.one_of(_price_in, _price_in, _price_in, st.just("10000.0000000001"))


@st.composite
def tariff_bodies(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["flat", "tou", "tiered"]))
    body: dict[str, Any]
    if kind == "flat":
        body = {"kind": "flat", "price": draw(prices)}
    elif kind == "tou":
        body = {"kind": "tou", "segments": draw(segments())}
        body["segments"][0]["price"] = draw(prices)
    else:
        body = draw(tiered_payloads())
        body["bands"][-1]["price"] = draw(prices)
    return body | {
        "name": "t",
        "unit": "kWh",
        "currency": draw(st.sampled_from(["EUR", "JPY", "KWD"])),
        "standing_charge_minor_per_day": draw(money),
    }


@st.composite
def account_bodies(draw: st.DrawFn) -> dict[str, Any]:
    first, second = draw(money), draw(money)
    return {
        "name": "a",
        "timezone": draw(st.sampled_from(ZONES)),
        "emergency_credit_minor": draw(money),
        "low_balance_minor": [max(first, second), min(first, second)],
        "reconnect_margin_minor": draw(money),
    }


def _money_in_bounds(tariff: dict[str, Any], account: dict[str, Any]) -> bool:
    amounts = [
        tariff["standing_charge_minor_per_day"],
        account["emergency_credit_minor"],
        account["reconnect_margin_minor"],
        *account["low_balance_minor"],
    ]
    return all(0 <= amount <= LIMIT for amount in amounts)


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    tariff=tariff_bodies(),
    account=account_bodies(),
    consumption=st.decimals(min_value=0, max_value=10**6, places=3),
)
async def test_every_accepted_tariff_and_account_can_be_charged(
    ledger: Ledger, tariff: dict[str, Any], account: dict[str, Any], consumption: Decimal
) -> None:
    tariff_status, created_tariff = await ledger.call("POST", "/api/v1/tariffs", json=tariff)
    account_status, created_account = await ledger.call(
        "POST", "/api/v1/accounts", json=account | {"currency": tariff["currency"]}
    )
    assert tariff_status in {201, 422}, created_tariff
    assert account_status in {201, 422}, created_account
    if not _money_in_bounds(tariff, account):
        assert 422 in {tariff_status, account_status}
    if 422 in {tariff_status, account_status}:
        event("refused")
        return
    event("accepted and charged")
    # Up to 10**6 kWh in 366 days is ~114 kW on average: above the reading guard's default
    # for an unknown meter, so this meter is declared able to draw that much.
    meter = await ledger.meter(created_account["id"], created_tariff["id"], max_power="1000")
    now = datetime.now(UTC)
    start = now - timedelta(days=366)
    await ledger.ok(
        "POST",
        "/api/v1/readings",
        json={"readings": [{"meter_id": meter["id"], "value": "0", "at": start.isoformat()}]},
    )
    status, result = await ledger.call(
        "POST",
        "/api/v1/readings",
        json={
            "readings": [
                {"meter_id": meter["id"], "value": str(consumption), "at": now.isoformat()}
            ]
        },
    )
    assert status == 200, result
    (outcome,) = result["meters"]
    assert outcome["accepted"] == 1
    assert outcome["charged_minor"] >= 0
    # The baseline's own local day, then every local day after it up to today (at most 366 at
    # once), all at the same standing charge.
    zone = ZoneInfo(account["timezone"])
    days = min((now.astimezone(zone).date() - start.astimezone(zone).date()).days, 366)
    standing = tariff["standing_charge_minor_per_day"]
    assert outcome["standing_charged_minor"] == days * standing
    assert await ledger.balance(created_account["id"]) == -(
        outcome["charged_minor"] + (days + 1) * standing
    )
