"""Worker processes that write a site's backlog, so it does not share the event loop's core.

A Home Assistant back from an outage posts thousands of readings at once; pricing and writing
them is Python work that, on the service's one event loop, competes with every other site's
polls and payments for one core. The service hands the parts of such a batch to WORKERS
worker processes (``python -m prepaid_ledger.backlog_worker``, each started on first
use, stopped after IDLE_STOP_S without work) and keeps the loop for everyone else: parts that
share no meter and no account are written side by side (``lanes``), the others one after
another by one worker. A worker runs the very same ``readings.ingest`` in its own
transaction, at a lower CPU priority (a backlog is background work: the machine serves the
others' payments first), giving way between meters while the service has a payment in flight
(the count of them is shared: store/priority.py), and the service wakes the event streams
after each part.

SQLite has one writer for the whole database. A worker there reads and prices a part on a
snapshot (a plain BEGIN: it blocks no one), then asks the service for the writer
(ASK_FOR_WRITER); the service takes its own write lock for it, so its payments and polls
wait on the event loop behind the part's write (about ten milliseconds), not in SQLite's busy
loop, and grants it. The worker then checks that nothing its pricing read has moved
(store/snapshot_write.py, ``readings.PricedOn``; if something has, the part is priced again,
the writer still granted) and writes. A worker holding the writer longer than
WRITING_TIMEOUT_S is stopped. Measured with bench/fleet.py, 100 sites at the day price: the
backfill beside them 5,505 -> 9,039 readings/s, their credit p99 meanwhile 182 -> 168 ms.
Two earlier designs failed: a worker holding the writer for a whole part, pricing included,
only waited for it (3,800 readings/s against 6,100-7,400 in the service, the others' p99
256 ms); workers that only priced, the service checking and writing the parts, gained nothing
(4,463 readings/s: checking, unpickling and writing cost the service what pricing did).

The worker only speeds things up: if it cannot start, dies or does not answer, the service
writes the part itself (a part the worker did commit is then found as re-sent readings, which
are free), and tries the worker again later.

The two talk over the worker's stdin and stdout: length-prefixed pickles, one request and one
answer at a time (the worker is the service's own child; nothing else writes to these pipes).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import logging
import mmap
import os
import pickle
import struct
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import IO, Any, Final

from prepaid_meter_contract.readings import Reading, ReadingsResult

from prepaid_ledger.errors import InputError
from prepaid_ledger.services import readings
from prepaid_ledger.store.database import Database
from prepaid_ledger.store.priority import SHARED_COUNT

_LOGGER = logging.getLogger(__name__)
_HEADER: Final = struct.Struct(">I")
#: Seconds the worker may take to start (imports, engine); a slow single-board computer
#: needs a few.
START_TIMEOUT_S: Final = 60.0
#: Seconds one part may take in the worker before it is stopped and the service writes the
#: part itself (a part takes tens of milliseconds; this is for a worker that hangs).
PART_TIMEOUT_S: Final = 60.0
#: After the worker failed, parts are written in the service for this long before it is
#: started again.
RETRY_AFTER_S: Final = 60.0
#: A worker with no part to write for this long is stopped (its memory back to the machine);
#: the next backlog starts it again.
IDLE_STOP_S: Final = 300.0
#: Workers a backlog's parts are spread over. One worker waits for PostgreSQL a third of the
#: time and for the service a fifth; parts of other meters and accounts are written side by
#: side meanwhile (see ``lanes``).
WORKERS: Final = 2

#: A reading as it travels to the worker: its place in the batch, meter, value and time.
type WireReading = tuple[int, int, Decimal, datetime]


#: Seconds a worker may hold SQLite's writer (granted by the service) before it is stopped: the
#: write of a part takes about ten milliseconds; meanwhile the service's payments wait.
WRITING_TIMEOUT_S: Final = 10.0
#: The worker asks for SQLite's writer, the service grants it (store/snapshot_write.py).
ASK_FOR_WRITER: Final = ("writer?",)
WRITER_GRANTED: Final = ("writer",)

#: Readings per part the workers write (the service writes parts of ``readings.PART_SIZE``:
#: there a part holds the event loop, and on SQLite the one writer, while it is priced). A
#: worker holds SQLite's writer, or its accounts' row locks on PostgreSQL, only while it
#: writes, so bigger parts spread what every part costs (its checks, about twenty statements,
#: the commit) over more readings: on SQLite 1,000 readings held the writer 32 ms as one part
#: and 44 ms as two (100 meters, 50 readings each, in process). bench/fleet.py, 100 sites,
#: parts of 500 -> 1,000: the backfill beside them on SQLite 9,039 -> 11,712 readings/s, on
#: PostgreSQL 10,872 -> 14,374; the others' credit p99 meanwhile 168 -> 197 ms and 214 ->
#: 169 ms. Tried and reverted: cutting a batch into a multiple of WORKERS parts of up to
#: 1,250 (a backlog's 5,000 readings leave one worker three parts of 1,000 and the other two):
#: in five-minute runs one after the other the backfill was slower on both back ends (SQLite
#: 9,867 -> 9,040, PostgreSQL 11,509 -> 9,391 readings/s) and the others' credit p99 during it
#: higher (206 -> 257 ms, 206 -> 311 ms).
PART_SIZE: Final = 1000

#: How much lower the worker's CPU priority is than the service's (``nice``).
NICENESS: Final = 10


def can_serve(database_url: str) -> bool:
    """Whether backlogs are written by workers: PostgreSQL, or SQLite in a file (not memory)."""
    if database_url.startswith("sqlite"):
        return ":memory:" not in database_url and "mode=memory" not in database_url
    return database_url.startswith("postgresql")


def _frame(message: object) -> bytes:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return _HEADER.pack(len(data)) + data


def lanes(parts: Sequence[readings.Part], owners: dict[int, int], count: int) -> list[list[int]]:
    """Spread the parts of a batch (by index) over COUNT lanes that may be written side by side.

    Parts that share a meter or an account (OWNERS: meter -> account) stay in one lane, in
    order: a meter's later readings charge from where its earlier ones ended, and an account's
    state in the answer is the one its last part left. The groups go, in order of their first
    part, to the lane with the fewest readings so far.
    """
    group = list(range(len(parts)))

    def root(index: int) -> int:
        while group[index] != index:
            group[index] = group[group[index]]
            index = group[index]
        return index

    first_seen: dict[tuple[str, int], int] = {}
    for index, part in enumerate(parts):
        for _, reading in part:
            account = owners.get(reading.meter_id)
            keys = [("meter", reading.meter_id)]
            keys += [] if account is None else [("account", account)]
            for key in keys:
                other = first_seen.setdefault(key, index)
                group[root(index)] = root(other)
    members: dict[int, list[int]] = {}
    for index in range(len(parts)):
        members.setdefault(root(index), []).append(index)
    result: list[list[int]] = [[] for _ in range(max(1, count))]
    sizes = [0] * len(result)
    for indexes in sorted(members.values()):
        lane = sizes.index(min(sizes))
        result[lane].extend(indexes)
        sizes[lane] += sum(len(parts[index]) for index in indexes)
    return [sorted(lane) for lane in result if lane]


class BacklogWorkers:
    """The service's side: WORKERS processes, each started on first use, writing a batch's parts.

    One shared count of the service's payments in flight goes to every worker.
    """

    def __init__(self, database_url: str, count: int = WORKERS) -> None:
        #: Readings per part (``readings.split_batch``).
        self.part_size = PART_SIZE
        self._shared: tuple[IO[bytes], mmap.mmap] | None = None
        self.workers = [BacklogWorker(database_url, self._share) for _ in range(count)]

    def _share(self, db: Database) -> int:
        """Return the file descriptor of the memory where DB's lanes count payments in flight."""
        if self._shared is None:
            backing = tempfile.TemporaryFile()  # noqa: SIM115 - kept open while workers run
            backing.truncate(SHARED_COUNT.size)
            self._shared = (backing, mmap.mmap(backing.fileno(), SHARED_COUNT.size))
            db.lanes.publish_to(self._shared[1])
        return self._shared[0].fileno()

    async def write_parts(
        self, db: Database, parts: Sequence[readings.Part], actor: str, site_id: int | None
    ) -> list[ReadingsResult]:
        """Write PARTS (a batch, in order) in the workers, side by side where ``lanes`` allows.

        A part a worker cannot take is written by the service. The first error (by part) is
        raised once every lane has stopped; a lane stops at the first error anywhere, so later
        parts are not written (the client sends the batch again: written readings are free).
        """
        meter_ids = sorted({reading.meter_id for part in parts for _, reading in part})
        owners = await db.read(functools.partial(readings.meter_owners, meter_ids=meter_ids))
        results: list[ReadingsResult | None] = [None] * len(parts)
        failed: list[tuple[int, BaseException]] = []

        async def run(worker: BacklogWorker, lane: list[int]) -> None:
            for index in lane:
                if failed:
                    return
                try:
                    result = await worker.write(db, parts[index], actor, site_id)
                except Exception as err:  # noqa: BLE001 - raised below, after every lane stops
                    failed.append((index, err))
                    return
                results[index] = result

        await asyncio.gather(
            *(
                run(worker, lane)
                for worker, lane in zip(
                    self.workers, lanes(parts, owners, len(self.workers)), strict=False
                )
            )
        )
        if failed:
            raise min(failed, key=lambda failure: failure[0])[1]
        return [result for result in results if result is not None]

    async def close(self) -> None:
        """Stop the workers (the service is stopping): each finishes its part and exits."""
        await asyncio.gather(*(worker.close() for worker in self.workers))
        if self._shared is not None:
            backing, _mapped = self._shared  # the lanes keep the mapping; it goes with them
            self._shared = None
            backing.close()


class BacklogWorker:
    """One worker process: started on first use, handed one part at a time to write."""

    def __init__(self, database_url: str, share: Callable[[Database], int]) -> None:
        self._url = database_url
        #: Returns the descriptor of the shared count of payments in flight (BacklogWorkers).
        self._share = share
        self._process: asyncio.subprocess.Process | None = None
        self._lock = asyncio.Lock()  # one part at a time: one request, then its answer
        self._paused_until = 0.0
        self._idle_timer: asyncio.TimerHandle | None = None
        self._idle_stop: asyncio.Task[None] | None = None
        #: Parts the worker wrote (for the log when it stops).
        self.parts_written = 0

    async def write(
        self, db: Database, part: readings.Part, actor: str, site_id: int | None
    ) -> ReadingsResult:
        """Write PART in the worker, or in the service if the worker cannot now.

        Raises InputError as ``readings.ingest`` does (an unknown meter): nothing was written.
        """
        wire: list[WireReading] = [(i, r.meter_id, r.value, r.at) for i, r in part]
        written = await self._write_there(db, ("ingest", wire, actor, site_id))
        if written is None:
            return await readings.write_part(db, part, actor, site_id)
        return written

    async def _write_there(self, db: Database, request: tuple[Any, ...]) -> ReadingsResult | None:
        """Have the worker (started if need be) write the part in REQUEST; None if it cannot now.

        Raises InputError if it found one in the part.
        """
        async with self._lock, contextlib.AsyncExitStack() as writer:
            process = await self._running(db)
            if process is None:
                return None
            try:
                async with asyncio.timeout(PART_TIMEOUT_S) as budget:
                    answer = await self._call(process, request)
                    granted = False
                    while answer == ASK_FOR_WRITER:  # SQLite: held until the part's answer
                        if not granted:
                            await writer.enter_async_context(db.writer_held())
                            granted = True
                            when = asyncio.get_running_loop().time() + WRITING_TIMEOUT_S
                            budget.reschedule(min(when, budget.when() or when))
                        answer = await self._call(process, WRITER_GRANTED)
            except BaseException as err:
                # Cancelled, timed out or broken: the answer may still come, so the pipe can
                # no longer be trusted; stopping the worker also ends its transaction. It is
                # killed before the service's write lock is released (on leaving this block):
                # a write that comes next waits in SQLite's busy timeout only while it dies.
                self._stop_now(f"{type(err).__name__}: {err}")
                if isinstance(err, Exception):
                    return None
                raise
            finally:
                db.notify_change()  # what it committed goes out on the event streams
                self._stop_when_idle()
        match answer:
            case ("ok", str(result)):
                self.parts_written += 1
                return ReadingsResult.model_validate_json(result)
            case ("input_error", str(code), str(message), field):
                raise InputError(code, message, field if isinstance(field, str) else None)
            case _:
                _LOGGER.warning("the backlog worker could not take a part: %s", answer)
                return None

    async def _running(self, db: Database) -> asyncio.subprocess.Process | None:
        """Return the worker, started if need be; None while it is paused after a failure."""
        if self._process is not None and self._process.returncode is None:
            return self._process
        if time.monotonic() < self._paused_until:
            return None
        try:
            shared = self._share(db)
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                __name__,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                pass_fds=(shared,),
            )
        except OSError as err:
            self._pause(f"could not start: {err}")
            return None
        self._process = process
        try:
            async with asyncio.timeout(START_TIMEOUT_S):
                ready = await self._call(process, (self._url, shared))
        except BaseException as err:
            self._stop_now(f"did not start: {type(err).__name__}: {err}")
            if isinstance(err, Exception):
                return None
            raise
        _LOGGER.info("backlog worker started (pid %s): %s", process.pid, ready)
        return process

    @staticmethod
    async def _call(process: asyncio.subprocess.Process, message: object) -> object:
        stdin, stdout = process.stdin, process.stdout
        if stdin is None or stdout is None:  # pragma: no cover - both are pipes
            raise RuntimeError("the backlog worker has no pipes")
        stdin.write(_frame(message))
        await stdin.drain()
        (size,) = _HEADER.unpack(await stdout.readexactly(_HEADER.size))
        return pickle.loads(await stdout.readexactly(size))  # noqa: S301 - our own child

    def _pause(self, why: str) -> None:
        _LOGGER.warning(
            "backlog worker %s; the service writes backlogs itself for %.0f s", why, RETRY_AFTER_S
        )
        self._paused_until = time.monotonic() + RETRY_AFTER_S

    def _stop_now(self, why: str) -> None:
        process, self._process = self._process, None
        if process is not None and process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
        self._pause(why)

    def _stop_when_idle(self) -> None:
        """(Re)start the countdown after which an idle worker is stopped."""
        if self._idle_timer is not None:
            self._idle_timer.cancel()
        self._idle_timer = asyncio.get_running_loop().call_later(IDLE_STOP_S, self._on_idle)

    def _on_idle(self) -> None:
        self._idle_timer = None
        self._idle_stop = asyncio.create_task(
            self._shutdown("idle", unless_used=True), name="backlog worker idle"
        )

    async def close(self) -> None:
        """Stop the worker (the service is stopping): it finishes its part and exits."""
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        await self._shutdown("the service stops")

    async def _shutdown(self, why: str, *, unless_used: bool = False) -> None:
        """Close the worker's stdin and wait for it to exit (killed if it does not).

        UNLESS_USED: not if a part was written while this waited for the lock (its countdown
        started again).
        """
        async with self._lock:
            if unless_used and self._idle_timer is not None:
                return
            process, self._process = self._process, None
            if process is None or process.returncode is not None:
                return
            if process.stdin is not None:
                process.stdin.close()
            try:
                async with asyncio.timeout(10):
                    await process.wait()
            except TimeoutError:
                process.kill()
                await process.wait()
            _LOGGER.info("backlog worker stopped (%s); it wrote %d parts", why, self.parts_written)


# The worker's side.


def _receive(requests: IO[bytes]) -> object | None:
    """Return the next request, or None when the service closed the pipe."""
    header = requests.read(_HEADER.size)
    if len(header) < _HEADER.size:
        return None
    (size,) = _HEADER.unpack(header)
    request: object = pickle.loads(requests.read(size))  # noqa: S301 - the service started us
    return request


async def _write_part(
    db: Database, wire: Sequence[WireReading], actor: str, site_id: int | None
) -> tuple[Any, ...]:
    # Validated by the service already: rebuilt as they were, not parsed again.
    part = [(i, Reading.model_construct(meter_id=m, value=v, at=at)) for i, m, v, at in wire]
    try:
        result = await readings.write_part(db, part, actor, site_id)
    except InputError as err:
        return ("input_error", err.code, err.message, err.field)
    except Exception as err:  # the service writes the part itself and answers for it
        _LOGGER.warning("backlog worker: a part failed", exc_info=True)
        return ("failed", f"{type(err).__name__}: {err}")
    return ("ok", result.model_dump_json())


def main() -> None:
    """Serve the service's requests until it closes stdin."""
    replies = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # a stray print goes to the log
    requests = sys.stdin.buffer
    match _receive(requests):
        case (str(url), int(shared)):
            pass
        case _:
            return
    os.nice(NICENESS)
    loop = asyncio.new_event_loop()
    db = Database(url, pool_size=1, max_overflow=1)
    if db.is_sqlite:

        async def ask_for_writer() -> None:
            # The worker does nothing else meanwhile: waiting on the pipe blocks only it.
            replies.write(_frame(ASK_FOR_WRITER))
            replies.flush()
            if _receive(requests) != WRITER_GRANTED:
                raise RuntimeError("the service did not grant SQLite's writer")

        db.price_on_snapshots(ask_for_writer)
    db.lanes.watch(mmap.mmap(shared, SHARED_COUNT.size))  # give way to the service's payments
    gc.collect()
    gc.freeze()  # imports and the schema never die: keep them out of every collection
    replies.write(_frame(f"pid {os.getpid()}"))
    replies.flush()
    try:
        while (request := _receive(requests)) is not None:
            match request:
                case ("ingest", list(wire), str(actor), int() | None as site_id):
                    answer = loop.run_until_complete(_write_part(db, wire, actor, site_id))
                case _:
                    answer = ("failed", "unknown request")
            replies.write(_frame(answer))
            replies.flush()
    finally:
        loop.run_until_complete(db.close())
        loop.close()


if __name__ == "__main__":
    main()
