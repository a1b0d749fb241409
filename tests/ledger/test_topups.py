"""Top-ups: idempotency, validation, batch, listing, refunds, adjustments, closing."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from tests.ledger.conftest import Ledger

pytestmark = pytest.mark.usefixtures("socket_enabled")


async def test_idempotency_key_replays_and_rejects_other_body(ledger: Ledger) -> None:
    account = await ledger.account()
    body = {"account": account["id"], "amount_minor": 1500, "reference": "cash-1"}
    headers = {"Idempotency-Key": "key-1"}
    status, first = await ledger.call("POST", "/api/v1/topups", json=body, headers=headers)
    assert status == 201
    assert first["status"] == "succeeded"
    status, again = await ledger.call("POST", "/api/v1/topups", json=body, headers=headers)
    assert status == 201
    assert again == first
    assert await ledger.balance(account["id"]) == 1500
    status, err = await ledger.call(
        "POST", "/api/v1/topups", headers=headers, json=body | {"amount_minor": 1600}
    )
    assert status == 422
    assert err["error"]["code"] == "idempotency_key_reused"
    status, err = await ledger.call("POST", "/api/v1/topups", json=body)
    assert status == 400
    assert err["error"]["code"] == "idempotency_key_required"
    # The same reference under another key is a conflict, not a second credit.
    status, err = await ledger.call(
        "POST", "/api/v1/topups", json=body, headers={"Idempotency-Key": "key-2"}
    )
    assert status == 409
    assert await ledger.balance(account["id"]) == 1500


async def test_concurrent_same_key_credits_once(ledger: Ledger) -> None:
    account = await ledger.account()
    body = {"account": account["id"], "amount_minor": 700}
    results = await asyncio.gather(
        *(
            ledger.call("POST", "/api/v1/topups", json=body, headers={"Idempotency-Key": "same"})
            for _ in range(20)
        )
    )
    assert {status for status, _ in results} == {201}
    assert len({r["id"] for _, r in results}) == 1
    assert await ledger.balance(account["id"]) == 700


async def test_amount_and_account_validation(ledger: Ledger) -> None:
    account = await ledger.account()
    number = account["number"]
    typo = number[:-2] + number[-1] + number[-2] if number[-1] != number[-2] else None
    bad_digit = number[:-1] + str((int(number[-1]) + 1) % 10)
    cases = [
        ({"account": account["id"], "amount_minor": 0}, "invalid_amount"),
        ({"account": account["id"], "amount_minor": -5}, "invalid_amount"),
        ({"account": account["id"], "amount_minor": 1.5}, "invalid_amount"),
        ({"account": account["id"], "amount_minor": "100"}, "invalid_amount"),
        ({"account": account["id"], "amount_minor": 10**9}, "amount_too_large"),
        ({"account": bad_digit, "amount_minor": 100}, "invalid_account_number"),
        ({"account": "abc", "amount_minor": 100}, "invalid_account"),
    ]
    if typo:
        cases.append(({"account": typo, "amount_minor": 100}, "invalid_account_number"))
    for index, (body, code) in enumerate(cases):
        status, err = await ledger.call(
            "POST", "/api/v1/topups", json=body, headers={"Idempotency-Key": f"v-{index}"}
        )
        assert status == 422, body
        assert err["error"]["code"] == code, body
    status, err = await ledger.call(
        "POST",
        "/api/v1/topups",
        json={"account": 424242, "amount_minor": 100},
        headers={"Idempotency-Key": "v-missing"},
    )
    assert status == 404
    # By printed number (with spaces) works.
    spaced = " ".join([number[:3], number[3:6], number[6:]])
    order = await ledger.topup(spaced, 250, "by-number")
    assert order["account_id"] == account["id"]
    assert await ledger.balance(account["id"]) == 250


async def test_batch_list_timeline_refund_adjust_close(ledger: Ledger) -> None:
    a = await ledger.account()
    b = await ledger.account(name="Room 2")
    batch = await ledger.ok(
        "POST",
        "/api/v1/topups/batch",
        headers={"Idempotency-Key": "b1"},
        json={
            "items": [
                {"account": a["id"], "amount_minor": 1000},
                {"account": b["number"], "amount_minor": 2000},
                {"account": a["id"], "amount_minor": -1},
            ]
        },
    )
    assert [r["ok"] for r in batch["results"]] == [True, True, False]
    assert batch["results"][2]["error"]["code"] == "invalid_amount"
    assert await ledger.balance(a["id"]) == 1000
    assert await ledger.balance(b["id"]) == 2000

    listed = await ledger.ok("GET", f"/api/v1/topups?account={a['id']}&status=succeeded")
    assert [o["account_id"] for o in listed["topups"]] == [a["id"]]
    order_id = listed["topups"][0]["id"]
    order = await ledger.ok("GET", f"/api/v1/topups/{order_id}")
    assert [t["status"] for t in order["timeline"]] == ["pending", "processing", "succeeded"]
    status, _ = await ledger.call("GET", "/api/v1/topups?status=bogus")
    assert status == 422

    status, _ = await ledger.call(
        "POST",
        f"/api/v1/topups/{order_id}/actions",
        json={"action": "refund", "amount_minor": 1001, "reason": "too much"},
    )
    assert status == 422
    refunded = await ledger.ok(
        "POST",
        f"/api/v1/topups/{order_id}/actions",
        json={"action": "refund", "amount_minor": 400, "reason": "moved"},
    )
    assert refunded["status"] == "partially_refunded"
    refunded = await ledger.ok(
        "POST", f"/api/v1/topups/{order_id}/actions", json={"action": "refund", "reason": "rest"}
    )
    assert refunded["status"] == "refunded"
    assert refunded["refunded_minor"] == 1000
    assert await ledger.balance(a["id"]) == 0

    await ledger.ok(
        "POST",
        "/api/v1/adjustments",
        json={"account": a["id"], "amount_minor": -300, "reason": "meter error"},
    )
    status, _ = await ledger.call(
        "POST", "/api/v1/adjustments", json={"account": a["id"], "amount_minor": 5}
    )
    assert status == 422  # a reason is required
    assert await ledger.balance(a["id"]) == -300

    closed = await ledger.ok(
        "POST", f"/api/v1/accounts/{b['id']}/close", json={"reason": "tenant moved out"}
    )
    assert closed["status"] == "closed"
    assert closed["settlement"]["refund_due_minor"] == 2000
    assert closed["balance_minor"] == 0
    status, _ = await ledger.call(
        "POST",
        "/api/v1/topups",
        headers={"Idempotency-Key": "c"},
        json={"account": b["id"], "amount_minor": 100},
    )
    assert status == 409
    statement = await ledger.ok("GET", f"/api/v1/accounts/{b['id']}/statement")
    assert statement["ties_out"] is True
    assert statement["topups_total_minor"] == 2000
    assert statement["settlements_total_minor"] == -2000
    audit = await ledger.ok("GET", "/api/v1/audit")
    actions = {e["action"] for e in audit["entries"]}
    assert {"topup.create", "topup.refund", "account.adjust", "account.close"} <= actions
    adjust = next(e for e in audit["entries"] if e["action"] == "account.adjust")
    assert adjust["actor"] == "admin"
    assert adjust["after"]["amount_minor"] == -300


async def test_statement_period_has_opening_balance(ledger: Ledger) -> None:
    account = await ledger.account()
    await ledger.topup(account["id"], 1000, "s1")
    await asyncio.sleep(0.05)
    middle = datetime.now(UTC)
    await asyncio.sleep(0.05)
    await ledger.topup(account["id"], 250, "s2")
    frm = middle.isoformat().replace("+", "%2B")
    statement = await ledger.ok("GET", f"/api/v1/accounts/{account['id']}/statement?from={frm}")
    assert statement["opening_balance_minor"] == 1000
    assert statement["topups_total_minor"] == 250
    assert statement["closing_balance_minor"] == 1250
    assert statement["ties_out"] is True
    before = await ledger.ok("GET", f"/api/v1/accounts/{account['id']}/statement?to={frm}")
    assert before["closing_balance_minor"] == 1000
    status, _ = await ledger.call("GET", f"/api/v1/accounts/{account['id']}/statement?from=x")
    assert status == 422
