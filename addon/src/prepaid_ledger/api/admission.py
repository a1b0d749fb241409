"""Admission control: bounded, prioritised queueing of the requests that use the database.

Without it, a flood (a hundred Home Assistant sites posting reading batches at once) made every
request wait for a database connection until the pool gave up after 30 s, and answered 500.
Now at most ``max_active_requests`` requests run at once; the others wait in one FIFO queue
per lane, bounded in length and in time. A request whose queue is full, or that waited longer
than its lane allows, is answered ``503 overloaded`` with ``Retry-After`` before its handler
ran: it changed nothing, and the sender sends it again (Stripe and Standard Webhooks retry a
5xx; Home Assistant sends the readings again).

Lanes, highest priority first:

- ``payment``: the payment webhooks (``/webhooks/...``). A freed slot goes to a waiting
  payment first, and the other lanes together never take the last ``PAYMENT_RESERVE`` slots,
  so a payment is credited promptly even while reading batches are being shed.
- ``api``: everything else that reads or writes the ledger (admin, top-ups, pages).
- ``readings``: ``POST /api/v1/readings``, at most ``max_active_readings`` at once, with its
  own (shorter) queue and wait: a batch is the cheapest thing to send again.

Health, the event stream (long-lived; it takes a connection only per fetch) and the OpenAPI
document are not queued.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from aiohttp import web

from prepaid_ledger.api.context import STATE_KEY
from prepaid_ledger.api.error_middleware import Handler, overloaded_response
from prepaid_ledger.api.overload_log import OVERLOAD_LOG
from prepaid_ledger.config import Settings

#: Slots the api and readings lanes leave free for payments (when there are enough slots).
PAYMENT_RESERVE: Final = 2
#: Bounds of the Retry-After the service asks for, in seconds.
MIN_RETRY_AFTER_S: Final = 1
MAX_RETRY_AFTER_S: Final = 30
#: What a request is assumed to take before any has finished (seconds).
_INITIAL_HOLD_S: Final = 0.2
_EWMA_WEIGHT: Final = 0.2
_NOT_QUEUED: Final = frozenset({"/api/v1/health", "/api/v1/events", "/api/v1/openapi.json"})
_READINGS_PATH: Final = "/api/v1/readings"


class Lane(enum.IntEnum):
    """Where a request waits; a lower value is served first."""

    PAYMENT = 0
    API = 1
    READINGS = 2


_DESCRIPTION: Final = {
    Lane.PAYMENT: "a payment webhook",
    Lane.API: "a request",
    Lane.READINGS: "a reading batch",
}


def lane_for(method: str, path: str) -> Lane | None:
    """Return the lane of a request to PATH, or None for the requests that are never queued."""
    if path.startswith("/webhooks/"):
        return Lane.PAYMENT
    if path in _NOT_QUEUED:
        return None
    if path == _READINGS_PATH and method == "POST":
        return Lane.READINGS
    return Lane.API


def lane_of(request: web.Request) -> Lane | None:
    """Return the lane of REQUEST, or None for the requests that are never queued."""
    return lane_for(request.method, request.path)


@dataclass(frozen=True, slots=True)
class LaneLimits:
    """How many of a lane's requests may run, wait, and for how long."""

    max_active: int
    max_queued: int
    max_wait_s: float


class Shed(Exception):  # noqa: N818 - what happened to the request, not a fault
    """The request was not admitted; nothing of it ran."""

    def __init__(self, lane: Lane, reason: str, retry_after_s: int) -> None:
        super().__init__(reason)
        self.lane = lane
        self.reason = reason
        self.retry_after_s = retry_after_s


class AdmissionGate:
    """Slots for requests, shared by the lanes; FIFO within a lane, lanes by priority."""

    def __init__(
        self,
        capacity: int,
        limits: dict[Lane, LaneLimits],
        *,
        reserve: int = PAYMENT_RESERVE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.capacity = max(1, capacity)
        # The api and readings lanes together leave `reserve` slots to payments.
        self.shared_capacity = max(1, self.capacity - max(0, reserve))
        self.limits = limits
        self._clock = clock
        self.active: dict[Lane, int] = dict.fromkeys(Lane, 0)
        self._queues: dict[Lane, deque[asyncio.Future[None]]] = {lane: deque() for lane in Lane}
        self._hold_s: dict[Lane, float] = dict.fromkeys(Lane, _INITIAL_HOLD_S)
        #: Requests shed per lane since start.
        self.shed: dict[Lane, int] = dict.fromkeys(Lane, 0)

    @classmethod
    def from_settings(cls, settings: Settings) -> AdmissionGate:
        """Build the gate the settings describe."""
        general_wait = settings.max_queue_wait_s
        return cls(
            settings.max_active_requests,
            {
                Lane.PAYMENT: LaneLimits(
                    settings.max_active_requests, settings.max_queued_requests, general_wait
                ),
                Lane.API: LaneLimits(
                    settings.max_active_requests, settings.max_queued_requests, general_wait
                ),
                Lane.READINGS: LaneLimits(
                    settings.max_active_readings,
                    settings.max_queued_readings,
                    settings.max_readings_wait_s,
                ),
            },
        )

    def queued(self, lane: Lane) -> int:
        """Return how many requests of LANE wait."""
        return len(self._queues[lane])

    @property
    def total_active(self) -> int:
        """Requests running now, all lanes."""
        return sum(self.active.values())

    def _may_start(self, lane: Lane) -> bool:
        if self.total_active >= self.capacity:
            return False
        if self.active[lane] >= self.limits[lane].max_active:
            return False
        if lane is Lane.PAYMENT:
            return True
        return self.active[Lane.API] + self.active[Lane.READINGS] < self.shared_capacity

    def _start(self, lane: Lane) -> None:
        self.active[lane] += 1

    def _dispatch(self) -> None:
        """Hand free slots to the waiters: payments first, FIFO within a lane."""
        for lane in Lane:
            queue = self._queues[lane]
            while queue and self._may_start(lane):
                waiter = queue.popleft()
                if waiter.done():  # gave up (timed out, cancelled) after all
                    continue
                self._start(lane)
                waiter.set_result(None)

    def retry_after_s(self, lane: Lane) -> int:
        """Seconds after which a shed request of LANE likely finds room (bounded)."""
        limits = self.limits[lane]
        lane_slots = max(1, min(limits.max_active, self.capacity))
        drain = self._hold_s[lane] * (self.queued(lane) + 1) / lane_slots
        return max(MIN_RETRY_AFTER_S, min(MAX_RETRY_AFTER_S, math.ceil(drain)))

    def _shed(self, lane: Lane, reason: str) -> Shed:
        self.shed[lane] += 1
        return Shed(lane, reason, self.retry_after_s(lane))

    def _state(self) -> str:
        return (
            f"running {self.total_active}/{self.capacity} "
            f"(payments {self.active[Lane.PAYMENT]}, api {self.active[Lane.API]}, "
            f"readings {self.active[Lane.READINGS]}/{self.limits[Lane.READINGS].max_active}); "
            f"waiting: payments {self.queued(Lane.PAYMENT)}, api {self.queued(Lane.API)}, "
            f"readings {self.queued(Lane.READINGS)}"
        )

    async def acquire(self, lane: Lane) -> None:
        """Take a slot of LANE, waiting in its queue; raise Shed when there is no room in time."""
        queue = self._queues[lane]
        if not queue and self._may_start(lane):
            self._start(lane)
            return
        limits = self.limits[lane]
        if len(queue) >= limits.max_queued:
            raise self._shed(
                lane,
                f"queue full ({len(queue)} waiting, at most {limits.max_queued}); {self._state()}",
            )
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue.append(waiter)
        try:
            async with asyncio.timeout(limits.max_wait_s):
                await waiter
        except TimeoutError:
            if waiter.done() and not waiter.cancelled():
                return  # the slot came just as the time ran out: keep it
            self._forget(queue, waiter)
            raise self._shed(
                lane, f"no slot within {limits.max_wait_s:g} s; {self._state()}"
            ) from None
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release(lane, 0.0)  # granted, but nobody will use it: pass it on
            else:
                self._forget(queue, waiter)
            raise

    @staticmethod
    def _forget(queue: deque[asyncio.Future[None]], waiter: asyncio.Future[None]) -> None:
        waiter.cancel()
        with contextlib.suppress(ValueError):  # already taken off by _dispatch
            queue.remove(waiter)

    def release(self, lane: Lane, held_s: float) -> None:
        """Give back a slot of LANE held for HELD_S seconds; wake the next waiter."""
        self.active[lane] -= 1
        self._hold_s[lane] += _EWMA_WEIGHT * (held_s - self._hold_s[lane])
        self._dispatch()

    def now(self) -> float:
        """Return the time on the gate's clock."""
        return self._clock()


@web.middleware
async def admission_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Run the handler in a slot of the request's lane, or answer 503 overloaded."""
    gate = request.app[STATE_KEY].admission
    lane = lane_of(request)
    if gate is None or lane is None:
        return await handler(request)
    try:
        await gate.acquire(lane)
    except Shed as shed:
        OVERLOAD_LOG.warn(
            f"shed:{lane.name}",
            f"shed {_DESCRIPTION[lane]} ({request.method} {request.path}) with 503, "
            f"Retry-After {shed.retry_after_s} s: {shed.reason}",
        )
        return overloaded_response(
            shed.retry_after_s,
            f"the ledger is busy; {_DESCRIPTION[lane]} was not processed (nothing changed): "
            f"send it again in {shed.retry_after_s} s",
        )
    started = gate.now()
    try:
        return await handler(request)
    finally:
        gate.release(lane, gate.now() - started)
