"""Server-Sent Events: the event stream with increasing ids and Last-Event-ID resume."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
from typing import Any

from aiohttp import web
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from prepaid_ledger.api.auth import Principal, require_scope
from prepaid_ledger.api.context import db_of
from prepaid_ledger.domain.errors import InputError
from prepaid_ledger.services import events as stream_events
from prepaid_ledger.store.models import StreamEvent

routes = web.RouteTableDef()
CLOSING_KEY = web.AppKey("stream_closing", asyncio.Event)
KEEPALIVE_S = 15.0
_PAGE = 500


def _start_id(request: web.Request) -> int | None:
    """Return the id to resume after; ``None`` for ``latest`` (only what happens from now on)."""
    raw = request.headers.get("Last-Event-ID") or request.query.get("after") or "0"
    if raw == "latest":
        return None
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:
        raise InputError(
            "invalid_field", "Last-Event-ID must be a non-negative integer or 'latest'"
        )
    return int(raw)


async def _latest_id(db_session: AsyncSession) -> int:
    return int(await db_session.scalar(select(func.coalesce(func.max(StreamEvent.id), 0))) or 0)


async def _fetch(
    db_session: AsyncSession, *, principal: Principal, after: int
) -> list[StreamEvent]:
    query = select(StreamEvent).where(StreamEvent.id > after).order_by(StreamEvent.id).limit(_PAGE)
    if principal.scope == "tenant":
        query = query.where(StreamEvent.account_id == principal.account_id)
    return list(await db_session.scalars(query))


def format_event(event: StreamEvent) -> bytes:
    """One SSE frame."""
    data: dict[str, Any] = {"id": event.id, "at": event.at.isoformat(), **event.payload}
    return f"id: {event.id}\nevent: {event.type}\ndata: {json.dumps(data)}\n\n".encode()


@routes.get("/api/v1/events")
async def event_stream(request: web.Request) -> web.StreamResponse:
    """Stream events after Last-Event-ID (admin, integration; tenants get their own account's)."""
    principal = require_scope(request, "admin", "integration", "tenant")
    start = _start_id(request)
    last_id = await db_of(request).read(_latest_id) if start is None else start
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
        }
    )
    await response.prepare(request)
    with contextlib.suppress(ConnectionError):  # the client went away: nothing to clean up
        await _pump(request, response, principal, last_id)
        await response.write_eof()
    return response


async def _pump(
    request: web.Request, response: web.StreamResponse, principal: Principal, last_id: int
) -> None:
    """Write events as they are committed until the app shuts down."""
    db = db_of(request)
    closing = request.app[CLOSING_KEY]
    await response.write(b"retry: 2000\n\n")
    # Tells a client that asked for "latest" where the stream starts, so it can read the current
    # state once and then apply every event after this id (nothing falls between the two).
    hello = json.dumps({"last_event_id": last_id})
    await response.write(f"event: stream.hello\ndata: {hello}\n\n".encode())
    if last_id:
        oldest = await db.read(stream_events.oldest_id)
        if oldest is not None and oldest > last_id + 1:
            # Events the client has not seen were pruned: tell it to re-read the state.
            reset = {"oldest_id": oldest, "last_event_id": last_id}
            await response.write(f"event: stream.reset\ndata: {json.dumps(reset)}\n\n".encode())
    while not closing.is_set():
        changed = db.change_signal()
        batch = await db.read(functools.partial(_fetch, principal=principal, after=last_id))
        for event in batch:
            await response.write(format_event(event))
            last_id = event.id
        if len(batch) == _PAGE:
            continue
        waiter = asyncio.ensure_future(changed.wait())
        closer = asyncio.ensure_future(closing.wait())
        try:
            done, _ = await asyncio.wait(
                {waiter, closer}, timeout=KEEPALIVE_S, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for task in (waiter, closer):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if not done:
            await response.write(b": keepalive\n\n")
