"""Payments first: urgent writes go before bulk work that is waiting or between its pieces.

A payment's transaction is some twenty statements, each waiting its turn on the one event loop
and in the database behind whatever else is running. Reading batches and a site's backlog are
bulk work that nobody watches to the millisecond; a tenant who paid is watching. So:

* on SQLite, where every write takes the one writer in turn, a waiting urgent write gets the
  writer before waiting bulk writes (``PriorityLock``);
* on PostgreSQL, where writes run side by side, bulk work gives way between its pieces while
  an urgent write is in flight (``Lanes.give_way``), for a bounded time: the urgent write may
  itself wait for a row the bulk work holds, so the bulk work never waits for it long. A batch
  of readings gives way only while it prices, before it locks its accounts
  (``services.readings.ingest``): then nothing a payment needs is held.

The backlog worker (a second process, backlog_worker.py) gives way to the service's payments
too: the service publishes its count of urgent writes in flight in a few bytes of memory the
two share (``Lanes.publish_to``), which the worker's lanes watch (``Lanes.watch``).
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
import time
from collections import deque
from collections.abc import AsyncIterator, Buffer, Iterator
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

#: The longest one piece of bulk work waits for urgent writes to finish before going on (a
#: payment's transaction takes 20-40 ms under load).
GIVE_WAY_MAX_S: Final = 0.05
#: The most one bulk transaction waits in all: a steady stream of payments must not stretch it
#: without bound.
GIVE_WAY_BUDGET_S: Final = 0.25
#: How often bulk work in another process looks whether the urgent writes are done.
WATCH_POLL_S: Final = 0.002
#: The shared count: a native 8-byte integer (``SHARED_COUNT.size`` bytes of shared memory).
SHARED_COUNT: Final = struct.Struct("=q")


class PriorityLock:
    """A mutex whose urgent waiters are served before the others (first come within each)."""

    def __init__(self) -> None:
        self._locked = False
        self._urgent: deque[asyncio.Future[None]] = deque()
        self._bulk: deque[asyncio.Future[None]] = deque()

    def locked(self) -> bool:
        """Whether someone holds the lock."""
        return self._locked

    async def acquire(self, *, urgent: bool = False) -> None:
        """Wait for the lock: behind every earlier urgent waiter, and if not URGENT all others."""
        if not self._locked and not self._urgent and not self._bulk:
            self._locked = True
            return
        waiter = asyncio.get_running_loop().create_future()
        queue = self._urgent if urgent else self._bulk
        queue.append(waiter)
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self.release()  # handed the lock, then cancelled: pass it on
            else:
                with contextlib.suppress(ValueError):
                    queue.remove(waiter)
            raise

    def release(self) -> None:
        """Hand the lock to the first urgent waiter, else the first other one, else free it."""
        if not self._locked:
            raise RuntimeError("release of an unlocked PriorityLock")
        for queue in (self._urgent, self._bulk):
            while queue:
                waiter = queue.popleft()
                if not waiter.done():
                    waiter.set_result(None)  # the lock stays taken: it is the waiter's now
                    return
        self._locked = False

    @contextlib.asynccontextmanager
    async def held(self, *, urgent: bool = False) -> AsyncIterator[None]:
        """Hold the lock for the block."""
        await self.acquire(urgent=urgent)
        try:
            yield
        finally:
            self.release()


class Lanes:
    """Counts the urgent writes in flight, for bulk work to give way to."""

    def __init__(self) -> None:
        self._urgent = 0
        self._clear = asyncio.Event()
        self._clear.set()
        self._published: Buffer | None = None
        self._watched: Buffer | None = None

    def publish_to(self, shared: Buffer) -> None:
        """Keep this process's count of urgent writes in flight in SHARED as well."""
        self._published = shared
        SHARED_COUNT.pack_into(shared, 0, self._urgent)

    def watch(self, shared: Buffer) -> None:
        """Give way also while the count another process publishes in SHARED is not zero."""
        self._watched = shared

    @property
    def urgent_in_flight(self) -> int:
        """Urgent writes started and not yet finished (here and in a watched process)."""
        return self._urgent + self._elsewhere()

    def _elsewhere(self) -> int:
        if self._watched is None:
            return 0
        count: int = SHARED_COUNT.unpack_from(self._watched, 0)[0]
        return count

    def _set(self, count: int) -> None:
        self._urgent = count
        if self._published is not None:
            SHARED_COUNT.pack_into(self._published, 0, count)

    @contextlib.contextmanager
    def urgent(self) -> Iterator[None]:
        """Count the block as an urgent write in flight."""
        self._set(self._urgent + 1)
        self._clear.clear()
        try:
            yield
        finally:
            self._set(self._urgent - 1)
            if not self._urgent:
                self._clear.set()

    async def give_way(self, budget: GiveWay) -> None:
        """Between two pieces of bulk work: let urgent writes finish first, within BUDGET."""
        if not self.urgent_in_flight or budget.left <= 0:
            await asyncio.sleep(0)  # still a turn for everyone else on the loop
            return
        started = time.monotonic()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(min(GIVE_WAY_MAX_S, budget.left)):
                await self._clear.wait()
                while self._elsewhere():  # noqa: ASYNC110 - no asyncio.Event crosses processes
                    await asyncio.sleep(WATCH_POLL_S)
        budget.left -= time.monotonic() - started


#: Where a write transaction's session keeps the Lanes (PostgreSQL only: on SQLite the bulk work
#: holds the one writer, and an urgent write could only wait for it).
LANES_KEY: Final = "ledger_lanes"


async def give_way(session: AsyncSession, budget: GiveWay) -> None:
    """Between pieces of bulk work in SESSION's transaction: see ``Lanes.give_way``."""
    lanes = session.info.get(LANES_KEY)
    if isinstance(lanes, Lanes):
        await lanes.give_way(budget)
    else:
        await asyncio.sleep(0)


class GiveWay:
    """What one bulk transaction may still spend waiting for urgent writes."""

    def __init__(self, seconds: float = GIVE_WAY_BUDGET_S) -> None:
        self.left = seconds
