"""CSV statements opened in a spreadsheet: typed text never runs as a formula (CSV injection).

OWASP (https://owasp.org/www-community/attacks/CSV_Injection): a cell that starts with =, +, -,
@, tab (0x09) or carriage return (0x0D) is prefixed with a single quote; numbers stay numbers.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from tests.ledger.conftest import Ledger

pytestmark = pytest.mark.usefixtures("socket_enabled")
T0 = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)
TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def cells(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


async def statement_rows(ledger: Ledger, account_id: int) -> tuple[str, list[list[str]]]:
    status, text = await ledger.call("GET", f"/api/v1/accounts/{account_id}/statement?format=csv")
    assert status == 200, text
    return text, cells(text)


async def adjust(ledger: Ledger, account_id: int, amount: int, reason: str) -> None:
    await ledger.ok(
        "POST",
        "/api/v1/adjustments",
        json={"account": account_id, "amount_minor": amount, "reason": reason},
    )


async def test_formula_reasons_and_band_names_are_neutralised(sqlite_ledger: Ledger) -> None:
    ledger = sqlite_ledger
    hyperlink = '=HYPERLINK("http://evil","x")'
    band = "@SUM(A1)"
    tab_band = "\t=1+2"
    tariff = await ledger.tariff(
        name="=cmd|' /C calc'!A0",
        kind="tiered",
        price=None,
        period="month",
        bands=[
            {"up_to": "100", "price": "0.10", "band": band},
            {"up_to": None, "price": "0.20", "band": tab_band},
        ],
    )
    account = await ledger.account(name="+Room 1")
    meter = await ledger.meter(account["id"], tariff["id"], max_power="200")
    await ledger.ok(
        "POST",
        "/api/v1/readings",
        json={
            "readings": [
                {"meter_id": meter["id"], "value": "0", "at": T0.isoformat()},
                {
                    "meter_id": meter["id"],
                    "value": "150.5",
                    "at": (T0 + timedelta(hours=1)).isoformat(),
                },
            ]
        },
    )
    await adjust(ledger, account["id"], -125, hyperlink)
    await adjust(ledger, account["id"], 300, "-5 goodwill")
    await adjust(ledger, account["id"], 200, "+1 refund")
    await adjust(ledger, account["id"], 100, "fee;=1+1")  # a cell for ;-separated spreadsheets
    text, rows = await statement_rows(ledger, account["id"])
    assert rows[0] == ["section", "date", "description", "quantity", "amount_minor"]
    by_description = {row[2]: row for row in rows[1:] if row[2]}
    # Text that would start a formula is text now: a single quote in front, nothing else changed.
    assert by_description["'" + hyperlink][4] == "-125"
    assert by_description["'-5 goodwill"][4] == "300"
    assert by_description["'+1 refund"][4] == "200"
    assert "'" + band in by_description
    assert "'" + tab_band in by_description
    # A text cell holding a separator is quoted, so no other separator splits it into a formula.
    assert '"fee;=1+1"' in text
    assert by_description["fee;=1+1"][4] == "100"
    for row in rows[1:]:
        assert not row[2].startswith(TRIGGERS)
        # Numbers stay numbers: amounts and quantities parse as decimals, negative ones too.
        assert Decimal(row[4]) == int(row[4])
        if row[3]:
            Decimal(row[3])
    amounts = [Decimal(row[4]) for row in rows[1:]]
    assert Decimal(-125) in amounts
    consumption = [row for row in rows if row[0] == "consumption"]
    assert sorted(Decimal(row[3]) for row in consumption) == [Decimal("50.5"), Decimal(100)]
    assert all(Decimal(row[4]) < 0 for row in consumption)
    # The closing line still reads as before: a plain number at the end.
    closing = text.splitlines()[-1]
    balance = await ledger.balance(account["id"])
    assert closing == f"closing_balance,,,,{balance}"


async def test_plain_text_is_left_alone(sqlite_ledger: Ledger) -> None:
    ledger = sqlite_ledger
    account = await ledger.account()
    await adjust(ledger, account["id"], 250, "Meter swap, credit for the old reading")
    await adjust(ledger, account["id"], -50, 'Said "thanks"')
    text, rows = await statement_rows(ledger, account["id"])
    descriptions = [row[2] for row in rows[1:] if row[2]]
    assert descriptions == ["Meter swap, credit for the old reading", 'Said "thanks"']
    assert text.splitlines()[0] == "section,date,description,quantity,amount_minor"
    assert text.splitlines()[-1] == "closing_balance,,,,200"
