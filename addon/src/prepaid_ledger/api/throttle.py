"""Throttling of failed sign-ins and bad bearer tokens, per client address, in memory.

Five failures in a row from one address are free (typos happen); after that the address is
locked out for 2 s, then 4 s, 8 s, ... doubling with every further failure, capped at 15 min.
While locked out every attempt from that address is refused (429 with Retry-After) without
looking at the credential, so guessing gains nothing. A success clears that address only;
other addresses are never affected. At most 10,000 addresses are remembered (the least
recently failing is forgotten first), and an address with no failure for 24 h starts afresh.
State is per process and lost on restart, which is acceptable for a single-instance add-on.
"""

from __future__ import annotations

import ipaddress
import math
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from aiohttp import web

FREE_FAILURES = 5
BASE_LOCKOUT_S = 2.0
MAX_LOCKOUT_S = 15 * 60.0
MAX_ENTRIES = 10_000
FORGET_AFTER_S = 24 * 3600.0


@dataclass(slots=True)
class _Record:
    failures: int
    last_failure: float
    locked_until: float


class FailureTracker:
    """Consecutive failures and lockouts per client address (bounded, monotonic clock)."""

    def __init__(
        self,
        *,
        free_failures: int = FREE_FAILURES,
        base_lockout_s: float = BASE_LOCKOUT_S,
        max_lockout_s: float = MAX_LOCKOUT_S,
        max_entries: int = MAX_ENTRIES,
        forget_after_s: float = FORGET_AFTER_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.free_failures = free_failures
        self.base_lockout_s = base_lockout_s
        self.max_lockout_s = max_lockout_s
        self.max_entries = max_entries
        self.forget_after_s = forget_after_s
        self._clock = clock
        self._records: OrderedDict[str, _Record] = OrderedDict()

    def __len__(self) -> int:
        return len(self._records)

    def _current(self, key: str, now: float) -> _Record | None:
        record = self._records.get(key)
        if record is not None and now - record.last_failure >= self.forget_after_s:
            del self._records[key]
            return None
        return record

    def retry_after(self, key: str) -> int | None:
        """Seconds until KEY may try again (at least 1), or None when it may try now."""
        now = self._clock()
        record = self._current(key, now)
        if record is None or record.locked_until <= now:
            return None
        return max(1, math.ceil(record.locked_until - now))

    def failure(self, key: str) -> None:
        """Count a failure from KEY; from the sixth one on, lock it out for longer each time."""
        now = self._clock()
        record = self._current(key, now)
        if record is None:
            record = _Record(failures=0, last_failure=now, locked_until=0.0)
            self._records[key] = record
        record.failures += 1
        record.last_failure = now
        beyond = record.failures - self.free_failures
        if beyond >= 0:
            # 2 s after the fifth failure, doubling; the exponent is bounded before it grows.
            lockout = self.base_lockout_s * 2.0 ** min(beyond, 32)
            record.locked_until = now + min(lockout, self.max_lockout_s)
        self._records.move_to_end(key)
        while len(self._records) > self.max_entries:
            self._records.popitem(last=False)

    def success(self, key: str) -> None:
        """Forget KEY's failures (a right credential from that address)."""
        self._records.pop(key, None)


_TRACKERS: weakref.WeakKeyDictionary[web.Application, FailureTracker] = weakref.WeakKeyDictionary()


def tracker_of(app: web.Application) -> FailureTracker:
    """Return the app's tracker, made on first use (a started app can no longer take keys)."""
    tracker = _TRACKERS.get(app)
    if tracker is None:
        tracker = _TRACKERS[app] = FailureTracker()
    return tracker


def _is_trusted(address: str | None, trusted_proxies: Iterable[str]) -> bool:
    return address is not None and address in trusted_proxies


def client_address(request: web.Request, trusted_proxies: tuple[str, ...]) -> str:
    """Return the address failures are counted against.

    request.remote, unless that is a trusted proxy: then the nearest X-Forwarded-For hop that
    is not itself a trusted proxy (hops further left could be written by the client).
    """
    remote = request.remote or "unknown"
    if not _is_trusted(remote, trusted_proxies):
        return remote
    hops = [
        hop.strip()
        for value in request.headers.getall("X-Forwarded-For", [])
        for hop in value.split(",")
    ]
    for hop in reversed(hops):
        if not hop or _is_trusted(hop, trusted_proxies):
            continue
        try:
            return str(ipaddress.ip_address(hop))
        except ValueError:
            return remote  # garbage from the proxy: count it against the proxy itself
    return remote


def too_many_message(retry_after: int) -> str:
    """Return the words shown when an address is locked out."""
    return (
        "too many failed attempts from this address; "
        f"try again in {retry_after} second{'s' if retry_after != 1 else ''}"
    )
