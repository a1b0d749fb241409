"""The ledger closes idle connections after 5 s: a request lost in that race is sent once more
only when repeating it cannot do anything twice.

The server here is a raw socket server: the first connection reads a request and closes
without answering (what a keep-alive close racing a request looks like to the client); later
connections answer like the ledger.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal

import aiohttp
import pytest
from prepaid_meter_contract.client import LedgerClient
from prepaid_meter_contract.errors import LedgerConnectionError
from prepaid_meter_contract.readings import Reading
from prepaid_meter_contract.vocabulary import ResolveAction

pytestmark = pytest.mark.usefixtures("socket_enabled")
READING = Reading(meter_id=1, value=Decimal(1), at=datetime(2026, 1, 1, tzinfo=UTC))


#: What the ledger answers on each path (shaped as docs/api.md and the OpenAPI describe them).
ANSWERS = {
    "/api/v1/health": {"status": "ok", "ledger_id": "x", "version": "1"},
    "/api/v1/whoami": {"scope": "integration", "account_id": None},
    "/api/v1/readings": {"received": 1, "meters": []},
    "/api/v1/readings/7/resolve": {},
}


class DroppingServer:
    """Drops the first ``drops`` requests unanswered, then answers 200 with a JSON object."""

    def __init__(self, drops: int) -> None:
        self.drops = drops
        self.requests: list[bytes] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            (
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            ),
            0,
        )
        if length:
            await reader.readexactly(length)
        self.requests.append(head.split(b"\r\n", 1)[0])
        if len(self.requests) <= self.drops:
            writer.close()
            return
        path = head.split(b" ", 2)[1].decode()
        body = json.dumps(ANSWERS[path]).encode()
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        await writer.drain()
        writer.close()


@pytest.fixture
async def dropping() -> AsyncIterator[tuple[DroppingServer, LedgerClient]]:
    server_state = DroppingServer(drops=1)
    server = await asyncio.start_server(server_state.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with aiohttp.ClientSession() as session:
        yield server_state, LedgerClient(session, f"http://127.0.0.1:{port}", "token")
    server.close()
    await server.wait_closed()


async def test_a_get_lost_to_a_closing_connection_is_sent_again_by_aiohttp(
    dropping: tuple[DroppingServer, LedgerClient],
) -> None:
    server, client = dropping
    identity = await client.async_identify()
    assert identity.ledger_id == "x"
    assert server.requests == [
        b"GET /api/v1/health HTTP/1.1",
        b"GET /api/v1/health HTTP/1.1",
        b"GET /api/v1/whoami HTTP/1.1",
    ]


async def test_readings_are_sent_again_since_re_sends_are_free(
    dropping: tuple[DroppingServer, LedgerClient],
) -> None:
    server, client = dropping
    answer = await client.async_post_readings([READING])
    assert answer.received == 1
    assert server.requests == [b"POST /api/v1/readings HTTP/1.1"] * 2


async def test_a_post_that_could_act_twice_is_not_repeated(
    dropping: tuple[DroppingServer, LedgerClient],
) -> None:
    server, client = dropping
    with pytest.raises(LedgerConnectionError):
        await client.async_resolve_reading(7, ResolveAction.ACCEPT, "checked")
    assert len(server.requests) == 1


async def test_only_one_retry(dropping: tuple[DroppingServer, LedgerClient]) -> None:
    server, client = dropping
    server.drops = 5
    with pytest.raises(LedgerConnectionError):
        await client.async_post_readings([READING])
    assert len(server.requests) == 2
