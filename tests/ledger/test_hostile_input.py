"""A hostile client gets a 4xx with a message, never a 500, and changes nothing.

Expected behaviour comes from the security review's findings (issue 20): signed deliveries of
the wrong JSON shape, JSON nested 100,000 deep, invalid UTF-8, unlimited rejection rows and
unlimited event streams per token.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import standardwebhooks
import stripe

from tests.ledger.conftest import (
    ADMIN_TOKEN,
    STANDARD_SECRET,
    STRIPE_SECRET,
    Ledger,
    make_settings,
    running_ledger,
)

pytestmark = pytest.mark.usefixtures("socket_enabled")
DEEP = "[" * 100_000 + "]" * 100_000
WRONG_SHAPES = [
    "[1,2,3]",
    '"a string"',
    "42",
    "null",
    DEEP,
    '{"id": "evt_1", "type": ["checkout.session.completed"]}',
    '{"id": "evt_2", "type": "checkout.session.completed", "data": "x"}',
    '{"id": "evt_3", "type": "checkout.session.completed", "data": {"object": [1]}}',
    '{"id": {"a": 1}, "type": "checkout.session.completed", "data": {"object": {}}}',
    '{"id": "evt_4", "type": "checkout.session.completed", "data": {"object": '
    + "[" * 50_000
    + "]" * 50_000
    + "}}",
]


def _signed_stripe(body: str) -> dict[str, str]:
    header = stripe.WebhookSignature.generate_signature_header(
        body, STRIPE_SECRET, timestamp=int(time.time())
    )
    return {"Stripe-Signature": header, "Content-Type": "application/json"}


def _signed_standard(body: str, msg_id: str) -> dict[str, str]:
    from datetime import UTC, datetime  # noqa: PLC0415

    now = datetime.now(UTC)
    signature = standardwebhooks.Webhook(STANDARD_SECRET).sign(msg_id, now, body)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature,
        "Content-Type": "application/json",
    }


async def _orders(ledger: Ledger) -> list[Any]:
    items = (await ledger.ok("GET", "/api/v1/topups"))["topups"]
    assert isinstance(items, list)
    return items


@pytest.mark.parametrize("body", WRONG_SHAPES, ids=lambda b: b[:24])
async def test_signed_stripe_delivery_of_the_wrong_shape_is_a_4xx(
    sqlite_ledger: Ledger, body: str
) -> None:
    """Correctly signed, valid JSON, wrong shape: 4xx with a message; no order appears."""
    status, answer = await sqlite_ledger.call(
        "POST", "/webhooks/stripe", data=body, headers=_signed_stripe(body), token=None
    )
    assert 400 <= status < 500, (status, answer)
    assert isinstance(answer, dict)
    assert answer["error"]["message"]
    assert await _orders(sqlite_ledger) == []


@pytest.mark.parametrize("body", WRONG_SHAPES[:7], ids=lambda b: b[:24])
async def test_signed_standard_delivery_of_the_wrong_shape_is_a_4xx(
    sqlite_ledger: Ledger, body: str
) -> None:
    """Not an object, nested too deep, or no string type and data object: 4xx, nothing made."""
    status, answer = await sqlite_ledger.call(
        "POST",
        "/webhooks/standard",
        data=body,
        headers=_signed_standard(body, f"msg_{abs(hash(body))}"),
        token=None,
    )
    assert 400 <= status < 500, (status, answer)
    assert isinstance(answer, dict)
    assert answer["error"]["message"]
    assert await _orders(sqlite_ledger) == []


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/v1/accounts", DEEP),
        ("/api/v1/accounts", '{"name": ' + DEEP + "}"),
        ("/api/v1/tariffs", '{"bands": ' + "[" * 5000 + "]" * 5000 + "}"),
        ("/api/v1/topups", '{"account": ' + "{" + '"a":{' * 20_000 + "}" * 20_001 + "}"),
        ("/api/v1/accounts", b'{"name": "\xff\xfe"}'),
    ],
    ids=["deep-array", "deep-value", "deep-5000", "deep-objects", "bad-utf8"],
)
async def test_deep_or_undecodable_json_is_a_400(
    sqlite_ledger: Ledger, path: str, body: str | bytes
) -> None:
    status, answer = await sqlite_ledger.call(
        "POST",
        path,
        data=body,
        headers={"Content-Type": "application/json", "Idempotency-Key": "deep-1"},
    )
    assert status == 400, (status, answer)
    assert answer["error"]["code"] in {"invalid_json", "too_deep"}
    assert (await sqlite_ledger.ok("GET", "/api/v1/accounts"))["accounts"] == []


async def test_ordinary_nesting_still_works(sqlite_ledger: Ledger) -> None:
    """The depth limit leaves every real request alone (a tariff with bands is 3 deep)."""
    tariff = await sqlite_ledger.tariff(
        kind="tiered",
        price=None,
        period="month",
        bands=[{"up_to": "100", "price": "0.10"}, {"up_to": None, "price": "0.20"}],
    )
    assert tariff["id"] > 0


async def _bad_signature(ledger: Ledger, n: int) -> int:
    body = json.dumps({"id": f"evt_bad_{n}", "type": "checkout.session.completed"})
    status, _ = await ledger.call(
        "POST",
        "/webhooks/stripe",
        data=body,
        headers={"Stripe-Signature": f"t={int(time.time())},v1={'0' * 64}"},
        token=None,
    )
    return status


async def test_bad_signatures_cannot_grow_the_database(tmp_path: Path) -> None:
    """500 forged deliveries: each is refused, but the rejection log stays bounded."""
    settings = make_settings(tmp_path, None, webhook_rejections_kept=50)
    async with running_ledger(settings) as ledger:
        statuses = [await _bad_signature(ledger, n) for n in range(500)]
        assert set(statuses) == {400}
        items = (await ledger.ok("GET", "/api/v1/webhook-rejections?limit=1000"))["rejections"]
        assert 1 <= len(items) <= 50
        # Recorded rows are the latest ones; a long reason is cut, not stored whole.
        assert all(len(item["reason"]) <= 500 for item in items)


async def test_rejections_are_recorded_at_a_bounded_rate(tmp_path: Path) -> None:
    """A burst is recorded up to the per-minute rate; the rest is only counted in the log."""
    settings = make_settings(tmp_path, None, webhook_rejections_per_minute=10)
    async with running_ledger(settings) as ledger:
        for n in range(40):
            assert await _bad_signature(ledger, n) == 400
        items = (await ledger.ok("GET", "/api/v1/webhook-rejections?limit=1000"))["rejections"]
        assert len(items) == 10


async def _open_stream(ledger: Ledger, token: str) -> tuple[int, aiohttp.ClientResponse]:
    response = await ledger.http.get(
        ledger.base_url + "/api/v1/events",
        headers={"Authorization": f"Bearer {token}"},
        timeout=aiohttp.ClientTimeout(total=None, sock_read=5),
    )
    if response.status == 200:
        await response.content.readuntil(b"stream.hello")
    return response.status, response


async def test_event_streams_per_token_are_capped(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, None, max_streams_per_token=3)
    async with running_ledger(settings) as ledger:
        token = (await ledger.ok("POST", "/api/v1/tokens", json={"scope": "integration"}))["token"]
        opened = [await _open_stream(ledger, token) for _ in range(3)]
        assert [status for status, _ in opened] == [200, 200, 200]
        status, extra = await _open_stream(ledger, token)
        assert status == 429
        assert (await extra.json())["error"]["code"] == "too_many_streams"
        assert int(extra.headers["Retry-After"]) > 0
        extra.release()
        # Another token (the admin's) is not affected by this token's streams.
        admin_status, admin_stream = await _open_stream(ledger, ADMIN_TOKEN)
        assert admin_status == 200
        admin_stream.close()
        # A closed stream frees its place.
        opened[0][1].close()
        for _ in range(50):
            status, again = await _open_stream(ledger, token)
            if status == 200:
                break
            again.release()
            await asyncio.sleep(0.1)
        assert status == 200
        again.close()
        for _, response in opened[1:]:
            response.close()
