"""Fleet: many Home Assistant sites on one ledger, measured as issue 24 asks.

One run, over HTTP against the real service (``python -m prepaid_ledger serve``), on SQLite and
on PostgreSQL (a throwaway server from Debian's binaries, as ``ingest_batches.py`` starts it),
a fresh database for every size:

    scripts/run python bench/fleet.py [--sites 10,100,300] [--duration 300]
        [--backfill-readings 432000] [--backend sqlite,postgres]

Smoke run while others use the machine (about 5 minutes, a third of one core on average):

    scripts/run python bench/fleet.py --sites 5 --duration 20 --backfill-readings 5000

For each size S (``--sites``, in turn, interleaving the back ends):

1. Setup (not measured): one time-of-use tariff; S sites (``POST /api/v1/sites``), each with
   ``--meters`` rooms (an account on the site and a meter; 1,000.00 of credit for each, in
   one batch top-up per site) and its own integration token (``POST /api/v1/tokens`` with
   ``site_id``); one event stream per site (``GET /api/v1/events`` with the site's token, from
   ``latest``; like the integration's client it reconnects with ``Last-Event-ID`` after 45 s
   of silence or a break, counted under streams); each site's balances read with its token
   through the paged account list. Also timed: the landlord paging through every account
   (``GET /api/v1/accounts?limit=1000``, following ``next_cursor``).
2. Steady state: every site polls every 30 s, the sites staggered evenly across the 30 s, and
   posts each poll as Home Assistant's integration does: its queue (one reading per meter per
   poll, the value from a constant load of 0.5-5 kW per meter, ``at`` = the wall clock) in
   batches of the integration's ``BATCH_SIZE`` (5,000), one request at a time, with the site's
   token. A batch not answered 2xx (a 429/503/5xx, or no answer within 30 s, the poll
   interval) leaves its readings queued for the next poll, as the integration does (it gives
   up after 10 s; the bench waits 30 s to see how long the ledger takes). Signed Stripe
   ``checkout.session.completed`` payments arrive at ``--payments`` per second per 100 sites
   (5/s at 100 sites; Poisson arrivals), each for a room drawn from all the sites' rooms,
   5.00-50.00, on the public listener; a delivery answered 429/503/5xx or not within 30 s is
   sent again after its Retry-After (at most 5 s; Stripe itself waits longer) until
   acknowledged. The first 30 s (every meter's first reading, which charges nothing) are not
   measured; then ``--duration`` seconds are.
3. Backfill (from half a poll slot after the steady window, so that its first post meets no
   site's poll): the steady load goes on while one more site, whose Home Assistant was offline,
   sends its backlog (``--backfill-readings``, 432,000 = 100 meters x 4,320 readings, one a
   minute for 3 days, oldest first) in batches of 5,000 as the integration's queue sends it,
   followed by its new polls; until the backlog is acknowledged or ``--backfill-limit`` s.
4. Stop the load, wait for outstanding payments and events (at most 60 s), stop the service
   and run ``python -m prepaid_ledger verify`` on its database: it must say ok.

Progress goes to stderr; the results to stdout. What the figures mean (the steady sites'
requests SENT in the window, counted once every answer and event is in):
- readings/s committed: readings of batches answered 2xx within the window / its length
  (offered: S x meters / 30 s).
- batch p50/p99: from sending a batch to its 2xx answer; a batch not answered within 30 s
  counts as infinite (``inf``); shed batches (429/503) are counted under answers instead.
- webhook -> credited: from sending a payment's first delivery to the arrival, on its site's
  event stream, of the ``account.updated`` event whose balance rose by the payment's amount
  (what the site's Home Assistant learns; time_to_credit.py follows the same path on to the
  entity and the relay). Never seen: infinite.
- event delivery: from the client receiving the 2xx answer (of a payment, or of a batch for
  each of its accounts whose balance moved) to the client receiving that ``account.updated``
  event (matched by account and balance) on the site's stream. An event received before the
  answer counts as 0 ms (the share is printed); a missing one as infinite. The client cannot
  see the commit; the answer leaves after it, so this is commit -> stream less the time the
  answer took to arrive (both clocks are this process's).
- answers: every answer other than 2xx, by kind (``timeout``: none within 30 s; ``error``:
  connection failures) and the streams' failures; "all 2xx" means there was none.
- CPU: the machine's (all cores, from /proc/stat, so it includes other work), the ledger
  process's and this bench's own, in % of one core; bench loop lag p99: how late this
  process's event loop woke (its own share of every latency above).
- backfill readings/s: backlog readings acknowledged / time from its first post to the last
  acknowledgement (or to the limit). Beside it, the other sites' figures during it.

A size saturates the machine when its steady batches are not answered within their 30 s (batch
p99 infinite) or under 90 % of the offered readings are committed; larger sizes are then not
run on that back end. The table at the end has one row per back end and size. The last line
gives the 100-site run (else the largest run): readings/s, credit p99 and event p99 of
PostgreSQL (the fleet path), and the backfill rate on each back end:
``fleet: sites=100 meters=10000 readings_per_s=N credit_p99_ms=N event_p99_ms=N
backfill_pg_per_s=N backfill_sqlite_per_s=N``.

How long: per size and back end, the setup (2 requests per room, then every site's accounts
listed once; about 10 s per site on a loaded 2-core machine), 30 s + ``--duration``, the
backfill (at most ``--backfill-limit``), up to 90 s of draining, and ``verify``. At 1,000
backfilled readings/s a full run (10, 100, 300 sites, 300 s, both back ends) takes 2 to 3
hours, most of it the setup of the 300-site ledgers; ``--backend postgres`` halves it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import random
import re
import shutil
import signal
import sys
import tempfile
import time
from collections import Counter, defaultdict, deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import islice
from pathlib import Path
from typing import Any, Final

import aiohttp
from prepaid_meter_contract.client import STREAM_IDLE_S
from prepaid_meter_contract.sse import SseStream

from custom_components.prepaid_meter.reading_queue import BATCH_SIZE

sys.path.insert(0, str(Path(__file__).parent))
from ingest_batches import Room, fresh_database, make_rooms
from ledger_throughput import (
    TOU_TARIFF,
    Running,
    call,
    checkout_completed,
    percentile,
    postgres,
    running_service,
    stripe_signed,
)

#: How often every site polls its meters and posts the readings.
INTERVAL_S: Final = 30.0
#: A request not answered in this long is given up (and sent again).
TIMEOUT_S: Final = INTERVAL_S
#: A backlog of 4,320 readings per meter is 3 days of one reading a minute.
BACKLOG_STEP_S: Final = 60.0
#: The longest a payment waits before it is delivered again (Retry-After, capped).
RETRY_CAP_S: Final = 5.0
#: Sites furnished at once during setup.
SETUP_CONCURRENCY: Final = 8
#: After the load stops: how long outstanding payments may still be delivered.
DRAIN_S: Final = 60.0
#: After that: how long events still on their way are waited for.
EVENT_GRACE_S: Final = 10.0
INF: Final = math.inf

type Reading = dict[str, int | str]


class Queue:
    """A site's readings not yet acknowledged, oldest first: its backlog, then its polls.

    The backlog is made as it is sent (432,000 reading objects would only cost memory).
    """

    def __init__(self, backlog: Iterator[Reading] | None = None, size: int = 0) -> None:
        self._source = backlog or iter(())
        self._early: deque[Reading] = deque()
        self._live: deque[Reading] = deque()
        self.backlog_left = size

    def __bool__(self) -> bool:
        return self.backlog_left > 0 or bool(self._live)

    def add(self, readings: list[Reading]) -> None:
        self._live.extend(readings)

    def head(self, count: int) -> list[Reading]:
        while len(self._early) < min(count, self.backlog_left):
            self._early.append(next(self._source))
        batch = list(islice(self._early, count))
        batch += islice(self._live, count - len(batch))
        return batch

    def acknowledge(self, count: int) -> int:
        """Drop the first COUNT readings; return how many of them were backlog."""
        early = min(count, len(self._early))
        for _ in range(early):
            self._early.popleft()
        for _ in range(count - early):
            self._live.popleft()
        self.backlog_left -= early
        return early


@dataclass(eq=False)
class Site:
    """One Home Assistant: its site, token, rooms, queue and event stream."""

    id: int
    token: str
    rooms: list[Room]
    phase: float
    backfill: bool = False
    queue: Queue = field(default_factory=Queue)
    flusher: asyncio.Task[None] | None = None
    connected: asyncio.Event = field(default_factory=asyncio.Event)
    backlog_done_at: float | None = None
    drained: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class Batch:
    backfill: bool
    sent: float
    answered: float
    status: str
    readings: int


@dataclass
class Payment:
    account_id: int
    amount: int
    body: str
    sent: float
    attempts: list[tuple[float, str]] = field(default_factory=list)
    acked: float | None = None
    outcome: str | None = None
    credited: float | None = None


@dataclass(frozen=True)
class Expected:
    """An ``account.updated`` event a 2xx answer promises: (account, balance) after it."""

    key: tuple[int, int]
    sent: float
    answered: float
    backfill: bool


@dataclass(frozen=True)
class Window:
    """A measured stretch of time (perf_counter) and the CPU used in it."""

    start: float
    end: float
    cpu: dict[str, float]


@dataclass
class Figures:
    """What one window measured (requests sent in it)."""

    seconds: float
    offered_per_s: float
    committed_per_s: float
    batch_ms: list[float]
    credit_ms: list[float]
    event_ms: list[float]
    events_early: int
    answers: Counter[str]
    cpu: dict[str, float]
    lag_p99_ms: float

    def p(self, values: list[float], q: float) -> float:
        return percentile(values, q) if values else math.nan

    def line(self) -> str:
        missing = sum(1 for v in self.event_ms if v == INF)
        early = 100 * self.events_early / len(self.event_ms) if self.event_ms else 0.0
        return (
            f"{self.offered_per_s:.0f} readings/s offered, {self.committed_per_s:.0f} committed; "
            f"batch p50 {ms(self.p(self.batch_ms, 0.5))} p99 {ms(self.p(self.batch_ms, 0.99))} "
            f"({len(self.batch_ms)} batches); webhook->credited p50 "
            f"{ms(self.p(self.credit_ms, 0.5))} p99 {ms(self.p(self.credit_ms, 0.99))} "
            f"({len(self.credit_ms)} payments); event delivery p50 "
            f"{ms(self.p(self.event_ms, 0.5))} p99 {ms(self.p(self.event_ms, 0.99))} "
            f"({len(self.event_ms)} events, {early:.0f} % before the answer, {missing} missing); "
            f"answers: {answers_text(self.answers)}; CPU: machine {self.cpu['machine']:.0f} % "
            f"of {os.cpu_count()} cores, ledger {self.cpu['ledger']:.0f} %, bench "
            f"{self.cpu['bench']:.0f} %; bench loop lag p99 {self.lag_p99_ms:.0f} ms"
        )


def ms(value: float) -> str:
    if math.isnan(value):
        return "n/a"
    return "inf" if value == INF else f"{value:.0f} ms"


def answers_text(answers: Counter[str]) -> str:
    if not answers:
        return "all 2xx"
    return ", ".join(f"{kind} x{n}" for kind, n in sorted(answers.items()))


def progress(text: str) -> None:
    """Where a long run is (on stderr: stdout has the results)."""
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


async def sleep_until(moment: float) -> None:
    await asyncio.sleep(max(0.0, moment - time.perf_counter()))


class Cpu:
    """CPU time of the machine, the ledger process and this process, between two snapshots."""

    TICK: Final = os.sysconf("SC_CLK_TCK")

    def __init__(self, ledger_pid: int) -> None:
        self.ledger_pid = ledger_pid

    def snapshot(self) -> tuple[float, float, float, float, float]:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
        ticks = [int(v) for v in fields]
        idle = ticks[3] + ticks[4]  # idle + iowait
        try:
            rest = Path(f"/proc/{self.ledger_pid}/stat").read_text().rsplit(")", 1)[1].split()
            ledger = (int(rest[11]) + int(rest[12])) / self.TICK
        except OSError:
            ledger = 0.0
        return time.perf_counter(), sum(ticks[:8]), idle, ledger, time.process_time()

    @staticmethod
    def between(
        a: tuple[float, float, float, float, float], b: tuple[float, float, float, float, float]
    ) -> dict[str, float]:
        wall = max(b[0] - a[0], 1e-9)
        total, idle = b[1] - a[1], b[2] - a[2]
        return {
            "machine": 100 * (total - idle) / total if total else 0.0,
            "ledger": 100 * (b[3] - a[3]) / wall,
            "bench": 100 * (b[4] - a[4]) / wall,
        }


class Run:
    """One size on one back end: the load, what it measured, and the events seen."""

    def __init__(
        self, http: aiohttp.ClientSession, ledger: Running, args: argparse.Namespace
    ) -> None:
        self.http = http
        self.ledger = ledger
        self.seed = args.seed
        self.rng = random.Random(args.seed)
        per_meter = args.backfill_readings // args.meters
        # The meters' loads start before the oldest backlog reading.
        self.origin = datetime.now(UTC) - timedelta(seconds=BACKLOG_STEP_S * per_meter, days=1)
        self.loads: dict[int, tuple[float, float]] = {}
        self.batches: list[Batch] = []
        self.payments: list[Payment] = []
        self.expected: list[Expected] = []
        self.arrivals: dict[tuple[int, int], float] = {}
        self.balances: dict[int, int] = {}
        self.awaiting: defaultdict[int, list[Payment]] = defaultdict(list)
        self.stream_answers: Counter[str] = Counter()
        self.unexplained_rises = 0
        self.held = 0
        self.lag: list[tuple[float, float]] = []
        self.deliveries: set[asyncio.Task[None]] = set()
        self.stopping = False
        self.give_up_at = INF
        self.backlog_acked = 0

    # The meters ---------------------------------------------------------------------------

    def value(self, meter_id: int, at: datetime) -> str:
        """The meter's register at AT: a constant load (0.5-5 kW) since the origin."""
        if meter_id not in self.loads:
            rng = random.Random(f"{self.seed} {meter_id}")
            self.loads[meter_id] = (rng.uniform(100, 5000), rng.uniform(0.5, 5.0))
        base, kw = self.loads[meter_id]
        return f"{base + kw * (at - self.origin).total_seconds() / 3600:.3f}"

    def poll_readings(self, site: Site) -> list[Reading]:
        now = datetime.now(UTC)
        at = now.isoformat()
        return [
            {"meter_id": r.meter_id, "value": self.value(r.meter_id, now), "at": at}
            for r in site.rooms
        ]

    def backlog(self, site: Site, per_meter: int, end: datetime) -> Iterator[Reading]:
        """PER_METER readings a minute apart of every meter, ending a minute before END."""
        for step in range(per_meter):
            moment = end - timedelta(seconds=BACKLOG_STEP_S * (per_meter - step))
            at = moment.isoformat()
            for room in site.rooms:
                yield {
                    "meter_id": room.meter_id,
                    "value": self.value(room.meter_id, moment),
                    "at": at,
                }

    # Requests -------------------------------------------------------------------------------

    async def post(
        self, url: str, *, headers: dict[str, str], **kwargs: Any
    ) -> tuple[str, Any, str | None]:
        """POST; return the status ("timeout", "error" without an answer), body, Retry-After."""
        try:
            async with self.http.post(
                url, headers=headers, timeout=aiohttp.ClientTimeout(total=TIMEOUT_S), **kwargs
            ) as resp:
                try:
                    body = await resp.json(content_type=None)
                except ValueError:
                    body = None
                return str(resp.status), body, resp.headers.get("Retry-After")
        except TimeoutError:
            return "timeout", None, None
        except aiohttp.ClientError:
            return "error", None, None

    async def poll(self, site: Site, start: float) -> None:
        """Every 30 s queue one reading per meter and send the queue, as the integration does."""
        for k in range(sys.maxsize):
            await sleep_until(start + site.phase + k * INTERVAL_S)
            site.queue.add(self.poll_readings(site))
            if site.flusher is None or site.flusher.done():
                site.flusher = asyncio.create_task(self.flush(site))

    async def flush(self, site: Site) -> None:
        """Send the queue in batches, one at a time, until it is empty or a batch fails."""
        auth = {"Authorization": f"Bearer {site.token}"}
        while site.queue and not self.stopping:
            batch = site.queue.head(BATCH_SIZE)
            sent = time.perf_counter()
            status, body, _ = await self.post(
                self.ledger.base + "/api/v1/readings", headers=auth, json={"readings": batch}
            )
            answered = time.perf_counter()
            self.batches.append(Batch(site.backfill, sent, answered, status, len(batch)))
            if status != "200":
                return  # the readings stay queued; the next poll sends them again
            self.backlog_acked += site.queue.acknowledge(len(batch))
            if site.backfill and not site.queue.backlog_left and site.backlog_done_at is None:
                site.backlog_done_at = answered
                site.drained.set()
            for meter in body["meters"]:
                self.held += meter["held"] + meter["flagged"]
                if meter["charged_minor"] or meter["standing_charged_minor"]:
                    key = (meter["account_id"], meter["balance_minor"])
                    self.expected.append(Expected(key, sent, answered, site.backfill))

    async def pay(self, rooms: list[Room], rate: float) -> None:
        """Payments for random rooms, Poisson arrivals at RATE per second."""
        due = time.perf_counter()
        while True:
            due += self.rng.expovariate(rate)
            await sleep_until(due)
            room = self.rng.choice(rooms)
            amount = self.rng.randrange(500, 5001)
            payment = Payment(
                room.account_id,
                amount,
                checkout_completed(room.number, amount),
                time.perf_counter(),
            )
            self.payments.append(payment)
            self.awaiting[room.account_id].append(payment)
            task = asyncio.create_task(self.deliver(payment))
            self.deliveries.add(task)
            task.add_done_callback(self.deliveries.discard)

    async def deliver(self, payment: Payment) -> None:
        """Deliver until acknowledged, as Stripe does (each delivery signed anew)."""
        url = self.ledger.public + "/webhooks/stripe"
        while True:
            sent = time.perf_counter()
            status, body, retry_after = await self.post(
                url, headers=stripe_signed(payment.body), data=payment.body
            )
            payment.attempts.append((sent, status))
            if status == "200":
                payment.acked = time.perf_counter()
                payment.outcome = (body or {}).get("outcome")
                return
            if (
                status.startswith("4") and status != "429"
            ) or time.perf_counter() > self.give_up_at:
                return
            delay = float(retry_after) if retry_after and retry_after.isdigit() else 1.0
            await asyncio.sleep(min(delay, RETRY_CAP_S))

    # The event streams ---------------------------------------------------------------------

    async def stream(self, site: Site) -> None:
        """Hold the site's event stream open (resuming after a break) and time its events."""
        last_id = "latest"
        url = self.ledger.base + "/api/v1/events"
        # As the integration's client: silence for STREAM_IDLE_S means the stream is dead.
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=STREAM_IDLE_S)
        while True:
            headers = {"Authorization": f"Bearer {site.token}", "Last-Event-ID": last_id}
            try:
                async with self.http.get(url, headers=headers, timeout=timeout) as resp:
                    if resp.status != 200:
                        self.stream_answers[f"stream {resp.status}"] += 1
                        await asyncio.sleep(2)
                        continue
                    parser = SseStream()
                    async for chunk in resp.content.iter_any():
                        now = time.perf_counter()
                        for event in parser.feed(chunk):
                            last_id = self.on_event(site, event.event, event.data, now) or last_id
                            if event.id:
                                last_id = event.id
            except TimeoutError:
                self.stream_answers[f"stream silent for {STREAM_IDLE_S} s"] += 1
            except aiohttp.ClientError:
                self.stream_answers["stream error"] += 1
            self.stream_answers["stream reconnect"] += 1
            await asyncio.sleep(1)

    def on_event(self, site: Site, kind: str, data: str, now: float) -> str | None:
        if kind == "stream.hello":
            site.connected.set()
            return str(json.loads(data)["last_event_id"])
        if kind == "stream.reset":
            self.stream_answers["stream reset"] += 1
        if kind != "account.updated":
            return None
        found = json.loads(data)
        account, balance = int(found["account_id"]), int(found["balance_minor"])
        self.arrivals.setdefault((account, balance), now)
        before = self.balances.get(account)
        self.balances[account] = balance
        if before is None or balance <= before:
            return None
        waiting = self.awaiting.get(account)
        if not waiting:
            self.unexplained_rises += 1
            return None
        paid = next((p for p in waiting if p.amount == balance - before), waiting[0])
        waiting.remove(paid)
        paid.credited = now
        return None

    async def watch_loop(self) -> None:
        """How late this process's event loop wakes (its share of every latency)."""
        while True:
            before = time.perf_counter()
            await asyncio.sleep(0.1)
            self.lag.append((before, (time.perf_counter() - before - 0.1) * 1000))

    # Figures -------------------------------------------------------------------------------

    def figures(self, window: Window, offered_per_s: float) -> Figures:
        """The steady sites' figures for requests sent in the window (once all are answered)."""
        start, end = window.start, window.end
        steady = [b for b in self.batches if not b.backfill]
        sent = [b for b in steady if start <= b.sent < end]
        committed = sum(
            b.readings for b in steady if b.status == "200" and start <= b.answered < end
        )
        answers: Counter[str] = Counter(f"readings {b.status}" for b in sent if b.status != "200")
        batch_ms = [
            (b.answered - b.sent) * 1000 if b.status == "200" else INF
            for b in sent
            if b.status in {"200", "timeout"}
        ]
        paid = [p for p in self.payments if start <= p.sent < end]
        for payment in self.payments:
            answers.update(
                f"payment {status}"
                for at, status in payment.attempts
                if start <= at < end and status != "200"
            )
        credit_ms = [(p.credited - p.sent) * 1000 if p.credited else INF for p in paid]
        delays = [
            (self.arrivals[e.key] - e.answered) * 1000 if e.key in self.arrivals else INF
            for e in self.expected
            if not e.backfill and start <= e.sent < end
        ]
        delays += [
            (p.credited - p.acked) * 1000 if p.credited else INF
            for p in paid
            if p.acked is not None
        ]
        return Figures(
            seconds=end - start,
            offered_per_s=offered_per_s,
            committed_per_s=committed / (end - start),
            batch_ms=batch_ms,
            credit_ms=credit_ms,
            event_ms=[max(0.0, d) for d in delays],
            events_early=sum(1 for d in delays if d < 0),
            answers=answers,
            cpu=window.cpu,
            lag_p99_ms=percentile(
                [lag for at, lag in self.lag if start <= at < end] or [0.0], 0.99
            ),
        )

    def settled(self) -> bool:
        payments = all(p.credited for p in self.payments if p.acked is not None)
        return payments and all(e.key in self.arrivals for e in self.expected)

    def summary(self) -> str:
        unacked = sum(1 for p in self.payments if p.acked is None)
        unseen = sum(1 for p in self.payments if p.acked is not None and p.credited is None)
        outcomes = Counter(p.outcome for p in self.payments if p.acked is not None)
        return (
            f"payments: {len(self.payments)} sent, {unacked} never acknowledged, {unseen} "
            f"acknowledged but never seen credited on the stream; answers {dict(outcomes)}; "
            f"balance rises no payment explains: {self.unexplained_rises}; readings held or "
            f"flagged by the guard: {self.held}; streams: {answers_text(self.stream_answers)}"
        )


@dataclass
class Outcome:
    """What one size on one back end measured."""

    backend: str
    sites: int
    meters: int
    setup_s: float
    listing: str
    steady: Figures
    backfill: Figures | None = None
    backfill_per_s: float = math.nan
    backfill_note: str = ""
    verify: str = "not run"
    notes: list[str] = field(default_factory=list)

    @property
    def saturated(self) -> str | None:
        p99 = percentile(self.steady.batch_ms, 0.99) if self.steady.batch_ms else INF
        if p99 == INF:
            return "batches not answered within their 30 s"
        if self.steady.committed_per_s < 0.9 * self.steady.offered_per_s:
            return "under 90 % of the offered readings committed"
        return None


#: Hours of the tariff's day band (its dearest) that lie before the bench starts.
DAY_BAND_BEFORE_START_H: Final = 2


def fleet_tariff(now: datetime) -> dict[str, Any]:
    """The benches' time-of-use tariff, its day turned so that this run falls in its day band.

    The same polls cross fewer cents at a cheaper price, and each cent crossed is an
    ``account.updated`` event: with the clock's own bands a run after 22:00 sent about half the
    events of one at 21:00, so runs at different hours did not compare. Turned, every run's
    steady phase is priced at the day price (the heaviest load) for the 13 hours after it starts.
    The rooms' time zone is UTC.
    """
    day_start = int(TOU_TARIFF["segments"][1]["start"][:2])
    shift = now.hour - DAY_BAND_BEFORE_START_H - day_start
    starts = sorted(
        ((int(segment["start"][:2]) + shift) % 24, segment["price"])
        for segment in TOU_TARIFF["segments"]
    )
    if starts[0][0] != 0:  # the band that runs over midnight also starts the day
        starts.insert(0, (0, starts[-1][1]))
    segments = [{"start": f"{hour:02d}:00", "price": price} for hour, price in starts]
    return TOU_TARIFF | {"name": "Fleet", "segments": segments}


async def furnish(
    http: aiohttp.ClientSession, base: str, count: int, meters: int, *, backfill: bool
) -> tuple[list[Site], Site | None]:
    """Create COUNT sites (and the backfill site) with their rooms and tokens."""
    tariff = await call(
        http, "POST", base + "/api/v1/tariffs", json=fleet_tariff(datetime.now(UTC))
    )
    gate = asyncio.Semaphore(SETUP_CONCURRENCY)

    async def one(name: str, phase: float) -> Site:
        async with gate:
            site = await call(http, "POST", base + "/api/v1/sites", json={"name": name})
            rooms = await make_rooms(http, base, name, meters, tariff["id"], site["id"])
            token = await call(
                http,
                "POST",
                base + "/api/v1/tokens",
                json={"scope": "integration", "site_id": site["id"], "name": f"HA {name}"},
            )
            return Site(site["id"], token["token"], rooms, phase, backfill=name == "backfill")

    made = await asyncio.gather(
        *(one(f"site {i}", i * INTERVAL_S / count) for i in range(count)),
        *([one("backfill", 0.0)] if backfill else []),
    )
    return (list(made[:count]), made[count] if backfill else None)


async def list_accounts(
    http: aiohttp.ClientSession, base: str, token: str | None = None
) -> tuple[list[dict[str, Any]], int, float]:
    """Every account the token sees, page by page: (accounts, pages, slowest page in s)."""
    headers = {"Authorization": f"Bearer {token}"} if token else None
    found: list[dict[str, Any]] = []
    params: dict[str, str] = {"limit": "1000"}
    pages, slowest = 0, 0.0
    while True:
        started = time.perf_counter()
        page = await call(http, "GET", base + "/api/v1/accounts", headers=headers, params=params)
        slowest = max(slowest, time.perf_counter() - started)
        pages += 1
        found += page["accounts"]
        if not page.get("next_cursor"):
            return found, pages, slowest
        params["cursor"] = page["next_cursor"]


async def read_balances(run: Run, sites: list[Site]) -> None:
    """Wait for every site's stream, then read its balances (its token, the paged list)."""
    async with asyncio.timeout(120):
        await asyncio.gather(*(site.connected.wait() for site in sites))
    gate = asyncio.Semaphore(SETUP_CONCURRENCY)

    async def balances(site: Site) -> None:
        async with gate:
            accounts, _, _ = await list_accounts(run.http, run.ledger.base, site.token)
        if {a["id"] for a in accounts} != {room.account_id for room in site.rooms}:
            raise RuntimeError(f"site {site.id}'s token lists other accounts than its own")
        run.balances.update({a["id"]: a["balance_minor"] for a in accounts})

    await asyncio.gather(*(balances(site) for site in sites))


async def measure(ledger: Running, args: argparse.Namespace, count: int, backend: str) -> Outcome:
    """Set up COUNT sites, run the steady load and the backfill, and collect the figures."""
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as http:
        began = time.perf_counter()
        backfill_on = args.backfill_readings >= args.meters
        sites, late = await furnish(http, ledger.base, count, args.meters, backfill=backfill_on)
        setup_s = time.perf_counter() - began
        accounts, pages, slowest = await list_accounts(http, ledger.base)
        listing = (
            f"the landlord pages through all {len(accounts)} accounts in {pages} pages of "
            f"<=1000: {time.perf_counter() - began - setup_s:.1f} s (slowest page "
            f"{slowest * 1000:.0f} ms)"
        )
        progress(f"{backend}, {count} sites: set up in {setup_s:.0f} s; {listing}")
        run = Run(http, ledger, args)
        everyone = sites + ([late] if late else [])
        background = [asyncio.create_task(run.stream(site)) for site in everyone]
        background.append(asyncio.create_task(run.watch_loop()))
        load: list[asyncio.Task[None]] = []
        try:
            await read_balances(run, everyone)
            cpu = Cpu(ledger.pid)
            offered = count * args.meters / INTERVAL_S
            start = time.perf_counter() + 0.5
            load += [asyncio.create_task(run.poll(site, start)) for site in sites]
            rooms = [room for site in sites for room in site.rooms]
            if args.payments > 0:
                load.append(asyncio.create_task(run.pay(rooms, args.payments * count / 100)))
            await sleep_until(start + INTERVAL_S)  # every meter's first (baseline) reading
            since = cpu.snapshot()
            progress(f"{backend}, {count} sites: measuring {args.duration:.0f} s of steady load")
            await sleep_until(since[0] + args.duration)
            until = cpu.snapshot()
            steady = Window(since[0], until[0], Cpu.between(since, until))
            # Half a slot on, so that the backlog's first post meets no site's poll.
            await asyncio.sleep(INTERVAL_S / count / 2)
            late_run = await backfill(run, late, args, cpu, load) if late else None
            await stop(run, everyone, load)
        finally:
            for task in background + load:
                task.cancel()
            await asyncio.gather(*background, *load, return_exceptions=True)
    outcome = Outcome(backend, count, args.meters, setup_s, listing, run.figures(steady, offered))
    if late_run is not None:
        window, outcome.backfill_per_s, outcome.backfill_note = late_run
        outcome.backfill = run.figures(window, offered)
    outcome.notes.append(run.summary())
    return outcome


async def backfill(
    run: Run, site: Site, args: argparse.Namespace, cpu: Cpu, load: list[asyncio.Task[None]]
) -> tuple[Window, float, str]:
    """Send the late site's backlog (then its polls) while the others keep their load.

    Return the window it took, the backlog readings acknowledged per second, and a note.
    """
    per_meter = args.backfill_readings // args.meters
    size = per_meter * len(site.rooms)
    site.queue = Queue(run.backlog(site, per_meter, datetime.now(UTC)), size)
    before = cpu.snapshot()
    progress(f"backfill of {size} readings (at most {args.backfill_limit:.0f} s)")
    load.append(asyncio.create_task(run.poll(site, before[0])))
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(site.drained.wait(), args.backfill_limit)
    after = cpu.snapshot()
    end = site.backlog_done_at or after[0]
    posts = [b for b in run.batches if b.backfill]
    failed = Counter(b.status for b in posts if b.status != "200")
    note = (
        f"{run.backlog_acked} of {size} backlog readings in {end - before[0]:.1f} s"
        f"{'' if site.backlog_done_at else ' (limit reached)'}; {len(posts)} posts of <="
        f"{BATCH_SIZE}, not 2xx: {answers_text(failed) if failed else 'none'}"
    )
    window = Window(before[0], end, Cpu.between(before, after))
    return window, run.backlog_acked / (end - before[0]), note


async def stop(run: Run, sites: list[Site], load: list[asyncio.Task[None]]) -> None:
    """Stop the load; let outstanding payments and events arrive (bounded)."""
    run.stopping = True
    run.give_up_at = time.perf_counter() + DRAIN_S
    for task in load:
        task.cancel()
    await asyncio.gather(*load, return_exceptions=True)
    progress("load stopped; waiting for outstanding answers and events")
    pending = [s.flusher for s in sites if s.flusher is not None] + list(run.deliveries)
    if pending:
        await asyncio.wait(pending, timeout=DRAIN_S + TIMEOUT_S)
    for _ in range(int(EVENT_GRACE_S * 10)):  # events still on their way
        if run.settled():
            break
        await asyncio.sleep(0.1)


async def verify(data_dir: Path, url: str | None) -> str:
    """``prepaid-ledger verify`` on the run's database."""
    where = ["--database-url", url] if url else ["--data-dir", str(data_dir)]
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "prepaid_ledger",
        "verify",
        *where,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await proc.communicate()
    lines = out.decode().strip().splitlines()
    if proc.returncode == 0:
        return "ok"
    return f"FAILED ({lines[-1] if lines else proc.returncode})"


def log_summary(path: Path) -> str:
    """The service log's warnings and errors, by logger, with one example each."""
    kinds: Counter[str] = Counter()
    example: dict[str, str] = {}
    pattern = re.compile(r"\s(WARNING|ERROR|CRITICAL) ([\w.]+): (.*)")
    with contextlib.suppress(OSError), path.open(errors="replace") as log:
        for line in log:
            if match := pattern.search(line):
                kind = f"{match[1]} {match[2]}"
                kinds[kind] += 1
                example.setdefault(kind, match[3][:140])
    if not kinds:
        return "service log: no warnings or errors"
    return "service log: " + "; ".join(
        f"{k} x{n} (e.g. {example[k]!r})" for k, n in kinds.most_common(4)
    )


async def drop_database(server: str, name: str) -> None:
    import asyncpg  # noqa: PLC0415 - only with PostgreSQL

    conn = await asyncpg.connect(server.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
    finally:
        await conn.close()


async def one_size(
    args: argparse.Namespace, backend: str, count: int, root: Path, server: str | None
) -> Outcome:
    data = root / f"{backend}-{count}"
    data.mkdir()
    name = f"fleet_{count}"
    url = None if server is None else await fresh_database(server, name)
    try:
        async with running_service(data, url) as ledger:
            outcome = await measure(ledger, args, count, backend)
        outcome.verify = await verify(data, url)
        outcome.notes.append(log_summary(data / "service.log"))
    finally:
        if server is not None:
            await drop_database(server, name)
        shutil.rmtree(data, ignore_errors=True)
    return outcome


def report(outcome: Outcome) -> None:
    print(
        f"{outcome.backend}, {outcome.sites} sites x {outcome.meters} meters: setup "
        f"{outcome.setup_s:.0f} s; {outcome.listing}"
    )
    print(f"  steady {outcome.steady.seconds:.0f} s: {outcome.steady.line()}")
    if outcome.backfill is not None:
        print(f"  backfill: {outcome.backfill_per_s:.0f} readings/s ({outcome.backfill_note})")
        print(f"  the other sites meanwhile: {outcome.backfill.line()}")
    for note in outcome.notes:
        print(f"  {note}")
    print(f"  verify: {outcome.verify}")
    if outcome.saturated:
        print(f"  saturated: {outcome.saturated}")
    sys.stdout.flush()


def p99(values: list[float]) -> str:
    if not values:
        return "n/a"
    value = percentile(values, 0.99)
    return "inf" if value == INF else f"{value:.0f}"


def table(outcomes: list[Outcome]) -> None:
    head = (
        "back end   sites  meters  offered/s  committed/s  batch p50 ms  batch p99 ms  "
        "credit p99 ms  event p99 ms  not 2xx  backfill/s  credit p99 ms (backfill)  verify"
    )
    print(head)
    for o in outcomes:
        s = o.steady
        p50 = percentile(s.batch_ms, 0.5) if s.batch_ms else math.nan
        rate = "n/a" if math.isnan(o.backfill_per_s) else f"{o.backfill_per_s:.0f}"
        during = p99(o.backfill.credit_ms) if o.backfill else "n/a"
        print(
            f"{o.backend:<9}  {o.sites:>5}  {o.sites * o.meters:>6}  {s.offered_per_s:>9.0f}  "
            f"{s.committed_per_s:>11.0f}  {ms(p50).removesuffix(' ms'):>12}  "
            f"{p99(s.batch_ms):>12}  {p99(s.credit_ms):>13}  {p99(s.event_ms):>12}  "
            f"{sum(s.answers.values()):>7}  {rate:>10}  {during:>25}  {o.verify}"
        )


def last_line(outcomes: list[Outcome]) -> str:
    sizes = {o.sites for o in outcomes}
    size = 100 if 100 in sizes else max(sizes, default=0)
    found = {o.backend: o for o in outcomes if o.sites == size}
    main = found.get("postgres") or found.get("sqlite")

    def rate(backend: str) -> str:
        o = found.get(backend)
        return "n/a" if o is None or math.isnan(o.backfill_per_s) else f"{o.backfill_per_s:.0f}"

    meters = main.meters * size if main else 0
    figures = (
        f"readings_per_s={main.steady.committed_per_s:.0f} "
        f"credit_p99_ms={p99(main.steady.credit_ms)} event_p99_ms={p99(main.steady.event_ms)}"
        if main
        else "readings_per_s=n/a credit_p99_ms=n/a event_p99_ms=n/a"
    )
    return (
        f"fleet: sites={size} meters={meters} {figures} "
        f"backfill_pg_per_s={rate('postgres')} backfill_sqlite_per_s={rate('sqlite')}"
    )


async def run(args: argparse.Namespace) -> None:
    main_task = asyncio.current_task()
    if main_task is not None:  # SIGTERM (e.g. timeout): stop the ledgers, remove the data
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, main_task.cancel)
    sizes = [int(s) for s in args.sites.split(",")]
    backends = [b.strip() for b in args.backend.split(",")]
    outcomes: list[Outcome] = []
    saturated: set[str] = set()
    if not set(backends) <= {"sqlite", "postgres"}:
        raise SystemExit(f"--backend takes sqlite and/or postgres, not {args.backend!r}")
    throwaway = postgres() if "postgres" in backends else contextlib.nullcontext(None)
    with tempfile.TemporaryDirectory(prefix="ledger-bench-fleet-") as tmp, throwaway as pg:
        if pg is None and "postgres" in backends:
            print("postgres: binaries not installed, skipped")
            backends.remove("postgres")
        for count in sizes:
            for backend in backends:
                if backend in saturated:
                    continue
                server = pg if backend == "postgres" else None
                outcome = await one_size(args, backend, count, Path(tmp), server)
                report(outcome)
                outcomes.append(outcome)
                if outcome.saturated:
                    saturated.add(backend)
                    print(f"{backend}: larger sizes skipped (this one saturated the machine)")
    table(outcomes)
    print(last_line(outcomes))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--sites", default="10,100,300", help="sizes to run, in turn")
    parser.add_argument("--meters", type=int, default=100, help="meters (rooms) per site")
    parser.add_argument("--duration", type=float, default=300.0, help="measured steady seconds")
    parser.add_argument(
        "--payments", type=float, default=5.0, help="payments per second per 100 sites"
    )
    parser.add_argument("--backfill-readings", type=int, default=432_000)
    parser.add_argument(
        "--backfill-limit", type=float, default=600.0, help="longest backfill (seconds)"
    )
    parser.add_argument("--backend", default="sqlite,postgres")
    parser.add_argument("--seed", type=int, default=1)
    asyncio.run(run(parser.parse_args()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
