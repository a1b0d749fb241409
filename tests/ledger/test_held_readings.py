"""The reading guard over HTTP: glitches are held, not charged; a person decides, audited.

Expected money is worked out by hand from the tariff (1.00 EUR/kWh, no standing charge):
only the good readings' consumption is charged.
"""

from __future__ import annotations

import struct
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.ledger.conftest import Ledger
from tests.ledger.test_stream import read_events

pytestmark = pytest.mark.usefixtures("socket_enabled")

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def reading(meter_id: int, value: str, minutes: float) -> dict[str, object]:
    return {
        "meter_id": meter_id,
        "value": value,
        "at": (T0 + timedelta(minutes=minutes)).isoformat(),
    }


def swapped_words(value: float) -> str:
    """The float32 a meter shows with its two 16-bit words swapped (a torn Modbus read)."""
    raw = struct.pack(">f", value)
    (glitched,) = struct.unpack(">f", raw[2:] + raw[:2])
    return repr(abs(glitched))


async def sdm120_room(ledger: Ledger) -> tuple[dict[str, Any], dict[str, Any]]:
    """An account at 1.00 EUR/kWh with an Eastron SDM120 (10.35 kW at most)."""
    tariff = await ledger.tariff(price="1.00")
    account = await ledger.account()
    meter = await ledger.meter(account["id"], tariff["id"], model="eastron_sdm120")
    assert meter["limits"] == {"max_power": "10.35", "register_modulus": None}
    return account, meter


async def send(ledger: Ledger, *readings: dict[str, object]) -> dict[str, Any]:
    result = await ledger.ok("POST", "/api/v1/readings", json={"readings": list(readings)})
    return dict(result["meters"][0])


async def held(ledger: Ledger, meter_id: int) -> list[dict[str, Any]]:
    body = await ledger.ok("GET", f"/api/v1/readings/held?meter={meter_id}")
    return list(body["readings"])


@pytest.mark.parametrize(
    "glitch",
    ["0", "12345678.9", swapped_words(5000.5), "4000"],
    ids=["zero", "jump", "swapped-words", "garbage-below"],
)
async def test_one_glitch_among_good_readings_costs_nothing(ledger: Ledger, glitch: str) -> None:
    account, meter = await sdm120_room(ledger)
    mid = meter["id"]
    await send(ledger, reading(mid, "5000", 0))
    outcome = await send(ledger, reading(mid, "5000.5", 15), reading(mid, glitch, 30))
    assert (outcome["held"], outcome["charged_minor"], outcome["balance_minor"]) == (1, 50, -50)
    after = await send(ledger, reading(mid, "5001.25", 45))
    # 5000 -> 5001.25 kWh at 1.00 EUR: 1.25 EUR, as if the glitch had never been read.
    assert after["charged_minor"] == 75
    assert await ledger.balance(account["id"]) == -125
    (waiting,) = await held(ledger, mid)
    assert waiting["value"] == glitch
    assert waiting["hold"] in {"surge", "reset", "backwards"}


async def test_held_reading_raises_an_alert_and_a_resend_is_a_duplicate(
    sqlite_ledger: Ledger,
) -> None:
    ledger = sqlite_ledger
    account, meter = await sdm120_room(ledger)
    mid = meter["id"]
    await send(ledger, reading(mid, "5000", 0))
    start = (await read_events(ledger, 1000, stop_idle=0.5))[-1]["id"]
    await send(ledger, reading(mid, "0", 10))
    events = await read_events(ledger, 10, last_id=start, stop_idle=0.5)
    (alert,) = [e["data"] for e in events if e["type"] == "alert"]
    alert.pop("id")  # the stream event's own id
    (waiting,) = await held(ledger, mid)
    # 10 min on an SDM120: 10.35 x 1/6 x 1.1 + 0.1725 = 2.07 kWh at most.
    assert alert == {
        "kind": "reading_held",
        "reading_id": waiting["id"],
        "meter_id": mid,
        "account_id": account["id"],
        "hold": "reset",
        "value": "0",
        "at": (T0 + timedelta(minutes=10)).isoformat(),
        "last_value": "5000",
        "last_at": T0.isoformat(),
        "allowed": "2.070",
    }
    again = await send(ledger, reading(mid, "0", 10))
    assert again["duplicates"] == 1
    assert again["held"] == 0
    assert len(await held(ledger, mid)) == 1


async def test_accept_a_real_surge_charges_it_and_the_readings_after_it(ledger: Ledger) -> None:
    account, meter = await sdm120_room(ledger)
    mid = meter["id"]
    await send(ledger, reading(mid, "5000", 0))
    # A 20 kW load on a meter declared as 10.35 kW: 5 kWh in 15 minutes, held, twice.
    outcome = await send(ledger, reading(mid, "5005", 15), reading(mid, "5010", 30))
    assert outcome["held"] == 2
    assert await ledger.balance(account["id"]) == 0
    first, second = await held(ledger, mid)
    refused = await ledger.call(
        "POST", f"/api/v1/readings/{first['id']}/resolve", json={"action": "rebase", "reason": "x"}
    )
    assert refused[0] == 409
    assert "accept" in refused[1]["error"]["message"]
    done = await ledger.ok(
        "POST",
        f"/api/v1/readings/{first['id']}/resolve",
        json={"action": "accept", "reason": "sauna heater, confirmed with the tenant"},
    )
    assert done["status"] == "accepted"
    assert done["charged_minor"] == 500
    # The second was judged again from 5005: still 5 kWh in 15 minutes, still held.
    (still,) = await held(ledger, mid)
    assert still["id"] == second["id"]
    await ledger.ok(
        "POST",
        f"/api/v1/readings/{second['id']}/resolve",
        json={"action": "accept", "reason": "same heater"},
    )
    assert await ledger.balance(account["id"]) == -1000
    assert await held(ledger, mid) == []
    audit = await ledger.ok("GET", "/api/v1/audit?limit=20")
    accepted = [e for e in audit["entries"] if e["action"] == "reading.accept"]
    assert {e["after"]["reason"] for e in accepted} == {"sauna heater, confirmed with the tenant",
                                                          "same heater"}  # fmt: skip


async def test_rebase_after_a_meter_swap_charges_from_the_new_register(ledger: Ledger) -> None:
    account, meter = await sdm120_room(ledger)
    mid = meter["id"]
    await send(ledger, reading(mid, "5000", 0))
    # The meter is swapped: the new one starts at 0.3 kWh and keeps counting.
    outcome = await send(ledger, reading(mid, "0.3", 30), reading(mid, "0.8", 45))
    assert outcome["held"] == 2
    first, _ = await held(ledger, mid)
    assert first["hold"] == "reset"
    accept = await ledger.call(
        "POST", f"/api/v1/readings/{first['id']}/resolve", json={"action": "accept", "reason": "x"}
    )
    assert accept[0] == 409
    await ledger.ok(
        "POST",
        f"/api/v1/readings/{first['id']}/resolve",
        json={"action": "rebase", "reason": "meter replaced by the electrician"},
    )
    # From 0.3 the later 0.8 is 0.5 kWh: charged 0.50 EUR once re-based.
    assert await held(ledger, mid) == []
    assert await ledger.balance(account["id"]) == -50
    nxt = await send(ledger, reading(mid, "1.8", 60))
    assert nxt["charged_minor"] == 100


async def test_reject_and_the_rules_of_deciding(ledger: Ledger) -> None:
    account, meter = await sdm120_room(ledger)
    mid = meter["id"]
    await send(ledger, reading(mid, "5000", 0), reading(mid, "999999", 15))
    await send(ledger, reading(mid, "5001", 30))
    (glitch,) = await held(ledger, mid)
    path = f"/api/v1/readings/{glitch['id']}/resolve"
    # A later reading was charged from 5000: accepting the glitch now would count twice.
    status, body = await ledger.call("POST", path, json={"action": "accept", "reason": "x"})
    assert (status, body["error"]["code"]) == (409, "superseded")
    bad_bodies: list[dict[str, str]] = [
        {"action": "accept"},
        {"action": "keep", "reason": "x"},
        {"reason": "x"},
        {"action": "reject", "reason": ""},
        {"action": "reject", "reason": "x" * 501},
    ]
    for bad in bad_bodies:
        status, body = await ledger.call("POST", path, json=bad)
        assert status == 422, (bad, body)
    status, _ = await ledger.call("POST", "/api/v1/readings/999999/resolve",
                                  json={"action": "reject", "reason": "x"})  # fmt: skip
    assert status == 404
    tenant = await ledger.ok(
        "POST", "/api/v1/tokens", json={"scope": "tenant", "account_id": account["id"]}
    )
    status, _ = await ledger.call(
        "POST", path, json={"action": "reject", "reason": "x"}, token=tenant["token"]
    )
    assert status == 403
    integration = await ledger.ok("POST", "/api/v1/tokens", json={"scope": "integration"})
    done = await ledger.ok(
        "POST", path, json={"action": "reject", "reason": "glitch"}, token=integration["token"]
    )
    assert done["status"] == "rejected"
    status, body = await ledger.call("POST", path, json={"action": "reject", "reason": "x"})
    assert (status, body["error"]["code"]) == (409, "not_held")
    assert await ledger.balance(account["id"]) == -100


async def test_a_counter_wrap_is_charged_and_noise_is_ignored(ledger: Ledger) -> None:
    tariff = await ledger.tariff(price="1.00")
    account = await ledger.account()
    meter = await ledger.meter(account["id"], tariff["id"], model="acrel_ddsy1352")
    mid = meter["id"]
    await send(ledger, reading(mid, "42949672.50", 0))
    # Over the top of the uint32 register (0.01 kWh steps) to 0.20: 0.66 kWh in 5 minutes.
    wrapped = await send(ledger, reading(mid, "0.20", 5))
    assert (wrapped["accepted"], wrapped["charged_minor"]) == (1, 66)
    # 0.1 kWh back is less than a minute at 13.8 kW (0.23 kWh): noise, charges nothing.
    noisy = await send(ledger, reading(mid, "0.10", 10))
    assert (noisy["ignored_noise"], noisy["held"], noisy["charged_minor"]) == (1, 0, 0)
    later = await send(ledger, reading(mid, "0.70", 15))
    assert later["charged_minor"] == 50  # from the last accepted 0.20
    assert await ledger.balance(account["id"]) == -116


async def test_meter_limits_are_settable_and_bounded(ledger: Ledger) -> None:
    _, meter = await sdm120_room(ledger)
    path = f"/api/v1/meters/{meter['id']}"
    changed = await ledger.ok("PATCH", path, json={"max_power": "22"})
    assert changed["limits"]["max_power"] == "22"
    cleared = await ledger.ok("PATCH", path, json={"max_power": None})
    assert cleared["limits"]["max_power"] == "10.35"
    for bad in ({}, {"max_power": "0"}, {"max_power": "-1"}, {"max_power": "1e400"},
                {"max_power": "10001"}, {"max_power": "NaN"}, {"register_modulus": "0"},
                {"name": "x"}, {"model": ""}, {"model": "m" * 65}):  # fmt: skip
        status, body = await ledger.call("PATCH", path, json=bad)
        assert status == 422, (bad, body)
    assert (await ledger.ok("GET", path))["limits"]["max_power"] == "10.35"
    integration = await ledger.ok("POST", "/api/v1/tokens", json={"scope": "integration"})
    status, _ = await ledger.call(
        "PATCH", path, json={"max_power": "50"}, token=integration["token"]
    )
    assert status == 403
    assert await ledger.ok("GET", "/api/v1/readings/held") == {"readings": [], "next_cursor": None}
