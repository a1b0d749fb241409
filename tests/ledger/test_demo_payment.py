"""scripts/demo-payment: clear refusals, and a Stripe-signed payment the real ledger credits."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from scripts.lib import demo_payment
from tests.ledger.conftest import ADMIN_TOKEN, STRIPE_SECRET, Ledger

pytestmark = pytest.mark.usefixtures("socket_enabled")


@pytest.mark.parametrize(
    ("amount", "message"),
    [
        ("abc", "must be a number"),
        ("0", "above 0"),
        ("-5", "above 0"),
        ("NaN", "above 0"),
        ("1e9", "at most 10000"),
        ("1.234", "more than 2 decimals"),
    ],
)
def test_bad_amounts_are_refused_clearly(amount: str, message: str) -> None:
    with pytest.raises(SystemExit, match=message):
        demo_payment.parse_amount(amount)


def test_amounts_in_cents() -> None:
    assert demo_payment.parse_amount("10") == 1000
    assert demo_payment.parse_amount("2.5") == 250


async def test_pays_a_room_through_the_signed_stripe_webhook(
    sqlite_ledger: Ledger, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger = sqlite_ledger
    tariff = await ledger.tariff()
    account = await ledger.account(name="Room 2")
    await ledger.meter(account["id"], tariff["id"])
    (tmp_path / "ledger").mkdir()
    (tmp_path / "ledger" / "admin-token").write_text(ADMIN_TOKEN)
    (tmp_path / "stripe_webhook_secret").write_text(STRIPE_SECRET)
    monkeypatch.setenv("PREPAID_DEVELOP_DIR", str(tmp_path))
    monkeypatch.setenv("PREPAID_DEVELOP_LEDGER_PORT", ledger.base_url.rsplit(":", 1)[1])
    monkeypatch.setenv("PREPAID_DEVELOP_LEDGER_PUBLIC_PORT", ledger.public_url.rsplit(":", 1)[1])
    loop = asyncio.get_running_loop()
    assert await loop.run_in_executor(None, demo_payment.main, "2", "12.50") == 0
    assert await ledger.balance(account["id"]) == 1250
    with pytest.raises(SystemExit, match=r"no Room 7 in the ledger \(there are: Room 2\)"):
        await loop.run_in_executor(None, demo_payment.main, "7", "1")
    with pytest.raises(SystemExit, match="ROOM is a room number"):
        await loop.run_in_executor(None, demo_payment.main, "two", "1")
    # Signed with another secret, the ledger refuses it: nothing is credited.
    (tmp_path / "stripe_webhook_secret").write_text("whsec_wrong")
    with pytest.raises(SystemExit, match=r"the ledger refused the payment \(400"):
        await loop.run_in_executor(None, demo_payment.main, "2", "5")
    assert await ledger.balance(account["id"]) == 1250
