"""Reading ingestion: baseline, exact cumulative charging, flags, batches, tariffs, debt."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from prepaid_ledger.services import readings as readings_service
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.ledger.conftest import Ledger
from tests.ledger.test_stream import read_events

pytestmark = pytest.mark.usefixtures("socket_enabled")
T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)  # a Monday


def reading(meter_id: int, value: str, at: datetime) -> dict[str, object]:
    return {"meter_id": meter_id, "value": value, "at": at.isoformat()}


async def setup_meter(ledger: Ledger, **tariff: object) -> tuple[dict, dict]:
    t = await ledger.tariff(**tariff)
    account = await ledger.account()
    meter = await ledger.meter(account["id"], t["id"])
    return account, meter


async def test_baseline_then_exact_charge_and_debt(ledger: Ledger) -> None:
    account, meter = await setup_meter(ledger, price="0.2513")
    first = await ledger.ok(
        "POST", "/api/v1/readings", json={"readings": [reading(meter["id"], "100.00", T0)]}
    )
    assert first["meters"][0]["baseline"] == 1
    assert first["meters"][0]["charged_minor"] == 0
    result = await ledger.ok(
        "POST",
        "/api/v1/readings",
        json={"readings": [reading(meter["id"], "110.00", T0 + timedelta(hours=1))]},
    )
    # 10 kWh * 0.2513 = 2.513 EUR -> 251 cents; the balance goes negative (debt).
    outcome = result["meters"][0]
    assert outcome["charged_minor"] == 251
    assert outcome["balance_minor"] == -251
    assert outcome["supply"]["allowed"] is False
    fetched = await ledger.ok("GET", f"/api/v1/accounts/{account['id']}")
    assert fetched["debt_minor"] == 251


TOU_FIVE_BANDS = {
    "kind": "tou",
    "price": None,
    "segments": [
        {"start": "00:00", "price": "0.1111"},
        {"start": "02:17", "price": "0.2345"},
        {"start": "02:41", "price": "0.3333"},
        {"start": "03:03", "price": "0.1777"},
        {"start": "03:29", "price": "0.4049"},
    ],
}


@pytest.mark.parametrize("tariff", [{"price": "0.2513"}, TOU_FIVE_BANDS], ids=["flat", "tou5"])
async def test_many_small_readings_cost_the_same_as_one(
    ledger: Ledger, tariff: dict[str, object]
) -> None:
    _, small = await setup_meter(ledger, **tariff)
    _, big = await setup_meter(ledger, **tariff)
    start = datetime(2026, 3, 2, 0, 50, tzinfo=UTC)  # 01:50 in Berlin: crosses every band
    readings = [reading(small["id"], "0", start), reading(big["id"], "0", start)]
    readings += [
        reading(small["id"], str(Decimal("0.01") * i), start + timedelta(seconds=7 * i))
        for i in range(1, 1001)
    ]
    readings.append(reading(big["id"], "10", start + timedelta(seconds=7000)))
    result = await ledger.ok("POST", "/api/v1/readings", json={"readings": readings})
    by_meter = {m["meter_id"]: m for m in result["meters"]}
    assert by_meter[small["id"]]["accepted"] == 1000
    assert abs(by_meter[small["id"]]["charged_minor"] - by_meter[big["id"]]["charged_minor"]) <= 1
    if tariff.get("kind") != "tou":
        assert by_meter[big["id"]]["charged_minor"] == 251
        return
    # Exact: 10 kWh spread evenly over 7000 s; seconds spent in each band times its price.
    seconds_and_prices = [
        (1620, "0.1111"),
        (1440, "0.2345"),
        (1320, "0.3333"),
        (1560, "0.1777"),
        (1060, "0.4049"),
    ]
    exact_cents = sum(
        Decimal(10) * sec / 7000 * Decimal(price) * 100 for sec, price in seconds_and_prices
    )
    for meter in (small, big):
        assert abs(by_meter[meter["id"]]["charged_minor"] - exact_cents) <= 1
    # 1,003 readings are written by the backlog workers in parts of 1,000 (a transaction and an
    # audit entry each): two.
    parts = 2
    audit = await ledger.ok("GET", f"/api/v1/audit?limit={parts + 1}")
    actions = [entry["action"] for entry in audit["entries"]]
    assert actions == ["readings.ingest"] * parts + ["meter.create"]
    received = [entry["after"]["received"] for entry in audit["entries"][:parts]]
    assert sum(received) == len(readings)


async def test_resent_lower_and_out_of_order_readings_charge_nothing(ledger: Ledger) -> None:
    account, meter = await setup_meter(ledger, price="1.00")
    batch = [reading(meter["id"], "10", T0), reading(meter["id"], "12", T0 + timedelta(hours=1))]
    await ledger.ok("POST", "/api/v1/readings", json={"readings": batch})
    assert await ledger.balance(account["id"]) == -200
    again = await ledger.ok("POST", "/api/v1/readings", json={"readings": batch})
    assert again["meters"][0]["duplicates"] == 2
    assert again["meters"][0]["charged_minor"] == 0
    flagged = await ledger.ok(
        "POST",
        "/api/v1/readings",
        json={
            "readings": [
                # Lower than 12 by 1 kWh: less than a minute at the default 69 kW, so noise.
                reading(meter["id"], "11", T0 + timedelta(hours=2)),
                reading(meter["id"], "11.5", T0 + timedelta(minutes=30)),  # older than the last
            ]
        },
    )
    assert flagged["meters"][0]["flagged"] == 1
    assert flagged["meters"][0]["ignored_noise"] == 1
    assert flagged["meters"][0]["held"] == 0
    assert await ledger.balance(account["id"]) == -200
    later = await ledger.ok(
        "POST",
        "/api/v1/readings",
        json={"readings": [reading(meter["id"], "13", T0 + timedelta(hours=3))]},
    )
    assert later["meters"][0]["charged_minor"] == 100


async def test_bad_readings_are_rejected_whole(ledger: Ledger) -> None:
    account, meter = await setup_meter(ledger)
    for bad in ("abc", 12.5, "1e3", "NaN", "-1", ""):
        status, body = await ledger.call(
            "POST",
            "/api/v1/readings",
            json={
                "readings": [
                    reading(meter["id"], "1", T0),
                    {"meter_id": meter["id"], "value": bad, "at": T0.isoformat()},
                ]
            },
        )
        assert status == 422, bad
        assert "readings[1].value" in body["error"]["message"]
    status, body = await ledger.call(
        "POST",
        "/api/v1/readings",
        json={"readings": [{"meter_id": meter["id"], "value": "1", "at": "2026-03-02T10:00:00"}]},
    )
    assert status == 422  # naive time
    # 2**100 cannot even be a row id (found by schemathesis): refused as an id, never looked up.
    for unknown, code in ((999_999, "unknown_meter"), (2**100, "invalid_field")):
        status, body = await ledger.call(
            "POST", "/api/v1/readings", json={"readings": [reading(unknown, "1", T0)]}
        )
        assert status == 422, unknown
        assert body["error"]["code"] == code
        assert body["error"]["field"] == "readings[0].meter_id"
    meters = await ledger.ok("GET", f"/api/v1/meters?account={account['id']}")
    assert meters["meters"][0]["last_value"] is None  # nothing was recorded


async def test_batch_of_500_readings(ledger: Ledger) -> None:
    account, meter = await setup_meter(ledger, price="0.10")
    batch = [reading(meter["id"], str(i), T0 + timedelta(minutes=i)) for i in range(500)]
    result = await ledger.ok("POST", "/api/v1/readings", json={"readings": batch})
    assert result["received"] == 500
    assert result["meters"][0]["accepted"] == 499
    assert await ledger.balance(account["id"]) == -4990


async def test_backlog_batch_of_5000_charges_as_small_batches(ledger: Ledger) -> None:
    """A site back from an outage posts 5,000 readings at once (the contract's most).

    The ledger writes such a batch in parts (a transaction each, so payments are not kept
    waiting); the answer and the money are those of the same readings sent a few at a time.
    Worked by hand: meter A reads 0, 0.1, ... 299.9 kWh (3,000 readings, one a minute) and B
    0, 0.2, ... 399.8 kWh (2,000) at 0.10 EUR/kWh: A costs 29.99 EUR, B 39.98 EUR.
    """
    tariff = await ledger.tariff(price="0.10")
    account = await ledger.account()
    a = await ledger.meter(account["id"], tariff["id"])
    b = await ledger.meter(account["id"], tariff["id"])
    batch = [
        reading(a["id"], f"{Decimal(i) / 10}", T0 + timedelta(minutes=i)) for i in range(3000)
    ] + [reading(b["id"], f"{Decimal(i) / 5}", T0 + timedelta(minutes=i)) for i in range(2000)]
    batch.reverse()  # the ledger orders each meter's readings itself
    batch[10], batch[4000] = batch[4000], batch[10]
    result = await ledger.ok("POST", "/api/v1/readings", json={"readings": batch})
    assert result["received"] == 5000
    by_meter = {m["meter_id"]: m for m in result["meters"]}
    assert len(by_meter) == 2 == len(result["meters"])
    assert (by_meter[a["id"]]["baseline"], by_meter[a["id"]]["accepted"]) == (1, 2999)
    assert (by_meter[b["id"]]["baseline"], by_meter[b["id"]]["accepted"]) == (1, 1999)
    assert by_meter[a["id"]]["charged_minor"] == 2999
    assert by_meter[b["id"]]["charged_minor"] == 3998
    balance = await ledger.balance(account["id"])
    assert balance == -(2999 + 3998)
    assert {m["balance_minor"] for m in result["meters"]} == {balance}  # the state at the end
    # Sent again (the answer was lost): every reading is a duplicate, nothing moves.
    again = await ledger.ok("POST", "/api/v1/readings", json={"readings": batch})
    assert sum(m["duplicates"] for m in again["meters"]) == 5000
    assert sum(m["charged_minor"] for m in again["meters"]) == 0
    assert await ledger.balance(account["id"]) == balance


async def test_unknown_meter_late_in_a_backlog_batch_is_named_where_it_was_sent(
    ledger: Ledger,
) -> None:
    """The error names the reading's place in the batch as sent, whichever part it fell in."""
    account, meter = await setup_meter(ledger, price="0.10")
    batch = [reading(meter["id"], str(i), T0 + timedelta(minutes=i)) for i in range(2500)]
    batch.insert(17, reading(999_999, "1", T0))  # sorted by meter, it falls in the last part
    status, body = await ledger.call("POST", "/api/v1/readings", json={"readings": batch})
    assert status == 422
    assert body["error"]["code"] == "unknown_meter"
    assert body["error"]["field"] == "readings[17].meter_id"
    # The client sets it aside and sends the rest: the parts already written are duplicates.
    del batch[17]
    result = await ledger.ok("POST", "/api/v1/readings", json={"readings": batch})
    assert sum(m["accepted"] + m["baseline"] + m["duplicates"] for m in result["meters"]) == 2500
    assert await ledger.balance(account["id"]) == -24990


async def test_time_of_use_split_and_price_change(ledger: Ledger) -> None:
    account, meter = await setup_meter(
        ledger,
        kind="tou",
        price=None,
        segments=[{"start": "00:00", "price": "0.10"}, {"start": "12:00", "price": "0.30"}],
    )
    tz_noon = datetime(2026, 3, 2, 11, 0, tzinfo=UTC)  # 12:00 in Berlin (UTC+1)
    await ledger.ok(
        "POST",
        "/api/v1/readings",
        json={
            "readings": [
                reading(meter["id"], "0", tz_noon - timedelta(hours=1)),
                reading(meter["id"], "10", tz_noon + timedelta(hours=1)),
            ]
        },
    )
    # Half the interval at 0.10, half at 0.30: 5 * 0.10 + 5 * 0.30 = 2.00
    assert await ledger.balance(account["id"]) == -200
    statement = await ledger.ok("GET", f"/api/v1/accounts/{account['id']}/statement")
    assert statement["consumption_total_minor"] == 200
    assert len(statement["consumption"]) == 2
    assert statement["ties_out"] is True


async def test_standing_charge_accrues_per_day(ledger: Ledger) -> None:
    account, meter = await setup_meter(ledger, price="0", standing_charge_minor_per_day=30)
    await ledger.ok(
        "POST",
        "/api/v1/readings",
        json={
            "readings": [
                reading(meter["id"], "0", T0),
                reading(meter["id"], "1", T0 + timedelta(days=3)),
            ]
        },
    )
    assert await ledger.balance(account["id"]) == -120  # day 0 plus three more days


async def test_price_change_splits_interval_and_never_reprices(ledger: Ledger) -> None:
    account, meter = await setup_meter(ledger, price="1.00")
    await ledger.ok(
        "POST",
        "/api/v1/readings",
        json={
            "readings": [
                reading(meter["id"], "0", T0),
                reading(meter["id"], "4", T0 + timedelta(hours=1)),
            ]
        },
    )
    assert await ledger.balance(account["id"]) == -400
    await ledger.ok(
        "POST",
        f"/api/v1/tariffs/{meter['tariff_id']}/versions",
        json={
            "name": "Flat",
            "currency": "EUR",
            "unit": "kWh",
            "kind": "flat",
            "price": "2.00",
            "effective_from": (T0 + timedelta(hours=2)).isoformat(),
        },
    )
    # The past hour stays at 1.00; the next two hours straddle the change: 1 h each side.
    await ledger.ok(
        "POST",
        "/api/v1/readings",
        json={"readings": [reading(meter["id"], "10", T0 + timedelta(hours=3))]},
    )
    assert await ledger.balance(account["id"]) == -400 - (300 + 600)


async def test_closing_with_debt_records_the_shortfall(ledger: Ledger) -> None:
    account, meter = await setup_meter(ledger, price="1.00")
    await ledger.ok(
        "POST",
        "/api/v1/readings",
        json={
            "readings": [
                reading(meter["id"], "0", T0),
                reading(meter["id"], "2.5", T0 + timedelta(hours=1)),
            ]
        },
    )
    closed = await ledger.ok(
        "POST", f"/api/v1/accounts/{account['id']}/close", json={"reason": "moved out"}
    )
    assert closed["settlement"] == {
        "refund_due_minor": 0,
        "shortfall_minor": 250,
        "transferred_minor": 0,  # closed without a transfer or a refund paid out
        "transfer_to": None,
        "refund_method": None,
        "refund_reference": None,
    }
    assert closed["balance_minor"] == 0
    statement = await ledger.ok("GET", f"/api/v1/accounts/{account['id']}/statement")
    assert statement["consumption_total_minor"] == 250
    assert statement["settlements_total_minor"] == 250
    assert statement["ties_out"] is True
    # Later readings of the closed account's meter are not charged to a closed account.
    status, _ = await ledger.call(
        "POST", f"/api/v1/accounts/{account['id']}/close", json={"reason": "again"}
    )
    assert status == 409


async def test_unchanged_register_charges_nothing_but_moves_on(ledger: Ledger) -> None:
    account, meter = await setup_meter(ledger, price="1.00")
    result = await ledger.ok(
        "POST",
        "/api/v1/readings",
        json={
            "readings": [
                reading(meter["id"], "5", T0),
                reading(meter["id"], "5", T0 + timedelta(hours=1)),
                reading(meter["id"], "6", T0 + timedelta(hours=2)),
            ]
        },
    )
    assert result["meters"][0]["accepted"] == 2
    assert result["meters"][0]["charged_minor"] == 100
    assert await ledger.balance(account["id"]) == -100


async def test_readings_are_stored_exactly_as_sent(ledger: Ledger) -> None:
    """A backlog's readings (COPY on PostgreSQL) keep their exact text and instant.

    Read back with SQL, not through the ledger: 1.500 stays 1.500 (a re-sent reading is its
    exact text), and 10:00:00.123456+08:00 is 02:00:00.123456 UTC.
    """
    account, meter = await setup_meter(ledger, price="1")
    texts = ["0", "1.500", "2.0", "3", "4.000001"]
    sent = [
        {"meter_id": meter["id"], "value": text, "at": f"2026-03-0{2 + i}T10:00:00.123456+08:00"}
        for i, text in enumerate(texts)
    ]
    filler = [reading(meter["id"], "5", T0 + timedelta(days=10, minutes=i)) for i in range(600)]
    await ledger.ok("POST", "/api/v1/readings", json={"readings": sent + filler})
    engine = create_async_engine(ledger.settings.database_url)
    async with engine.connect() as connection:
        rows = (
            await connection.execute(
                text("SELECT value, at FROM readings WHERE meter_id = :m ORDER BY at LIMIT 5"),
                {"m": meter["id"]},
            )
        ).all()
    await engine.dispose()
    assert [row[0] for row in rows] == texts
    stored = [datetime.fromisoformat(str(row[1])).replace(tzinfo=UTC) for row in rows]
    assert stored == [datetime(2026, 3, 2 + i, 2, 0, 0, 123456, tzinfo=UTC) for i in range(5)]
    # 5 kWh at 1 EUR in all: the whole climb from 0 is charged, once.
    assert await ledger.balance(account["id"]) == -500
    again = await ledger.ok("POST", "/api/v1/readings", json={"readings": sent})
    assert sum(m["duplicates"] for m in again["meters"]) == 5


@pytest.mark.parametrize("backend", ["postgres"])
async def test_a_top_up_while_a_batch_is_priced_is_published_once(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On PostgreSQL a batch prices with its accounts read, not locked; a top-up of 10.00 EUR
    lands right then (between pricing and the lock). The batch's reading uses nothing (the
    register stands still), so the account's state is the top-up's: published once, by the
    top-up, not a second time by a batch that wrote back what it had read before the top-up.
    """
    account, meter = await setup_meter(ledger, price="0.10")
    await ledger.ok("POST", "/api/v1/readings", json={"readings": [reading(meter["id"], "5", T0)]})
    given_way = readings_service.give_way
    topped_up = False

    async def top_up_first(session: Any, budget: Any) -> None:  # between pricing and locking
        nonlocal topped_up
        if not topped_up:
            topped_up = True
            await ledger.topup(account["id"], 1000, "while-the-batch-prices")
        await given_way(session, budget)

    monkeypatch.setattr(readings_service, "give_way", top_up_first)
    listening = asyncio.create_task(read_events(ledger, 100, stop_idle=2.0))
    await asyncio.sleep(0.2)
    later = [reading(meter["id"], "5", T0 + timedelta(hours=1))]
    result = await ledger.ok("POST", "/api/v1/readings", json={"readings": later})
    assert topped_up
    assert result["meters"][0]["charged_minor"] == 0
    assert result["meters"][0]["balance_minor"] == 1000
    updates = [e["data"] for e in await listening if e["type"] == "account.updated"]
    # (The stream may start with the state before: the baseline's 0.)
    assert [u["balance_minor"] for u in updates if u["balance_minor"] != 0] == [1000]
