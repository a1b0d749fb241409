"""Accounting events over HTTP on SQLite and PostgreSQL: signed, retried, in order, once.

A real receiving server (tests/ledger/accounting_receiver.py) verifies every delivery with the
``standardwebhooks`` library and the secret the API gave, drops repeated ``webhook-id``s and
records the order it processed events in. Expected values come from the issue and the
Standard Webhooks specification (headers, ``whsec_`` secrets of 24 to 64 bytes, the example
retry schedule, 2xx acknowledges, redirects are failures, 410 disables the endpoint).
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from prepaid_ledger.services import outbox_delivery, topups
from prepaid_ledger.services.outbox_delivery import Claim, Tuning, record_charge_days, send
from prepaid_ledger.store.database import Database
from prepaid_ledger.store.models import OutboxMessage
from prepaid_meter_contract.topups import TopupRequest
from sqlalchemy import func, select

from tests.ledger.accounting_receiver import (
    Event,
    Receiver,
    deliveries,
    log_until,
    register,
    serve_receiver,
)
from tests.ledger.conftest import Ledger, make_settings, running_ledger
from tests.ledger.webhook_helpers import standard_delivery

pytestmark = pytest.mark.usefixtures("socket_enabled")

#: Fast retries for the tests (the real schedule is checked on its own below).
FAST = Tuning(
    schedule_s=(0.15, 0.15, 0.15, 0.15),
    jitter=0.0,
    connect_timeout_s=1.0,
    request_timeout_s=1.0,
    lease_s=4.0,
    poll_s=0.5,
    charge_days_every_s=3600.0,
)


@pytest.fixture
async def fast_ledger(
    tmp_path: Path, database_url: str | None, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Ledger]:
    monkeypatch.setattr(outbox_delivery, "TUNING", FAST)
    async with running_ledger(make_settings(tmp_path, database_url)) as running:
        yield running


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with serve_receiver() as running:
        yield running


def topup_of(amount: int) -> Any:
    return lambda e: e["type"] == "topup.succeeded" and e["data"]["amount_minor"] == amount


async def settled(ledger: Ledger) -> list[dict[str, Any]]:
    """Return the delivery log once nothing in it is pending any more."""
    return await log_until(ledger, lambda log: all(d["status"] != "pending" for d in log))


async def standard_payment(ledger: Ledger, data: dict[str, Any]) -> dict[str, Any]:
    body, headers = standard_delivery(data)
    status, answer = await ledger.call(
        "POST", "/webhooks/standard", data=body, headers=headers, token=None
    )
    assert status == 200, answer
    result: dict[str, Any] = answer
    return result


def test_the_default_schedule_is_standard_webhooks_example() -> None:
    """Immediately, then 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h, 24 h: 75:35:05."""
    schedule = Tuning().schedule_s
    assert len(schedule) + 1 == 10  # attempts
    assert sum(schedule) == 75 * 3600 + 35 * 60 + 5
    assert max(schedule) == 24 * 3600
    assert 15 <= Tuning().request_timeout_s <= 30


async def make_the_changes(
    ledger: Ledger, a: dict[str, Any], b: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Credit, credit, credit (B), adjust, refund, and two payments that need a person."""
    first = await ledger.topup(a["id"], 1000, "a-1")
    await ledger.topup(a["id"], 500, "a-2")
    await ledger.topup(b["id"], 700, "b-1")
    adjustment = await ledger.ok(
        "POST",
        "/api/v1/adjustments",
        json={"account": a["id"], "amount_minor": -200, "reason": "meter reading fee"},
    )
    await ledger.ok(
        "POST",
        f"/api/v1/topups/{first['id']}/actions",
        json={"action": "refund", "amount_minor": 300, "reason": "paid twice"},
    )
    mismatch = await standard_payment(
        ledger,
        {"account": b["number"], "amount_minor": 900, "currency": "USD", "reference": "p-usd"},
    )
    assert mismatch["outcome"] == "needs_attention"
    unknown = await standard_payment(
        ledger, {"account": "999999999", "amount_minor": 100, "currency": "EUR", "reference": "p-x"}
    )
    assert unknown["outcome"] == "needs_attention"
    return first, adjustment


async def test_events_are_signed_retried_in_order_and_processed_once(
    fast_ledger: Ledger, receiver: Receiver
) -> None:
    ledger = fast_ledger

    # A's first event fails until B's first is processed (B does not wait for A), then once more.
    def b_done() -> bool:
        return any(e["data"].get("amount_minor") == 700 for e in receiver.processed.values())

    receiver.answer_with(topup_of(1000), "500", until=b_done)
    adjusted = "adjustment.created"
    receiver.answer_with(lambda e: e["type"] == adjusted, "timeout")  # processed, ack too late
    await register(ledger, receiver, description="books")
    a = await ledger.account(name="A")
    b = await ledger.account(name="B")
    first, adjustment = await make_the_changes(ledger, a, b)

    await receiver.wait_until(lambda: len(receiver.processed) == 7)
    await receiver.wait_until(lambda: receiver.duplicates >= 1)  # the late-acknowledged one
    log = await settled(ledger)
    assert receiver.bad_signatures == 0
    # Exactly once: every event processed once, and they are the ledger's events.
    assert sorted(receiver.order) == sorted(d["message_id"] for d in log)
    assert len(set(receiver.order)) == len(receiver.order) == 7
    # In order per account: as the ledger recorded them (its log is newest first).
    by_account = receiver.per_account()
    for account_id in (a["id"], b["id"]):
        recorded = [d["message_id"] for d in reversed(log) if d["account_id"] == account_id]
        assert by_account[account_id] == recorded
    types_a = [receiver.processed[m]["type"] for m in by_account[a["id"]]]
    amounts_a = [receiver.processed[m]["data"].get("amount_minor") for m in by_account[a["id"]]]
    assert types_a == ["topup.succeeded", "topup.succeeded", "adjustment.created", "topup.refunded"]
    assert amounts_a[:3] == [1000, 500, -200]
    types_b = [receiver.processed[m]["type"] for m in by_account[b["id"]]]
    assert types_b == ["topup.succeeded", "order.needs_attention"]
    [unknown_id] = by_account[None]
    assert receiver.processed[unknown_id]["data"]["account_ref"] == "999999999"

    # A's second top-up waited until the first was acknowledged; B did not wait for A.
    first_id, second_id = by_account[a["id"]][:2]
    first_attempts = receiver.attempts_of(first_id)
    answers = [x.answer for x in first_attempts]
    assert answers[-2:] == ["500", "ok"]
    assert set(answers[:-2]) == {"wait-500"}
    acknowledged = first_attempts[-1].at
    assert min(x.at for x in receiver.attempts_of(second_id)) >= acknowledged
    assert receiver.attempts_of(by_account[b["id"]][0])[0].at < acknowledged

    # The log: delivered, with the attempts it took.
    by_message = {d["message_id"]: d for d in log}
    assert {d["status"] for d in log} == {"delivered"}
    assert by_message[first_id]["attempts"] == len(first_attempts)
    assert by_message[first_id]["last_http_status"] == 204
    assert by_message[first_id]["data"]["order_id"] == first["id"]
    late = receiver.of_type("adjustment.created")[0]
    late_id = next(m for m in receiver.order if receiver.processed[m] is late)
    assert [x.answer for x in receiver.attempts_of(late_id)] == ["timeout", "ok"]
    assert by_message[late_id]["attempts"] == 2

    check_what_the_events_say(receiver, (first_id, first["id"]), late_id, adjustment, a, b)

    await check_the_log_filters(ledger, log, b["id"], by_account[b["id"]])


async def check_the_log_filters(
    ledger: Ledger, log: list[dict[str, Any]], account_id: int, its_events: list[str]
) -> None:
    """The delivery log's filters: account, status, limit (newest first)."""
    only_b = await deliveries(ledger, f"&account={account_id}")
    assert [d["message_id"] for d in only_b] == list(reversed(its_events))
    assert await deliveries(ledger, "&status=failed") == []
    assert len(await deliveries(ledger, "&status=delivered")) == len(log)
    newest = await ledger.ok("GET", "/api/v1/accounting/deliveries?limit=2")
    assert [d["id"] for d in newest["deliveries"]] == [log[0]["id"], log[1]["id"]]


def check_what_the_events_say(
    receiver: Receiver,
    first: tuple[str, int],
    late_id: str,
    adjustment: dict[str, Any],
    a: dict[str, Any],
    b: dict[str, Any],
) -> None:
    """The data of each event type, as docs/accounting-events.md shows it."""
    late = receiver.processed[late_id]
    credited = receiver.processed[first[0]]
    assert credited["data"] | {"credited_at": None} == credited["data"] | {
        "order_id": first[1],
        "account_id": a["id"],
        "account_number": a["number"],
        "amount_minor": 1000,
        "currency": "EUR",
        "currency_exponent": 2,
        "source": "manual",
        "balance_after_minor": 1000,
        "credited_at": None,
    }
    assert isinstance(credited["data"]["receipt_number"], int)
    assert datetime.fromisoformat(credited["timestamp"]).tzinfo is not None
    assert late["data"] | {"created_at": None} == {
        "transaction_id": adjustment["transaction_id"],
        "account_id": a["id"],
        "account_number": a["number"],
        "amount_minor": -200,
        "currency": "EUR",
        "currency_exponent": 2,
        "reason": "meter reading fee",
        "actor": "admin",
        "balance_after_minor": 1300,
        "created_at": None,
    }
    refunded = receiver.of_type("topup.refunded")[0]["data"]
    assert (refunded["refund_minor"], refunded["refunded_minor"], refunded["status"]) == (
        300,
        300,
        "partially_refunded",
    )
    assert refunded["balance_after_minor"] == 1000
    flagged = receiver.processed[receiver.per_account()[b["id"]][1]]["data"]
    assert (flagged["account_id"], flagged["reason"], flagged["currency"]) == (
        b["id"],
        "currency_mismatch",
        "USD",
    )


async def test_a_failed_event_holds_its_account_until_replayed_with_the_same_id(
    fast_ledger: Ledger, receiver: Receiver
) -> None:
    ledger = fast_ledger
    receiver.answer_with(topup_of(1000), *["500"] * 5)  # more than the schedule allows
    await register(ledger, receiver)
    a = await ledger.account(name="A")
    b = await ledger.account(name="B")
    await ledger.topup(a["id"], 1000, "a-1")
    await ledger.topup(a["id"], 500, "a-2")
    await ledger.topup(b["id"], 700, "b-1")

    async def log_of(status: str) -> list[dict[str, Any]]:
        return await deliveries(ledger, f"&status={status}")

    await log_until(ledger, bool, "&status=failed")
    await receiver.wait_until(lambda: len(receiver.processed) == 1)  # B's only
    [failed] = await log_of("failed")
    assert failed["attempts"] == len(FAST.schedule_s) + 1 == 5
    assert failed["last_http_status"] == 500
    assert failed["next_attempt_at"] is None
    await asyncio.sleep(0.5)
    [waiting] = await log_of("pending")
    assert (waiting["account_id"], waiting["attempts"]) == (a["id"], 0)  # never tried
    assert receiver.attempts_of(waiting["message_id"]) == []

    replayed = await ledger.ok("POST", f"/api/v1/accounting/deliveries/{failed['id']}/replay")
    assert replayed["message_id"] == failed["message_id"]
    assert (replayed["status"], replayed["attempts"]) == ("pending", 0)
    await receiver.wait_until(lambda: len(receiver.processed) == 3)
    assert receiver.per_account()[a["id"]] == [failed["message_id"], waiting["message_id"]]
    assert receiver.attempts_of(failed["message_id"])[-1].answer == "ok"

    # Replaying a delivered event sends it again, same id: the receiver drops the repeat. The
    # receiver counts it a moment before the ledger records the answer: wait for the record
    # (replaying a delivery still pending only makes it due, and the attempt under way then
    # delivers it: nothing is sent again; a loaded CI run replayed that early once).
    await log_until(
        ledger, lambda log: any(d["id"] == waiting["id"] for d in log), "&status=delivered"
    )
    await ledger.ok("POST", f"/api/v1/accounting/deliveries/{waiting['id']}/replay")
    await receiver.wait_until(lambda: receiver.duplicates == 1)
    assert len(receiver.processed) == 3
    assert [x.message_id for x in receiver.attempts[-1:]] == [waiting["message_id"]]
    audit = await ledger.ok("GET", "/api/v1/audit")
    actions = [entry["action"] for entry in audit["entries"]]
    assert actions.count("accounting.delivery.replay") == 2


async def test_redirects_are_not_followed_and_410_disables_the_endpoint(
    fast_ledger: Ledger, receiver: Receiver
) -> None:
    ledger = fast_ledger
    receiver.answer_with(topup_of(100), "redirect", "retry-after", "410")
    created = await register(ledger, receiver)
    account = await ledger.account()
    await ledger.topup(account["id"], 100, "t-1")
    # 503 with Retry-After: 1 waits at least a second although the schedule says 0.15 s.
    await receiver.wait_until(lambda: len(receiver.attempts) == 2, within=10)
    [waiting] = await log_until(ledger, lambda log: log[0]["last_http_status"] == 503)
    assert (waiting["status"], waiting["last_error"], waiting["attempts"]) == (
        "pending",
        "HTTP 503",
        2,
    )
    await receiver.wait_until(lambda: len(receiver.attempts) == 3, within=10)
    first, second, third = receiver.attempts
    assert [first.answer, second.answer, third.answer] == ["redirect", "retry-after", "410"]
    assert receiver.redirected_hits == 0  # the 302 was a failed attempt, not followed
    assert third.at - second.at >= 0.95
    await log_until(ledger, lambda log: log[0]["status"] == "failed")
    [endpoint] = (await ledger.ok("GET", "/api/v1/accounting/endpoints"))["endpoints"]
    assert endpoint["id"] == created["endpoint"]["id"]
    assert (endpoint["enabled"], endpoint["disabled_reason"]) == (
        False,
        "the receiver answered 410 Gone",
    )
    await ledger.topup(account["id"], 200, "t-2")
    assert len(await deliveries(ledger)) == 1  # nothing more for a disabled endpoint
    status, refused = await ledger.call(
        "POST", f"/api/v1/accounting/deliveries/{waiting['id']}/replay"
    )
    assert (status, refused["error"]["code"]) == (409, "endpoint_disabled")


async def test_endpoints_see_only_their_types_and_secrets_are_shown_once(
    fast_ledger: Ledger, receiver: Receiver
) -> None:
    ledger = fast_ledger
    created = await register(ledger, receiver, event_types=["adjustment.created"])
    secret = created["secret"]
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 32  # spec: 24 to 64 bytes
    endpoint = created["endpoint"]
    assert endpoint["secret_prefix"] == secret[:10]
    assert endpoint["event_types"] == ["adjustment.created"]
    async with serve_receiver() as everything:
        other = await register(ledger, everything)
        assert other["secret"] != secret
        account = await ledger.account()
        await ledger.topup(account["id"], 100, "t-1")
        await ledger.ok(
            "POST",
            "/api/v1/adjustments",
            json={"account": account["id"], "amount_minor": 5, "reason": "goodwill"},
        )
        await everything.wait_until(lambda: len(everything.processed) == 2)
        await receiver.wait_until(lambda: len(receiver.processed) == 1)
        assert [e["type"] for e in receiver.processed.values()] == ["adjustment.created"]
        assert everything.bad_signatures == receiver.bad_signatures == 0
    status, listed = await ledger.call("GET", "/api/v1/accounting/endpoints")
    assert status == 200
    assert secret not in json.dumps(listed)
    assert all("secret" not in e for e in listed["endpoints"])
    audit = await ledger.ok("GET", "/api/v1/audit")
    assert secret not in json.dumps(audit)
    assert "accounting.endpoint.create" in [e["action"] for e in audit["entries"]]


async def test_a_change_that_rolls_back_records_no_event(
    fast_ledger: Ledger, receiver: Receiver
) -> None:
    ledger = fast_ledger
    await register(ledger, receiver)
    account = await ledger.account()
    db = Database(ledger.settings.database_url)

    async def credit_then_fail(session: Any) -> None:
        request = TopupRequest(account=account["id"], amount_minor=100)
        await topups.manual_topup(session, request, "test", 10**6)
        raise RuntimeError("the rest of the transaction failed")

    async def messages(session: Any) -> int:
        return int(await session.scalar(select(func.count(OutboxMessage.id))))

    try:
        with pytest.raises(RuntimeError):
            await db.write(credit_then_fail)
        assert await db.read(messages) == 0
        # A batch whose second item is refused: one event, for the credited item only.
        closed = await ledger.account(name="Closed")
        await ledger.ok(
            "POST", f"/api/v1/accounts/{closed['id']}/close", json={"reason": "moved out"}
        )
        results = await ledger.ok(
            "POST",
            "/api/v1/topups/batch",
            json={
                "items": [
                    {"account": account["id"], "amount_minor": 300},
                    {"account": closed["id"], "amount_minor": 400},
                ]
            },
            headers={"Idempotency-Key": "batch-1"},
        )
        assert [r["ok"] for r in results["results"]] == [True, False]
        await receiver.wait_until(lambda: len(receiver.processed) == 1)
        await asyncio.sleep(0.3)
        assert [e["data"]["amount_minor"] for e in receiver.processed.values()] == [300]
        assert await db.read(messages) == 1
    finally:
        await db.close()


async def test_charge_posted_once_per_account_and_ended_day(
    fast_ledger: Ledger, receiver: Receiver
) -> None:
    ledger = fast_ledger
    await register(ledger, receiver, event_types=["charge.posted"])
    tariff = await ledger.tariff(price="0.25", standing_charge_minor_per_day=0)
    busy = await ledger.account(name="Busy", timezone="Europe/Berlin")
    quiet = await ledger.account(name="Quiet", timezone="Asia/Shanghai")
    meter = await ledger.meter(busy["id"], tariff["id"])
    now = datetime.now(UTC)
    readings = [
        {"meter_id": meter["id"], "value": "100", "at": (now - timedelta(hours=3)).isoformat()},
        {"meter_id": meter["id"], "value": "104", "at": (now - timedelta(hours=1)).isoformat()},
    ]
    await ledger.ok("POST", "/api/v1/readings", json={"readings": readings[:1]})
    await ledger.ok("POST", "/api/v1/readings", json={"readings": readings[1:]})
    assert await ledger.balance(busy["id"]) == -100

    def tomorrow_in(zone: str) -> tuple[date, datetime]:
        local = now.astimezone(ZoneInfo(zone))
        midnight = datetime.combine(local.date() + timedelta(days=1), datetime.min.time())
        return local.date(), midnight.replace(tzinfo=ZoneInfo(zone)).astimezone(UTC)

    busy_day, busy_ends = tomorrow_in("Europe/Berlin")
    quiet_day, quiet_ends = tomorrow_in("Asia/Shanghai")
    dbs = [Database(ledger.settings.database_url) for _ in range(2)]
    try:
        # Before a day ended (and its grace passed) nothing is recorded.
        assert await record_charge_days(dbs[0], min(busy_ends, quiet_ends)) == 0
        later = max(busy_ends, quiet_ends) + timedelta(minutes=6)
        # Two workers at once (on PostgreSQL really in parallel): each day once.
        counts = await asyncio.gather(*(record_charge_days(db, later) for db in dbs))
        assert sum(counts) == 2
        assert await record_charge_days(dbs[1], later) == 0  # after a restart: nothing again
    finally:
        for db in dbs:
            await db.close()
    await receiver.wait_until(lambda: len(receiver.processed) == 2)
    posted: dict[int, Event] = {e["data"]["account_id"]: e for e in receiver.processed.values()}
    charged = posted[busy["id"]]["data"]
    assert charged | {"lines": None, "starts_at": None, "ends_at": None} == {
        "account_id": busy["id"],
        "account_number": busy["number"],
        "currency": "EUR",
        "currency_exponent": 2,
        "timezone": "Europe/Berlin",
        "day": busy_day.isoformat(),
        "starts_at": None,
        "ends_at": None,
        "amount_minor": 100,
        "consumption_minor": 100,
        "standing_minor": 0,
        "transactions": 1,
        "lines": None,
    }
    assert sum(line["amount_minor"] for line in charged["lines"]) == 100
    assert sum(Decimal(line["quantity"]) for line in charged["lines"]) == 4
    assert all(line["band"] != "standing" for line in charged["lines"])
    assert datetime.fromisoformat(charged["ends_at"]) == busy_ends
    assert datetime.fromisoformat(charged["ends_at"]) - datetime.fromisoformat(
        charged["starts_at"]
    ) in {timedelta(hours=23), timedelta(hours=24), timedelta(hours=25)}
    silent = posted[quiet["id"]]["data"]
    assert (silent["day"], silent["amount_minor"], silent["lines"]) == (
        quiet_day.isoformat(),
        0,
        [],
    )


async def test_bad_input_is_refused_and_changes_nothing(ledger: Ledger) -> None:
    path = "/api/v1/accounting/endpoints"
    good = "https://books.example.com/hooks"
    refused: list[tuple[Any, str, str]] = [
        ({"url": "ftp://books.example.com/x"}, "invalid_url", "url"),
        ({"url": "javascript:alert(1)"}, "invalid_url", "url"),
        ({"url": "http://"}, "invalid_url", "url"),
        ({"url": "/relative/path"}, "invalid_url", "url"),
        ({"url": "https://user:pw@books.example.com/x"}, "invalid_url", "url"),
        ({"url": "https://books.example.com/x#frag"}, "invalid_url", "url"),
        ({"url": "https://books.example.com:99999/x"}, "invalid_url", "url"),
        ({"url": "https://books.example.com/a b"}, "invalid_url", "url"),
        ({"url": "https://bücher.example.com/"}, "invalid_url", "url"),
        ({"url": "https://books.example.com/" + "a" * 3000}, "invalid_url", "url"),
        ({"url": 42}, "invalid_url", "url"),
        ({}, "invalid_field", "url"),
        ({"url": good, "event_types": ["topup.succeeded", "nope"]}, "unknown_event_type", ""),
        ({"url": good, "event_types": []}, "invalid_field", "event_types"),
        ({"url": good, "event_types": "topup.succeeded"}, "invalid_field", "event_types"),
        ({"url": good, "event_types": ["charge.posted"] * 2}, "invalid_field", "event_types"),
        ({"url": good, "description": "x" * 201}, "invalid_field", "description"),
        ([good], "invalid_field", ""),
    ]
    for body, code, field in refused:
        status, answer = await ledger.call("POST", path, json=body)
        assert status == 422, (body, answer)
        assert answer["error"]["code"] == code, (body, answer)
        if field:
            assert answer["error"]["field"] == field
            assert answer["error"]["message"].startswith(field)
    status, answer = await ledger.call("POST", path, json={"url": good, "event_types": ["x.y"]})
    assert "topup.succeeded" in answer["error"]["message"]  # names what is known
    status, _ = await ledger.call("POST", path, data="{not json", headers=_json)
    assert status == 400
    huge = json.dumps({"url": good, "description": "x" * (5 * 1024 * 1024)})
    status, answer = await ledger.call("POST", path, data=huge, headers=_json)
    assert status == 413
    assert (await ledger.ok("GET", path))["endpoints"] == []

    # The other routes' bad input.
    for query in ("status=bogus", "limit=0", "endpoint=abc", "account=-1", "limit=1001"):
        status, answer = await ledger.call("GET", f"/api/v1/accounting/deliveries?{query}")
        assert status == 422, (query, answer)
    for route in ("/api/v1/accounting/deliveries/9/replay", f"{path}/9/disable"):
        status, answer = await ledger.call("POST", route, json={})
        assert status == 404, answer
    status, answer = await ledger.call("POST", f"{path}/abc/disable", json={})
    assert status == 422
    audit = await ledger.ok("GET", "/api/v1/audit")
    assert not [e for e in audit["entries"] if e["action"].startswith("accounting.")]

    # Admin only.
    integration = await ledger.ok("POST", "/api/v1/tokens", json={"scope": "integration"})
    status, _ = await ledger.call("POST", path, json={"url": good}, token=integration["token"])
    assert status == 403
    status, _ = await ledger.call("GET", path, token=integration["token"])
    assert status == 403

    # Disable once; at most MAX enabled endpoints.
    created = await ledger.ok("POST", path, json={"url": good})
    endpoint_id = created["endpoint"]["id"]
    off = await ledger.ok("POST", f"{path}/{endpoint_id}/disable", json={"reason": "new books"})
    assert (off["enabled"], off["disabled_reason"]) == (False, "new books")
    assert off["disabled_at"] is not None
    status, answer = await ledger.call("POST", f"{path}/{endpoint_id}/disable", json={})
    assert (status, answer["error"]["code"]) == (409, "already_disabled")
    for _ in range(20):
        await ledger.ok("POST", path, json={"url": good})
    status, answer = await ledger.call("POST", path, json={"url": good})
    assert (status, answer["error"]["code"]) == (409, "too_many_endpoints")
    assert len((await ledger.ok("GET", path))["endpoints"]) == 21


_json = {"Content-Type": "application/json"}


async def test_only_http_urls_are_ever_sent_to() -> None:
    """Defence in depth: a stored URL of another scheme fails at once and is never fetched."""
    for url in ("file:///etc/passwd", "ftp://example.com/x", "gopher://x/", "http:///nohost"):
        held = Claim(
            delivery_id=1,
            token="t",
            url=url,
            secret="whsec_" + base64.b64encode(b"k" * 32).decode(),
            message_id="msg_1",
            body="{}",
        )
        started = time.monotonic()
        outcome = await send(None, held, FAST)  # type: ignore[arg-type]  # never used
        assert outcome.permanent, url
        assert outcome.error is not None
        assert "http" in outcome.error
        assert time.monotonic() - started < 0.5


async def test_a_redirect_is_a_failed_attempt(receiver: Receiver) -> None:
    receiver.secret = "whsec_" + base64.b64encode(b"r" * 32).decode()
    receiver.answer_with(lambda _e: True, "redirect")
    held = Claim(
        delivery_id=1,
        token="t",
        url=receiver.url,
        secret=receiver.secret,
        message_id="msg_redirect",
        body=json.dumps({"type": "topup.succeeded", "timestamp": "", "data": {}}),
    )
    async with aiohttp.ClientSession() as http:
        outcome = await send(http, held, FAST)
    assert (outcome.status, outcome.delivered, outcome.permanent) == (302, False, False)
    assert outcome.error is not None
    assert "redirects are not followed" in outcome.error
    assert receiver.redirected_hits == 0
    assert [a.answer for a in receiver.attempts] == ["redirect"]
