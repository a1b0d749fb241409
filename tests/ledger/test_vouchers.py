"""Vouchers over HTTP on SQLite and PostgreSQL: minting, redeeming exactly once, guessing waits.

Expected values come from the issue and the references it names: the code format (20 digits,
the last a Damm check digit: Damm's worked example 572 -> 5724), OpenPAYGO Token's wait
schedule (1 minute doubling up to 512 minutes after repeated wrong entries).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prepaid_ledger.domain.account_number import damm_check_digit
from prepaid_ledger.domain.voucher_codes import parse_code, wait_after
from prepaid_ledger.errors import InputError

from tests.ledger.conftest import Ledger
from tests.ledger.test_stream import read_events

pytestmark = pytest.mark.usefixtures("socket_enabled")
ONE = {"value_minor": 100, "currency": "EUR", "count": 1}


async def mint(ledger: Ledger, **overrides: Any) -> dict[str, Any]:
    body = {"value_minor": 2000, "currency": "EUR", "count": 3} | overrides
    minted: dict[str, Any] = await ledger.ok("POST", "/api/v1/vouchers/batches", json=body)
    return minted


async def redeem(
    ledger: Ledger, account: int | str, code: str, token: str | None = None
) -> tuple[int, Any]:
    kwargs: dict[str, Any] = {} if token is None else {"token": token}
    return await ledger.call(
        "POST", "/api/v1/vouchers/redeem", json={"account": account, "code": code}, **kwargs
    )


def test_damm_worked_example_and_typos() -> None:
    assert damm_check_digit("572") == 4  # Damm (2004); the usual worked example
    assert damm_check_digit("5724") == 0
    code = "1234567890123456789" + str(damm_check_digit("1234567890123456789"))
    assert parse_code("1234 5678-9012 3456 " + code[16:]) == code
    swapped = code[:5] + code[6] + code[5] + code[7:]  # two neighbouring digits swapped
    changed = code[:-3] + str((int(code[-3]) + 1) % 10) + code[-2:]
    for typo in (swapped, changed):
        with pytest.raises(InputError) as info:
            parse_code(typo)
        assert info.value.code == "voucher_typo"
    for wrong in (
        "",
        code[:-1],
        code + "0",
        "x" * 20,
        "1" * 10_000,
        "\u0661" * 20,
    ):  # Arabic-Indic digits
        with pytest.raises(InputError) as info:
            parse_code(wrong)
        assert info.value.code == "invalid_voucher_code"


def test_waits_follow_openpaygo() -> None:
    # Three free tries, then 1, 2, 4 ... 512 minutes, then 512 minutes per failure.
    minutes = [wait_after(n) / timedelta(minutes=1) for n in range(1, 16)]
    assert minutes == [0, 0, 0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 512, 512]


async def test_mint_and_redeem_once(ledger: Ledger) -> None:
    account = await ledger.account()
    other = await ledger.account(name="Room 2")
    minted = await mint(ledger, note="shop on the corner")
    codes = [card["code"] for card in minted["codes"]]
    assert [card["serial"] for card in minted["codes"]] == [1, 2, 3]
    assert len(set(codes)) == 3
    assert all(len(code.replace(" ", "")) == 20 for code in codes)
    assert minted["batch"] | {"created_at": None} == {
        "id": minted["batch"]["id"],
        "value_minor": 2000,
        "currency": "EUR",
        "count": 3,
        "redeemed": 0,
        "expires_at": None,
        "account_id": None,
        "note": "shop on the corner",
        "created_at": None,
        "voided_at": None,
    }

    status, body = await redeem(ledger, account["number"], codes[0])
    assert status == 201, body
    order = body["order"]
    assert (order["status"], order["source"], order["amount_minor"]) == (
        "succeeded",
        "voucher",
        2000,
    )
    assert (body["batch_id"], body["serial"]) == (minted["batch"]["id"], 1)
    assert await ledger.balance(account["id"]) == 2000

    # The same code again, from the same room or another: refused, nothing moves.
    for who in (account["id"], other["id"]):
        status, body = await redeem(ledger, who, codes[0])
        assert status == 409
        assert body["error"]["code"] == "voucher_used"
        assert "already used on" in body["error"]["message"]
    assert await ledger.balance(account["id"]) == 2000
    assert await ledger.balance(other["id"]) == 0
    batches = await ledger.ok("GET", "/api/v1/vouchers/batches")
    assert batches["batches"][0]["redeemed"] == 1
    orders = await ledger.ok("GET", f"/api/v1/topups?account={account['id']}")
    assert [o["source"] for o in orders["topups"]] == ["voucher"]


async def test_concurrent_redemptions_credit_once(ledger: Ledger) -> None:
    rooms = [await ledger.account(name=f"Room {i}") for i in range(4)]
    code = (await mint(ledger, count=1))["codes"][0]["code"]
    results = await asyncio.gather(
        *(redeem(ledger, room["id"], code) for room in rooms for _ in range(3))
    )
    assert sorted(status for status, _ in results) == [201] + [409] * 11
    balances = [await ledger.balance(room["id"]) for room in rooms]
    assert sorted(balances) == [0, 0, 0, 2000]


async def test_void_expiry_binding_and_currency(ledger: Ledger) -> None:
    account = await ledger.account()
    other = await ledger.account(name="Room 2")
    dollars = await ledger.account(name="Room 3", currency="USD")
    voided = await mint(ledger, count=1)
    await ledger.ok(
        "POST",
        f"/api/v1/vouchers/batches/{voided['batch']['id']}/void",
        json={"reason": "stolen from the shop"},
    )
    status, body = await redeem(ledger, account["id"], voided["codes"][0]["code"])
    assert (status, body["error"]["code"]) == (409, "voucher_void")
    status, _ = await ledger.call(
        "POST", f"/api/v1/vouchers/batches/{voided['batch']['id']}/void", json={"reason": "x"}
    )
    assert status == 409

    bound = await mint(ledger, count=1, account_id=account["id"])
    status, body = await redeem(ledger, other["id"], bound["codes"][0]["code"])
    assert (status, body["error"]["code"]) == (409, "voucher_other_account")
    status, body = await redeem(ledger, dollars["id"], (await mint(ledger))["codes"][0]["code"])
    assert (status, body["error"]["code"]) == (409, "currency_mismatch")

    soon = datetime.now(UTC) + timedelta(seconds=1)
    expiring = await mint(ledger, count=1, expires_at=soon.isoformat())
    await asyncio.sleep(max(0.0, (soon - datetime.now(UTC)).total_seconds()) + 0.2)
    status, body = await redeem(ledger, account["id"], expiring["codes"][0]["code"])
    assert (status, body["error"]["code"]) == (409, "voucher_expired")
    assert [await ledger.balance(a["id"]) for a in (account, other, dollars)] == [0, 0, 0]
    audit = await ledger.ok("GET", "/api/v1/audit?limit=50")
    assert {"voucher.mint", "voucher.void"} <= {entry["action"] for entry in audit["entries"]}


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"value_minor": 0, "currency": "EUR", "count": 1}, "invalid_amount"),
        ({"value_minor": 10**13, "currency": "EUR", "count": 1}, "invalid_amount"),
        ({"value_minor": 100, "currency": "EUR", "count": 1001}, "invalid_field"),
        ({"value_minor": 100, "currency": "XXY", "count": 1}, "invalid_currency"),
        (
            {
                "value_minor": 100,
                "currency": "EUR",
                "count": 1,
                "expires_at": "2001-01-01T00:00:00Z",
            },
            "invalid_field",
        ),
        (
            {
                "value_minor": 100,
                "currency": "EUR",
                "count": 1,
                "expires_at": "9999-12-31T23:59:59-01:00",
            },
            "time_out_of_range",
        ),
    ],
)
async def test_minting_refuses_extreme_input(
    sqlite_ledger: Ledger, body: dict[str, Any], code: str
) -> None:
    status, answer = await sqlite_ledger.call("POST", "/api/v1/vouchers/batches", json=body)
    assert (status, answer["error"]["code"]) == (422, code), answer
    assert (await sqlite_ledger.ok("GET", "/api/v1/vouchers/batches"))["batches"] == []


async def test_redeeming_refuses_extreme_input(sqlite_ledger: Ledger) -> None:
    ledger = sqlite_ledger
    account = await ledger.account()
    real = (await mint(ledger, count=1))["codes"][0]["code"]
    typo = real[:-1] + str((int(real[-1]) + 1) % 10)
    for account_ref, code, status, error in (
        (account["id"], "1" * 10_000, 422, "invalid_voucher_code"),
        (account["id"], 12345678901234567890, 422, "invalid_voucher_code"),
        (account["id"], typo, 422, "voucher_typo"),
        (True, real, 422, "invalid_account"),
        (10**30, real, 404, "not_found"),
        ("100 000 012", real, 422, "invalid_account_number"),
    ):
        got, body = await redeem(ledger, account_ref, code)  # type: ignore[arg-type]
        assert (got, body["error"]["code"]) == (status, error), (account_ref, body)
    assert await ledger.balance(account["id"]) == 0
    # Typos and malformed codes are not guesses: the real code still works at once.
    assert (await redeem(ledger, account["id"], real))[0] == 201


async def test_guessing_earns_growing_waits(ledger: Ledger) -> None:
    account = await ledger.account()
    real = (await mint(ledger, count=1))["codes"][0]["code"]
    start = int(real.replace(" ", "")[:19]) + 10**12  # 2000 codes, none of them the real one
    guesses = [f"{(start + n) % 10**19:019d}" for n in range(2000)]
    guesses = [g + str(damm_check_digit(g)) for g in guesses]
    looked_up = 0
    waited = 0
    for guess in guesses:
        status, body = await redeem(ledger, account["id"], guess)
        if status == 422:
            assert body["error"]["code"] == "unknown_voucher"
            looked_up += 1
        else:
            assert status == 429, body
            assert body["error"]["code"] == "too_many_attempts"
            waited += 1
    # Three free failures and the fourth that starts the first one-minute wait.
    assert (looked_up, waited) == (4, 1996)
    status, body = await redeem(ledger, account["id"], real)  # even the real code waits
    assert status == 429
    assert await ledger.balance(account["id"]) == 0
    # The landlord hears of it once wrong codes start costing waits (not for the free tries).
    stream = await read_events(ledger, 100, stop_idle=0.5)
    alerts = [e["data"] for e in stream if e["data"].get("kind") == "voucher_guessing"]
    assert [(a["account_id"], a["failures"]) for a in alerts] == [(account["id"], 4)]
    assert datetime.fromisoformat(alerts[0]["waits_until"]) > datetime.now(UTC)


async def test_tenant_redeems_for_its_own_account_only(sqlite_ledger: Ledger) -> None:
    ledger = sqlite_ledger
    account = await ledger.account()
    other = await ledger.account(name="Room 2")
    tenant = await ledger.ok(
        "POST", "/api/v1/tokens", json={"scope": "tenant", "account_id": account["id"]}
    )
    code = (await mint(ledger, count=1))["codes"][0]["code"]
    status, _ = await redeem(ledger, other["id"], code, token=tenant["token"])
    assert status == 403
    status, body = await redeem(ledger, account["id"], code, token=tenant["token"])
    assert status == 201, body
    status, _ = await ledger.call(
        "POST",
        "/api/v1/vouchers/batches",
        json={"value_minor": 1, "currency": "EUR", "count": 1},
        token=tenant["token"],
    )
    assert status == 403
