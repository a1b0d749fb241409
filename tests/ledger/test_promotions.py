"""Top-up promotions over HTTP (issue 23): bonus credited, shown, taken back, limited.

Expected values are the issue's own example ("top up 500, get 100") and hand arithmetic on the
amounts typed here: a bonus is its own statement line, the statement ties out, a refund takes
back the bonus's share of what was refunded, never more than was given.
"""

from __future__ import annotations

import asyncio
import itertools
import re
from datetime import UTC, datetime, timedelta
from html import unescape
from pathlib import Path
from typing import Any

import pytest

from tests.ledger.conftest import Ledger, make_settings
from tests.ledger.test_pay_page import pay_link, running_public_ledger

pytestmark = pytest.mark.usefixtures("socket_enabled")
_keys = itertools.count(1)
TOP_UP_500_GET_100 = {
    "name": "Top up 500, get 100",
    "currency": "EUR",
    "min_topup_minor": 50_000,
    "bonus_minor": 10_000,
}


async def promote(ledger: Ledger, **fields: Any) -> dict[str, Any]:
    return await ledger.ok("POST", "/api/v1/promotions", json=TOP_UP_500_GET_100 | fields)


async def top_up(ledger: Ledger, account_id: int, amount: int) -> dict[str, Any]:
    order: dict[str, Any] = await ledger.topup(account_id, amount, f"promo-{next(_keys)}")
    return order


async def refund(ledger: Ledger, order_id: int, amount: int) -> dict[str, Any]:
    answer: dict[str, Any] = await ledger.ok(
        "POST",
        f"/api/v1/topups/{order_id}/actions",
        json={"action": "refund", "amount_minor": amount, "reason": "moved out"},
    )
    return answer


async def statement(ledger: Ledger, account_id: int) -> dict[str, Any]:
    found: dict[str, Any] = await ledger.ok("GET", f"/api/v1/accounts/{account_id}/statement")
    return found


async def test_bonus_on_receipt_statement_and_refund(ledger: Ledger) -> None:
    promotion = await promote(ledger)
    account = (await ledger.account(name="Room 7"))["id"]

    big = await top_up(ledger, account, 50_000)  # 500.00 -> 100.00 extra
    assert big["bonus"] == {
        "promotion_id": promotion["id"],
        "promotion_name": "Top up 500, get 100",
        "amount_minor": 10_000,
        "taken_back_minor": 0,
    }
    assert (big["receipt"]["amount_minor"], big["receipt"]["bonus_minor"]) == (50_000, 10_000)
    assert big["receipt"]["balance_after_minor"] == 60_000
    small = await top_up(ledger, account, 49_999)  # 499.99 earns nothing
    assert small["bonus"] is None
    assert small["receipt"]["bonus_minor"] == 0
    assert await ledger.balance(account) == 60_000 + 49_999

    found = await statement(ledger, account)
    assert found["topups_total_minor"] == 99_999
    assert [line["amount_minor"] for line in found["bonuses"]] == [10_000]
    assert found["bonuses_total_minor"] == 10_000
    assert (found["closing_balance_minor"], found["ties_out"]) == (109_999, True)

    # Half the big top-up refunded: half its bonus goes back (50.00); the rest, the rest.
    half = await refund(ledger, big["id"], 25_000)
    assert half["bonus"]["taken_back_minor"] == 5_000
    assert await ledger.balance(account) == 109_999 - 25_000 - 5_000
    rest = await refund(ledger, big["id"], 25_000)
    assert rest["bonus"]["taken_back_minor"] == 10_000
    assert await ledger.balance(account) == 49_999
    found = await statement(ledger, account)
    assert [line["amount_minor"] for line in found["bonuses"]] == [10_000, -5_000, -5_000]
    assert found["bonuses_total_minor"] == 0
    assert found["refunds_total_minor"] == -50_000
    assert (found["closing_balance_minor"], found["ties_out"]) == (49_999, True)
    # The receipt keeps what was given then.
    receipt = await ledger.ok("GET", f"/api/v1/topups/{big['id']}/receipt")
    assert receipt["bonus_minor"] == 10_000

    listed = (await ledger.ok("GET", "/api/v1/promotions"))["promotions"]
    assert [(p["id"], p["uses"], p["granted_minor"]) for p in listed] == [
        (promotion["id"], 1, 10_000)
    ]


async def test_who_earns_a_bonus(ledger: Ledger) -> None:
    tariff = await ledger.tariff()
    other_tariff = await ledger.tariff(name="Other")
    first = await ledger.account(name="First")
    second = await ledger.account(name="Second")
    await ledger.meter(first["id"], tariff["id"])
    await ledger.meter(second["id"], other_tariff["id"])
    now = datetime.now(UTC)
    # 10 % from 10.00 on, only on the first tariff, twice per account.
    await promote(
        ledger,
        name="Ten percent",
        min_topup_minor=1_000,
        bonus_minor=None,
        bonus_percent="10",
        tariff_id=tariff["id"],
        uses_per_account=2,
    )
    await promote(
        ledger, name="Welcome", min_topup_minor=500, bonus_minor=300, first_topup_only=True
    )
    await promote(
        ledger,
        name="Not yet",
        min_topup_minor=1,
        bonus_minor=99_999,
        starts_at=(now + timedelta(days=1)).isoformat(),
    )
    await promote(ledger, name="Yen only", currency="JPY", min_topup_minor=1, bonus_minor=99_999)
    ended = await promote(ledger, name="Ended", min_topup_minor=1, bonus_minor=88_888)
    await ledger.ok("POST", f"/api/v1/promotions/{ended['id']}/end", json={"reason": "over"})

    def bonus(order: dict[str, Any]) -> tuple[str, int] | None:
        got = order["bonus"]
        return None if got is None else (got["promotion_name"], got["amount_minor"])

    # First top-up of 20.00: Welcome 3.00 beats 10 % = 2.00.
    assert bonus(await top_up(ledger, first["id"], 2_000)) == ("Welcome", 300)
    # Then 50.00: 10 % = 5.00 (Welcome was for the first top-up only).
    assert bonus(await top_up(ledger, first["id"], 5_000)) == ("Ten percent", 500)
    assert bonus(await top_up(ledger, first["id"], 5_000)) == ("Ten percent", 500)
    # Twice per account: the third earns nothing.
    assert bonus(await top_up(ledger, first["id"], 5_000)) is None
    # The second account is on the other tariff: only Welcome, on its first top-up.
    assert bonus(await top_up(ledger, second["id"], 5_000)) == ("Welcome", 300)
    assert bonus(await top_up(ledger, second["id"], 5_000)) is None
    assert await ledger.balance(first["id"]) == 17_000 + 300 + 500 + 500
    assert await ledger.balance(second["id"]) == 10_000 + 300


@pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)
async def test_the_last_use_is_taken_once_under_concurrent_credits(ledger: Ledger) -> None:
    await promote(ledger, name="First three", min_topup_minor=100, bonus_minor=1_000, uses_total=3)
    accounts = [(await ledger.account(name=f"Room {n}"))["id"] for n in range(8)]
    orders = await asyncio.gather(*(top_up(ledger, a, 500) for a in accounts))
    assert (
        sorted(o["bonus"]["amount_minor"] if o["bonus"] else 0 for o in orders)
        == [0] * 5 + [1_000] * 3
    )
    balances = [await ledger.balance(a) for a in accounts]
    assert sum(balances) == 8 * 500 + 3 * 1_000
    receipts = sorted(o["receipt"]["number"] for o in orders)
    assert receipts == list(range(receipts[0], receipts[0] + 8))  # gap-free with bonuses


async def test_bad_promotions_are_refused_and_change_nothing(ledger: Ledger) -> None:
    now = datetime.now(UTC)
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"bonus_percent": "10"}, 422, "exactly one of bonus_minor and bonus_percent"),
        ({"bonus_minor": None}, 422, "exactly one of bonus_minor and bonus_percent"),
        ({"bonus_minor": None, "bonus_percent": "150"}, 422, "at most 100"),
        ({"bonus_minor": None, "bonus_percent": "0"}, 422, "above 0"),
        ({"bonus_minor": None, "bonus_percent": "1.234"}, 422, "2 decimal places"),
        ({"bonus_minor": None, "bonus_percent": 10}, 422, "decimal string"),
        ({"bonus_minor": None, "bonus_percent": "1e3"}, 422, "plain decimal"),
        ({"max_bonus_minor": 100}, 422, "max_bonus_minor caps a percentage"),
        ({"bonus_minor": 10**30}, 422, "bonus_minor"),
        ({"min_topup_minor": 0}, 422, "min_topup_minor"),
        ({"name": "   "}, 422, "name"),
        ({"name": "x" * 100_000}, 422, "name"),
        ({"currency": "EURO"}, 422, "currency"),
        ({"tariff_id": 999_999}, 404, "tariff"),
        ({"uses_total": 0}, 422, "uses_total"),
        ({"uses_per_account": True}, 422, "uses_per_account"),
        ({"first_topup_only": "yes"}, 422, "first_topup_only"),
        ({"starts_at": "0001-01-01T00:00:00+00:00"}, 422, "starts_at"),
        ({"ends_at": "9999-12-31T23:59:59+00:00"}, 422, "ends_at"),
        ({"ends_at": (now - timedelta(days=1)).isoformat()}, 422, "ends_at"),
        (
            {
                "starts_at": (now + timedelta(days=2)).isoformat(),
                "ends_at": (now + timedelta(days=1)).isoformat(),
            },
            422,
            "ends_at must be after starts_at",
        ),
    ]
    for fields, status, words in cases:
        got, body = await ledger.call(
            "POST", "/api/v1/promotions", json=TOP_UP_500_GET_100 | fields
        )
        assert got == status, (fields, got, body)
        assert words in body["error"]["message"] or words in str(body["error"].get("field")), (
            fields,
            body,
        )
    for raw in (b"[]", b"{", b"x" * 2_000_000):
        got, body = await ledger.call(
            "POST", "/api/v1/promotions", data=raw, headers={"Content-Type": "application/json"}
        )
        assert 400 <= got < 500, (raw[:10], got)
    assert (await ledger.ok("GET", "/api/v1/promotions"))["promotions"] == []

    made = await promote(ledger)
    got, body = await ledger.call("POST", f"/api/v1/promotions/{made['id']}/end", json={})
    assert got == 422
    await ledger.ok("POST", f"/api/v1/promotions/{made['id']}/end", json={"reason": "done"})
    got, body = await ledger.call(
        "POST", f"/api/v1/promotions/{made['id']}/end", json={"reason": "again"}
    )
    assert (got, body["error"]["code"]) == (409, "already_ended")
    for path in ("/api/v1/promotions/0/end", f"/api/v1/promotions/{10**30}/end"):
        got, _ = await ledger.call("POST", path, json={"reason": "x"})
        assert got in (404, 422), path
    status, _ = await ledger.call("POST", "/api/v1/promotions", json=TOP_UP_500_GET_100, token=None)
    assert status == 401


async def test_the_tenant_sees_the_offer_the_bonus_and_the_receipt(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, None)
    async with running_public_ledger(settings) as ledger:
        await promote(ledger, ends_at="2099-06-30T22:00:00+00:00")
        account = await ledger.account(name="Room 8", timezone="Europe/Berlin")
        url = await pay_link(ledger, account["id"])
        async with ledger.http.get(url) as resp:
            page = unescape(await resp.text())
        assert (
            "Top up 500, get 100: top up at least 500.00 EUR and get 100.00 EUR extra. "
            "Until 2099-07-01 00:00." in page
        )
        order = await top_up(ledger, account["id"], 50_000)
        async with ledger.http.get(url) as resp:
            page = unescape(await resp.text())
        assert "+ 100.00 EUR bonus" in page
        async with ledger.http.get(f"{url}/receipts/{order['id']}") as resp:
            receipt = unescape(await resp.text())
        cells = re.findall(r"<th scope=row>([^<]+)</th><td class=num>([^<]+)</td>", receipt)
        assert cells == [
            ("Amount", "500.00 EUR"),
            ("Bonus", "100.00 EUR"),
            ("Credited", "600.00 EUR"),
            ("Balance after", "600.00 EUR"),
        ]
