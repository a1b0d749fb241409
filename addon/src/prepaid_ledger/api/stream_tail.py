"""The newest stream events, read once per commit for every open event stream.

A fleet ledger holds one stream per site (and per tenant page) open; if each of them read the
table after every commit, a commit would cost one query per open stream (at 100 sites and
eight commits a second, 800 queries a second). The tail reads what was committed since its
last read once, keeps the newest events with their SSE frame and site, and every stream
filters them in memory. A stream resuming from further back than the tail reaches reads the
table itself, as before.

Nor is every stream woken by every commit: one task waits for commits and reads them, and
wakes only the streams that may see one of the new events (a site's stream, its site's
events). At 100 sites a commit used to wake all 100 streams to find, mostly, nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from bisect import bisect_right
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from prepaid_ledger.api.auth import Principal
from prepaid_ledger.store.database import Database
from prepaid_ledger.store.models import DEFAULT_SITE_ID, Account, StreamEvent

_LOGGER = logging.getLogger(__name__)
#: Events kept (a few minutes of a busy fleet): a stream further behind reads the table.
KEEP = 20_000
_PAGE = 1_000
#: How often the reading task looks whether it still has streams to serve.
_IDLE_CHECK_S = 1.0


def format_event(event: StreamEvent) -> bytes:
    """One SSE frame."""
    data: dict[str, Any] = {"id": event.id, "at": event.at.isoformat(), **event.payload}
    return f"id: {event.id}\nevent: {event.type}\ndata: {json.dumps(data)}\n\n".encode()


@dataclass(frozen=True, slots=True)
class TailEvent:
    """A committed event as the streams need it: who may see it, and its frame."""

    id: int
    account_id: int | None
    #: The site of its account (None: the account is not found).
    site_id: int | None
    frame: bytes

    def visible_to(self, principal: Principal) -> bool:
        """Whether this event belongs on PRINCIPAL's stream (as ``stream._fetch`` filters)."""
        if principal.scope == "tenant" and self.account_id != principal.account_id:
            return False
        if principal.site_id is None:
            return True
        # Events of no account (a payment nobody claims) are site 1's, the landlord's own.
        site = DEFAULT_SITE_ID if self.account_id is None else self.site_id
        return site == principal.site_id


class Subscription:
    """One open stream's doorbell: rung when an event it may see has been read."""

    def __init__(self, principal: Principal) -> None:
        self.principal = principal
        self._rung = asyncio.Event()

    def ring(self) -> None:
        """Wake the stream (it reads the tail)."""
        self._rung.set()

    def clear(self) -> None:
        """Take the ring before reading the tail (a ring during the read is kept)."""
        self._rung.clear()

    async def wait(self) -> None:
        """Wait until an event this stream may see has been read."""
        await self._rung.wait()


class StreamTail:
    """The newest committed events, refreshed by one query after each commit."""

    def __init__(self, db: Database) -> None:
        self._db = db
        #: Subscriptions by the site they see (None: every site's events).
        self._subscribers: defaultdict[int | None, set[Subscription]] = defaultdict(set)
        self._reader: asyncio.Task[None] | None = None
        self._events: list[TailEvent] = []
        self._ids: list[int] = []  # the events' ids, to bisect
        #: Every event with an id above this is in ``_events`` (up to ``_head``).
        self._covered_after: int | None = None
        self._head = 0
        self._read_at: asyncio.Event | None = None  # the change signal of the last read
        self._lock = asyncio.Lock()

    def subscribe(self, principal: Principal) -> Subscription:
        """Ring the returned subscription whenever an event PRINCIPAL may see is read."""
        subscription = Subscription(principal)
        self._subscribers[principal.site_id].add(subscription)
        if self._reader is None or self._reader.done():
            self._reader = asyncio.create_task(self._read_commits(), name="stream tail")
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        """Stop ringing SUBSCRIPTION (its stream has closed)."""
        site = subscription.principal.site_id
        self._subscribers[site].discard(subscription)
        if not self._subscribers[site]:
            del self._subscribers[site]

    async def close(self) -> None:
        """Stop the task that reads the commits (the service is stopping)."""
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
            self._reader = None

    @property
    def reading(self) -> bool:
        """Whether the task that reads every commit is running."""
        return self._reader is not None and not self._reader.done()

    @property
    def head(self) -> int:
        """The newest event id read."""
        return self._head

    async def _read_commits(self) -> None:
        """Read what each commit added (ringing its streams), while any stream is open."""
        while self._subscribers:
            signal = self._db.change_signal()
            if signal is self._read_at:  # read since the last commit: wait for the next
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(_IDLE_CHECK_S):
                        await signal.wait()
                continue
            try:
                await self._refresh()
            except Exception:  # a database outage: the streams' own ticks read later
                _LOGGER.warning("the event stream could not read new events", exc_info=True)
                await asyncio.sleep(_IDLE_CHECK_S)

    def _ring(self, events: list[TailEvent]) -> None:
        """Ring every subscription that may see one of EVENTS."""
        everything = self._subscribers.get(None, set())
        for event in events:
            site = DEFAULT_SITE_ID if event.account_id is None else event.site_id
            for subscription in everything | self._subscribers.get(site, set()):
                if event.visible_to(subscription.principal):
                    subscription.ring()

    async def after(self, last_id: int) -> tuple[list[TailEvent], int] | None:
        """Return the events after LAST_ID and the id they reach; None if it is too far back.

        Reads the table only when something was committed since the last read, and then once
        for all callers waiting at that moment.
        """
        await self._refresh()
        if self._covered_after is None or last_id < self._covered_after:
            return None
        return self._events[bisect_right(self._ids, last_id) :], max(self._head, last_id)

    async def _refresh(self) -> None:
        async with self._lock:
            signal = self._db.change_signal()
            if signal is self._read_at:
                return  # nothing committed since the last read began
            self._read_at = signal
            if self._covered_after is None:
                self._head = await self._db.read(latest_id)
                self._covered_after = self._head
                return
            while True:
                page = await self._db.read(_newer(self._head))
                self._events.extend(page)
                self._ids.extend(event.id for event in page)
                if page:
                    self._head = page[-1].id
                    self._ring(page)
                if len(page) < _PAGE:
                    break
            if len(self._events) > 2 * KEEP:  # trimmed now and then, not at every event
                drop = len(self._events) - KEEP
                self._covered_after = self._ids[drop - 1]
                del self._events[:drop], self._ids[:drop]


async def latest_id(session: AsyncSession) -> int:
    """Return the newest stream event's id (0: none yet)."""
    return int(await session.scalar(select(func.coalesce(func.max(StreamEvent.id), 0))) or 0)


def _newer(after: int) -> Any:
    async def read(session: AsyncSession) -> list[TailEvent]:
        rows = await session.execute(
            select(StreamEvent, Account.site_id)
            .outerjoin(Account, Account.id == StreamEvent.account_id)
            .where(StreamEvent.id > after)
            .order_by(StreamEvent.id)
            .limit(_PAGE)
        )
        return [
            TailEvent(event.id, event.account_id, site_id, format_event(event))
            for event, site_id in rows
        ]

    return read
