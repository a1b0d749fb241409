"""Reconciliation with Stripe: a payment whose webhook never arrived is still credited, once.

The ledger's `stripe` client talks to a local stand-in for Stripe's HTTP API
(tests/ledger/webhook_helpers.FakeStripe) serving `GET /v1/events` as Stripe documents it.
A run is started here through the same function the background task calls, on a second
connection to the ledger's database, so each test decides when it happens; one test lets the
background task itself do it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prepaid_ledger.api.provider_check import recheck_stuck_orders, reconcile_now
from prepaid_ledger.services import reconcile, topups
from prepaid_ledger.services.accounts import get_account
from prepaid_ledger.store.database import Database

from tests.ledger.conftest import Ledger, make_settings, running_ledger
from tests.ledger.webhook_helpers import (
    FakeStripe,
    assert_alert,
    attention_alerts,
    checkout_completed,
    serve_fake_stripe,
    stripe_delivery,
)

pytestmark = pytest.mark.usefixtures("socket_enabled")
API_KEY = "sk_test_reconcile"


@pytest.fixture
async def fake_stripe() -> AsyncIterator[tuple[FakeStripe, str]]:
    async with serve_fake_stripe() as served:
        yield served


@contextlib.asynccontextmanager
async def ledger_with_stripe(
    tmp_path: Path, database_url: str | None, base: str, **overrides: Any
) -> AsyncIterator[tuple[Ledger, Database]]:
    """A ledger that knows Stripe's API (background runs off unless asked), plus a database
    handle for starting runs from the test."""
    values: dict[str, Any] = {
        "stripe_api_key": API_KEY,
        "stripe_api_base": base,
        "reconcile_minutes": 0,
    } | overrides
    settings = make_settings(tmp_path, database_url, **values)
    async with running_ledger(settings) as ledger:
        db = Database(settings.database_url)
        try:
            yield ledger, db
        finally:
            await db.close()


async def run(ledger: Ledger, db: Database) -> dict[str, Any]:
    return await reconcile_now(db, ledger.settings)


async def status(db: Database) -> dict[str, Any]:
    return await db.read(lambda s: reconcile.status(s, enabled=True, every_minutes=10))


def paid_event(
    account_ref: str | int | None, amount: int, *, created: int | None = None, **kwargs: Any
) -> dict[str, Any]:
    event = checkout_completed(account_ref, amount, **kwargs)
    if created is not None:
        event["created"] = created
    return event


async def post_stripe(ledger: Ledger, event: dict[str, Any]) -> dict[str, Any]:
    body, headers = stripe_delivery(event)
    status_code, result = await ledger.call(
        "POST", "/webhooks/stripe", data=body, headers=headers, token=None
    )
    assert status_code == 200, result
    return dict(result)


async def orders_of(ledger: Ledger, account_id: int) -> list[dict[str, Any]]:
    listed = await ledger.ok("GET", f"/api/v1/topups?account={account_id}")
    return list(listed["topups"])


async def test_missed_webhook_is_credited_once(
    tmp_path: Path, database_url: str | None, fake_stripe: tuple[FakeStripe, str]
) -> None:
    """Credited by reconciliation; a second run and the late webhook credit nothing more."""
    fake, base = fake_stripe
    async with ledger_with_stripe(tmp_path, database_url, base) as (ledger, db):
        account = await ledger.account()
        missed = paid_event(account["number"], 1250)
        fake.events.append(missed)

        first = await run(ledger, db)
        assert (first["seen"], first["credited"], first["last_error"]) == (1, 1, None)
        assert await ledger.balance(account["id"]) == 1250
        (order,) = await orders_of(ledger, account["id"])
        assert (order["status"], order["provider_payment_id"]) == (
            "succeeded",
            missed["data"]["object"]["id"],
        )
        detail = await ledger.ok("GET", f"/api/v1/topups/{order['id']}")
        assert {t["actor"] for t in detail["timeline"]} == {"reconcile"}

        second = await run(ledger, db)
        assert (second["seen"], second["credited"]) == (1, 0)
        assert await ledger.balance(account["id"]) == 1250

        # Stripe's late delivery of the same event, and another event for the same session.
        late = await post_stripe(ledger, missed)
        assert late["duplicate"] is True
        other = paid_event(
            account["number"],
            1250,
            session_id=missed["data"]["object"]["id"],
            event_type="checkout.session.async_payment_succeeded",
        )
        assert (await post_stripe(ledger, other))["outcome"] == "duplicate_payment"
        assert await ledger.balance(account["id"]) == 1250
        assert len(await orders_of(ledger, account["id"])) == 1
        assert set(fake.events_auth) == {f"Bearer {API_KEY}"}


async def test_webhook_first_then_reconciliation_credits_nothing(
    tmp_path: Path, database_url: str | None, fake_stripe: tuple[FakeStripe, str]
) -> None:
    fake, base = fake_stripe
    async with ledger_with_stripe(tmp_path, database_url, base) as (ledger, db):
        account = await ledger.account()
        delivered = paid_event(account["number"], 700)
        assert (await post_stripe(ledger, delivered))["outcome"] == "credited"
        # Stripe lists that event and a second one (other id) for the same paid session.
        fake.events += [
            delivered,
            paid_event(
                account["number"],
                700,
                session_id=delivered["data"]["object"]["id"],
                event_type="checkout.session.async_payment_succeeded",
            ),
        ]
        result = await run(ledger, db)
        assert (result["seen"], result["credited"], result["last_error"]) == (2, 0, None)
        assert await ledger.balance(account["id"]) == 700
        assert len(await orders_of(ledger, account["id"])) == 1


async def test_concurrent_webhook_and_reconciliation_credit_once(
    tmp_path: Path, database_url: str | None, fake_stripe: tuple[FakeStripe, str]
) -> None:
    fake, base = fake_stripe
    async with ledger_with_stripe(tmp_path, database_url, base) as (ledger, db):
        account = await ledger.account()
        events = [paid_event(account["number"], 100 + i) for i in range(5)]
        fake.events += events
        await asyncio.gather(run(ledger, db), *(post_stripe(ledger, e) for e in events))
        assert await ledger.balance(account["id"]) == sum(100 + i for i in range(5))
        assert len(await orders_of(ledger, account["id"])) == 5


async def test_pagination_is_followed(tmp_path: Path, fake_stripe: tuple[FakeStripe, str]) -> None:
    fake, base = fake_stripe
    fake.events_page_size = 2
    async with ledger_with_stripe(tmp_path, None, base) as (ledger, db):
        account = await ledger.account()
        now = int(time.time())
        fake.events += [
            paid_event(account["number"], 10 * (i + 1), created=now - i) for i in range(5)
        ]
        # Not a paid-checkout event: not asked for, not applied.
        fake.events.append(
            paid_event(account["number"], 999, event_type="checkout.session.expired")
        )
        result = await run(ledger, db)
        assert (result["seen"], result["credited"]) == (5, 5)
        assert await ledger.balance(account["id"]) == 10 + 20 + 30 + 40 + 50
        assert len(fake.event_queries) == 3  # 2 + 2 + 1
        newest_first = sorted(fake.events[:5], key=lambda e: -e["created"])
        afters = [dict(q).get("starting_after") for q in fake.event_queries]
        assert afters == [None, newest_first[1]["id"], newest_first[3]["id"]]
        first = fake.event_queries[0]
        assert sorted(v for k, v in first if k.startswith("types[")) == [
            "checkout.session.async_payment_succeeded",
            "checkout.session.completed",
        ]
        assert dict(first)["limit"] == "100"


async def test_cursor_is_kept_between_runs(
    tmp_path: Path, fake_stripe: tuple[FakeStripe, str]
) -> None:
    """The first run looks back Stripe's 30 days; the next only to the last run less 1 hour."""
    fake, base = fake_stripe
    async with ledger_with_stripe(tmp_path, None, base) as (ledger, db):
        before = datetime.now(UTC)
        await run(ledger, db)
        after = datetime.now(UTC)
    first_gte = int(dict(fake.event_queries[0])["created[gte]"])
    assert int((before - timedelta(days=30)).timestamp()) - 1 <= first_gte
    assert first_gte <= int((after - timedelta(days=30)).timestamp())
    # A restarted ledger on the same database resumes from the stored cursor.
    async with ledger_with_stripe(tmp_path, None, base) as (ledger, db):
        await run(ledger, db)
    second_gte = int(dict(fake.event_queries[1])["created[gte]"])
    assert int((before - timedelta(hours=1)).timestamp()) - 1 <= second_gte
    assert second_gte <= int((after - timedelta(hours=1)).timestamp())


async def test_stripe_unreachable_changes_nothing_and_is_reported(
    tmp_path: Path, fake_stripe: tuple[FakeStripe, str]
) -> None:
    fake, base = fake_stripe
    async with ledger_with_stripe(tmp_path, None, base) as (ledger, db):
        account = await ledger.account()
        succeeded_at = (await run(ledger, db))["last_success_at"]  # sets the cursor
        ran_before = len(fake.event_queries)
        fake.events.append(paid_event(account["number"], 450))
        fake.broken = True
        failed = await run(ledger, db)
        assert failed["credited"] == 0
        assert "Stripe did not answer" in failed["last_error"]
        reported = await status(db)
        assert "Stripe did not answer" in reported["last_error"]
        assert reported["last_success_at"] == succeeded_at
        assert reported["last_run_at"] > succeeded_at
        assert await ledger.balance(account["id"]) == 0
        assert await orders_of(ledger, account["id"]) == []

        fake.broken = False
        recovered = await run(ledger, db)
        assert (recovered["credited"], recovered["last_error"]) == (1, None)
        # The window after a failure is the same as before it (the cursor did not move).
        gtes = {dict(q)["created[gte]"] for q in fake.event_queries[ran_before:]}
        assert len(gtes) == 1
        assert await ledger.balance(account["id"]) == 450
        reported = await status(db)
        assert reported["last_error"] is None
        assert reported["last_success_at"] == reported["last_run_at"]


async def test_unpaid_session_is_not_credited(
    tmp_path: Path, fake_stripe: tuple[FakeStripe, str]
) -> None:
    fake, base = fake_stripe
    async with ledger_with_stripe(tmp_path, None, base) as (ledger, db):
        account = await ledger.account()
        unpaid = paid_event(account["number"], 300, payment_status="unpaid")
        fake.events.append(unpaid)
        result = await run(ledger, db)
        assert (result["seen"], result["credited"]) == (1, 0)
        (order,) = await orders_of(ledger, account["id"])
        assert order["status"] == "processing"
        assert await ledger.balance(account["id"]) == 0
        # When the money arrives later (async_payment_succeeded), it is credited once.
        fake.events.append(
            paid_event(
                account["number"],
                300,
                session_id=unpaid["data"]["object"]["id"],
                event_type="checkout.session.async_payment_succeeded",
            )
        )
        result = await run(ledger, db)
        assert result["credited"] == 1
        assert await ledger.balance(account["id"]) == 300


async def test_unknown_account_needs_attention_with_alert(
    tmp_path: Path, fake_stripe: tuple[FakeStripe, str], caplog: pytest.LogCaptureFixture
) -> None:
    fake, base = fake_stripe
    async with ledger_with_stripe(tmp_path, None, base) as (ledger, db):
        account = await ledger.account()
        number = account["number"]
        typo = number[:-1] + str((int(number[-1]) + 1) % 10)
        start = datetime.now(UTC)
        event = paid_event(typo, 990)
        fake.events.append(event)
        with caplog.at_level(logging.INFO, logger="prepaid_ledger.services.reconcile"):
            result = await run(ledger, db)
        end = datetime.now(UTC)
        assert (result["seen"], result["credited"], result["needs_attention"]) == (1, 0, 1)
        (order,) = (await ledger.ok("GET", "/api/v1/topups?status=needs_attention"))["topups"]
        (alert,) = (await attention_alerts(ledger))[order["id"]]
        assert_alert(
            alert,
            expected={
                "order_id": order["id"],
                "account_id": None,
                "amount_minor": 990,
                "currency": "EUR",
                "account_number": typo,
                "reason": "unknown_account",
                "age_minutes": 0,
            },
            created_between=(start, end),
        )
        assert event["id"] in caplog.text
        # Listed again by the next run: still one order, one alert.
        await run(ledger, db)
        assert len((await attention_alerts(ledger))[order["id"]]) == 1


async def test_credited_by_reconciliation_is_logged(
    tmp_path: Path, fake_stripe: tuple[FakeStripe, str], caplog: pytest.LogCaptureFixture
) -> None:
    fake, base = fake_stripe
    async with ledger_with_stripe(tmp_path, None, base) as (ledger, db):
        account = await ledger.account()
        events = [paid_event(account["number"], 100), paid_event(account["number"], 200)]
        fake.events += events
        with caplog.at_level(logging.INFO, logger="prepaid_ledger.services.reconcile"):
            await run(ledger, db)
            await run(ledger, db)
        lines = [r.getMessage() for r in caplog.records if "credited order" in r.getMessage()]
        assert len(lines) == 2
        for event in events:
            assert sum(event["data"]["object"]["id"] in line for line in lines) == 1


async def backdate(db: Database, order_id: int, minutes: int) -> None:
    """Make an order look created and last touched `minutes` ago."""

    async def work(session: Any) -> None:
        order = await topups.get_order(session, order_id, lock=True)
        order.created_at = order.created_at - timedelta(minutes=minutes)
        order.updated_at = order.updated_at - timedelta(minutes=minutes)

    await db.write(work)


async def test_stuck_orders_are_rechecked_with_stripe(
    tmp_path: Path, fake_stripe: tuple[FakeStripe, str]
) -> None:
    """Past the stuck-order minutes each open order is asked about; what stays open is flagged."""
    fake, base = fake_stripe
    async with ledger_with_stripe(tmp_path, None, base, processing_timeout_s=600) as (
        ledger,
        db,
    ):
        account = await ledger.account()

        async def processing(amount: int) -> tuple[int, dict[str, Any]]:
            event = paid_event(account["number"], amount, payment_status="unpaid")
            result = await post_stripe(ledger, event)
            assert result["outcome"] == "processing"
            await backdate(db, result["order_id"], 20)
            return result["order_id"], event["data"]["object"]

        paid_id, paid_session = await processing(500)
        fake.sessions[paid_session["id"]] = paid_session | {"payment_status": "paid"}
        waiting_id, waiting_session = await processing(600)
        fake.sessions[waiting_session["id"]] = waiting_session  # complete, still unpaid
        unknown_id, _ = await processing(700)  # Stripe does not know this session
        fresh = await post_stripe(
            ledger, paid_event(account["number"], 800, payment_status="unpaid")
        )
        # A checkout the pay page opened, still open and unpaid: no money moved yet.
        open_session = {
            "id": f"cs_test_{uuid.uuid4().hex}",
            "object": "checkout.session",
            "amount_total": 900,
            "currency": "eur",
            "client_reference_id": account["number"],
            "metadata": {},
            "payment_status": "unpaid",
            "status": "open",
        }
        fake.sessions[open_session["id"]] = open_session

        async def open_order(session: Any) -> int:
            acct = await get_account(session, account["id"])
            made = await topups.open_checkout_order(session, acct, open_session["id"], 900, "t")
            return int(made["id"])

        open_id = await db.write(open_order)
        await backdate(db, open_id, 20)

        rechecked, flagged = await recheck_stuck_orders(db, ledger.settings)
        assert (rechecked, flagged) == (3, 2)
        states = {
            i: (await ledger.ok("GET", f"/api/v1/topups/{i}"))["status"]
            for i in (paid_id, waiting_id, unknown_id, fresh["order_id"], open_id)
        }
        assert states == {
            paid_id: "succeeded",
            waiting_id: "needs_attention",
            unknown_id: "needs_attention",
            fresh["order_id"]: "processing",  # not stuck yet
            open_id: "pending",
        }
        assert await ledger.balance(account["id"]) == 500
        alerts = await attention_alerts(ledger)
        assert set(alerts) == {waiting_id, unknown_id}
        for order_id, amount in ((waiting_id, 600), (unknown_id, 700)):
            (alert,) = alerts[order_id]
            assert {k: alert[k] for k in ("account_id", "amount_minor", "reason")} == {
                "account_id": account["id"],
                "amount_minor": amount,
                "reason": "stuck_processing",
            }
            assert alert["age_minutes"] == 20
        # A person's re-check that changes nothing keeps the cause and raises no second alert.
        again = await ledger.ok(
            "POST",
            f"/api/v1/topups/{waiting_id}/actions",
            json={"action": "recheck", "reason": "any news?"},
        )
        assert (again["status"], again["attention_code"]) == ("needs_attention", "stuck_processing")
        assert len((await attention_alerts(ledger))[waiting_id]) == 1
        # The money arrives after all: the flagged order is credited, once.
        late = paid_event(
            account["number"],
            600,
            session_id=waiting_session["id"],
            event_type="checkout.session.async_payment_succeeded",
        )
        assert (await post_stripe(ledger, late))["outcome"] == "credited"
        assert (await post_stripe(ledger, late))["duplicate"] is True
        assert await ledger.balance(account["id"]) == 1100


async def test_stuck_order_without_stripe_key_alerts(tmp_path: Path) -> None:
    """No provider to ask: the watchdog flags the order, and its alert carries the order."""
    settings = make_settings(tmp_path, None, processing_timeout_s=600, watchdog_interval_s=0.1)
    async with running_ledger(settings) as ledger:
        account = await ledger.account()
        start = datetime.now(UTC)
        result = await post_stripe(
            ledger, paid_event(account["number"], 4321, payment_status="unpaid")
        )
        db = Database(settings.database_url)
        try:
            await backdate(db, result["order_id"], 16)
        finally:
            await db.close()
        end = datetime.now(UTC)
        for _ in range(50):
            order = await ledger.ok("GET", f"/api/v1/topups/{result['order_id']}")
            if order["status"] == "needs_attention":
                break
            await asyncio.sleep(0.1)
        assert order["status"] == "needs_attention"
        (alert,) = (await attention_alerts(ledger))[result["order_id"]]
        assert_alert(
            alert,
            expected={
                "order_id": result["order_id"],
                "account_id": account["id"],
                "amount_minor": 4321,
                "currency": "EUR",
                "account_number": account["number"],
                "reason": "stuck_processing",
                "age_minutes": 16,
            },
            created_between=(start - timedelta(minutes=16), end - timedelta(minutes=16)),
        )


async def test_background_task_reconciles(
    tmp_path: Path, fake_stripe: tuple[FakeStripe, str]
) -> None:
    """With reconcile_minutes set, the ledger runs at start and then periodically by itself."""
    fake, base = fake_stripe
    async with ledger_with_stripe(tmp_path, None, base, reconcile_minutes=0.01) as (ledger, db):
        account = await ledger.account()
        fake.events.append(paid_event(account["number"], 321))
        for _ in range(100):
            if await ledger.balance(account["id"]) == 321:
                break
            await asyncio.sleep(0.1)
        assert await ledger.balance(account["id"]) == 321
        reported = await status(db)
        assert reported["last_error"] is None
        assert reported["last_success_at"] is not None
        await asyncio.sleep(1.5)  # several more runs: nothing more
        assert await ledger.balance(account["id"]) == 321


def test_no_key_or_zero_minutes_disables(tmp_path: Path) -> None:
    from prepaid_ledger.api.provider_check import reconcile_enabled  # noqa: PLC0415

    base = make_settings(tmp_path, None)
    assert not reconcile_enabled(base)
    with_key = make_settings(tmp_path, None, stripe_api_key=API_KEY)
    assert reconcile_enabled(with_key)
    assert with_key.reconcile_minutes == 10
    assert not reconcile_enabled(
        make_settings(tmp_path, None, stripe_api_key=API_KEY, reconcile_minutes=0)
    )
