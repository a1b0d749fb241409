"""Extreme input: times outside the window, readings from the future, unpostable money.

Each must be a 422 naming the field that changes nothing (never a 500, never a long request).
The window (2000-01-01 .. 2100-01-01 UTC), the clock-skew allowance (5 minutes), the longest
charged gap (366 days) and the money bound (10**12 minor units) are the documented limits in
docs/ledger-api.md.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prepaid_ledger.api.http_helpers import PARSE_IN_THREAD_BYTES
from prepaid_ledger.domain.charging import STANDING_BAND, TOTAL_BAND
from prepaid_ledger.services.verify import verify_ledger
from prepaid_ledger.store.database import Database
from prepaid_ledger.store.models import TariffVersion
from prepaid_meter_contract.tariffs import RESERVED_BAND_NAMES
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tests.ledger.conftest import Ledger

pytestmark = pytest.mark.usefixtures("socket_enabled")

EXTREME_TIMES = [
    "0001-01-01T00:00:00+01:00",  # overflowed in astimezone
    "0001-01-01T00:00:00+00:00",
    "9999-12-31T23:59:59-01:00",  # overflowed in astimezone
    "9999-12-31T23:59:59+00:00",
    "1999-12-31T23:59:59+00:00",  # just before the window
    "2000-01-01T00:30:00+01:00",  # 1999-12-31T23:30Z: before the window once in UTC
    "2100-01-01T00:00:00+00:00",  # the window's end is exclusive
]


def reading(meter_id: int, value: str, at: datetime | str) -> dict[str, object]:
    return {
        "meter_id": meter_id,
        "value": value,
        "at": at if isinstance(at, str) else at.isoformat(),
    }


async def setup_meter(ledger: Ledger, **tariff: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    t = await ledger.tariff(**tariff)
    account = await ledger.account()
    meter = await ledger.meter(account["id"], t["id"])
    return account, meter


def assert_refused(status: int, body: Any, code: str, field: str) -> None:
    assert status == 422, body
    assert body["error"]["code"] == code, body
    assert field in body["error"]["message"], body


@pytest.mark.parametrize("at", EXTREME_TIMES)
async def test_times_outside_the_window_are_422_everywhere(ledger: Ledger, at: str) -> None:
    account, meter = await setup_meter(ledger)
    other = await ledger.account(name="Room 2")
    tariff_before = await ledger.ok("GET", f"/api/v1/tariffs/{meter['tariff_id']}")

    status, body = await ledger.call(
        "POST", "/api/v1/readings", json={"readings": [reading(meter["id"], "1", at)]}
    )
    assert_refused(status, body, "time_out_of_range", "readings[0].at")

    status, body = await ledger.call(
        "POST", f"/api/v1/meters/{meter['id']}/assign", json={"account_id": other["id"], "from": at}
    )
    assert_refused(status, body, "time_out_of_range", "from")

    status, body = await ledger.call(
        "POST", f"/api/v1/meters/{meter['id']}/replace", json={"new_start_value": "5", "at": at}
    )
    assert_refused(status, body, "time_out_of_range", "at")

    version = {
        key: tariff_before[key]
        for key in ("name", "currency", "unit", "kind", "price", "standing_charge_minor_per_day")
    }
    status, body = await ledger.call(
        "POST",
        f"/api/v1/tariffs/{meter['tariff_id']}/versions",
        json=version | {"effective_from": at},
    )
    assert_refused(status, body, "time_out_of_range", "effective_from")

    for field in ("from", "to"):
        status, body = await ledger.call(
            "GET", f"/api/v1/accounts/{account['id']}/statement?{field}={at.replace('+', '%2B')}"
        )
        assert_refused(status, body, "time_out_of_range", field)

    # Nothing changed: the meter has no reading, is still on its account, the tariff unchanged.
    meters = (await ledger.ok("GET", "/api/v1/meters"))["meters"]
    assert [(m["id"], m["account_id"], m["last_at"]) for m in meters] == [
        (meter["id"], account["id"], None)
    ]
    assert await ledger.ok("GET", f"/api/v1/tariffs/{meter['tariff_id']}") == tariff_before


# In UTC+14, 2000-01-01 starts at 1999-12-31T10:00Z (outside) and 2100-01-01 at
# 2099-12-31T10:00Z (inside, so 2100-01-02 is the first date outside).
@pytest.mark.parametrize("day", ["0001-01-01", "9999-12-31", "2000-01-01", "2100-01-02"])
async def test_statement_dates_outside_the_window_are_422(ledger: Ledger, day: str) -> None:
    account = await ledger.account(timezone="Pacific/Kiritimati")  # UTC+14: the worst offset
    for field in ("from", "to"):
        status, body = await ledger.call(
            "GET", f"/api/v1/accounts/{account['id']}/statement?{field}={day}"
        )
        assert_refused(status, body, "time_out_of_range", field)


async def test_window_edges_inside_are_accepted(sqlite_ledger: Ledger) -> None:
    ledger = sqlite_ledger
    account, meter = await setup_meter(ledger)
    await ledger.ok(
        "POST",
        "/api/v1/readings",
        json={"readings": [reading(meter["id"], "1", "2000-01-01T00:00:00+00:00")]},
    )
    statement = await ledger.ok(
        "GET",
        f"/api/v1/accounts/{account['id']}/statement"
        "?from=2000-01-01T00:00:00%2B00:00&to=2099-12-31T23:59:59%2B00:00",
    )
    assert statement["ties_out"] is True


async def test_readings_from_the_future_are_refused_beyond_the_clock_skew(
    ledger: Ledger,
) -> None:
    account, meter = await setup_meter(ledger, standing_charge_minor_per_day=100)
    now = datetime.now(UTC)
    for ahead in (timedelta(minutes=6), timedelta(days=1), timedelta(days=20_000)):
        status, body = await ledger.call(
            "POST",
            "/api/v1/readings",
            json={
                "readings": [
                    reading(meter["id"], "1", now),
                    reading(meter["id"], "2", now + ahead),
                ]
            },
        )
        assert_refused(status, body, "time_in_future", "readings[1].at")
    assert await ledger.balance(account["id"]) == 0  # no standing charge billed in advance
    # A reading a little ahead (HA's clock runs fast by a minute) is within the allowance.
    result = await ledger.ok(
        "POST",
        "/api/v1/readings",
        json={"readings": [reading(meter["id"], "1", now + timedelta(minutes=1))]},
    )
    assert result["meters"][0]["baseline"] == 1
    # The same rule for when a meter was replaced or moved.
    other = await ledger.account(name="Room 2")
    later = (now + timedelta(hours=1)).isoformat()
    status, body = await ledger.call(
        "POST", f"/api/v1/meters/{meter['id']}/replace", json={"new_start_value": "5", "at": later}
    )
    assert_refused(status, body, "time_in_future", "at")
    status, body = await ledger.call(
        "POST",
        f"/api/v1/meters/{meter['id']}/assign",
        json={"account_id": other["id"], "from": later},
    )
    assert_refused(status, body, "time_in_future", "from")


async def test_a_gap_longer_than_366_days_is_held_not_walked(ledger: Ledger) -> None:
    """The oldest baseline then a reading now: held for a person, in well under a second."""
    account, meter = await setup_meter(
        ledger,
        kind="tou",
        price=None,
        segments=[{"start": f"{h:02d}:00", "price": "0.1"} for h in range(14)],
        standing_charge_minor_per_day=10,
    )
    now = datetime.now(UTC)
    await ledger.ok(
        "POST",
        "/api/v1/readings",
        json={"readings": [reading(meter["id"], "0", "2000-01-01T00:00:00+00:00")]},
    )
    balance_after_baseline = await ledger.balance(account["id"])
    assert balance_after_baseline == -10  # the baseline's own day
    started = time.perf_counter()
    result = await ledger.ok(
        "POST", "/api/v1/readings", json={"readings": [reading(meter["id"], "100", now)]}
    )
    elapsed = time.perf_counter() - started
    outcome = result["meters"][0]
    assert (outcome["flagged"], outcome["accepted"], outcome["charged_minor"]) == (1, 0, 0)
    assert outcome["standing_charged_minor"] == 0
    assert await ledger.balance(account["id"]) == balance_after_baseline
    assert elapsed < 1.0, elapsed
    # A person re-bases the meter; charging resumes from there.
    await ledger.ok(
        "POST",
        f"/api/v1/meters/{meter['id']}/replace",
        json={"new_start_value": "100", "at": (now - timedelta(days=2)).isoformat()},
    )
    result = await ledger.ok(
        "POST",
        "/api/v1/readings",
        json={"readings": [reading(meter["id"], "110", now)]},
    )
    # 10 kWh at 0.10 EUR = 100 cents, every segment has the same price; the standing charge
    # unbilled since 2000 is billed for the last 366 local days only (the rest is a person's).
    assert result["meters"][0]["charged_minor"] == 100
    assert result["meters"][0]["standing_charged_minor"] == 366 * 10


@pytest.mark.parametrize("name", sorted(RESERVED_BAND_NAMES))
async def test_band_names_the_ledger_uses_itself_are_refused(ledger: Ledger, name: str) -> None:
    """A band named like the running total or the standing charge: 422, no tariff made."""
    before = await ledger.ok("GET", "/api/v1/tariffs")
    segments = [
        {"start": "00:00", "price": "0.1"},
        {"start": "12:00", "price": "0.2", "band": name},
    ]
    tiers = [{"up_to": "100", "price": "0.1", "band": name}, {"up_to": None, "price": "0.2"}]
    base = {"name": "x", "currency": "EUR", "unit": "kWh"}
    for body, field in (
        ({"kind": "tou", "segments": segments}, "segments[1].band"),
        ({"kind": "tiered", "period": "month", "bands": tiers}, "bands[0].band"),
    ):
        status, answer = await ledger.call("POST", "/api/v1/tariffs", json=base | body)
        assert_refused(status, answer, "invalid_tariff", field)
        assert name in answer["error"]["message"]
    assert await ledger.ok("GET", "/api/v1/tariffs") == before
    # The ledger's own rows are named from the same list (so the two cannot drift apart).
    assert {TOTAL_BAND, STANDING_BAND} == RESERVED_BAND_NAMES


async def test_verify_names_a_stored_tariff_that_uses_a_reserved_band_name(
    ledger: Ledger,
) -> None:
    """A meter's tariff stored before such names were refused: verify says which, and why."""
    tariff = await ledger.ok(
        "POST",
        "/api/v1/tariffs",
        json={
            "name": "old",
            "currency": "EUR",
            "unit": "kWh",
            "kind": "tou",
            "segments": [
                {"start": "00:00", "price": "0.1", "band": "night"},
                {"start": "07:00", "price": "0.3", "band": "day"},
            ],
        },
    )
    db = Database(ledger.settings.database_url)
    try:
        assert await db.read(verify_ledger) == []

        async def rename_day_band(session: AsyncSession) -> None:
            version = await session.scalar(
                select(TariffVersion).where(TariffVersion.tariff_id == tariff["id"])
            )
            assert version is not None
            segments = [dict(segment) for segment in version.definition["segments"]]
            segments[1]["band"] = "__total__"
            version.definition = version.definition | {"segments": segments}

        await db.write(rename_day_band)
        assert await db.read(verify_ledger) == []  # no meter is on it: nothing charged in it
        await ledger.meter((await ledger.account())["id"], tariff["id"])
        (problem,) = await db.read(verify_ledger)
    finally:
        await db.close()
    assert problem.startswith(f"tariff {tariff['id']}, version from ")
    assert "band '__total__' is a name the ledger uses" in problem


async def test_money_fields_are_bounded_to_what_the_ledger_can_post(ledger: Ledger) -> None:
    limit = 10**12
    for field, value in (
        ("standing_charge_minor_per_day", limit + 1),
        ("standing_charge_minor_per_day", 10**30),
    ):
        status, body = await ledger.call(
            "POST",
            "/api/v1/tariffs",
            json={
                "name": "x",
                "currency": "EUR",
                "unit": "kWh",
                "kind": "flat",
                "price": "0.1",
                field: value,
            },
        )
        assert_refused(status, body, "invalid_amount", field)
    status, body = await ledger.call(
        "POST",
        "/api/v1/tariffs",
        json={"name": "x", "currency": "EUR", "unit": "kWh", "kind": "flat", "price": "10001"},
    )
    assert_refused(status, body, "invalid_tariff", "price")
    base = {"name": "A", "currency": "EUR", "timezone": "UTC"}
    for extra, field in (
        ({"emergency_credit_minor": limit + 1}, "emergency_credit_minor"),
        ({"reconnect_margin_minor": 10**30}, "reconnect_margin_minor"),
        ({"low_balance_minor": [10**30, 0]}, "low_balance_minor[0]"),
    ):
        status, body = await ledger.call("POST", "/api/v1/accounts", json=base | extra)
        assert_refused(status, body, "invalid_amount", field)
    assert await ledger.ok("GET", "/api/v1/tariffs") == {"tariffs": []}
    assert await ledger.ok("GET", "/api/v1/accounts") == {
        "accounts": [],
        "total": 0,
        "next_cursor": None,
    }

    # The largest accepted amounts can be charged: a year of the largest standing charge.
    account, meter = await setup_meter(ledger, standing_charge_minor_per_day=limit, price="10000")
    await ledger.ok(
        "PATCH",
        f"/api/v1/accounts/{account['id']}",
        json={"emergency_credit_minor": limit, "low_balance_minor": [limit, limit]},
    )
    now = datetime.now(UTC)
    start = now - timedelta(days=366)
    await ledger.ok(
        "POST", "/api/v1/readings", json={"readings": [reading(meter["id"], "0", start)]}
    )
    result = await ledger.ok(
        "POST", "/api/v1/readings", json={"readings": [reading(meter["id"], "1000", now)]}
    )
    outcome = result["meters"][0]
    # 1000 kWh at 10,000 EUR = 10,000,000 EUR; 366 further local days of standing charge.
    assert outcome["charged_minor"] == 1_000_000_000
    assert outcome["standing_charged_minor"] == 366 * limit
    assert await ledger.balance(account["id"]) == -(367 * limit + 1_000_000_000)


async def test_a_large_batch_is_checked_off_the_loop_with_the_same_answers(
    sqlite_ledger: Ledger,
) -> None:
    """A backlog batch (parsed in a worker thread) names its bad reading and writes nothing."""
    ledger = sqlite_ledger
    account, meter = await setup_meter(ledger)
    start = datetime.now(UTC) - timedelta(days=4)
    readings = [
        reading(meter["id"], f"{minute * 0.01:.2f}", start + timedelta(minutes=minute))
        for minute in range(5000)
    ]
    bad = [*readings[:4999], reading(meter["id"], "1e3", start + timedelta(minutes=4999))]
    assert len(json.dumps({"readings": bad})) >= PARSE_IN_THREAD_BYTES  # the thread's path
    status, body = await ledger.call("POST", "/api/v1/readings", json={"readings": bad})
    assert_refused(status, body, "invalid_decimal", "readings[4999].value")
    held = await ledger.ok("GET", f"/api/v1/accounts/{account['id']}")
    assert held["balance_minor"] == account["balance_minor"]

    answer = await ledger.ok("POST", "/api/v1/readings", json={"readings": readings})
    assert answer["received"] == 5000
    assert answer["meters"][0]["baseline"] + answer["meters"][0]["accepted"] == 5000
