"""The typed ``LedgerClient`` against a small aiohttp server on 127.0.0.1.

What the server answers is shaped as docs/ledger-api.md describes the ledger: every error is
``{"error": {"code", "message", "field"?}}``; 401 is a bad token; a 4xx is a refusal whose
``field`` names the value at fault; a 5xx keeps the ledger's message ("Stripe did not
answer"); the event stream is Server-Sent Events (``retry``, ``event: stream.hello``, frames
with ``id``/``event``/``data``, a comment every 15 s when idle). The client's own docstrings
say what each answer becomes: 401 ``LedgerAuthError``, another 4xx with the error body
``LedgerRequestError``, anything else or a body of the wrong shape ``LedgerConnectionError``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from prepaid_meter_contract.client import LedgerClient
from prepaid_meter_contract.errors import (
    LedgerAuthError,
    LedgerConnectionError,
    LedgerRequestError,
)
from prepaid_meter_contract.events import AccountUpdated, StreamEvent, StreamHello, UnknownEvent
from prepaid_meter_contract.readings import Reading
from prepaid_meter_contract.resources import Supply
from prepaid_meter_contract.vocabulary import AccountStatus, SupplyReason

pytestmark = pytest.mark.usefixtures("socket_enabled")

TOKEN = "test-token"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Serve = Callable[..., Awaitable[LedgerClient]]

ACCOUNT: dict[str, Any] = {
    "id": 3,
    "number": "100000011",
    "name": "Flat 3",
    "currency": "EUR",
    "currency_exponent": 2,
    "timezone": "Europe/Berlin",
    "status": "open",
    "balance_minor": 1250,
    "emergency_credit_minor": 500,
    "emergency_credit_remaining_minor": 500,
    "debt_minor": 0,
    "protected": False,
    "low_balance_minor": [500, 200],
    "low_balance_level": 0,
    "friendly_hours": {},
    "grace_minutes": 60,
    "reconnect_margin_minor": 0,
    "supply": {"allowed": True, "reason": "credit", "changes_at": None},
    "created_at": "2026-01-01T00:00:00+00:00",
    "closed_at": None,
    "days_left": "12.5",
}


class Recorder:
    """What the server was asked."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []

    async def note(self, request: web.Request) -> None:
        body = await request.read()
        self.requests.append((request.method, request.path, dict(request.headers), body))


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
async def serve(recorder: Recorder) -> AsyncIterator[Serve]:
    """Start a server with the given routes; return a client bound to it."""
    servers: list[TestServer] = []
    async with aiohttp.ClientSession() as session:

        async def start(*routes: web.RouteDef) -> LedgerClient:
            app = web.Application()
            app.add_routes(routes)
            server = TestServer(app, host="127.0.0.1")
            await server.start_server()
            servers.append(server)
            return LedgerClient(session, str(server.make_url("/")), TOKEN)

        yield start
        for server in servers:
            await server.close()


def answer(
    recorder: Recorder, status: int, body: object, content_type: str = "application/json"
) -> Handler:
    """A handler that records the request and answers with a fixed status and body."""
    text = body if isinstance(body, str) else json.dumps(body)

    async def handle(request: web.Request) -> web.StreamResponse:
        await recorder.note(request)
        return web.Response(status=status, text=text, content_type=content_type)

    return handle


def error(code: str, message: str, field: str | None = None) -> dict[str, Any]:
    detail = {"code": code, "message": message} | ({"field": field} if field else {})
    return {"error": detail}


# --------------------------------------------------------------------------- requests


async def test_readings_go_out_as_text_with_the_token(serve: Serve, recorder: Recorder) -> None:
    client = await serve(
        web.post("/api/v1/readings", answer(recorder, 200, {"received": 1, "meters": []}))
    )
    reading = Reading(meter_id=1, value=Decimal("12.50"), at=datetime(2026, 3, 1, 11, tzinfo=UTC))
    result = await client.async_post_readings([reading])
    assert (result.received, result.meters) == (1, [])
    [(method, path, headers, body)] = recorder.requests
    assert (method, path) == ("POST", "/api/v1/readings")
    assert headers["Authorization"] == f"Bearer {TOKEN}"
    assert json.loads(body) == {
        "readings": [{"meter_id": 1, "value": "12.50", "at": "2026-03-01T11:00:00+00:00"}]
    }


async def test_a_good_answer_is_typed(serve: Serve, recorder: Recorder) -> None:
    client = await serve(web.get("/api/v1/accounts/3", answer(recorder, 200, ACCOUNT)))
    account = await client.async_get_account(3)
    assert (account.id, account.balance_minor, account.status) == (3, 1250, AccountStatus.OPEN)
    assert account.days_left == Decimal("12.5")
    assert account.supply == Supply(allowed=True, reason=SupplyReason.CREDIT)


async def test_401_is_an_auth_error(serve: Serve, recorder: Recorder) -> None:
    client = await serve(
        web.get("/api/v1/accounts", answer(recorder, 401, error("unauthorized", "bad token")))
    )
    with pytest.raises(LedgerAuthError):
        await client.async_accounts()


async def test_422_keeps_the_ledger_s_code_message_and_field(
    serve: Serve, recorder: Recorder
) -> None:
    message = "readings[3].value must not be negative; got '-5'"
    client = await serve(
        web.post(
            "/api/v1/readings",
            answer(recorder, 422, error("negative_decimal", message, "readings[3].value")),
        )
    )
    reading = Reading(meter_id=1, value=Decimal(1), at=datetime(2026, 3, 1, tzinfo=UTC))
    with pytest.raises(LedgerRequestError) as caught:
        await client.async_post_readings([reading])
    err = caught.value
    assert (err.status, err.code, err.field) == (422, "negative_decimal", "readings[3].value")
    assert str(err) == message
    assert err.item_index("readings") == 3
    assert len(recorder.requests) == 1  # a refusal is not sent again


async def test_409_without_field(serve: Serve, recorder: Recorder) -> None:
    client = await serve(
        web.post(
            "/api/v1/topups",
            answer(recorder, 409, error("duplicate_reference", "reference r1 is order 5")),
        )
    )
    with pytest.raises(LedgerRequestError) as caught:
        await client.async_top_up(3, 1000, "r1", "key-1")
    assert (caught.value.status, caught.value.code, caught.value.field) == (
        409,
        "duplicate_reference",
        None,
    )
    assert str(caught.value) == "reference r1 is order 5"
    assert recorder.requests[0][2]["Idempotency-Key"] == "key-1"


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_5xx_is_a_connection_error_keeping_the_message(
    serve: Serve, recorder: Recorder, status: int
) -> None:
    client = await serve(
        web.post(
            "/api/v1/topups/17/actions",
            answer(recorder, status, error("provider_unavailable", "Stripe did not answer")),
        )
    )
    with pytest.raises(LedgerConnectionError) as caught:
        await client.async_recheck_top_up(17, "customer called")
    assert "Stripe did not answer" in str(caught.value)
    assert str(status) in str(caught.value)


@pytest.mark.parametrize(
    ("status", "body", "content_type"),
    [
        (500, "<html>Internal Server Error</html>", "text/html"),
        (502, "Bad Gateway", "text/plain"),
        (400, {"detail": "not the ledger's error body"}, "application/json"),
        (404, {"error": "flat string"}, "application/json"),
        (422, [], "application/json"),
    ],
)
async def test_an_error_that_is_not_the_ledger_s_is_a_connection_error(
    serve: Serve, recorder: Recorder, status: int, body: object, content_type: str
) -> None:
    client = await serve(web.get("/api/v1/accounts", answer(recorder, status, body, content_type)))
    with pytest.raises(LedgerConnectionError):
        await client.async_accounts()


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ({"accounts": [{"id": "x"}]}, "application/json"),
        ({"accounts": [ACCOUNT | {"balance_minor": 1250.5}]}, "application/json"),
        ({"accounts": [ACCOUNT | {"days_left": 12.5}]}, "application/json"),
        ({"accounts": [ACCOUNT | {"created_at": "2026-01-01T00:00:00"}]}, "application/json"),
        ({"accounts": "none"}, "application/json"),
        ({"items": []}, "application/json"),
        ([ACCOUNT], "application/json"),
        ("null", "application/json"),
        ("<html>router login</html>", "text/html"),
    ],
)
async def test_200_of_the_wrong_shape_is_a_connection_error(
    serve: Serve, recorder: Recorder, body: object, content_type: str
) -> None:
    client = await serve(web.get("/api/v1/accounts", answer(recorder, 200, body, content_type)))
    with pytest.raises(LedgerConnectionError):
        await client.async_accounts()


async def test_unreachable_ledger_is_a_connection_error(serve: Serve) -> None:
    client = await serve()  # nothing routed: every path is 404 text
    with pytest.raises(LedgerConnectionError):
        await client.async_accounts()


# --------------------------------------------------------------------------- the event stream


ACCOUNT_EVENT: dict[str, Any] = {
    "id": 42,
    "at": "2026-03-01T10:00:00+00:00",
    "account_id": 3,
    "balance_minor": 1250,
    "emergency_credit_remaining_minor": 500,
    "debt_minor": 0,
    "low_balance_level": 0,
    "currency": "EUR",
    "supply": {"allowed": True, "reason": "credit", "changes_at": None},
}


def stream(recorder: Recorder, chunks: list[bytes], status: int = 200) -> Handler:
    """Serve an event stream in the given chunks, then close it."""

    async def handle(request: web.Request) -> web.StreamResponse:
        await recorder.note(request)
        if status != 200:
            return web.json_response(error("x", "no stream"), status=status)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for chunk in chunks:
            await response.write(chunk)
            await asyncio.sleep(0)
        await response.write_eof()
        return response

    return handle


async def _follow(client: LedgerClient, after: str = "latest") -> list[StreamEvent]:
    async with asyncio.timeout(10):
        return [event async for event in client.events(after)]


async def _follow_into(client: LedgerClient, seen: list[StreamEvent]) -> None:
    async with asyncio.timeout(10):
        async for event in client.events("latest"):
            seen.append(event)  # noqa: PERF401 - the events before an error are kept


def _frame(event_id: int, event_type: str, data: dict[str, Any]) -> bytes:
    return f"id: {event_id}\nevent: {event_type}\ndata: {json.dumps(data)}\n\n".encode()


LEDGER_STREAM = [
    b"retry: 2000\n\n",
    b'event: stream.hello\ndata: {"last_event_id": 41}\n\n',
    _frame(42, "account.updated", ACCOUNT_EVENT),
    b": keepalive\n\n",
    _frame(43, "meter.renamed", {"id": 43, "at": "2026-03-01T10:01:00+00:00", "meter_id": 2}),
    _frame(44, "alert", {"id": 44, "kind": "credit_expiring", "account_id": 3}),
]
EXPECTED = [
    StreamHello(last_event_id=41),
    AccountUpdated(
        id=42,
        at=datetime(2026, 3, 1, 10, tzinfo=UTC),
        account_id=3,
        balance_minor=1250,
        emergency_credit_remaining_minor=500,
        debt_minor=0,
        low_balance_level=0,
        currency="EUR",
        supply=Supply(allowed=True, reason=SupplyReason.CREDIT, changes_at=None),
    ),
    UnknownEvent(type="meter.renamed", id=43),
    UnknownEvent(type="alert:credit_expiring", id=44),
]


async def test_events_yields_typed_events_until_the_server_closes(
    serve: Serve, recorder: Recorder
) -> None:
    client = await serve(web.get("/api/v1/events", stream(recorder, LEDGER_STREAM)))
    assert await _follow(client, "latest") == EXPECTED
    [(_, _, headers, _)] = recorder.requests
    assert headers["Last-Event-ID"] == "latest"
    assert headers["Authorization"] == f"Bearer {TOKEN}"


async def test_events_split_across_reads_and_crlf(serve: Serve, recorder: Recorder) -> None:
    """Frames cut at arbitrary bytes, with CRLF line ends, decode to the same events."""
    whole = b"".join(LEDGER_STREAM).replace(b"\n", b"\r\n")
    chunks = [whole[i : i + 7] for i in range(0, len(whole), 7)]
    client = await serve(web.get("/api/v1/events", stream(recorder, chunks)))
    assert await _follow(client, "41") == EXPECTED
    assert recorder.requests[0][2]["Last-Event-ID"] == "41"


async def test_events_drops_an_unterminated_last_event(serve: Serve, recorder: Recorder) -> None:
    """The end of the stream does not dispatch an event that lacks its blank line."""
    chunks = [*LEDGER_STREAM[:2], _frame(42, "account.updated", ACCOUNT_EVENT)[:-1]]
    client = await serve(web.get("/api/v1/events", stream(recorder, chunks)))
    assert await _follow(client) == [StreamHello(last_event_id=41)]


async def test_events_401_is_an_auth_error(serve: Serve, recorder: Recorder) -> None:
    client = await serve(web.get("/api/v1/events", stream(recorder, [], status=401)))
    with pytest.raises(LedgerAuthError):
        await _follow(client)


@pytest.mark.parametrize("status", [429, 500])
async def test_events_other_status_is_a_connection_error(
    serve: Serve, recorder: Recorder, status: int
) -> None:
    client = await serve(web.get("/api/v1/events", stream(recorder, [], status=status)))
    with pytest.raises(LedgerConnectionError):
        await _follow(client)


async def test_events_malformed_known_event_is_a_connection_error(
    serve: Serve, recorder: Recorder
) -> None:
    chunks = [
        LEDGER_STREAM[1],
        _frame(42, "account.updated", {"id": 42, "account_id": 3}),
    ]
    client = await serve(web.get("/api/v1/events", stream(recorder, chunks)))
    seen: list[StreamEvent] = []
    with pytest.raises(LedgerConnectionError):
        await _follow_into(client, seen)
    assert seen == [StreamHello(last_event_id=41)]  # what came before the bad event arrived


async def test_events_not_json_is_a_connection_error(serve: Serve, recorder: Recorder) -> None:
    chunks = [b"event: stream.hello\ndata: <html>\n\n"]
    client = await serve(web.get("/api/v1/events", stream(recorder, chunks)))
    with pytest.raises(LedgerConnectionError):
        await _follow(client)


# ------------------------------------------------------------------- the standard's decoding


async def test_events_leading_bom_is_ignored(serve: Serve, recorder: Recorder) -> None:
    chunks = [b"\xef\xbb\xbf" + LEDGER_STREAM[1]]
    client = await serve(web.get("/api/v1/events", stream(recorder, chunks)))
    assert await _follow(client) == [StreamHello(last_event_id=41)]


async def test_events_cr_line_ends(serve: Serve, recorder: Recorder) -> None:
    chunks = [LEDGER_STREAM[1].replace(b"\n", b"\r")]
    client = await serve(web.get("/api/v1/events", stream(recorder, chunks)))
    assert await _follow(client) == [StreamHello(last_event_id=41)]


async def test_events_invalid_utf8_is_replaced(serve: Serve, recorder: Recorder) -> None:
    chunks = [b": caf\xe9\n\n", LEDGER_STREAM[1]]  # a comment with a Latin-1 byte
    client = await serve(web.get("/api/v1/events", stream(recorder, chunks)))
    assert await _follow(client) == [StreamHello(last_event_id=41)]
