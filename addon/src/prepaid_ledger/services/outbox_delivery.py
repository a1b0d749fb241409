"""Sending the accounting outbox: signed Standard Webhooks, retried, in order per account.

One worker runs with the app (``running``, entered from app.py's cleanup context). It wakes
when a transaction that recorded an event commits (``outbox.add_waker``), when the earliest
retry falls due, and at least every ``poll_s`` (events another process recorded). Each round
it claims due deliveries in one short write: a claim is a lease (``leased_until``,
``lease_token``) that a second worker, or this one after a restart, respects until it runs out.
The HTTP request runs outside any transaction; its outcome is written by the lease's token, so
a replay or a takeover in between is never overwritten.

Ordering: a delivery is eligible only when every earlier event of its account to the same
endpoint is delivered (failed ones included: they block until replayed), so at most one event
per account and endpoint is on its way at a time, and a receiver sees an account's events in
the order they were recorded. Events without an account (a payment for an unknown account
number) have no order to keep.

Exactly once for the receiver: every attempt, retry, replay and attempt after a crash carries
the same ``webhook-id``; a receiver that keeps the ids it processed drops the repeats.

Each attempt: the endpoint's URL must be http(s) (anything else fails at once, never sent);
the body ``{"type", "timestamp", "data"}`` is the same bytes every time; the signature is
``standardwebhooks.Webhook(secret).sign(id, now, body)``; redirects are not followed (a 3xx
is a failure: update the URL); connect and total timeouts bound it. A 2xx delivers; a 410
disables the endpoint (Standard Webhooks: the receiver wants no more); anything else is
retried after the next delay of Standard Webhooks' example schedule (5 s ... 24 h, with up
to 10 % jitter; a longer Retry-After is honoured, up to 24 h). After the last
delay's attempt fails the delivery is ``failed`` and shows so in the delivery log.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import random
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Final

import aiohttp
from prepaid_meter_contract.accounting import DeliveryStatus
from sqlalchemy import ColumnElement, and_, exists, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from standardwebhooks import Webhook
from yarl import URL

from prepaid_ledger.services import outbox
from prepaid_ledger.services.loop_errors import log_round_failure
from prepaid_ledger.store.database import Database
from prepaid_ledger.store.models import AccountingEndpoint, OutboxDelivery, OutboxMessage, utcnow

_LOGGER = logging.getLogger(__name__)
#: The only schemes an endpoint is ever sent to.
SCHEMES: Final = frozenset({"http", "https"})
#: Longest error text kept on a delivery.
MAX_ERROR_CHARS: Final = 300
USER_AGENT: Final = "prepaid-ledger-accounting"


@dataclass(frozen=True, slots=True)
class Tuning:
    """How the worker paces itself (tests shorten it; the defaults are for real use)."""

    #: Delays after the 1st, 2nd, ... failed attempt: Standard Webhooks' example schedule
    #: (immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h, 24 h: ten attempts over
    #: about three days). After the last one the delivery is failed.
    schedule_s: tuple[float, ...] = (5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400)
    #: Up to this fraction is added to each delay at random (retries of many events spread).
    jitter: float = 0.1
    connect_timeout_s: float = 5.0
    #: Whole attempt, connecting included (Standard Webhooks recommends 15 to 30 s).
    request_timeout_s: float = 15.0
    #: How long a claimed delivery is held by its worker (longer than an attempt can take).
    lease_s: float = 60.0
    #: The worker looks for due deliveries at least this often.
    poll_s: float = 30.0
    #: How often ended days are checked for their charge.posted.
    charge_days_every_s: float = 300.0
    #: Most attempts under way at once.
    max_in_flight: int = 16
    #: The longest wait a receiver's Retry-After may ask for.
    max_retry_after_s: float = 86400.0


#: The tuning a worker takes when given none.
TUNING = Tuning()


@dataclass(frozen=True, slots=True)
class Claim:
    """A delivery this worker holds: what to send where, and the token its outcome needs."""

    delivery_id: int
    token: str
    url: str
    secret: str
    message_id: str
    body: str


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one attempt got: an HTTP status, or an error before any answer."""

    status: int | None = None
    error: str | None = None
    #: Seconds the receiver asked to wait (Retry-After), if it did.
    retry_after_s: float | None = None
    #: Not worth retrying (the URL cannot be sent to).
    permanent: bool = False

    @property
    def delivered(self) -> bool:
        """Tell whether the receiver acknowledged the event (any 2xx)."""
        return self.status is not None and 200 <= self.status < 300


def body_of(message: OutboxMessage) -> str:
    """Return the body of an event: the same bytes in every attempt, retry and replay."""
    envelope = {
        "type": message.type,
        "timestamp": message.created_at.astimezone(UTC).isoformat(),
        "data": message.payload,
    }
    return json.dumps(envelope, separators=(",", ":"), sort_keys=True)


# --------------------------------------------------------------------------- the database side


def _eligible(now: datetime) -> ColumnElement[bool]:
    """Pending, not held by a worker, endpoint enabled, and first in its account's line."""
    earlier = aliased(OutboxDelivery)
    waits = exists().where(
        earlier.endpoint_id == OutboxDelivery.endpoint_id,
        earlier.account_id == OutboxDelivery.account_id,
        earlier.outbox_id < OutboxDelivery.outbox_id,
        earlier.status != DeliveryStatus.DELIVERED,
    )
    return and_(
        OutboxDelivery.status == DeliveryStatus.PENDING,
        or_(OutboxDelivery.leased_until.is_(None), OutboxDelivery.leased_until <= now),
        AccountingEndpoint.enabled.is_(True),
        or_(OutboxDelivery.account_id.is_(None), ~waits),
    )


async def claim(session: AsyncSession, now: datetime, limit: int, tuning: Tuning) -> list[Claim]:
    """Hold up to ``limit`` due, eligible deliveries for this worker (each attempt counted)."""
    candidates = list(
        await session.scalars(
            select(OutboxDelivery.id)
            .join(AccountingEndpoint, AccountingEndpoint.id == OutboxDelivery.endpoint_id)
            .where(_eligible(now), OutboxDelivery.next_attempt_at <= now)
            .order_by(OutboxDelivery.next_attempt_at, OutboxDelivery.id)
            .limit(limit)
        )
    )
    held: dict[int, str] = {}
    for delivery_id in candidates:
        token = secrets.token_hex(16)
        result = await session.execute(
            update(OutboxDelivery)
            .where(
                OutboxDelivery.id == delivery_id,
                OutboxDelivery.status == DeliveryStatus.PENDING,
                or_(OutboxDelivery.leased_until.is_(None), OutboxDelivery.leased_until <= now),
            )
            .values(
                leased_until=now + timedelta(seconds=tuning.lease_s),
                lease_token=token,
                attempts=OutboxDelivery.attempts + 1,
                last_attempt_at=now,
            )
            .execution_options(synchronize_session=False)
        )
        if getattr(result, "rowcount", 0) == 1:  # else another worker took it first
            held[delivery_id] = token
    if not held:
        return []
    rows = await session.execute(
        select(OutboxDelivery.id, OutboxMessage, AccountingEndpoint)
        .join(OutboxMessage, OutboxMessage.id == OutboxDelivery.outbox_id)
        .join(AccountingEndpoint, AccountingEndpoint.id == OutboxDelivery.endpoint_id)
        .where(OutboxDelivery.id.in_(held))
        .order_by(OutboxDelivery.id)
    )
    return [
        Claim(
            delivery_id=delivery_id,
            token=held[delivery_id],
            url=endpoint.url,
            secret=endpoint.secret,
            message_id=message.message_id,
            body=body_of(message),
        )
        for delivery_id, message, endpoint in rows.tuples()
    ]


async def next_due(session: AsyncSession, now: datetime) -> datetime | None:
    """Return when the next eligible delivery falls due (or a held one's lease runs out)."""
    due = await session.scalar(
        select(func.min(OutboxDelivery.next_attempt_at))
        .join(AccountingEndpoint, AccountingEndpoint.id == OutboxDelivery.endpoint_id)
        .where(_eligible(now))
    )
    lease_ends = await session.scalar(
        select(func.min(OutboxDelivery.leased_until)).where(
            OutboxDelivery.status == DeliveryStatus.PENDING, OutboxDelivery.leased_until > now
        )
    )
    found = [t for t in (due, lease_ends) if t is not None]
    return min(found) if found else None


def retry_delay(attempts: int, outcome: Outcome, tuning: Tuning) -> float | None:
    """Return seconds until the next attempt after ``attempts`` failed ones (None: give up)."""
    if outcome.permanent or attempts > len(tuning.schedule_s) or attempts < 1:
        return None
    delay = tuning.schedule_s[attempts - 1] * (1 + random.uniform(0, tuning.jitter))  # noqa: S311
    if outcome.retry_after_s is not None:
        delay = max(delay, min(outcome.retry_after_s, tuning.max_retry_after_s))
    return delay


async def finish(
    session: AsyncSession, held: Claim, outcome: Outcome, now: datetime, tuning: Tuning
) -> DeliveryStatus | None:
    """Write an attempt's outcome, if the delivery is still held by it (None: it was not)."""
    row = await session.scalar(
        select(OutboxDelivery)
        .where(OutboxDelivery.id == held.delivery_id, OutboxDelivery.lease_token == held.token)
        .with_for_update()
    )
    if row is None:  # replayed, or the lease ran out and another attempt took over
        return None
    row.leased_until = None
    row.lease_token = None
    row.last_http_status = outcome.status
    row.last_error = None if outcome.delivered else (outcome.error or f"HTTP {outcome.status}")
    if outcome.delivered:
        row.status = DeliveryStatus.DELIVERED
        row.delivered_at = now
        row.next_attempt_at = None
        return DeliveryStatus.DELIVERED
    if outcome.status == 410:
        await _disable_gone(session, row.endpoint_id, now)
        row.status = DeliveryStatus.FAILED
        row.next_attempt_at = None
        return DeliveryStatus.FAILED
    delay = retry_delay(row.attempts, outcome, tuning)
    if delay is None:
        row.status = DeliveryStatus.FAILED
        row.next_attempt_at = None
        _LOGGER.warning(
            "accounting event %s to endpoint %d failed for good after %d attempt(s): %s",
            held.message_id,
            row.endpoint_id,
            row.attempts,
            row.last_error,
        )
        return DeliveryStatus.FAILED
    row.next_attempt_at = now + timedelta(seconds=delay)
    return DeliveryStatus.PENDING


async def _disable_gone(session: AsyncSession, endpoint_id: int, now: datetime) -> None:
    """Disable an endpoint whose receiver answered 410 Gone (it wants nothing more)."""
    endpoint = await session.get(AccountingEndpoint, endpoint_id, with_for_update=True)
    if endpoint is None or not endpoint.enabled:
        return
    endpoint.enabled = False
    endpoint.disabled_at = now
    endpoint.disabled_by = "outbox"
    endpoint.disabled_reason = "the receiver answered 410 Gone"
    _LOGGER.warning("accounting endpoint %d answered 410 Gone: disabled", endpoint_id)


# --------------------------------------------------------------------------- the HTTP side


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header given in seconds (an HTTP date is ignored)."""
    if value is None or not value.strip().isdigit():
        return None
    return float(int(value.strip()[:9]))


async def send(http: aiohttp.ClientSession, held: Claim, tuning: Tuning) -> Outcome:
    """Make one attempt: sign, POST without following redirects, bounded in time."""
    try:
        url = URL(held.url)
    except (ValueError, TypeError) as err:
        return Outcome(error=f"refused: not a URL ({err})"[:MAX_ERROR_CHARS], permanent=True)
    if url.scheme not in SCHEMES or not url.host:
        return Outcome(error="refused: only http(s) URLs are delivered to", permanent=True)
    stamp = int(utcnow().timestamp())
    signature = Webhook(held.secret).sign(
        held.message_id, datetime.fromtimestamp(stamp, UTC), held.body
    )
    headers = {
        "webhook-id": held.message_id,
        "webhook-timestamp": str(stamp),
        "webhook-signature": signature,
        "Content-Type": "application/json",
    }
    timeout = aiohttp.ClientTimeout(
        total=tuning.request_timeout_s, sock_connect=tuning.connect_timeout_s
    )
    try:
        async with http.post(
            url,
            data=held.body.encode(),
            headers=headers,
            allow_redirects=False,
            timeout=timeout,
        ) as response:
            status = response.status
            retry_after = _retry_after(response.headers.get("Retry-After"))
    except TimeoutError:
        return Outcome(error=f"no answer within {tuning.request_timeout_s:g} s")
    except aiohttp.ClientError as err:
        return Outcome(error=f"{type(err).__name__}: {err}"[:MAX_ERROR_CHARS])
    if 300 <= status < 400:
        return Outcome(
            status=status,
            error=f"HTTP {status}: redirects are not followed (update the endpoint's URL)",
            retry_after_s=retry_after,
        )
    return Outcome(status=status, retry_after_s=retry_after)


# --------------------------------------------------------------------------- charge.posted


async def record_charge_days(db: Database, now: datetime) -> int:
    """Record every ``charge.posted`` due at ``now`` (one short write per account and day).

    Returns how many were recorded. The events themselves are stamped with the real time.

    Safe with two workers and across restarts: each (account, day) is recorded once
    (``outbox.record`` looks for it under the account's lock; UNIQUE type, account, day).
    """
    due = await db.read(lambda s: outbox.charge_days_due(s, now))
    recorded = 0
    for item in due:
        for day in item.days:
            try:
                message = await db.write(
                    functools.partial(_record_day, account_id=item.account_id, day=day)
                )
            except IntegrityError:  # another worker recorded it in the meantime
                continue
            recorded += message
    return recorded


async def _record_day(session: AsyncSession, *, account_id: int, day: date) -> int:
    return int(await outbox.record_charge_day(session, account_id, day) is not None)


# --------------------------------------------------------------------------- the worker


class OutboxWorker:
    """Delivers the outbox and records the daily charge.posted while the app runs."""

    def __init__(self, db: Database, tuning: Tuning | None = None) -> None:
        self.db = db
        self.tuning = tuning or TUNING
        self._alarm = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._http: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        """Start delivering (and recording charge days) in the background."""
        self._http = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self.tuning.max_in_flight),
            headers={"User-Agent": USER_AGENT},
            trust_env=False,
        )
        outbox.add_waker(self._alarm)
        self._tasks = [
            asyncio.create_task(self._deliver_loop(), name="ledger-accounting-delivery"),
            asyncio.create_task(self._charge_days_loop(), name="ledger-accounting-days"),
        ]

    async def stop(self) -> None:
        """Stop; attempts under way are abandoned (their leases run out, they are sent again)."""
        outbox.remove_waker(self._alarm)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def _charge_days_loop(self) -> None:
        while True:
            try:
                recorded = await record_charge_days(self.db, utcnow())
                if recorded:
                    _LOGGER.info("accounting: %d charge.posted event(s) recorded", recorded)
            except Exception as err:  # noqa: BLE001 - one failed round must not end the loop
                log_round_failure(_LOGGER, "recording charge.posted", err)
            await asyncio.sleep(self.tuning.charge_days_every_s)

    async def _deliver_loop(self) -> None:
        in_flight: set[asyncio.Task[None]] = set()
        try:
            while True:
                self._alarm.clear()
                wait_s = await self._round(in_flight)
                alarm = asyncio.create_task(self._alarm.wait())
                try:
                    await asyncio.wait(
                        {alarm, *in_flight},
                        timeout=wait_s,
                        return_when=asyncio.FIRST_COMPLETED,
                    )
                finally:
                    alarm.cancel()
                in_flight.difference_update({task for task in in_flight if task.done()})
        finally:
            for task in in_flight:
                task.cancel()
            await asyncio.gather(*in_flight, return_exceptions=True)

    async def _round(self, in_flight: set[asyncio.Task[None]]) -> float:
        """Start the due attempts there is room for; return how long to wait at most.

        It only writes (claims) when a read found something due: an idle ledger's worker
        takes no write lock and wakes no event stream.
        """
        tuning = self.tuning
        room = tuning.max_in_flight - len(in_flight)
        if room <= 0:
            return tuning.poll_s  # a finishing attempt wakes the loop
        try:
            upcoming = await self.db.read(lambda s: next_due(s, utcnow()))
            if upcoming is not None and upcoming <= utcnow():
                claims = await self.db.write(lambda s: claim(s, utcnow(), room, tuning))
                for held in claims:
                    in_flight.add(asyncio.create_task(self._attempt(held)))
                if len(claims) == room:
                    return tuning.poll_s  # full: a finishing attempt wakes the loop
                upcoming = await self.db.read(lambda s: next_due(s, utcnow()))
        except Exception as err:  # noqa: BLE001 - one failed round must not end the loop
            log_round_failure(_LOGGER, "accounting delivery round", err)
            return min(tuning.poll_s, 5.0)
        if upcoming is None:
            return tuning.poll_s
        # Never a hot loop: a due delivery another worker just took is re-checked shortly.
        return min(tuning.poll_s, max(0.05, (upcoming - utcnow()).total_seconds()))

    async def _attempt(self, held: Claim) -> None:
        if self._http is None:  # pragma: no cover - started before the loop
            return
        outcome = await send(self._http, held, self.tuning)
        try:
            await self.db.write(lambda s: finish(s, held, outcome, utcnow(), self.tuning))
        except Exception as err:  # noqa: BLE001 - one failed round must not end the loop
            log_round_failure(_LOGGER, f"writing the outcome of {held.message_id}", err)


@contextlib.asynccontextmanager
async def running(db: Database | None, tuning: Tuning | None = None) -> AsyncIterator[None]:
    """Run a worker for as long as the context is open (app.py's cleanup context)."""
    if db is None:  # pragma: no cover - the database lifecycle runs first
        raise RuntimeError("the ledger database is not open")
    worker = OutboxWorker(db, tuning)
    await worker.start()
    try:
        yield
    finally:
        await worker.stop()
