"""Every list is searchable on the server and served in cursor pages (issues 24 and 25).

Expected orders and matches are worked out here from the names the test chose (Python's own
sorting and substring tests), never read back from the ledger's query.
"""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import quote

import pytest

from tests.ledger.conftest import Ledger

pytestmark = pytest.mark.usefixtures("socket_enabled")

NAMES = [
    "Room 1 Anna",
    "room 10 Ben",
    "Room 11 Chen",
    "Room 2 Dora",
    "Attic Emil",
    "Basement flat Fei",
    "Garden house Gül",
    "100%_done Hana",
    "Shop Ivo",
    "Room 3 Jun",
    "Studio Kai",
    "Loft Lea",
    "Room 12 Mo",
]


async def walk(ledger: Ledger, query: str, limit: int) -> tuple[list[dict[str, Any]], int]:
    """Follow a list's cursors to the end; return every row and the number of pages."""
    rows: list[dict[str, Any]] = []
    cursor, pages = None, 0
    while True:
        path = f"/api/v1/accounts?{query}&limit={limit}"
        if cursor:
            path += f"&cursor={cursor}"
        page = await ledger.ok("GET", path)
        rows.extend(page["accounts"])
        pages += 1
        assert len(page["accounts"]) <= limit
        cursor = page["next_cursor"]
        if cursor is None:
            return rows, pages
        assert pages < 100, "the cursor never ends"


async def seed(ledger: Ledger) -> dict[str, dict[str, Any]]:
    return {name: await ledger.account(name=name) for name in NAMES}


async def test_pages_cover_every_account_once_in_order(ledger: Ledger) -> None:
    await seed(ledger)
    rows, pages = await walk(ledger, "sort=name", limit=4)
    assert [r["name"] for r in rows] == sorted(NAMES, key=str.lower)
    assert pages == 4  # 13 accounts, 4 a page
    backwards, _ = await walk(ledger, "sort=-name", limit=5)
    assert [r["name"] for r in backwards] == sorted(NAMES, key=str.lower, reverse=True)
    first = await ledger.ok("GET", "/api/v1/accounts?sort=name&limit=4")
    assert first["total"] == len(NAMES)


async def test_an_account_added_between_pages_skips_and_repeats_nothing(ledger: Ledger) -> None:
    await seed(ledger)
    first = await ledger.ok("GET", "/api/v1/accounts?sort=name&limit=6")
    await ledger.account(name="Aardvark Zoe")  # sorts before the cursor: not in later pages
    await ledger.account(name="Zinc Yan")  # after it: in a later page
    rest: list[dict[str, Any]] = []
    cursor = first["next_cursor"]
    while cursor:
        page = await ledger.ok("GET", f"/api/v1/accounts?sort=name&limit=6&cursor={cursor}")
        rest.extend(page["accounts"])
        cursor = page["next_cursor"]
    seen = [r["name"] for r in first["accounts"] + rest]
    assert len(seen) == len(set(seen))
    assert set(seen) == set(NAMES) | {"Zinc Yan"}


SEARCHES = [
    ("room 1", ["Room 1 Anna", "room 10 Ben", "Room 11 Chen", "Room 12 Mo"]),
    ("ROOM 2", ["Room 2 Dora"]),
    ("gül", ["Garden house Gül"]),
    ("%", ["100%_done Hana"]),  # a wildcard is a character to find, not "anything"
    ("_", ["100%_done Hana"]),
    ("nobody", []),
]


async def test_search_by_name(ledger: Ledger) -> None:
    await seed(ledger)  # one ledger for every search: each reads, none writes
    for text, expected in SEARCHES:
        rows, _ = await walk(ledger, f"q={quote(text)}&sort=name", limit=3)
        assert [r["name"] for r in rows] == expected, text


async def test_search_by_account_number_and_id(ledger: Ledger) -> None:
    accounts = await seed(ledger)
    ivo = accounts["Shop Ivo"]
    number = ivo["number"]
    grouped = " ".join(number[i : i + 4] for i in range(0, len(number), 4))
    for typed in (number, grouped, number[2:9]):
        rows, _ = await walk(ledger, f"q={quote(typed)}", limit=10)
        assert ivo["id"] in [r["id"] for r in rows], typed
    rows, _ = await walk(ledger, f"q={ivo['id']}", limit=50)
    assert ivo["id"] in [r["id"] for r in rows]


async def test_filters_sort_by_balance_and_last_topup(ledger: Ledger) -> None:
    accounts = await seed(ledger)
    credited = {"Attic Emil": [500, 700], "Shop Ivo": [1200], "Loft Lea": [700]}
    for name, amounts in credited.items():
        for n, amount in enumerate(amounts):
            await ledger.topup(accounts[name]["id"], amount, key=f"{name}-{n}")
    # Balances by hand: Emil 1200, Ivo 1200, Lea 700; ties in id order.
    on, _ = await walk(ledger, "supply=on&sort=-balance", limit=2)
    by_hand = sorted(credited, key=lambda n: (-sum(credited[n]), -accounts[n]["id"]))
    assert [r["name"] for r in on] == by_hand
    off, _ = await walk(ledger, "supply=off&sort=name", limit=5)
    assert [r["name"] for r in off] == sorted(set(NAMES) - set(credited), key=str.lower)
    emil = next(r for r in on if r["name"] == "Attic Emil")
    assert emil["last_topup"]["amount_minor"] == 700  # the second top-up
    assert emil["last_topup"]["currency"] == "EUR"
    assert all(r["last_topup"] is None for r in off)
    ascending, _ = await walk(ledger, "sort=balance", limit=20)
    assert [r["balance_minor"] for r in ascending] == sorted(r["balance_minor"] for r in ascending)
    closed, _ = await walk(ledger, "status=closed", limit=5)
    assert closed == []


def forged(payload: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


BAD_QUERIES = [
    ("cursor=not-a-cursor!", "cursor"),
    ("cursor=" + forged({"o": "accounts:-name", "k": ["x", 1]}), "cursor"),  # other sort
    ("cursor=" + forged({"o": "accounts:name", "k": ["x"]}), "cursor"),
    ("cursor=" + forged({"o": "accounts:name", "k": [{"a": 1}, 1]}), "cursor"),
    ("cursor=" + forged([1, 2]), "cursor"),
    ("cursor=" + "A" * 600, "cursor"),
    ("q=" + "x" * 101, "q"),
    ("sort=days_left", "sort"),
    ("supply=maybe", "supply"),
    ("low=1", "low"),
    ("status=gone", "status"),
]


async def test_bad_list_input_is_a_422_naming_the_field(ledger: Ledger) -> None:
    await ledger.account(name="Only")
    for query, field in BAD_QUERIES:
        status, body = await ledger.call("GET", f"/api/v1/accounts?{query}")
        assert status == 422, (query, body)
        assert body["error"]["field"] == field, query


async def test_a_tenant_lists_only_its_own_account(ledger: Ledger) -> None:
    accounts = await seed(ledger)
    anna = accounts["Room 1 Anna"]
    tenant = await ledger.ok(
        "POST", "/api/v1/tokens", json={"scope": "tenant", "account_id": anna["id"]}
    )
    for query in ("", "?q=Ben", "?sort=-name&limit=1"):
        page = await ledger.ok("GET", f"/api/v1/accounts{query}", token=tenant["token"])
        assert [a["id"] for a in page["accounts"]] == [anna["id"]]
        assert page["next_cursor"] is None


async def test_orders_and_audit_pages_and_search(ledger: Ledger) -> None:
    accounts = await seed(ledger)
    ids = []
    for n in range(7):
        till = "odd" if n % 2 else "even"
        order = await ledger.topup(
            accounts["Shop Ivo"]["id"], 100 + n, key=f"k{n}", reference=f"{till}-till-{n}"
        )
        ids.append(order["id"])
    seen: list[int] = []
    cursor = ""
    while True:
        page = await ledger.ok("GET", f"/api/v1/topups?limit=3&cursor={cursor}")
        seen.extend(o["id"] for o in page["topups"])
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == sorted(ids, reverse=True)
    odd = await ledger.ok("GET", "/api/v1/topups?q=odd-till&limit=100")
    assert [o["id"] for o in odd["topups"]] == [ids[n] for n in (5, 3, 1)]
    one = await ledger.ok("GET", f"/api/v1/topups?q=%23{ids[4]}")
    assert [o["id"] for o in one["topups"]] == [ids[4]]
    status, body = await ledger.call(
        "GET", "/api/v1/topups?cursor=" + forged({"o": "audit:newest", "k": [5]})
    )
    assert (status, body["error"]["field"]) == (422, "cursor")

    entries: list[dict[str, Any]] = []
    cursor = ""
    while True:
        page = await ledger.ok("GET", f"/api/v1/audit?limit=4&q=account.create&cursor={cursor}")
        entries.extend(page["entries"])
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert [e["action"] for e in entries] == ["account.create"] * len(NAMES)
    assert sorted(int(e["target"].split(":")[1]) for e in entries) == sorted(
        a["id"] for a in accounts.values()
    )
    assert [e["id"] for e in entries] == sorted((e["id"] for e in entries), reverse=True)
