"""Server-Sent Events: the event stream with increasing ids and Last-Event-ID resume."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import time

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from prepaid_ledger.api.auth import Principal, require_scope
from prepaid_ledger.api.context import STATE_KEY, db_of, settings_of
from prepaid_ledger.api.documented import Param, documented
from prepaid_ledger.api.stream_tail import StreamTail, Subscription, format_event, latest_id
from prepaid_ledger.errors import ApiError, InputError
from prepaid_ledger.services import events as stream_events
from prepaid_ledger.services import sites
from prepaid_ledger.store.models import StreamEvent

routes = web.RouteTableDef()
CLOSING_KEY = web.AppKey("stream_closing", asyncio.Event)
KEEPALIVE_S = 15.0
_TICK_S = 1.0  # how soon a stream notices that its client has gone
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


async def _fetch(
    db_session: AsyncSession, *, principal: Principal, after: int
) -> list[StreamEvent]:
    query = select(StreamEvent).where(StreamEvent.id > after).order_by(StreamEvent.id).limit(_PAGE)
    if principal.scope == "tenant":
        query = query.where(StreamEvent.account_id == principal.account_id)
    if principal.site_id is not None:  # a site's stream: its own accounts' events only
        query = query.where(sites.of_site(StreamEvent.account_id, principal.site_id))
    return list(await db_session.scalars(query))


def _tail_of(request: web.Request) -> StreamTail:
    state = request.app[STATE_KEY]
    if state.stream_tail is None:
        state.stream_tail = StreamTail(db_of(request))
    return state.stream_tail


@routes.get("/api/v1/events")
@documented(
    "Event stream (SSE): account.updated, topup.updated, alert; Last-Event-ID resumes",
    response=None,
    content={"text/event-stream": {"schema": {"type": "string"}}},
    params=(Param("Last-Event-ID", "header", {"type": "string"}),),
)
async def event_stream(request: web.Request) -> web.StreamResponse:
    """Stream events after Last-Event-ID (admin, integration; tenants get their own account's)."""
    principal = require_scope(request, "admin", "integration", "tenant")
    start = _start_id(request)
    open_streams = request.app[STATE_KEY].open_streams
    if open_streams[principal.actor] >= settings_of(request).max_streams_per_token:
        raise ApiError(
            429,
            "too_many_streams",
            f"this token already has {open_streams[principal.actor]} open event streams; "
            "close one first",
            headers={"Retry-After": str(int(KEEPALIVE_S))},
        )
    open_streams[principal.actor] += 1
    try:
        return await _serve(request, principal, start)
    finally:
        open_streams[principal.actor] -= 1
        if open_streams[principal.actor] <= 0:
            del open_streams[principal.actor]


async def _serve(
    request: web.Request, principal: Principal, start: int | None
) -> web.StreamResponse:
    """Send the stream to one client until it leaves or the app shuts down."""
    last_id = await db_of(request).read(latest_id) if start is None else start
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
    tail = _tail_of(request)
    subscription = tail.subscribe(principal)
    try:
        await _follow(request, response, principal, last_id, subscription)
    finally:
        tail.unsubscribe(subscription)


async def _follow(
    request: web.Request,
    response: web.StreamResponse,
    principal: Principal,
    last_id: int,
    subscription: Subscription,
) -> None:
    """Write this stream's events as the tail reads them (it rings SUBSCRIPTION)."""
    db = db_of(request)
    closing = request.app[CLOSING_KEY]
    tail = _tail_of(request)
    # The keep-alive follows what THIS client was sent: other sites' commits do not keep a
    # quiet site's connection alive.
    last_sent = time.monotonic()
    fetch = True
    while not closing.is_set():
        if fetch:
            subscription.clear()
            newest = await tail.after(last_id)
            if newest is None:  # further back than the tail reaches: read the table
                batch = await db.read(functools.partial(_fetch, principal=principal, after=last_id))
                for event in batch:
                    await response.write(format_event(event))
                    last_id = event.id
                    last_sent = time.monotonic()
                if len(batch) == _PAGE:
                    continue
            else:
                events, last_id = newest
                frames = [event.frame for event in events if event.visible_to(principal)]
                if frames:
                    await response.write(b"".join(frames))
                    last_sent = time.monotonic()
        waiter = asyncio.ensure_future(subscription.wait())
        closer = asyncio.ensure_future(closing.wait())
        try:
            done, _ = await asyncio.wait(
                {waiter, closer}, timeout=_TICK_S, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for task in (waiter, closer):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        # Between rings only the client's presence is checked, and, if the task that reads
        # the commits has stopped (a database outage), whether anything was committed since.
        fetch = waiter in done or (not tail.reading and tail.head != last_id)
        if request.transport is None or request.transport.is_closing():
            return  # the client left: free its place in the per-token count at once
        if time.monotonic() - last_sent >= KEEPALIVE_S:
            await response.write(b": keepalive\n\n")
            last_sent = time.monotonic()
