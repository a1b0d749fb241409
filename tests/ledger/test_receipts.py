"""Receipts (issue 22): one per succeeded top-up, numbered 1..N without gap or duplicate.

Expected values come from the issue: the number is gap-free per ledger, the receipt names the
payer's account (id, number, name) and room (the account's meters' names), the amount and
currency, the method (cash for manual and batch top-ups, card for Stripe, online for Standard
Webhooks), a bonus of 0 and the balance after the credit.
"""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path
from typing import Any

import pytest
from prepaid_ledger.services import topups
from prepaid_ledger.store.database import Database
from prepaid_meter_contract.topups import TopupRequest
from sqlalchemy.ext.asyncio import AsyncSession

from tests.ledger.conftest import Ledger, make_settings
from tests.ledger.test_pay_page import pay_link, running_public_ledger
from tests.ledger.test_stream import read_events
from tests.ledger.test_web_sessions import login, with_cookie
from tests.ledger.webhook_helpers import checkout_completed, standard_delivery, stripe_delivery

pytestmark = pytest.mark.usefixtures("socket_enabled")
_keys = itertools.count(1)


def key() -> dict[str, str]:
    return {"Idempotency-Key": f"receipt-test-{next(_keys)}"}


async def room(ledger: Ledger, name: str, meters: tuple[str, ...] = ()) -> dict[str, Any]:
    """An account with meters of these names (its room, as the receipt prints it)."""
    account = await ledger.account(name=name)
    if meters:
        tariff = await ledger.tariff()
        for meter in meters:
            await ledger.ok(
                "POST",
                "/api/v1/meters",
                json={
                    "account_id": account["id"],
                    "tariff_id": tariff["id"],
                    "name": meter,
                    "unit": "kWh",
                },
            )
    return account


async def receipt_of(ledger: Ledger, order_id: int, **kwargs: Any) -> dict[str, Any]:
    return dict(await ledger.ok("GET", f"/api/v1/topups/{order_id}/receipt", **kwargs))


async def all_receipt_numbers(ledger: Ledger) -> tuple[list[int], int]:
    """Every succeeded order's receipt number (sorted), and how many orders succeeded."""
    listed = await ledger.ok("GET", "/api/v1/topups?status=succeeded&limit=1000")
    numbers = sorted(o["receipt"]["number"] for o in listed["topups"] if o["receipt"])
    return numbers, len(listed["topups"])


async def test_cash_topup_receipt_fields_frozen_and_guarded(ledger: Ledger) -> None:
    account = await room(ledger, "Anna Weber", ("Flat 3 kitchen", "Flat 3 hall"))
    other = await room(ledger, "Ben")
    order = await ledger.topup(account["id"], 1500, "cash-1", reference="cash slip 77")
    receipt = await receipt_of(ledger, order["id"])
    issued_at = receipt.pop("issued_at")
    assert issued_at >= order["created_at"]
    assert receipt == {
        "number": 1,
        "order_id": order["id"],
        "account_id": account["id"],
        "account_number": account["number"],
        "account_name": "Anna Weber",
        "room": "Flat 3 kitchen, Flat 3 hall",
        "amount_minor": 1500,
        "bonus_minor": 0,
        "currency": "EUR",
        "currency_exponent": 2,
        "method": "cash",
        "balance_after_minor": 1500,
    }
    # The order's own answers carry it: the one that created it and a later read.
    assert order["receipt"] == receipt | {"issued_at": issued_at}
    assert (await ledger.ok("GET", f"/api/v1/topups/{order['id']}"))["receipt"]["number"] == 1

    second = await ledger.topup(account["number"], 250, "cash-2")
    assert second["receipt"]["number"] == 2
    assert second["receipt"]["balance_after_minor"] == 1750  # 1500 + 250

    # Frozen: renaming the account or refunding the order changes no receipt already issued.
    await ledger.ok("PATCH", f"/api/v1/accounts/{account['id']}", json={"name": "Anna Schmidt"})
    await ledger.ok(
        "POST",
        f"/api/v1/topups/{order['id']}/actions",
        json={"action": "refund", "amount_minor": 500, "reason": "paid twice"},
    )
    again = await receipt_of(ledger, order["id"])
    assert (again["account_name"], again["amount_minor"], again["number"]) == (
        "Anna Weber",
        1500,
        1,
    )

    # Who may read it: the integration and the order's tenant, not another tenant.
    integration = await ledger.ok("POST", "/api/v1/tokens", json={"scope": "integration"})
    own = await ledger.ok(
        "POST", "/api/v1/tokens", json={"scope": "tenant", "account_id": account["id"]}
    )
    stranger = await ledger.ok(
        "POST", "/api/v1/tokens", json={"scope": "tenant", "account_id": other["id"]}
    )
    assert (await receipt_of(ledger, order["id"], token=integration["token"]))["number"] == 1
    assert (await receipt_of(ledger, order["id"], token=own["token"]))["number"] == 1
    status, body = await ledger.call(
        "GET", f"/api/v1/topups/{order['id']}/receipt", token=stranger["token"]
    )
    assert (status, body["error"]["code"]) == (403, "forbidden")
    status, _ = await ledger.call("GET", f"/api/v1/topups/{order['id']}/receipt", token=None)
    assert status == 401


async def test_orders_without_credit_have_no_receipt(ledger: Ledger) -> None:
    # A paid session naming no account: money arrived, nothing credited, so no receipt (404).
    body, headers = stripe_delivery(checkout_completed(None, 900))
    status, result = await ledger.call(
        "POST", "/webhooks/stripe", data=body, headers=headers, token=None
    )
    assert (status, result["outcome"]) == (200, "needs_attention")
    status, err = await ledger.call("GET", f"/api/v1/topups/{result['order_id']}/receipt")
    assert (status, err["error"]["code"]) == (404, "not_found")
    status, err = await ledger.call("GET", "/api/v1/topups/999999/receipt")
    assert status == 404
    # A person credits it: now it has the ledger's first receipt.
    account = await room(ledger, "Late payer")
    resolved = await ledger.ok(
        "POST",
        f"/api/v1/topups/{result['order_id']}/actions",
        json={"action": "credit", "reason": "phoned", "account": account["id"]},
    )
    assert resolved["receipt"]["number"] == 1
    assert (resolved["receipt"]["method"], resolved["receipt"]["balance_after_minor"]) == (
        "card",
        900,
    )


async def test_webhook_payments_get_receipts_and_the_event_carries_them(ledger: Ledger) -> None:
    account = await room(ledger, "Room 4", ("Room 4",))
    await ledger.topup(account["id"], 100, "first")  # receipt 1
    start = (await read_events(ledger, 1000, until="never", stop_idle=0.3))[-1]["id"]

    body, headers = stripe_delivery(checkout_completed(account["number"], 2500))
    status, stripe = await ledger.call(
        "POST", "/webhooks/stripe", data=body, headers=headers, token=None
    )
    assert (status, stripe["outcome"]) == (200, "credited")
    card = await receipt_of(ledger, stripe["order_id"])
    assert (card["number"], card["method"], card["amount_minor"]) == (2, "card", 2500)
    assert (card["account_number"], card["room"]) == (account["number"], "Room 4")
    assert card["balance_after_minor"] == 2600  # 100 + 2500

    # The same delivery again credits nothing and issues no second receipt.
    status, dup = await ledger.call(
        "POST", "/webhooks/stripe", data=body, headers=headers, token=None
    )
    assert (status, dup["duplicate"]) == (200, True)

    data = {"account": account["number"], "amount_minor": 1200, "currency": "EUR"}
    body, headers = standard_delivery(data | {"reference": "pay_r1"})
    status, standard = await ledger.call(
        "POST", "/webhooks/standard", data=body, headers=headers, token=None
    )
    assert (status, standard["outcome"]) == (200, "credited")
    online = await receipt_of(ledger, standard["order_id"])
    assert (online["number"], online["method"], online["balance_after_minor"]) == (
        3,
        "online",
        3800,
    )

    events = await read_events(ledger, 1000, last_id=start, until="never", stop_idle=0.3)
    updates = [e["data"] for e in events if e["type"] == "topup.updated"]
    succeeded = [u for u in updates if u["status"] == "succeeded"]
    assert [u["receipt"]["number"] for u in succeeded] == [2, 3]
    assert succeeded[0]["receipt"] == card
    # Only the move to succeeded carries a receipt.
    assert all(u.get("receipt") is None for u in updates if u["status"] != "succeeded")


async def test_batch_items_each_get_a_receipt_and_refused_ones_use_no_number(
    ledger: Ledger,
) -> None:
    a = await room(ledger, "A", ("Meter A",))
    b = await room(ledger, "B")
    closed = await room(ledger, "Gone")
    await ledger.ok("POST", f"/api/v1/accounts/{closed['id']}/close", json={"reason": "moved"})
    batch = await ledger.ok(
        "POST",
        "/api/v1/topups/batch",
        headers=key(),
        json={
            "items": [
                {"account": a["id"], "amount_minor": 1000},
                {"account": closed["id"], "amount_minor": 500},  # refused: closed
                {"account": b["number"], "amount_minor": 2000},
                {"account": a["id"], "amount_minor": -1},  # refused: not positive
                {"account": a["id"], "amount_minor": 300},
            ]
        },
    )
    results = batch["results"]
    assert [r["ok"] for r in results] == [True, False, True, False, True]
    assert results[1]["error"]["code"] == "account_closed"
    receipts = [r["order"]["receipt"] for r in results if r["ok"]]
    assert [(r["number"], r["account_id"], r["amount_minor"]) for r in receipts] == [
        (1, a["id"], 1000),
        (2, b["id"], 2000),
        (3, a["id"], 300),
    ]
    assert [r["method"] for r in receipts] == ["cash"] * 3
    assert [r["balance_after_minor"] for r in receipts] == [1000, 2000, 1300]
    assert [r["room"] for r in receipts] == ["Meter A", None, "Meter A"]
    assert await all_receipt_numbers(ledger) == ([1, 2, 3], 3)


async def test_numbers_gap_free_under_concurrency_with_failures(ledger: Ledger) -> None:
    """Concurrent cash top-ups, webhooks and batches, some refused: receipts are exactly 1..N.

    Two currencies, so credits do not already queue behind one shared clearing book: only the
    receipt counter orders them.
    """
    accounts = [
        await ledger.account(name=f"Room {i}", currency=("EUR", "USD", "EUR")[i]) for i in range(3)
    ]
    closed = await room(ledger, "Closed")
    await ledger.ok("POST", f"/api/v1/accounts/{closed['id']}/close", json={"reason": "moved"})

    async def cash(i: int) -> bool:
        target = closed if i % 5 == 0 else accounts[i % 3]
        status, _ = await ledger.call(
            "POST",
            "/api/v1/topups",
            json={"account": target["id"], "amount_minor": 100 + i},
            headers=key(),
        )
        assert status in (201, 409), status
        return status == 201

    async def card(i: int) -> bool:
        target = closed if i % 4 == 0 else accounts[i % 3]
        currency = target["currency"].lower()
        body, headers = stripe_delivery(checkout_completed(target["number"], 1000 + i, currency))
        status, result = await ledger.call(
            "POST", "/webhooks/stripe", data=body, headers=headers, token=None
        )
        assert status == 200
        return bool(result["outcome"] == "credited")

    async def batch(i: int) -> int:
        items = [
            {"account": accounts[0]["id"], "amount_minor": 10 + i},
            {"account": closed["id"], "amount_minor": 10},  # fails mid-way through the batch
            {"account": accounts[1]["id"], "amount_minor": 20 + i},
        ]
        result = await ledger.ok(
            "POST", "/api/v1/topups/batch", headers=key(), json={"items": items}
        )
        return sum(1 for r in result["results"] if r["ok"])

    outcomes = await asyncio.gather(
        *(cash(i) for i in range(25)),
        *(card(i) for i in range(12)),
        *(batch(i) for i in range(6)),
    )
    credited = sum(int(o) for o in outcomes)
    # By hand: 25 cash, every 5th closed (5) -> 20; 12 card, every 4th closed (3) -> 9;
    # 6 batches of 2 creditable items -> 12.
    assert credited == 20 + 9 + 12
    numbers, succeeded = await all_receipt_numbers(ledger)
    assert succeeded == credited
    assert numbers == list(range(1, credited + 1))


async def test_a_rolled_back_credit_gives_its_number_back(ledger: Ledger) -> None:
    """A credit whose transaction fails after its receipt was numbered leaves no gap."""
    account = await room(ledger, "Rollback")
    await ledger.topup(account["id"], 100, "before")  # receipt 1

    class BoomError(Exception):
        pass

    async def credit_then_fail(session: AsyncSession) -> None:
        request = TopupRequest(account=account["id"], amount_minor=500)
        order = await topups.manual_topup(session, request, "test", 10**6)
        assert order.receipt is not None
        assert order.receipt.number == 2  # taken inside this transaction ...
        raise BoomError  # ... and given back by its rollback

    db = Database(ledger.settings.database_url)
    try:
        with pytest.raises(BoomError):
            await db.write(credit_then_fail)
    finally:
        await db.close()
    after = await ledger.topup(account["id"], 200, "after")
    assert after["receipt"]["number"] == 2
    assert after["receipt"]["balance_after_minor"] == 300  # the failed 500 never arrived
    assert await all_receipt_numbers(ledger) == ([1, 2], 2)


# ---- Printable pages ------------------------------------------------------------------------

HOSTILE = "<script>alert(1)</script>"


async def test_tenant_receipt_page_escapes_and_prints_both_formats(tmp_path: Path) -> None:
    async with running_public_ledger(make_settings(tmp_path, None)) as ledger:
        account = await room(ledger, HOSTILE, ("<b>Kitchen</b>",))
        other = await room(ledger, "Other")
        order = await ledger.topup(account["id"], 1250, "page-1")
        foreign = await ledger.topup(other["id"], 100, "page-2")
        url = await pay_link(ledger, account["id"])

        async with ledger.http.get(url) as resp:
            pay_page = await resp.text()
        assert f"{url}/receipts/{order['id']}" in pay_page
        assert "Receipt 1" in pay_page

        for fmt in ("a4", "slip"):
            async with ledger.http.get(f"{url}/receipts/{order['id']}?format={fmt}") as resp:
                assert resp.status == 200
                assert "script-src" in resp.headers["Content-Security-Policy"]
                page = await resp.text()
            assert HOSTILE not in page
            assert "<b>Kitchen" not in page
            assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
            assert "&lt;b&gt;Kitchen&lt;/b&gt;" in page
            for shown in ("No. 1", "12.50 EUR", "Cash", "&lt;b&gt;Kitchen"):
                assert shown in page
            assert f"/pay-assets/receipt-{fmt}.css" in page
            assert "<script" not in page  # the receipt page has no script at all
        async with ledger.http.get(f"{ledger.base_url}/pay-assets/receipt-slip.css") as resp:
            css = await resp.text()
        assert "@page { size: 80mm" in css
        assert "@media print" in css
        async with ledger.http.get(f"{ledger.base_url}/pay-assets/receipt-a4.css") as resp:
            assert "size: A4" in await resp.text()

        # Another account's order, an unknown one, or a bad token: the "not valid" page.
        wrong = (f"receipts/{foreign['id']}", "receipts/99999")
        for path in [f"{url}/{tail}" for tail in wrong] + [f"{url}x/receipts/{order['id']}"]:
            async with ledger.http.get(path) as resp:
                assert resp.status == 404, path
                assert "12.50" not in await resp.text()


async def test_landlord_receipt_page_needs_a_session_and_escapes(ledger: Ledger) -> None:
    account = await room(ledger, HOSTILE)
    await ledger.topup(account["id"], 700, "landlord-1")
    async with ledger.http.get(f"{ledger.base_url}/ui/receipts/1", allow_redirects=False) as resp:
        assert resp.status == 303
        assert resp.headers["Location"] == "../../login"
    session_id = await login(ledger)
    async with ledger.http.get(
        f"{ledger.base_url}/ui/receipts/1?format=slip", headers=with_cookie(session_id)
    ) as resp:
        assert resp.status == 200
        page = await resp.text()
    assert HOSTILE not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "7.00 EUR" in page
    assert "receipt-slip.css" in page
    for missing in ("2", "0", "x", "99999999999999999999999"):
        status, _ = await ledger.call(
            "GET", f"/ui/receipts/{missing}", token=None, headers=with_cookie(session_id)
        )
        assert status == 404, missing


async def test_a_redeemed_voucher_gets_a_voucher_receipt(ledger: Ledger) -> None:
    account = await room(ledger, "Voucher room", ("V1",))
    await ledger.topup(account["id"], 100, "cash-before-voucher")  # receipt 1
    minted = await ledger.ok(
        "POST",
        "/api/v1/vouchers/batches",
        json={"value_minor": 2000, "currency": "EUR", "count": 1},
    )
    redeemed = await ledger.ok(
        "POST",
        "/api/v1/vouchers/redeem",
        json={"account": account["id"], "code": minted["codes"][0]["code"]},
    )
    receipt = redeemed["order"]["receipt"]
    assert (receipt["number"], receipt["method"], receipt["amount_minor"]) == (2, "voucher", 2000)
    assert (receipt["room"], receipt["balance_after_minor"]) == ("V1", 2100)
