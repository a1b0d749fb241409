"""A landlord's finance system for the tests: a real HTTP server receiving accounting events.

It does what docs/accounting-events.md tells a receiver to do: verify every delivery with the
``standardwebhooks`` library and the secret the ledger's API gave, keep the ``webhook-id`` of
every event it processed and drop repeats, and answer 2xx. It records the order it processed
events in (per account) and every attempt, and can be told to answer some attempts badly (a
500, a timeout after processing, a redirect, 410 Gone, or hold them until the test says so).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from standardwebhooks import Webhook, WebhookVerificationError

from tests.ledger.conftest import Ledger

type Event = dict[str, Any]
type Matcher = Callable[[Event], bool]


@dataclass
class Attempt:
    """One request that arrived (verified)."""

    message_id: str
    type: str
    account_id: int | None
    number: int  # 1 for the first attempt of this message id
    at: float  # time.monotonic()
    answer: str


@dataclass
class Rule:
    """Answer the first attempts of matching events like this.

    With ``until``, every attempt before ``until()`` holds waits for it (less than the
    ledger's timeout) and fails with a 500; then ``answers`` apply.
    """

    matches: Matcher
    answers: list[str]
    until: Callable[[], bool] | None = None


@dataclass
class Receiver:
    """The server's state: what it processed, in which order, and every attempt."""

    url: str = ""
    secret: str | None = None
    #: Message id -> the event, for every event processed (each once).
    processed: dict[str, Event] = field(default_factory=dict)
    #: Message ids in the order they were processed.
    order: list[str] = field(default_factory=list)
    attempts: list[Attempt] = field(default_factory=list)
    duplicates: int = 0
    bad_signatures: int = 0
    redirected_hits: int = 0
    rules: list[Rule] = field(default_factory=list)
    #: Seconds a "timeout" answer waits (longer than the ledger's request timeout).
    stall_s: float = 1.6
    #: Set while a "hold" attempt is waiting; released by ``release``.
    holding: asyncio.Event = field(default_factory=asyncio.Event)
    _release: asyncio.Event = field(default_factory=asyncio.Event)
    _process_held: bool = True
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    def answer_with(
        self, matches: Matcher, *answers: str, until: Callable[[], bool] | None = None
    ) -> None:
        """Answer the next attempts of matching events so: "500", "410", "timeout", ..."""
        self.rules.append(Rule(matches, list(answers), until))

    def release(self, *, process: bool) -> None:
        """Let held attempts go on: processed (their answer lost with the ledger) or not."""
        self._process_held = process
        self._release.set()

    def per_account(self) -> dict[int | None, list[str]]:
        """Return the processed message ids per account, in processing order."""
        found: dict[int | None, list[str]] = defaultdict(list)
        for message_id in self.order:
            found[self.processed[message_id]["data"].get("account_id")].append(message_id)
        return dict(found)

    def of_type(self, kind: str) -> list[Event]:
        """Return the processed events of one type, in processing order."""
        return [self.processed[m] for m in self.order if self.processed[m]["type"] == kind]

    def attempts_of(self, message_id: str) -> list[Attempt]:
        """Return every attempt of one message id."""
        return [a for a in self.attempts if a.message_id == message_id]

    async def wait_until(self, condition: Callable[[], bool], within: float = 30.0) -> None:
        """Wait until ``condition()`` holds after some request (or fail after ``within`` s)."""
        try:
            async with asyncio.timeout(within):
                while not condition():
                    self._changed.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._changed.wait(), 0.2)
        except TimeoutError:
            seen = [(a.type, a.account_id, a.number, a.answer) for a in self.attempts]
            raise AssertionError(f"gave up waiting; attempts so far: {seen}") from None

    def _process(self, message_id: str, event: Event) -> str:
        if message_id in self.processed:
            self.duplicates += 1
            return "duplicate"
        self.processed[message_id] = event
        self.order.append(message_id)
        return "ok"

    def _planned(self, event: Event) -> tuple[str, Callable[[], bool] | None]:
        for rule in self.rules:
            if rule.matches(event) and rule.until is not None and not rule.until():
                return "wait-500", rule.until
            if rule.answers and rule.matches(event):
                return rule.answers.pop(0), None
        return "ok", None

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Verify, then process (or answer as a rule says)."""
        body = await request.read()
        if self.secret is None:
            return web.Response(status=503)
        try:
            event = Webhook(self.secret).verify(body, dict(request.headers))
        except WebhookVerificationError:
            self.bad_signatures += 1
            return web.Response(status=401)
        message_id = request.headers["webhook-id"]
        answer, until = self._planned(event)
        self.attempts.append(
            Attempt(
                message_id=message_id,
                type=event["type"],
                account_id=event["data"].get("account_id"),
                number=len(self.attempts_of(message_id)) + 1,
                at=time.monotonic(),
                answer=answer,
            )
        )
        self._changed.set()
        try:
            if until is not None:
                for _ in range(16):  # 0.8 s: less than the ledger's request timeout
                    if until():
                        break
                    await asyncio.sleep(0.05)
            return await self._answer(answer, message_id, event)
        finally:
            self._changed.set()

    async def _answer(self, answer: str, message_id: str, event: Event) -> web.StreamResponse:
        if answer == "ok":
            self._process(message_id, event)
            return web.Response(status=204)
        if answer == "timeout":  # processed, but the answer comes too late for the ledger
            self._process(message_id, event)
            await asyncio.sleep(self.stall_s)
            return web.Response(status=204)
        if answer == "hold":  # the test kills the ledger meanwhile
            self.holding.set()
            await self._release.wait()
            self._release.clear()
            self.holding.clear()
            if self._process_held:
                self._process(message_id, event)
                return web.Response(status=204)
            return web.Response(status=500)
        if answer == "redirect":
            raise web.HTTPFound(self.url + "/elsewhere")
        if answer == "wait-500":
            return web.Response(status=500)
        if answer == "retry-after":
            return web.Response(status=503, headers={"Retry-After": "1"})
        return web.Response(status=int(answer))

    async def elsewhere(self, _request: web.Request) -> web.StreamResponse:
        """Where a redirect points: must never be reached."""
        self.redirected_hits += 1
        return web.Response(status=204)


@contextlib.asynccontextmanager
async def serve_receiver() -> AsyncIterator[Receiver]:
    """Run a receiver on 127.0.0.1 (a free port) for as long as the context is open."""
    receiver = Receiver()
    app = web.Application()
    app.router.add_post("/hooks", receiver.handle)
    app.router.add_post("/hooks/elsewhere", receiver.elsewhere)
    runner = web.AppRunner(app, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    receiver.url = f"http://127.0.0.1:{port}/hooks"
    try:
        yield receiver
    finally:
        receiver.release(process=False)
        await runner.cleanup()


async def register(ledger: Ledger, receiver: Receiver, **extra: Any) -> dict[str, Any]:
    """Register the receiver as an endpoint; give it the secret the API answered (once)."""
    created: dict[str, Any] = await ledger.ok(
        "POST", "/api/v1/accounting/endpoints", json={"url": receiver.url} | extra
    )
    receiver.secret = created["secret"]
    return created


async def deliveries(ledger: Ledger, query: str = "") -> list[dict[str, Any]]:
    """Return the delivery log (newest first), with an optional query string."""
    answer = await ledger.ok("GET", f"/api/v1/accounting/deliveries?limit=1000{query}")
    found: list[dict[str, Any]] = answer["deliveries"]
    return found


async def log_until(
    ledger: Ledger,
    condition: Callable[[list[dict[str, Any]]], bool],
    query: str = "",
    within: float = 20.0,
) -> list[dict[str, Any]]:
    """Return the delivery log as soon as ``condition(log)`` holds (fail after ``within`` s)."""
    log: list[dict[str, Any]] = []
    for _ in range(int(within / 0.05)):
        log = await deliveries(ledger, query)
        if condition(log):
            return log
        await asyncio.sleep(0.05)
    raise AssertionError(f"the delivery log never got there: {log}")
