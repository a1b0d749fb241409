"""Tenant changes: move-out (final reading, statement, close with transfer or refund), move-in.

Every amount below is worked out by hand in the comments, on one flat tariff of 0.25 EUR/kWh
without a standing charge. Each refusal is a 4xx that leaves every table as it was.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from prepaid_ledger.services.verify import verify_ledger
from prepaid_ledger.store import models
from prepaid_ledger.store.database import Database
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from tests.ledger.conftest import Ledger

pytestmark = pytest.mark.usefixtures("socket_enabled")
T0 = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)  # 09:00 in Berlin: every reading on one local day
PRICE = "0.25"


def at(hours: float) -> str:
    return (T0 + timedelta(hours=hours)).isoformat()


async def post_readings(ledger: Ledger, meter_id: int, *values: tuple[str, float]) -> Any:
    body = {"readings": [{"meter_id": meter_id, "value": v, "at": at(h)} for v, h in values]}
    result = await ledger.ok("POST", "/api/v1/readings", json=body)
    return result["meters"][0]


async def in_db[T](ledger: Ledger, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    db = Database(ledger.settings.database_url)
    try:
        return await db.read(work)
    finally:
        await db.close()


async def assert_verified(ledger: Ledger) -> None:
    assert await in_db(ledger, verify_ledger) == []


async def book_balances(ledger: Ledger) -> dict[str, int]:
    async def work(session: AsyncSession) -> dict[str, int]:
        rows = await session.execute(select(models.Book.key, models.Book.balance_minor))
        return {key: int(balance) for key, balance in rows}

    return await in_db(ledger, work)


def system_book(name: str) -> str:
    return f"system:{name}:EUR"  # site 1's books keep their pre-site keys


async def last_account_event(ledger: Ledger, account_id: int) -> dict[str, Any]:
    async def work(session: AsyncSession) -> dict[str, Any]:
        payload = await session.scalar(
            select(models.StreamEvent.payload)
            .where(
                models.StreamEvent.account_id == account_id,
                models.StreamEvent.type == "account.updated",
            )
            .order_by(models.StreamEvent.id.desc())
            .limit(1)
        )
        assert payload is not None
        return dict(payload)

    return await in_db(ledger, work)


async def everything(ledger: Ledger) -> dict[str, Any]:
    """Every row a close or a move could write or change, to show a refusal changed nothing."""

    async def work(session: AsyncSession) -> dict[str, Any]:
        counts = {
            model.__tablename__: await session.scalar(select(func.count()).select_from(model))
            for model in (
                models.JournalTransaction,
                models.JournalEntry,
                models.ChargeLine,
                models.Reading,
                models.MeterAssignment,
                models.AuditLog,
                models.StreamEvent,
                models.ChargeState,
            )
        }
        accounts = (
            await session.execute(
                select(
                    models.Account.id,
                    models.Account.status,
                    models.Account.closed_at,
                    models.Account.supply_allowed,
                ).order_by(models.Account.id)
            )
        ).all()
        books = (
            await session.execute(
                select(models.Book.key, models.Book.balance_minor).order_by(models.Book.key)
            )
        ).all()
        meters = (
            await session.execute(
                select(
                    models.Meter.id,
                    models.Meter.account_id,
                    models.Meter.tariff_id,
                    models.Meter.last_value,
                    models.Meter.last_at,
                ).order_by(models.Meter.id)
            )
        ).all()
        return {"counts": counts, "accounts": accounts, "books": books, "meters": meters}

    return await in_db(ledger, work)


async def statement(ledger: Ledger, account_id: int) -> dict[str, Any]:
    """The account's statement, checked to tie out by adding its lines here."""
    found = await ledger.ok("GET", f"/api/v1/accounts/{account_id}/statement")
    sections = ("topups", "bonuses", "adjustments", "refunds", "settlements")
    for name in sections:
        assert sum(line["amount_minor"] for line in found[name]) == found[f"{name}_total_minor"]
    lines = sum(found[f"{name}_total_minor"] for name in sections)
    costs = found["consumption_total_minor"] + found["standing_total_minor"]
    assert found["opening_balance_minor"] + lines - costs == found["closing_balance_minor"]
    assert found["ties_out"] is True
    return found


async def audit_entries(ledger: Ledger, target: str, action: str) -> list[dict[str, Any]]:
    """The audit entries of one action on one target, newest first."""
    page = await ledger.ok("GET", f"/api/v1/audit?q={target}&limit=100")
    return [e for e in page["entries"] if (e["target"], e["action"]) == (target, action)]


def grouped(number: str) -> str:
    """An account number as printed: in groups of three digits ("100 000 029")."""
    return " ".join(number[i : i + 3] for i in range(0, len(number), 3))


async def room_with_final_reading(
    ledger: Ledger, tariff_id: int, name: str, topup: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A room topped up with TOPUP whose meter went from 1000.0 to 1014.0 kWh (3.50 EUR)."""
    room = await ledger.account(name=name)
    if topup:
        await ledger.topup(room["id"], topup, f"topup-{room['id']}")
    meter = await ledger.meter(room["id"], tariff_id)
    await post_readings(ledger, meter["id"], ("1000.0", 0))  # baseline: charges nothing
    # The final reading: 14 kWh * 0.25 EUR = 3.50 EUR = 350 cents.
    final = await post_readings(ledger, meter["id"], ("1014.0", 2))
    assert final["charged_minor"] == 350
    return room, meter


async def test_move_out_transfers_the_balance_to_the_new_room(ledger: Ledger) -> None:
    tariff = await ledger.tariff(price=PRICE)
    # Room 1: 20.00 EUR topped up, final reading 3.50 EUR: 2000 - 350 = 1650 left.
    room1, _ = await room_with_final_reading(ledger, tariff["id"], "Room 1 (Anna)", 2000)
    # Room 2, Anna's new room: 8 kWh used with no credit: 8 * 0.25 = 2.00 EUR of debt, cut off.
    room2 = await ledger.account(name="Room 2 (Anna)")
    meter2 = await ledger.meter(room2["id"], tariff["id"])
    await post_readings(ledger, meter2["id"], ("500.0", 0), ("508.0", 1))
    view2 = await ledger.ok("GET", f"/api/v1/accounts/{room2['id']}")
    assert view2["balance_minor"] == -200
    assert view2["supply"]["allowed"] is False

    # The final statement: 0 + 2000 top-up - 350 consumption = 1650.
    final = await statement(ledger, room1["id"])
    assert final["closing_balance_minor"] == 1650

    closed = await ledger.ok(
        "POST",
        f"/api/v1/accounts/{room1['id']}/close",
        json={"reason": "moved to room 2", "transfer_to": grouped(room2["number"])},
    )
    assert closed["status"] == "closed"
    assert closed["balance_minor"] == 0
    assert closed["settlement"] == {
        "refund_due_minor": 0,
        "shortfall_minor": 0,
        "transferred_minor": 1650,
        "transfer_to": room2["id"],
        "refund_method": None,
        "refund_reference": None,
    }
    # Room 2: -200 + 1650 = 1450, and the supply is back on (refreshed with the transfer).
    view2 = await ledger.ok("GET", f"/api/v1/accounts/{room2['id']}")
    assert view2["balance_minor"] == 1450
    assert view2["supply"] == {"allowed": True, "reason": "credit", "changes_at": None}
    event2 = await last_account_event(ledger, room2["id"])
    assert (event2["balance_minor"], event2["supply"]["allowed"]) == (1450, True)
    event1 = await last_account_event(ledger, room1["id"])
    assert (event1["balance_minor"], event1["status"]) == (0, "closed")

    # Room 1's statement: 0 + 2000 - 350 - 1650 transferred = 0.
    old = await statement(ledger, room1["id"])
    assert old["topups_total_minor"] == 2000
    assert old["consumption_total_minor"] == 350
    assert [line["amount_minor"] for line in old["adjustments"]] == [-1650]
    assert old["settlements"] == []
    assert old["closing_balance_minor"] == 0
    # Room 2's statement: 0 - 200 consumption + 1650 transferred in = 1450.
    new = await statement(ledger, room2["id"])
    assert new["consumption_total_minor"] == 200
    assert [line["amount_minor"] for line in new["adjustments"]] == [1650]
    assert new["closing_balance_minor"] == 1450
    # One transaction between the two customer books, described on both statements.
    out_line, in_line = old["adjustments"][0], new["adjustments"][0]
    assert out_line["transaction_id"] == in_line["transaction_id"]
    assert room1["number"] in out_line["description"]
    assert room2["number"] in out_line["description"]
    assert "moved to room 2" in out_line["description"]

    [close_entry] = await audit_entries(ledger, f"account:{room1['id']}", "account.close")
    assert close_entry["before"]["balance_minor"] == 1650
    assert close_entry["after"]["settlement"] == closed["settlement"]
    assert close_entry["after"]["reason"] == "moved to room 2"
    [transfer_entry] = await audit_entries(ledger, f"account:{room2['id']}", "account.transfer_in")
    assert transfer_entry["before"]["balance_minor"] == -200
    assert transfer_entry["after"]["balance_minor"] == 1450
    assert transfer_entry["after"]["amount_minor"] == 1650
    assert transfer_entry["after"]["from_account_id"] == room1["id"]
    assert transfer_entry["after"]["transaction_id"] == out_line["transaction_id"]

    # No system book took part: neither a refund nor a write-off.
    books = await book_balances(ledger)
    for name in ("refunds:payable", "refunds:paid", "settlement:write_off"):
        assert books.get(system_book(name), 0) == 0, name
    await assert_verified(ledger)


async def test_move_out_refund_paid_in_cash_or_left_payable(ledger: Ledger) -> None:
    tariff = await ledger.tariff(price=PRICE)
    # Both rooms: 2000 - 350 = 1650 left after the final reading.
    paid_room, _ = await room_with_final_reading(ledger, tariff["id"], "Room 3", 2000)
    owed_room, _ = await room_with_final_reading(ledger, tariff["id"], "Room 4", 2000)

    paid = await ledger.ok(
        "POST",
        f"/api/v1/accounts/{paid_room['id']}/close",
        json={"reason": "moved out", "refund": {"method": "cash", "reference": "receipt 17"}},
    )
    assert paid["balance_minor"] == 0
    assert paid["settlement"] == {
        "refund_due_minor": 1650,
        "shortfall_minor": 0,
        "transferred_minor": 0,
        "transfer_to": None,
        "refund_method": "cash",
        "refund_reference": "receipt 17",
    }
    # {"reason"} alone works as before: the 1650 stays owed to the tenant.
    owed = await ledger.ok(
        "POST", f"/api/v1/accounts/{owed_room['id']}/close", json={"reason": "moved out"}
    )
    assert owed["settlement"]["refund_due_minor"] == 1650
    assert owed["settlement"]["refund_method"] is None

    # Paid: customer -1650, refunds:paid +1650. Owed: customer -1650, refunds:payable +1650.
    books = await book_balances(ledger)
    assert books[system_book("refunds:paid")] == 1650
    assert books[system_book("refunds:payable")] == 1650
    assert books.get(system_book("settlement:write_off"), 0) == 0

    # The statement: 0 + 2000 - 350 - 1650 refunded = 0; the line says how it was paid.
    paid_statement = await statement(ledger, paid_room["id"])
    [line] = paid_statement["settlements"]
    assert line["amount_minor"] == -1650
    assert line["description"] == "account closed: moved out; refund paid by cash: receipt 17"
    assert paid_statement["closing_balance_minor"] == 0
    owed_statement = await statement(ledger, owed_room["id"])
    assert [line["description"] for line in owed_statement["settlements"]] == [
        "account closed: moved out"
    ]

    [entry] = await audit_entries(ledger, f"account:{paid_room['id']}", "account.close")
    assert entry["after"]["settlement"]["refund_method"] == "cash"
    assert entry["after"]["settlement"]["refund_reference"] == "receipt 17"
    await assert_verified(ledger)


async def test_debt_is_written_off_or_transferred(ledger: Ledger) -> None:
    tariff = await ledger.tariff(price=PRICE)
    # Both rooms: 2.00 EUR topped up, 3.50 EUR used: 200 - 350 = -150 of debt.
    written_off, _ = await room_with_final_reading(ledger, tariff["id"], "Room 5", 200)
    moving, _ = await room_with_final_reading(ledger, tariff["id"], "Room 6", 200)
    target = await ledger.account(name="Room 7")
    await ledger.topup(target["id"], 1000, "room-7")

    closed = await ledger.ok(
        "POST", f"/api/v1/accounts/{written_off['id']}/close", json={"reason": "left, unpaid"}
    )
    assert closed["settlement"] == {
        "refund_due_minor": 0,
        "shortfall_minor": 150,
        "transferred_minor": 0,
        "transfer_to": None,
        "refund_method": None,
        "refund_reference": None,
    }
    # The statement: 0 + 200 - 350 + 150 written off = 0.
    closed_statement = await statement(ledger, written_off["id"])
    assert [line["amount_minor"] for line in closed_statement["settlements"]] == [150]
    assert closed_statement["closing_balance_minor"] == 0

    # The debt follows the tenant: Room 7 goes from 1000 to 1000 - 150 = 850.
    moved = await ledger.ok(
        "POST",
        f"/api/v1/accounts/{moving['id']}/close",
        json={"reason": "moved to room 7", "transfer_to": target["id"]},
    )
    assert moved["settlement"]["transferred_minor"] == -150
    assert moved["settlement"]["transfer_to"] == target["id"]
    assert moved["settlement"]["shortfall_minor"] == 0
    assert await ledger.balance(target["id"]) == 850
    # Room 6: 0 + 200 - 350 + 150 moved out = 0; Room 7: 0 + 1000 - 150 moved in = 850.
    moving_statement = await statement(ledger, moving["id"])
    assert [line["amount_minor"] for line in moving_statement["adjustments"]] == [150]
    assert moving_statement["closing_balance_minor"] == 0
    target_statement = await statement(ledger, target["id"])
    assert [line["amount_minor"] for line in target_statement["adjustments"]] == [-150]
    assert target_statement["closing_balance_minor"] == 850

    # Only Room 5's shortfall was written off: customer +150, write-off book -150.
    books = await book_balances(ledger)
    assert books[system_book("settlement:write_off")] == -150
    await assert_verified(ledger)


async def test_move_out_refusals_change_nothing(ledger: Ledger) -> None:
    tariff = await ledger.tariff(price=PRICE)
    room, _ = await room_with_final_reading(ledger, tariff["id"], "Room 1", 2000)  # 1650
    closed = await ledger.account(name="Closed room")
    await ledger.ok("POST", f"/api/v1/accounts/{closed['id']}/close", json={"reason": "empty"})
    dollars = await ledger.account(name="Dollar room", currency="USD")
    empty = await ledger.account(name="Empty room")  # balance 0
    debt = await ledger.account(name="Room in debt")
    await ledger.ok(
        "POST",
        "/api/v1/adjustments",
        json={"account": debt["id"], "amount_minor": -150, "reason": "damage"},
    )
    wrong_digit = room["number"][:-1] + str((int(room["number"][-1]) + 1) % 10)
    before = await everything(ledger)

    cases: list[tuple[int, dict[str, Any], int, str, str]] = [
        (room["id"], {"transfer_to": closed["id"]}, 409, "account_closed", "is closed"),
        (room["id"], {"transfer_to": dollars["number"]}, 422, "currency_mismatch", "USD"),
        (room["id"], {"transfer_to": room["id"]}, 422, "same_account", "another account"),
        (room["id"], {"transfer_to": grouped(room["number"])}, 422, "same_account", "another"),
        (room["id"], {"transfer_to": 999999}, 404, "not_found", "transfer_to: account 999999"),
        (room["id"], {"transfer_to": wrong_digit}, 422, "invalid_account_number", "check digit"),
        (room["id"], {"transfer_to": True}, 422, "invalid_account", "transfer_to"),
        (
            room["id"],
            {"transfer_to": empty["id"], "refund": {"method": "cash", "reference": "r1"}},
            422,
            "invalid_field",
            "not both",
        ),
        (
            empty["id"],
            {"refund": {"method": "cash", "reference": "r2"}},
            422,
            "nothing_to_refund",
            "balance is 0",
        ),
        (
            debt["id"],
            {"refund": {"method": "bank_transfer", "reference": "r3"}},
            422,
            "nothing_to_refund",
            "balance is -150",
        ),
        (
            room["id"],
            {"refund": {"method": "cheque", "reference": "r4"}},
            422,
            "invalid_field",
            "refund.method",
        ),
        (room["id"], {"refund": {"method": "cash"}}, 422, "invalid_field", "refund.reference"),
        (closed["id"], {"transfer_to": room["id"]}, 409, "account_closed", "already closed"),
    ]
    for account_id, extra, status, code, words in cases:
        body = {"reason": "moving out"} | extra
        answer, error = await ledger.call("POST", f"/api/v1/accounts/{account_id}/close", json=body)
        assert (answer, error["error"]["code"]) == (status, code), (body, error)
        assert words in error["error"]["message"] + str(error["error"].get("field")), error
    assert await everything(ledger) == before
    assert await ledger.balance(room["id"]) == 1650
    await assert_verified(ledger)


async def test_move_in_charges_the_old_account_up_to_the_start_reading(ledger: Ledger) -> None:
    tariff = await ledger.tariff(price=PRICE)
    old = await ledger.account(name="Old tenant")
    new = await ledger.account(name="New tenant")
    await ledger.topup(old["id"], 1000, "old")
    await ledger.topup(new["id"], 1000, "new")
    meter = await ledger.meter(old["id"], tariff["id"])
    # 1000.0 -> 1010.0: 10 kWh * 0.25 = 250 for the old tenant: 1000 - 250 = 750.
    await post_readings(ledger, meter["id"], ("1000.0", 0), ("1010.0", 1))
    assert await ledger.balance(old["id"]) == 750

    # The new tenant moves in at T0+3h; the register then read 1016.0.
    moved = await ledger.ok(
        "POST",
        f"/api/v1/meters/{meter['id']}/assign",
        json={"account_id": new["id"], "from": at(3), "start_value": "1016.0"},
    )
    assert moved["account_id"] == new["id"]
    assert Decimal(moved["last_value"]) == Decimal(1016)
    assert datetime.fromisoformat(moved["last_at"]) == T0 + timedelta(hours=3)
    # 1010.0 -> 1016.0 still belongs to the old tenant: 6 * 0.25 = 150: 750 - 150 = 600.
    assert await ledger.balance(old["id"]) == 600
    assert await ledger.balance(new["id"]) == 1000
    assert (await last_account_event(ledger, old["id"]))["balance_minor"] == 600

    # The new tenant pays from 1016.0 on: 1016.0 -> 1020.0 = 4 * 0.25 = 100: 1000 - 100 = 900
    # (without the start value it would have been 1010.0 -> 1020.0 = 250).
    result = await post_readings(ledger, meter["id"], ("1020.0", 4))
    assert (result["account_id"], result["charged_minor"]) == (new["id"], 100)
    # Home Assistant re-sending the start reading, or a late one from before it, charges nothing.
    late = await post_readings(ledger, meter["id"], ("1016.0", 3), ("1013.0", 2))
    assert (late["duplicates"], late["flagged"], late["charged_minor"]) == (1, 1, 0)
    assert await ledger.balance(old["id"]) == 600
    assert await ledger.balance(new["id"]) == 900

    # Old: 0 + 1000 - (10 + 6 kWh = 16 kWh, 400) = 600. New: 0 + 1000 - (4 kWh, 100) = 900.
    old_statement = await statement(ledger, old["id"])
    assert [(Decimal(c["quantity"]), c["amount_minor"]) for c in old_statement["consumption"]] == [
        (Decimal(16), 400)
    ]
    assert old_statement["closing_balance_minor"] == 600
    new_statement = await statement(ledger, new["id"])
    assert [(Decimal(c["quantity"]), c["amount_minor"]) for c in new_statement["consumption"]] == [
        (Decimal(4), 100)
    ]
    assert new_statement["closing_balance_minor"] == 900

    [entry] = await audit_entries(ledger, f"meter:{meter['id']}", "meter.assign")
    assert entry["before"]["account_id"] == old["id"]
    assert entry["after"]["account_id"] == new["id"]
    assert entry["after"]["start_value"] == "1016.0"
    assert datetime.fromisoformat(entry["after"]["from"]) == T0 + timedelta(hours=3)
    assert entry["after"]["final_reading"] == {
        "account_id": old["id"],
        "status": "charged",
        "charged_minor": 150,
        "standing_charged_minor": 0,
    }
    await assert_verified(ledger)


async def test_move_in_refusals_change_nothing_and_replace_comes_first(ledger: Ledger) -> None:
    tariff = await ledger.tariff(price=PRICE)
    old = await ledger.account(name="Old tenant")
    new = await ledger.account(name="New tenant")
    closed = await ledger.account(name="Closed")
    await ledger.ok("POST", f"/api/v1/accounts/{closed['id']}/close", json={"reason": "gone"})
    await ledger.topup(old["id"], 1000, "old")
    meter = await ledger.meter(old["id"], tariff["id"])
    await post_readings(ledger, meter["id"], ("1000.0", 0), ("1010.0", 1))  # 1000 - 250 = 750
    before = await everything(ledger)

    cases: list[tuple[dict[str, Any], int, str, str]] = [
        ({"from": at(2), "start_value": "1005.0"}, 422, "start_value_below_last", "/replace"),
        ({"from": at(1), "start_value": "1012.0"}, 422, "invalid_field", "it read 1010.0"),
        ({"from": at(2), "start_value": "99999"}, 422, "implausible_start_value", "max_power"),
        ({"from": at(0.5), "start_value": "1016.0"}, 422, "invalid_field", "last reading"),
        ({"from": at(2), "start_value": "-1"}, 422, "negative_decimal", "start_value"),
        ({"from": at(2), "start_value": 1016}, 422, "invalid_decimal", "start_value"),
        (
            {"from": at(2), "start_value": "1016.0", "account_id": closed["id"]},
            409,
            "account_closed",
            "is closed",
        ),
    ]
    for extra, status, code, words in cases:
        body = {"account_id": new["id"]} | extra
        answer, error = await ledger.call("POST", f"/api/v1/meters/{meter['id']}/assign", json=body)
        assert (answer, error["error"]["code"]) == (status, code), (body, error)
        assert words in error["error"]["message"] + str(error["error"].get("field")), error
    assert await everything(ledger) == before

    # The register was swapped at T0+2h (the new one starts at 0): re-base it, then move in.
    await ledger.ok(
        "POST",
        f"/api/v1/meters/{meter['id']}/replace",
        json={"new_start_value": "0", "at": at(2)},
    )
    await ledger.ok(
        "POST",
        f"/api/v1/meters/{meter['id']}/assign",
        json={"account_id": new["id"], "from": at(3), "start_value": "3"},
    )
    # The old tenant pays 0 -> 3 on the new register: 3 * 0.25 = 75: 750 - 75 = 675.
    assert await ledger.balance(old["id"]) == 675
    assert await ledger.balance(new["id"]) == 0
    await assert_verified(ledger)


async def test_tenant_change_move_out_then_move_in(ledger: Ledger) -> None:
    """The whole flow: final reading, final statement, close with a refund, then move-in."""
    tariff = await ledger.tariff(price=PRICE)
    old, meter = await room_with_final_reading(ledger, tariff["id"], "Room 1 (Anna)", 2000)
    final = await statement(ledger, old["id"])
    assert final["closing_balance_minor"] == 1650
    await ledger.ok(
        "POST",
        f"/api/v1/accounts/{old['id']}/close",
        json={"reason": "moved out", "refund": {"method": "bank_transfer", "reference": "TX-9"}},
    )
    # The new tenant starts from the final reading itself (1014.0 at T0+2h): nothing is charged.
    new = await ledger.account(name="Room 1 (Ben)")
    await ledger.topup(new["id"], 500, "ben")
    await ledger.ok(
        "POST",
        f"/api/v1/meters/{meter['id']}/assign",
        json={"account_id": new["id"], "from": at(2), "start_value": "1014.0"},
    )
    assert await ledger.balance(old["id"]) == 0
    # Ben: 1014.0 -> 1020.0 = 6 * 0.25 = 150: 500 - 150 = 350.
    result = await post_readings(ledger, meter["id"], ("1020.0", 5))
    assert (result["account_id"], result["charged_minor"]) == (new["id"], 150)
    assert await ledger.balance(new["id"]) == 350
    assert (await statement(ledger, old["id"]))["closing_balance_minor"] == 0

    # A room left vacant: its closed account is not billed for what was used before move-in.
    vacant, vacant_meter = await room_with_final_reading(ledger, tariff["id"], "Room 2", 1000)
    await ledger.ok("POST", f"/api/v1/accounts/{vacant['id']}/close", json={"reason": "gone"})
    cara = await ledger.account(name="Room 2 (Cara)")
    await ledger.ok(
        "POST",
        f"/api/v1/meters/{vacant_meter['id']}/assign",
        json={"account_id": cara["id"], "from": at(6), "start_value": "1030.0"},
    )
    assert await ledger.balance(vacant["id"]) == 0
    assert await ledger.balance(cara["id"]) == 0
    [entry] = await audit_entries(ledger, f"meter:{vacant_meter['id']}", "meter.assign")
    assert entry["after"]["final_reading"]["status"] == "unbilled_account_closed"
    assert entry["after"]["final_reading"]["charged_minor"] == 0
    await assert_verified(ledger)
